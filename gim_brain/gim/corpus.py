"""Training windows for the distilled fuzzy model, and a check that held-out text stays out.

``select_windows`` cuts each tokenised document into non-overlapping W-token windows (stride W,
from the first token), optionally keeping a seeded random subset per document, and
``split_windows`` holds out a seeded fraction for validation. ``find_overlap`` reports a held-out
text (a test story) that appears inside a training text, by shared runs of ``n`` words.
"""

from __future__ import annotations

import re

import numpy as np

__all__ = ["select_windows", "split_windows", "find_overlap", "WindowError"]

_WORD = re.compile(r"[a-z0-9']+")


class WindowError(ValueError):
    """No training window can be cut (W longer than every document, or no documents)."""


def select_windows(docs, window: int, per_doc: int | None = None, seed: int = 0,
                   names=None) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping ``window``-token windows of each document.

    Parameters
    ----------
    docs : list of int arrays
        Token ids of each document.
    window : int
        W, tokens per window.
    per_doc : int or None
        Keep at most this many windows of a document (a seeded random subset, in order).
    seed : int
    names : list of str, optional
        Document names for the error message.

    Returns
    -------
    windows : int64 (n_windows, W)
    doc_index : int64 (n_windows,)
        Which document each window comes from.

    Raises
    ------
    WindowError
        When no document has ``window`` tokens.
    """
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 2:
        raise WindowError(f"window must be an int >= 2 (tokens), got {window!r}")
    if per_doc is not None and per_doc < 1:
        raise WindowError(f"per_doc must be >= 1 or None, got {per_doc!r}")
    rows, which = [], []
    for i, doc in enumerate(docs):
        doc = np.asarray(doc, dtype=np.int64)
        starts = np.arange(0, len(doc) - window + 1, window)
        if per_doc is not None and len(starts) > per_doc:
            rng = np.random.default_rng([seed, i])
            starts = np.sort(rng.choice(starts, per_doc, replace=False))
        for s in starts:
            rows.append(doc[s:s + window])
            which.append(i)
    if not rows:
        longest = max((len(d) for d in docs), default=0)
        what = f"{len(docs)} document(s)" if names is None else ", ".join(map(str, names[:5])) + \
            (" ..." if len(names) > 5 else "")
        raise WindowError(f"window W={window} is longer than every document ({what}; the longest "
                          f"has {longest} tokens): use a smaller window or longer texts")
    return np.stack(rows), np.asarray(which, dtype=np.int64)


def split_windows(n: int, val_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of ``n`` windows into sorted ``(train, val)`` index arrays (>= 2 val windows)."""
    if not 0 < val_fraction < 1:
        raise WindowError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    n_val = max(2, int(round(val_fraction * n)))
    if n - n_val < 2:
        raise WindowError(f"only {n} windows: too few for a training and a validation set "
                          f"(need at least 4; add text or use a smaller window)")
    perm = np.random.default_rng([seed, 7]).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def find_overlap(texts: dict, held_out: dict, n: int = 20) -> list[tuple[str, str]]:
    """Pairs ``(text name, held-out name)`` where the two share a run of ``n`` words.

    Words are lower-cased runs of letters, digits and apostrophes, so punctuation, case and
    layout do not hide a copied story. 20 words in a row almost never repeat by chance.
    """
    grams: dict[int, str] = {}
    for name, text in held_out.items():
        w = _words(text)
        for i in range(max(0, len(w) - n + 1)):
            grams.setdefault(hash(tuple(w[i:i + n])), name)
    found = []
    for name, text in texts.items():
        w = _words(text)
        hits = set()
        for i in range(max(0, len(w) - n + 1)):
            h = hash(tuple(w[i:i + n]))
            if h in grams:
                hits.add(grams[h])
        found.extend((name, h) for h in sorted(hits))
    return found
