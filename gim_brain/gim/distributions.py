"""Sparse next-token distributions of every position of a document (CSR rows)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SparseDistributions", "from_counts"]


@dataclass
class SparseDistributions:
    """One next-token distribution per position, stored as CSR rows.

    Attributes
    ----------
    indptr : int64 (n + 1,)
    tokens : int64 (nnz,)
        Token ids of row ``t`` are ``tokens[indptr[t]:indptr[t+1]]`` (ascending).
    probs : float64 (nnz,)
        Their probabilities; each non-empty row sums to 1. An empty row means "no prediction".
    """

    indptr: np.ndarray
    tokens: np.ndarray
    probs: np.ndarray

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def row(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """``(tokens, probs)`` of position ``t``."""
        a, b = self.indptr[t], self.indptr[t + 1]
        return self.tokens[a:b], self.probs[a:b]

    @property
    def empty(self) -> np.ndarray:
        """bool (n,): rows without any prediction."""
        return np.diff(self.indptr) == 0

    def _row_ids(self) -> np.ndarray:
        return np.repeat(np.arange(len(self)), np.diff(self.indptr))

    def top1(self) -> np.ndarray:
        """int64 (n,): most probable token, ties broken to the smallest token id; -1 for empty rows."""
        out = np.full(len(self), -1, dtype=np.int64)
        if len(self.tokens) == 0:
            return out
        rows = self._row_ids()
        # sort by (row, -prob, token): the first entry of each row wins
        order = np.lexsort((self.tokens, -self.probs, rows))
        first = self.indptr[:-1][~self.empty]
        out[~self.empty] = self.tokens[order][first]
        return out

    def top1_tied(self, targets: np.ndarray, rtol: float = 1e-9) -> np.ndarray:
        """bool (n,): ``targets[t]`` is among the tokens sharing the maximal probability of row t."""
        targets = np.asarray(targets)
        out = np.zeros(len(self), dtype=bool)
        if len(self.tokens) == 0:
            return out
        rows = self._row_ids()
        row_max = np.full(len(self), -np.inf)
        np.maximum.at(row_max, rows, self.probs)
        is_max = self.probs >= row_max[rows] * (1 - rtol)
        hit = is_max & (self.tokens == targets[rows])
        out[rows[hit]] = True
        return out

    def prob_of(self, targets: np.ndarray) -> np.ndarray:
        """float64 (n,): probability each row gives to ``targets[t]`` (0 when absent or empty)."""
        targets = np.asarray(targets)
        out = np.zeros(len(self))
        if len(self.tokens):
            rows = self._row_ids()
            hit = self.tokens == targets[rows]
            out[rows[hit]] = self.probs[hit]
        return out

    def entropy(self) -> np.ndarray:
        """float64 (n,): entropy in nats of each row (NaN for empty rows)."""
        out = np.zeros(len(self))
        if len(self.tokens):
            p = self.probs
            np.add.at(out, self._row_ids(), -p * np.log(np.where(p > 0, p, 1.0)))
        out[self.empty] = np.nan
        return out

    def to_scipy(self, vocab_size: int):
        """``scipy.sparse.csr_matrix`` of shape ``(n, vocab_size)`` (e.g. to project into embeddings)."""
        from scipy.sparse import csr_matrix
        return csr_matrix((self.probs, self.tokens, self.indptr), shape=(len(self), vocab_size))

    @classmethod
    def stack_rows(cls, rows: list[tuple[np.ndarray, np.ndarray]]) -> "SparseDistributions":
        """Build from a list of ``(tokens, probs)`` rows."""
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([len(r[0]) for r in rows])
        tokens = np.concatenate([r[0] for r in rows]).astype(np.int64) if rows else np.zeros(0, np.int64)
        probs = np.concatenate([r[1] for r in rows]).astype(np.float64) if rows else np.zeros(0)
        return cls(indptr, tokens, probs)


def from_counts(indptr: np.ndarray, tokens: np.ndarray, counts: np.ndarray) -> SparseDistributions:
    """Normalise CSR count rows (e.g. :class:`ExactMatches`) into probabilities."""
    n = len(indptr) - 1
    totals = np.zeros(n)
    rows = np.repeat(np.arange(n), np.diff(indptr))
    np.add.at(totals, rows, counts)
    probs = counts / totals[rows] if len(counts) else np.zeros(0)
    return SparseDistributions(indptr.astype(np.int64), tokens.astype(np.int64), probs.astype(np.float64))
