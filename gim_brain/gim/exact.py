"""Exact in-context matching with an incremental suffix automaton over token ids.

For every position ``t`` of a document (the model has read ``ids[:t+1]`` and predicts
``ids[t+1]``) we find, in one left-to-right pass, the length ``n_t`` of the longest suffix of
``ids[:t+1]`` that also ends at an earlier position ``j < t``; every such ``j`` has a following
token ``ids[j+1]`` (``j + 1 <= t``), and the counts of those following tokens form the exact
next-token distribution (GIM step 1).

How: the suffix automaton is extended by one token per step (amortised O(1)). Right after
adding ``ids[t]`` the suffix link of the new state is the state of the longest suffix that occurs
elsewhere, i.e. earlier, and its ``len`` is ``n_t``. That state id stays valid in the final
automaton (a later split moves only the *shorter* strings of a state into a clone), so once the
document is read, the end positions of the match are the prefix positions in that state's
subtree of the suffix-link tree: a contiguous slice of one array in DFS order, restricted to
``j < t``. No suffix array is rebuilt for any prediction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SuffixAutomaton", "ExactMatches", "exact_matches", "check_token_ids"]


def check_token_ids(ids, vocab_size: int | None = None, what: str = "document") -> np.ndarray:
    """Validate a 1-D sequence of token ids and return it as ``int64 (n,)``.

    Raises
    ------
    ValueError
        If ``ids`` is empty, not one-dimensional, not integer, negative, or ``>= vocab_size``
        (the message names ``what`` and the first offending position).
    """
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise ValueError(f"{what}: token ids must be a 1-D sequence, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{what}: empty document (no token ids)")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{what}: token ids must be integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    bad = np.flatnonzero(arr < 0) if vocab_size is None else \
        np.flatnonzero((arr < 0) | (arr >= vocab_size))
    if bad.size:
        i = int(bad[0])
        limit = "non-negative" if vocab_size is None else f"in [0, {vocab_size})"
        raise ValueError(f"{what}: unknown token id {int(arr[i])} at position {i} "
                         f"(ids must be {limit}; {bad.size} bad id(s) in total)")
    return arr


class SuffixAutomaton:
    """Online suffix automaton over integer tokens.

    ``extend(token)`` appends one token and returns ``(n, state)``: the length of the longest
    suffix of the sequence read so far that also ends earlier, and the automaton state holding it
    (0, the root, when the token never occurred before).
    """

    def __init__(self):
        self.link: list[int] = [-1]
        self.length: list[int] = [0]
        self.trans: list[dict[int, int]] = [{}]
        self.prefix_pos: list[int] = [-1]   # position whose prefix ends in this state; -1 = clone/root
        self.last = 0
        self.n_read = 0

    def extend(self, token: int) -> tuple[int, int]:
        link, length, trans, prefix_pos = self.link, self.length, self.trans, self.prefix_pos
        cur = len(length)
        length.append(length[self.last] + 1)
        link.append(0)
        trans.append({})
        prefix_pos.append(self.n_read)
        p = self.last
        while p != -1 and token not in trans[p]:
            trans[p][token] = cur
            p = link[p]
        if p != -1:
            q = trans[p][token]
            if length[p] + 1 == length[q]:
                link[cur] = q
            else:
                clone = len(length)
                length.append(length[p] + 1)
                link.append(link[q])
                trans.append(dict(trans[q]))
                prefix_pos.append(-1)
                while p != -1 and trans[p].get(token) == q:
                    trans[p][token] = clone
                    p = link[p]
                link[q] = clone
                link[cur] = clone
        self.last = cur
        self.n_read += 1
        state = link[cur]
        return length[state], state

    def subtree_order(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Euler tour of the suffix-link tree.

        Returns
        -------
        positions : int64 (n_read,)
            End positions of all prefixes, in DFS order of their states.
        start, stop : int64 (n_states,)
            ``positions[start[s]:stop[s]]`` are the end positions of every occurrence of the
            strings of state ``s`` (its endpos set).
        """
        n_states = len(self.length)
        children: list[list[int]] = [[] for _ in range(n_states)]
        link = self.link
        for s in range(1, n_states):
            children[link[s]].append(s)
        start = [0] * n_states
        stop = [0] * n_states
        positions: list[int] = []
        prefix_pos = self.prefix_pos
        stack = [0]
        while stack:
            s = stack.pop()
            if s < 0:                      # all descendants of ~s are listed
                stop[~s] = len(positions)
                continue
            start[s] = len(positions)
            if prefix_pos[s] >= 0:
                positions.append(prefix_pos[s])
            if children[s]:
                stack.append(~s)
                stack.extend(children[s])
            else:
                stop[s] = len(positions)
        start = np.asarray(start, dtype=np.int64)
        stop = np.asarray(stop, dtype=np.int64)
        return np.asarray(positions, dtype=np.int64), start, stop


@dataclass
class ExactMatches:
    """Exact in-context matches of every position of one document.

    Attributes
    ----------
    ids : int64 (n,)
        The document.
    lengths : int64 (n,)
        ``lengths[t]``: longest suffix of ``ids[:t+1]`` that also ends at some ``j < t`` (0: none).
    indptr : int64 (n + 1,)
    tokens, counts : int64 (nnz,)
        Next-token counts in CSR form: for position ``t``, ``tokens[indptr[t]:indptr[t+1]]``
        (ascending) followed the earlier occurrences ``counts[...]`` times.
    """

    ids: np.ndarray
    lengths: np.ndarray
    indptr: np.ndarray
    tokens: np.ndarray
    counts: np.ndarray
    _states: np.ndarray
    _positions: np.ndarray
    _start: np.ndarray
    _stop: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def occurrences(self, t: int) -> np.ndarray:
        """End positions ``j < t`` (ascending, int64) of the earlier occurrences of the match at ``t``."""
        if not 0 <= t < len(self.ids):
            raise IndexError(f"position {t} outside a document of {len(self.ids)} tokens")
        if self.lengths[t] == 0:
            return np.zeros(0, dtype=np.int64)
        s = self._states[t]
        js = self._positions[self._start[s]:self._stop[s]]
        return np.sort(js[js < t])

    def next_counts(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """``(tokens, counts)`` of the tokens that followed the earlier occurrences at ``t``."""
        a, b = self.indptr[t], self.indptr[t + 1]
        return self.tokens[a:b], self.counts[a:b]


def _next_token_counts(ids, lengths, states, positions, start, stop, chunk_pairs: int = 1 << 22):
    """CSR next-token counts of all positions, vectorised over (position, occurrence) pairs.

    The pairs are gathered from the DFS slices of every position's state in chunks of about
    ``chunk_pairs`` pairs, filtered to ``j < t`` and counted with one ``np.unique`` per chunk.
    """
    n = len(ids)
    vocab, local = np.unique(ids, return_inverse=True)
    local = local.ravel().astype(np.int64)
    ts = np.flatnonzero(lengths)
    a, b = start[states[ts]], stop[states[ts]]
    sizes = b - a
    bounds = np.searchsorted(np.cumsum(sizes), np.arange(chunk_pairs, int(sizes.sum()) + chunk_pairs,
                                                           chunk_pairs), side="right")
    row_counts = np.zeros(n, dtype=np.int64)
    tok_parts, cnt_parts = [], []
    lo = 0
    for hi in np.unique(np.append(bounds, len(ts))).tolist():
        hi = max(hi, lo + 1) if lo < len(ts) else hi
        if hi <= lo:
            continue
        sz = sizes[lo:hi]
        offs = np.repeat(a[lo:hi] - np.concatenate(([0], np.cumsum(sz)[:-1])), sz) + np.arange(sz.sum())
        js = positions[offs]
        tt = np.repeat(ts[lo:hi], sz)
        keep = js < tt
        key = tt[keep] * len(vocab) + local[js[keep] + 1]
        uk, ct = np.unique(key, return_counts=True)
        np.add.at(row_counts, uk // len(vocab), 1)
        tok_parts.append(vocab[uk % len(vocab)])
        cnt_parts.append(ct)
        lo = hi
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(row_counts, out=indptr[1:])
    cat = lambda parts: np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)
    return indptr, cat(tok_parts), cat(cnt_parts)


def exact_matches(ids, vocab_size: int | None = None) -> ExactMatches:
    """Run the suffix automaton over a document and collect matches for every position.

    Parameters
    ----------
    ids : int sequence (n,)
        Token ids of one document (n >= 1).
    vocab_size : int, optional
        When given, ids outside ``[0, vocab_size)`` raise ``ValueError``.

    Returns
    -------
    ExactMatches
    """
    ids = check_token_ids(ids, vocab_size)
    n = len(ids)
    sam = SuffixAutomaton()
    extend = sam.extend
    found = [extend(tok) for tok in ids.tolist()]
    lengths = np.fromiter((f[0] for f in found), dtype=np.int64, count=n)
    states = np.fromiter((f[1] for f in found), dtype=np.int64, count=n)
    positions, start, stop = sam.subtree_order()

    indptr, tokens, counts = _next_token_counts(ids, lengths, states, positions, start, stop)
    return ExactMatches(ids=ids, lengths=lengths, indptr=indptr, tokens=tokens, counts=counts,
                        _states=states, _positions=positions, _start=start, _stop=stop)
