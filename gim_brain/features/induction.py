"""The induction head over brain responses (GIM's fMRI feature) and its controls.

For each response row ``t`` of a story, a *match rule* picks one earlier row ``m <= t - gap``
of the same story; the features of row ``t`` are then the subject's response changes after that
moment, ``z[m + k] - z[m]`` for ``k = 1..horizon`` on the first ``K`` response principal
components, plus the same block for rows ``t - 1`` and ``t - 2`` (``lags``). So the last response
row row ``t`` ever reads is ``t - gap + horizon`` (``t - 1`` with the defaults gap 4, horizon 3):
nothing at or after row ``t`` is used. ``z`` comes from a PCA fitted on TRAINING stories only.

Match rules (all pure functions of the text or of the row count, never of the responses):

``match_by_similarity``
    the earlier row most similar to ``t`` in a (n_rows, n_rows) text-similarity matrix
    (GIM's fuzzy branch; ties go to the most recent row).
``match_by_ngram``
    the row of the most recent earlier occurrence of the longest exact word n-gram ending at
    row ``t``'s last word (the naive n-gram control).
``combine_exact_fuzzy``
    GIM's combination: the exact match where its length reaches ``tau`` words, else the fuzzy one.
``match_random``
    a uniformly random earlier row (control).
``match_autoregressive``
    ``m = t - gap``: plain autoregression at the same lag (the control the paper lacks).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.base import BaseEstimator

from ..data.response_pca import ResponsePCA

__all__ = [
    "match_by_similarity", "match_by_ngram", "combine_exact_fuzzy", "match_random",
    "match_autoregressive", "row_last_word", "cosine_similarity_rows", "induction_block",
    "ResponseInduction", "last_row_used",
]


def _check_gap(gap: int) -> int:
    if int(gap) != gap or gap < 1:
        raise ValueError(f"gap must be a positive whole number of rows, got {gap!r}")
    return int(gap)


def last_row_used(t: int, gap: int, horizon: int) -> int:
    """The latest response row the features of row ``t`` may read: ``t - gap + horizon``."""
    return t - gap + horizon


def match_by_similarity(similarity: np.ndarray, gap: int = 4,
                        valid: np.ndarray | None = None) -> np.ndarray:
    """For each row ``t``, the row ``m <= t - gap`` with the highest ``similarity[t, m]``.

    Parameters
    ----------
    similarity : (n_rows, n_rows) float array
    gap : int
    valid : (n_rows,) bool, optional
        Rows that have text; an invalid row is never a query nor a candidate.

    Returns
    -------
    (n_rows,) int64; -1 where no candidate exists. Ties go to the most recent row.
    """
    gap = _check_gap(gap)
    sim = np.asarray(similarity, dtype=np.float64)
    n = sim.shape[0]
    if sim.shape != (n, n):
        raise ValueError(f"similarity must be square (n_rows, n_rows), got {sim.shape}")
    valid = np.ones(n, bool) if valid is None else np.asarray(valid, bool)
    out = np.full(n, -1, dtype=np.int64)
    for t in range(gap, n):
        if not valid[t]:
            continue
        cand = sim[t, :t - gap + 1].copy()
        cand[~valid[:t - gap + 1]] = -np.inf
        cand[~np.isfinite(cand)] = -np.inf
        if not np.isfinite(cand).any():
            continue
        out[t] = len(cand) - 1 - int(np.argmax(cand[::-1]))  # latest among ties
    return out


def match_random(n_rows: int, gap: int = 4, seed: int = 0,
                 valid: np.ndarray | None = None) -> np.ndarray:
    """A uniformly random earlier row ``m <= t - gap`` for each row (-1 where none)."""
    gap = _check_gap(gap)
    rng = np.random.default_rng(seed)
    valid = np.ones(n_rows, bool) if valid is None else np.asarray(valid, bool)
    out = np.full(n_rows, -1, dtype=np.int64)
    for t in range(gap, n_rows):
        if valid[t]:
            out[t] = int(rng.integers(0, t - gap + 1))
    return out


def match_autoregressive(n_rows: int, gap: int = 4) -> np.ndarray:
    """``m = t - gap`` for every row that has one (-1 for the first ``gap`` rows)."""
    gap = _check_gap(gap)
    out = np.arange(n_rows, dtype=np.int64) - gap
    out[out < 0] = -1
    return out


def row_last_word(word_rows: np.ndarray, n_rows: int) -> np.ndarray:
    """For each row, the index of the last word heard up to the end of that row (-1 if none).

    ``word_rows`` (n_words,) gives each word's row (-1 for words outside the grid), in time order.
    """
    word_rows = np.asarray(word_rows, dtype=np.int64)
    out = np.full(n_rows, -1, dtype=np.int64)
    inside = np.flatnonzero((word_rows >= 0) & (word_rows < n_rows))
    np.maximum.at(out, word_rows[inside], inside)
    # words before the first in-grid word (row -1 at the start) are heard before row 0
    last = int(inside[0]) - 1 if len(inside) else -1
    for r in range(n_rows):
        if out[r] < 0:
            out[r] = last
        last = out[r]
    return out


def match_by_ngram(word_ids: np.ndarray, word_rows: np.ndarray, n_rows: int, gap: int = 4,
                   min_length: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Longest exact word n-gram match ending at each row's last word.

    Parameters
    ----------
    word_ids : (n_words,) int
        Word identities (e.g. indices of lower-cased words), in time order.
    word_rows : (n_words,) int
        Row of each word (-1 outside the grid).
    n_rows : int
    gap : int
        The earlier occurrence must end at a word of row ``<= t - gap``.
    min_length : int
        Matches shorter than this many words count as no match.

    Returns
    -------
    matches : (n_rows,) int64, the row of the matched earlier word (-1 where none)
    lengths : (n_rows,) int64, the match length in words (0 where none)
    Ties in length go to the most recent occurrence.
    """
    gap = _check_gap(gap)
    w = np.asarray(word_ids, dtype=np.int64)
    rows = np.asarray(word_rows, dtype=np.int64)
    if len(w) != len(rows):
        raise ValueError(f"{len(w)} word ids but {len(rows)} word rows")
    last = row_last_word(rows, n_rows)
    matches = np.full(n_rows, -1, dtype=np.int64)
    lengths = np.zeros(n_rows, dtype=np.int64)
    for t in range(gap, n_rows):
        i = last[t]
        if i < 0:
            continue
        cand = np.flatnonzero((rows >= 0) & (rows <= t - gap))
        cand = cand[cand < i]
        if len(cand) == 0:
            continue
        length = np.zeros(len(cand), dtype=np.int64)
        alive = np.ones(len(cand), bool)
        k = 0
        while alive.any() and k <= i:
            pos = cand - k
            ok = alive & (pos >= 0)
            ok[ok] &= w[pos[ok]] == w[i - k]
            length[ok] += 1
            alive = ok
            k += 1
        best = int(length.max())
        if best < max(1, min_length):
            continue
        j = cand[np.flatnonzero(length == best)[-1]]
        matches[t] = rows[j]
        lengths[t] = best
    return matches, lengths


def combine_exact_fuzzy(exact_matches: np.ndarray, exact_lengths: np.ndarray,
                        fuzzy_matches: np.ndarray, tau: int) -> np.ndarray:
    """GIM's combination rule per row: exact match if its length ``>= tau``, else fuzzy."""
    use_exact = (np.asarray(exact_lengths) >= tau) & (np.asarray(exact_matches) >= 0)
    return np.where(use_exact, exact_matches, fuzzy_matches).astype(np.int64)


def cosine_similarity_rows(reps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarity of row representations ``(n_rows, d)``; all-zero rows are invalid.

    Returns ``(similarity (n_rows, n_rows), valid (n_rows,) bool)``.
    """
    reps = np.asarray(reps, dtype=np.float64)
    norms = np.linalg.norm(reps, axis=1)
    valid = norms > 0
    unit = np.zeros_like(reps)
    unit[valid] = reps[valid] / norms[valid, None]
    return unit @ unit.T, valid


def induction_block(z: np.ndarray, matches: np.ndarray, gap: int = 4, horizon: int = 3,
                    lags: Sequence[int] = (0, 1, 2)) -> np.ndarray:
    """Response changes after each row's matched moment.

    Parameters
    ----------
    z : (n_rows, K) array
        The story's responses in training-PCA space.
    matches : (n_rows,) int
        Matched earlier row per row (-1 where none); must satisfy ``m_t <= t - gap``.
    gap, horizon : int
        ``horizon < gap`` so that the last row read, ``t - gap + horizon``, lies before ``t``.
    lags : sequence of int
        Blocks for rows ``t - l``; the paper's ``(0, 1, 2)``.

    Returns
    -------
    (n_rows, len(lags) * horizon * K) float32: for lag ``l`` and step ``k`` the block
    ``z[m_{t-l} + k] - z[m_{t-l}]`` (zeros where ``t - l < 0`` or no match).
    """
    gap = _check_gap(gap)
    if not 1 <= horizon < gap:
        raise ValueError(f"horizon must satisfy 1 <= horizon < gap (={gap}) so that no response at "
                         f"or after row t is used; got horizon={horizon}")
    if any(int(l) != l or l < 0 for l in lags):
        raise ValueError(f"lags must be whole numbers >= 0, got {list(lags)}")
    z = np.asarray(z, dtype=np.float32)
    matches = np.asarray(matches, dtype=np.int64)
    n, K = z.shape
    if len(matches) != n:
        raise ValueError(f"{len(matches)} matches for {n} response rows")
    t_idx = np.arange(n)
    bad = (matches >= 0) & (matches > t_idx - gap)
    if bad.any():
        t0 = int(np.flatnonzero(bad)[0])
        raise ValueError(f"match rule broke the gap: row {t0} matched row {matches[t0]} > {t0} - {gap}")
    # per row t: changes after its own match, (n, horizon*K)
    own = np.zeros((n, horizon * K), dtype=np.float32)
    has = matches >= 0
    m = matches[has]
    for k in range(1, horizon + 1):
        own[has, (k - 1) * K:k * K] = z[m + k] - z[m]
    blocks = []
    for l in lags:
        l = int(l)
        b = np.zeros_like(own)
        if l < n:
            b[l:] = own[:n - l]
        blocks.append(b)
    return np.concatenate(blocks, axis=1)


class ResponseInduction(BaseEstimator):
    """PCA of responses fitted on training stories, then :func:`induction_block` per story.

    Parameters
    ----------
    n_components : int
        K, the number of response PCs (default 100; capped at the number of targets).
    gap, horizon : int
        See :func:`induction_block`.
    lags : tuple of int
    whiten : bool
        Scale each PC to unit variance on the training stories (keeps the blocks on the scale of
        z-scored features they are concatenated with).
    """

    def __init__(self, n_components: int = 100, gap: int = 4, horizon: int = 3,
                 lags: Sequence[int] = (0, 1, 2), whiten: bool = True):
        self.n_components = n_components
        self.gap = gap
        self.horizon = horizon
        self.lags = lags
        self.whiten = whiten

    def fit(self, train_responses: Sequence[np.ndarray], y=None):
        """Fit the PCA on the TRAINING stories' responses only (list of (n_rows_i, n_targets))."""
        train = list(train_responses)  # never stacked: the PCA walks the stories one by one
        if not train:
            raise ValueError("the response PCA needs at least one training story")
        self.pca_ = ResponsePCA(n_components=int(self.n_components), whiten=self.whiten,
                                seed=0).fit(train)
        self.n_components_ = self.pca_.n_components_
        return self

    def project(self, responses: np.ndarray) -> np.ndarray:
        """(n_rows, n_targets) -> (n_rows, K) in the training PCA space (a row-wise map)."""
        return self.pca_.transform(np.asarray(responses, dtype=np.float32)).astype(np.float32)

    def transform(self, responses: np.ndarray, matches: np.ndarray) -> np.ndarray:
        """Induction features ``(n_rows, len(lags) * horizon * K)`` of one story."""
        return induction_block(self.project(responses), matches, self.gap, self.horizon, self.lags)
