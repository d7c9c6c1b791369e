"""Story-aware preprocessing of row-level feature matrices: trims, z-scoring, FIR delays.

Every transformer here takes a *story list* — a list of 2-D arrays, one ``(n_rows_i, n_features)``
matrix per story (a single 2-D array counts as one story) — and returns a story list of the same
length, so no operation can mix rows of different stories.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

__all__ = ["as_story_list", "trim", "zscore", "make_delayed", "Trim", "StoryZScore",
           "FIRDelayer", "DEFAULT_DELAYS"]

DEFAULT_DELAYS: tuple[int, ...] = (1, 2, 3, 4)


def as_story_list(X) -> list[np.ndarray]:
    """A list of 2-D arrays from one 2-D array or a sequence of them (1-D -> one column)."""
    if isinstance(X, np.ndarray):
        X = [X]
    out = []
    for i, x in enumerate(X):
        x = np.asarray(x)
        if x.ndim == 1:
            x = x[:, None]
        if x.ndim != 2:
            raise ValueError(f"story {i}: expected a 2-D (n_rows, n_features) array, got shape {x.shape}")
        out.append(x)
    return out


def trim(x: np.ndarray, start: int = 0, end: int = 0) -> np.ndarray:
    """Drop ``start`` rows at the beginning and ``end`` rows at the end of one story."""
    if start < 0 or end < 0:
        raise ValueError(f"trims must be >= 0, got start={start}, end={end}")
    if start + end >= len(x):
        raise ValueError(f"trimming {start}+{end} rows leaves nothing of a story with {len(x)} rows")
    return x[start:len(x) - end]


def zscore(x: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """Z-score the columns of one story; constant columns become 0 (never NaN). float32 out."""
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    out = (x - mean) / np.where(std > eps, std, 1.0)
    out[:, std <= eps] = 0.0
    return out.astype(np.float32)


def make_delayed(x: np.ndarray, delays: Sequence[int] = DEFAULT_DELAYS) -> np.ndarray:
    """FIR-delayed copies of one story's features, zero-filled at the story edges.

    Parameters
    ----------
    x : (n_rows, n_features) array
    delays : sequence of int, TRs
        A delay ``d > 0`` puts row ``t - d`` of ``x`` at row ``t`` (the first ``d`` rows are 0);
        ``d < 0`` looks ahead. Rows never come from another story.

    Returns
    -------
    (n_rows, n_features * len(delays)) array, blocks in the order of ``delays``.
    """
    x = np.asarray(x)
    n, p = x.shape
    out = np.zeros((n, p * len(delays)), dtype=x.dtype)
    for i, d in enumerate(delays):
        d = int(d)
        block = out[:, i * p:(i + 1) * p]
        if d == 0:
            block[:] = x
        elif d > 0 and d < n:
            block[d:] = x[:n - d]
        elif d < 0 and -d < n:
            block[:n + d] = x[-d:]
    return out


class Trim(TransformerMixin, BaseEstimator):
    """Drop ``start`` and ``end`` rows of every story."""

    def __init__(self, start: int = 0, end: int = 0):
        self.start = start
        self.end = end

    def fit(self, X=None, y=None):
        return self

    def transform(self, X) -> list[np.ndarray]:
        return [trim(x, self.start, self.end) for x in as_story_list(X)]


class StoryZScore(TransformerMixin, BaseEstimator):
    """Z-score each story's columns with that story's own mean and standard deviation."""

    def __init__(self, eps: float = 1e-8):
        self.eps = eps

    def fit(self, X=None, y=None):
        return self

    def transform(self, X) -> list[np.ndarray]:
        return [zscore(x, self.eps) for x in as_story_list(X)]


class FIRDelayer(TransformerMixin, BaseEstimator):
    """FIR delays within each story (default 1-4 TRs); never a row from a neighbouring story."""

    def __init__(self, delays: Sequence[int] = DEFAULT_DELAYS):
        self.delays = delays

    def fit(self, X=None, y=None):
        if len(self.delays) == 0:
            raise ValueError("delays must name at least one delay (in TRs)")
        return self

    def transform(self, X) -> list[np.ndarray]:
        self.fit()
        return [make_delayed(x, self.delays) for x in as_story_list(X)]
