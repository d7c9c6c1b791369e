"""Resampling of word-level features onto the response rows (TR times).

Word features live at word times (seconds from audio start); fMRI responses live on a grid of
row times. Three resamplers are offered:

``lanczos``
    A Lanczos-windowed sinc (``window`` lobes, default 3) whose cutoff is the TR's rate,
    ``cutoff = cutoff_mult / TR`` Hz: the kernel is 1 at distance 0 and crosses zero at every
    multiple of the TR. This is the ds003020 / Huth-lab convention (``lanczosinterp2D``):
    each row is a *weighted sum* (not a mean) of the words around its time.
``sinc``
    The same sinc without the Lanczos taper, truncated at ``window`` lobes (default 10).
``sum`` / ``mean``
    Rectangular: the sum (or mean) of the features of the words whose time falls in the row's
    window ``[row_time - TR, row_time)`` (the ``TRGrid.assign_words`` rule). Rows without words get zeros.

Which times a story's rows get is its timing convention's business, not this module's:
:func:`gim_brain.features.context.row_times_for` passes the grid's kernel centres
(``TRGrid.kernel_times``) to the kernels and its window ends (``TRGrid.row_times``) to the
rectangular methods. Under the ``"reference"`` convention (HuthLab ``deep-fMRI-dataset``) this
gives that code's ``lanczosinterp2D`` rows (the kernel all its feature spaces use) and its
rectangular ``chunksums`` exactly. Our ``sinc`` shares the kernel centres but not the kernel of
that code's ``sincinterp2D`` (which crosses zero every TR / 2 and rescales each row to sum 1).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

__all__ = ["lanczos_kernel", "sinc_kernel", "downsample", "Downsampler", "DOWNSAMPLE_METHODS"]

DOWNSAMPLE_METHODS = ("lanczos", "sinc", "sum", "mean")


def lanczos_kernel(dt: np.ndarray, cutoff: float, window: int = 3) -> np.ndarray:
    """Lanczos kernel at time differences ``dt`` (seconds) for a cutoff in Hz.

    ``k(x) = window * sin(pi x) sin(pi x / window) / (pi x)^2`` with ``x = dt * cutoff``,
    ``k(0) = 1`` and ``k = 0`` for ``|x| > window``.
    """
    x = np.asarray(dt, dtype=np.float64) * cutoff
    out = np.ones_like(x)
    nz = x != 0
    px = np.pi * x[nz]
    out[nz] = window * np.sin(px) * np.sin(px / window) / (px * px)
    out[np.abs(x) > window] = 0.0
    return out


def sinc_kernel(dt: np.ndarray, cutoff: float, window: int = 10) -> np.ndarray:
    """Plain sinc ``sin(pi x) / (pi x)`` with ``x = dt * cutoff``, zero beyond ``window`` lobes."""
    x = np.asarray(dt, dtype=np.float64) * cutoff
    out = np.sinc(x)
    out[np.abs(x) > window] = 0.0
    return out


def _check_inputs(features, word_times, row_times):
    features = np.asarray(features)
    if features.ndim == 1:
        features = features[:, None]
    if features.ndim != 2:
        raise ValueError(f"word features must be 2-D (n_words, n_features), got shape {features.shape}")
    word_times = np.asarray(word_times, dtype=np.float64).ravel()
    row_times = np.asarray(row_times, dtype=np.float64).ravel()
    if len(word_times) != len(features):
        raise ValueError(f"{len(features)} rows of word features but {len(word_times)} word times")
    if not np.all(np.isfinite(word_times)):
        raise ValueError("word times contain NaN or inf")
    if len(row_times) == 0:
        raise ValueError("the row grid is empty (0 response rows)")
    return features, word_times, row_times


def downsample(features: np.ndarray, word_times: np.ndarray, row_times: np.ndarray, tr: float,
               method: str = "lanczos", window: int | None = None,
               cutoff_mult: float = 1.0) -> np.ndarray:
    """Resample word-level features onto row times.

    Parameters
    ----------
    features : (n_words, n_features) array
        One row per word (1-D is treated as one feature).
    word_times : (n_words,) float, seconds
        Time of each word (e.g. its onset, or the middle of the word).
    row_times : (n_rows,) float, seconds
        Time of each response row: the centre of its kernel (``lanczos``/``sinc``) or the END
        of its word window (``sum``/``mean``); see the module docstring.
    tr : float, seconds
        Repetition time; sets the cutoff (``cutoff_mult / tr`` Hz) and the rectangular windows.
    method : {"lanczos", "sinc", "sum", "mean"}
    window : int, optional
        Lobes of the (Lanczos-)sinc kernel; default 3 for Lanczos, 10 for sinc.
    cutoff_mult : float
        Multiplier of the cutoff frequency ``1 / tr``.

    Returns
    -------
    (n_rows, n_features) float32 array
    """
    if method not in DOWNSAMPLE_METHODS:
        raise ValueError(f"unknown downsampling method {method!r}; choose one of {DOWNSAMPLE_METHODS}")
    if not tr > 0:
        raise ValueError(f"TR must be positive seconds, got {tr!r}")
    features, word_times, row_times = _check_inputs(features, word_times, row_times)
    if len(word_times) == 0:
        return np.zeros((len(row_times), features.shape[1]), dtype=np.float32)
    feats = features.astype(np.float64, copy=False)
    if method in ("lanczos", "sinc"):
        cutoff = cutoff_mult / tr
        if method == "lanczos":
            kernel, lobes = lanczos_kernel, 3 if window is None else int(window)
        else:
            kernel, lobes = sinc_kernel, 10 if window is None else int(window)
        return _kernel_sum(kernel, lobes, cutoff, feats, word_times, row_times).astype(np.float32)
    # rectangular: word belongs to row r when row_times[r] - tr <= t < row_times[r]
    rows = np.searchsorted(row_times, word_times, side="right")
    inside = rows < len(row_times)
    inside[inside] &= word_times[inside] >= row_times[rows[inside]] - tr
    out = np.zeros((len(row_times), feats.shape[1]), dtype=np.float64)
    np.add.at(out, rows[inside], feats[inside])
    if method == "mean":
        counts = np.bincount(rows[inside], minlength=len(row_times)).astype(np.float64)
        nonempty = counts > 0
        out[nonempty] /= counts[nonempty, None]
    return out.astype(np.float32)


def _kernel_sum(kernel, lobes: int, cutoff: float, feats: np.ndarray, times: np.ndarray,
                row_times: np.ndarray, block: int = 16) -> np.ndarray:
    """``kernel(row_times - times) @ feats``, evaluated only where the kernel is non-zero.

    Both kernels vanish beyond ``lobes / cutoff`` seconds, so each block of ``block`` rows needs
    only the events within that reach of it (events sorted once by time): the same sums as the
    dense ``(n_rows, n_events)`` matrix, in O(n_events) memory per block instead of
    O(n_rows * n_events) (phoneme-level features have ~6000 events per story).
    """
    order = np.argsort(times, kind="stable")
    t, f = times[order], feats[order]
    reach = lobes / cutoff * (1 + 1e-9) + 1e-9
    out = np.zeros((len(row_times), f.shape[1]), dtype=np.float64)
    for start in range(0, len(row_times), block):
        rt = row_times[start:start + block]
        lo = int(np.searchsorted(t, rt.min() - reach, side="left"))
        hi = int(np.searchsorted(t, rt.max() + reach, side="right"))
        if hi > lo:
            out[start:start + block] = kernel(rt[:, None] - t[None, lo:hi], cutoff, lobes) @ f[lo:hi]
    return out


class Downsampler(TransformerMixin, BaseEstimator):
    """scikit-learn transformer wrapping :func:`downsample`.

    ``fit`` learns nothing; ``transform(X, word_times=..., row_times=..., tr=...)`` resamples
    ``X`` (n_words, n_features) onto the rows.
    """

    def __init__(self, method: str = "lanczos", window: int | None = None, cutoff_mult: float = 1.0):
        self.method = method
        self.window = window
        self.cutoff_mult = cutoff_mult

    def fit(self, X=None, y=None, **params):
        if self.method not in DOWNSAMPLE_METHODS:
            raise ValueError(f"unknown downsampling method {self.method!r}; choose one of {DOWNSAMPLE_METHODS}")
        return self

    def transform(self, X, *, word_times, row_times, tr):
        return downsample(X, word_times, row_times, tr, method=self.method, window=self.window,
                          cutoff_mult=self.cutoff_mult)
