"""The earlier moment GIM matches, for one query at a time, from a story's TOKENS (text only).

GIM's combination rule (``shared/docs/GIM.md`` step 4) picks, for a query position ``q``, an
earlier position ``j``: the most recent end of the longest exact token match (the longest suffix
of ``ids[:q+1]`` that also ends at ``j``) when that match is at least ``tau`` tokens long,
otherwise the earlier position whose fuzzy representation is most similar to ``q``'s. Every
query here comes with the range ``[lo, hi]`` its candidate ends ``j`` must lie in (``hi < q``),
so a rule that must stay in the past (``m <= t - gap`` for TRs, "the copied word precedes the
current word" for ``gim-copy``) is part of the match, not a filter after it.

:class:`EarlierTokenMatches`
    Exact matching restricted to ``[lo, hi]`` with GIM's suffix automaton
    (:class:`gim_brain.gim.SuffixAutomaton`): walk the query's suffix-link chain from its
    longest earlier match towards the root until a state has an end position in range; that
    state's length is the longest match with an allowed end.
:func:`nearest_earlier`
    Fuzzy branch: the most similar allowed key (ties to the most recent).
:func:`combine_exact_fuzzy_ends`
    The rule itself: exact end where its length reaches ``tau``, else the fuzzy end.

Representations of windows (W tokens ending at a query) for the fuzzy branch:
:func:`window_distributions` (the LM's top-k next-token log-probabilities, cached) and
:func:`skl_similarity` (minus the symmetrised KL, GIM's teacher distance).
"""

from __future__ import annotations

import numpy as np

from ..gim.exact import SuffixAutomaton, check_token_ids

__all__ = [
    "EarlierTokenMatches",
    "combine_exact_fuzzy_ends",
    "nearest_earlier",
    "skl_similarity",
    "window_distributions",
]


class EarlierTokenMatches:
    """Longest exact token match of a query position with an earlier end in a given range.

    Parameters
    ----------
    ids : int (n_tokens,)
        The story's token ids, read once by a suffix automaton.
    """

    def __init__(self, ids):
        self.ids = check_token_ids(ids, what="story tokens")
        sam = SuffixAutomaton()
        found = [sam.extend(tok) for tok in self.ids.tolist()]
        self._state = np.fromiter((f[1] for f in found), dtype=np.int64, count=len(found))
        self._positions, self._start, self._stop = sam.subtree_order()
        self._link = np.asarray(sam.link, dtype=np.int64)
        self._length = np.asarray(sam.length, dtype=np.int64)

    def query(self, q: int, lo: int, hi: int) -> tuple[int, int]:
        """``(j, n)``: the latest end ``j`` in ``[lo, min(hi, q - 1)]`` of the longest suffix of
        ``ids[:q+1]`` that also ends at ``j``, and that length ``n`` in tokens; ``(-1, 0)`` when no
        token of the range matches ``ids[q]``."""
        hi = min(int(hi), int(q) - 1)
        lo = max(int(lo), 0)
        if hi < lo:
            return -1, 0
        s = int(self._state[q])
        while s > 0:                        # the root (0) is the empty match
            js = self._positions[self._start[s]:self._stop[s]]
            ok = js[(js >= lo) & (js <= hi)]
            if ok.size:
                return int(ok.max()), int(self._length[s])
            s = int(self._link[s])
        return -1, 0

    def query_many(self, queries, lo, hi) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`query` for arrays ``queries``, ``lo``, ``hi`` (n,); query -1 gives ``(-1, 0)``.

        Returns ``(ends (n,) int64, lengths (n,) int64)``.
        """
        queries = np.asarray(queries, dtype=np.int64)
        lo = np.broadcast_to(np.asarray(lo, dtype=np.int64), queries.shape)
        hi = np.broadcast_to(np.asarray(hi, dtype=np.int64), queries.shape)
        ends = np.full(len(queries), -1, dtype=np.int64)
        lengths = np.zeros(len(queries), dtype=np.int64)
        for i, (q, a, b) in enumerate(zip(queries.tolist(), lo.tolist(), hi.tolist())):
            if q >= 0:
                ends[i], lengths[i] = self.query(q, a, b)
        return ends, lengths


def nearest_earlier(similarity: np.ndarray, lo, hi) -> np.ndarray:
    """Per query row, the key column in ``[lo_i, hi_i]`` with the highest similarity.

    Parameters
    ----------
    similarity : (n_queries, n_keys) float
        Non-finite entries are never chosen.
    lo, hi : int or (n_queries,) int
        Allowed key range of each query (inclusive).

    Returns
    -------
    (n_queries,) int64; -1 where the range is empty or holds no finite entry. Ties go to the
    latest key.
    """
    sim = np.asarray(similarity, dtype=np.float64)
    n, k = sim.shape
    lo = np.broadcast_to(np.asarray(lo, dtype=np.int64), (n,))
    hi = np.broadcast_to(np.asarray(hi, dtype=np.int64), (n,))
    cols = np.arange(k)[None, :]
    allowed = (cols >= lo[:, None]) & (cols <= hi[:, None]) & np.isfinite(sim)
    masked = np.where(allowed, sim, -np.inf)
    latest = k - 1 - np.argmax(masked[:, ::-1], axis=1)   # latest among ties
    return np.where(allowed.any(axis=1), latest, -1).astype(np.int64)


def combine_exact_fuzzy_ends(exact_ends: np.ndarray, exact_lengths: np.ndarray,
                             fuzzy_ends: np.ndarray, tau: int) -> np.ndarray:
    """GIM's rule per query: the exact end where its length is ``>= tau`` tokens, else fuzzy."""
    if int(tau) != tau or tau < 1:
        raise ValueError(f"tau must be a whole number of tokens >= 1, got {tau!r}")
    exact_ends = np.asarray(exact_ends, dtype=np.int64)
    use_exact = (np.asarray(exact_lengths) >= tau) & (exact_ends >= 0)
    return np.where(use_exact, exact_ends, np.asarray(fuzzy_ends, dtype=np.int64))


def window_distributions(lm, ids, queries, window: int, top_k: int = 64, cache=None):
    """The LM's top-k next-token distribution after each query token, reading its W-token window.

    Query ``q`` reads ``ids[max(0, q-W+1):q+1]`` (GIM's fuzzy window), through
    :func:`gim_brain.gim.teacher.teacher_targets` (the distilled model's teacher, cached there).

    Parameters
    ----------
    lm : gim_brain.lm.LanguageModel
    ids : int (n_tokens,)
    queries : int (n_queries,)
        Token positions, each in ``[0, n_tokens)``.
    window : int
    top_k : int
        Tokens kept per distribution (memory is ``n_queries x top_k``, not the vocabulary).

    Returns
    -------
    TeacherTargets with ``(n_queries, top_k)`` arrays.
    """
    from ..gim.teacher import TeacherTargets, teacher_targets

    ids = check_token_ids(ids, what="story tokens")
    queries = np.asarray(queries, dtype=np.int64)
    if queries.size and (queries.min() < 0 or queries.max() >= len(ids)):
        raise ValueError(f"query positions must lie in 0..{len(ids) - 1}")
    k = int(top_k)
    out_ids = np.zeros((len(queries), k), np.int32)
    out_logp = np.zeros((len(queries), k), np.float32)
    out_rest = np.zeros(len(queries), np.float32)
    full = queries >= window - 1
    if full.any():
        rows = np.stack([ids[q - window + 1:q + 1] for q in queries[full]])
        t = teacher_targets(lm, rows, top_k=k, positions="last", cache=cache)
        out_ids[full], out_logp[full], out_rest[full] = t.ids, t.logp, t.rest
    if (~full).any():
        # windows shorter than W are prefixes of ids[:W]: one causal pass reads them all
        head = ids[:min(len(ids), window)][None]
        t = teacher_targets(lm, head, top_k=k, positions="all", cache=cache)
        pos = queries[~full]
        out_ids[~full], out_logp[~full], out_rest[~full] = t.ids[0, pos], t.logp[0, pos], t.rest[0, pos]
    return TeacherTargets(out_ids, out_logp, out_rest, int(lm.vocab_size))


def skl_similarity(targets) -> np.ndarray:
    """``-SKL`` (nats) between every pair of rows of ``targets``: ``(n, n)`` float64, 0 = identical.

    The symmetrised KL ``½(KL(p‖q) + KL(q‖p))`` of GIM's teacher (two matrix products over the
    union of kept tokens, :func:`gim_brain.gim.teacher.skl_matrix`); memory ``O(n x n·top_k)``.
    """
    from ..gim.teacher import skl_matrix

    return -skl_matrix(targets, targets).double().cpu().numpy()
