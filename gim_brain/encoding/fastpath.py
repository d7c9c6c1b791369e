"""Fast primal ridge with a per-target alpha chosen by story-grouped cross-validation.

Same model and same selection rule as himalaya's ``RidgeCV`` (no intercept, per-target alpha,
mean validation score over folds, ties broken towards the larger alpha), computed differently:

- per fold, one eigendecomposition ``Xtr^T Xtr = V diag(L) V^T`` (``p x p``, float64) instead of an
  SVD of the ``n_train x p`` design;
- ``Xtr^T Ytr`` for every fold from one pass over the rows (total minus the fold's own part);
- validation scores for ALL alphas from sufficient statistics: with ``Z = V^T Xtr^T Ytr`` and
  ``D_a = 1 / (L + a)``, the predictions are ``Xval V D_a Z``, so
  ``sum(pred * y) = D @ (Z * (V^T Xval^T y))`` (one product over all alphas) and
  ``sum(pred**2) = ||F D_a Z||^2`` with ``F^T F = (Xval V)^T (Xval V)`` (``F`` has
  ``min(n_val, p)`` rows; one product over all alphas stacked side by side).

Everything is written with himalaya backend functions, so it runs on ``numpy``, ``torch`` (CPU)
and ``torch_cuda`` alike. Large products are float32; the small ``p x p`` decompositions are
float64 by default (``decomposition_dtype``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .backend import free_memory_bytes, run_target_batches, target_batch_size, to_numpy
from .cv import Fold

__all__ = ["SCORES", "FastRidgeResult", "alpha_scores", "ridge_cv_fastpath", "select_best_alphas",
           "validation_target_stats"]

#: Validation scores the fast path can select alphas with.
SCORES = ("correlation", "r2")


@dataclass
class FastRidgeResult:
    """Output of :func:`ridge_cv_fastpath`.

    Attributes
    ----------
    best_alphas : float32 (n_targets,)
    cv_scores : float32 (n_targets,)
        Validation score averaged over folds, at the chosen alpha.
    cv_scores_all : float32 (n_alphas, n_targets) or None
        Mean validation score for every alpha (kept when ``return_cv_scores_all``).
    weights : float32 (n_features, n_targets) or None
    test_predictions : float32 (n_test_rows, n_targets) or None
    n_targets_batch : int
        Target batch size finally used (smaller than the first try after an OOM recovery).
    """

    best_alphas: np.ndarray
    cv_scores: np.ndarray
    cv_scores_all: np.ndarray | None
    weights: np.ndarray | None
    test_predictions: np.ndarray | None
    n_targets_batch: int


def checked_score_and_alphas(score: str, alphas) -> np.ndarray:
    """``alphas`` as a float64 vector, after checking ``score`` and that every alpha is finite
    and > 0 (ValueError naming the bad one)."""
    if score not in SCORES:
        raise ValueError(f"score={score!r} is not one of {SCORES}")
    alphas_np = np.asarray(alphas, dtype=np.float64).ravel()
    if alphas_np.size == 0 or np.any(~np.isfinite(alphas_np)) or np.any(alphas_np <= 0):
        raise ValueError(f"alphas must be finite and > 0, got {alphas_np}")
    return alphas_np


def select_best_alphas(mean_scores: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """Index of the best alpha per target, with himalaya's rule.

    ``mean_scores`` (n_alphas, n_targets) float64 are mean validation scores; ``1e-10 * log(alpha)``
    is added so that exact ties go to the larger alpha, as ``himalaya`` does.
    """
    scores = np.asarray(mean_scores, dtype=np.float64) + (np.log(alphas) * 1e-10)[:, None]
    scores = np.where(np.isnan(scores), -np.inf, scores)
    return np.argmax(scores, axis=0)


def validation_target_stats(Yval, centered: bool) -> dict:
    """Per-target sums of one validation fold's responses ``Yval`` (n_val, tb).

    ``y_mean`` (tb,); with ``centered`` (correlation) ``syy`` = centered sum of squares, else
    ``syy_c`` (centered) and ``syy_raw`` (uncentered) sums of squares (R²).
    """
    y_mean = Yval.mean(0)
    if centered:
        Yc = Yval - y_mean[None, :]
        return {"y_mean": y_mean, "syy": (Yc * Yc).sum(0)}
    return {"y_mean": y_mean, "syy_c": ((Yval - y_mean[None, :]) ** 2).sum(0),
            "syy_raw": (Yval * Yval).sum(0)}


def alpha_scores(B, Z, A, L, F, alphas_d, stats: dict, centered: bool):
    """Validation scores of one fold for every alpha, from sufficient statistics.

    Parameters
    ----------
    Z : (p, tb)
        ``V^T Xtr^T Ytr`` in the eigenbasis ``V`` of ``Xtr^T Xtr`` (eigenvalues ``L``, (p,)).
    A : (p, tb)
        ``(Xval V)^T y`` (``Xval`` and ``y`` centered for correlation).
    F : (m, p)
        Any factor with ``F^T F = (Xval V)^T (Xval V)`` (same centering as ``A``).
    alphas_d : (n_alphas,)
    stats : dict from :func:`validation_target_stats`

    Returns
    -------
    (n_alphas, tb) backend array: correlation (``centered``) or R².
    """
    n_features, tb = Z.shape
    n_alphas = alphas_d.shape[0]
    D = 1.0 / (L[None, :] + alphas_d[:, None])  # (n_alphas, p)
    spy = B.matmul(D, Z * A)  # (n_alphas, tb)
    # all alphas side by side: M = [D_1 Z | D_2 Z | ...] (p, n_alphas * tb)
    M = (D[:, :, None] * Z[None, :, :])  # (n_alphas, p, tb)
    M = B.transpose(M, (1, 0, 2)).reshape(n_features, n_alphas * tb)
    FM = B.matmul(F, M)
    spp = (FM * FM).sum(0).reshape(n_alphas, tb)
    del M, FM
    if centered:
        syy = stats["syy"]
        denom = B.sqrt(B.clip(spp, 0, None) * syy[None, :])
        r = spy / B.clip(denom, 1e-30, None)
        return r * (denom > 0)
    syy_c, syy_raw = stats["syy_c"], stats["syy_raw"]
    sse = syy_raw[None, :] - 2 * spy + spp
    r2 = 1.0 - sse / B.clip(syy_c[None, :], 1e-30, None)
    return r2 * (syy_c[None, :] > 0)


def _cholesky_factor(B, gram):
    """Upper factor ``R`` with ``R^T R = gram`` (float64), tolerant of a singular ``gram``."""
    n = gram.shape[0]
    scale = float(B.to_numpy(gram.diagonal()).mean()) if n else 1.0
    jitter = 0.0
    for _ in range(6):
        if jitter == 0.0:
            g = gram
        elif B.name == "numpy":
            g = gram + jitter * np.eye(n, dtype=gram.dtype)
        else:
            g = gram + jitter * B.eye(n, dtype=gram.dtype, device=_device(gram))
        try:
            if B.name.startswith("torch"):
                import torch

                lower, info = torch.linalg.cholesky_ex(g)
                if int(info) != 0:
                    raise np.linalg.LinAlgError("not positive definite")
            else:
                lower = np.linalg.cholesky(g)
            return B.transpose(lower, (1, 0))
        except np.linalg.LinAlgError:
            jitter = max(jitter * 100, 1e-12 * max(scale, 1e-30))
    # give up on Cholesky: eigen-based square root (always works)
    evals, evecs = B.eigh(gram)
    evals = B.clip(evals, 0, None)
    return B.sqrt(evals)[:, None] * B.transpose(evecs, (1, 0))


def _device(array):
    return getattr(array, "device", "cpu")


def _asarray(B, x, dtype, like=None):
    """``x`` as a backend array of ``dtype`` on the device of ``like`` (backend default if None)."""
    if B.name == "numpy":
        return np.asarray(x, dtype=dtype)
    if like is None:
        return B.asarray(x, dtype=dtype)
    return B.asarray(x, dtype=dtype, device=_device(like))


def ridge_cv_fastpath(X, Y, folds: Sequence[Fold], alphas, *, score: str = "correlation",
                      X_test=None, return_weights: bool = True, return_cv_scores_all: bool = False,
                      n_targets_batch: int | None = None, decomposition_dtype: str = "float64",
                      memory_fraction: float = 0.3, memory_budget: int | None = None,
                      progress=None) -> FastRidgeResult:
    """Primal ridge, per-target alpha from a grid, chosen by cross-validation over ``folds``.

    Uses the current himalaya backend (see :func:`gim_brain.encoding.backend.use_backend`).

    Parameters
    ----------
    X : (n_rows, n_features) array
        Training design (already delayed and z-scored; no intercept is fitted).
    Y : float32 (n_rows, n_targets) array, or list of (n_rows_story, n_targets) blocks
        Training responses; a numpy array (or the per-story blocks, which are never
        concatenated whole) stays in CPU memory and is moved to the device one target batch at
        a time; a torch tensor is used where it is.
    folds : sequence of Fold
        Cross-validation splits of the rows (see :func:`gim_brain.encoding.cv.story_folds`).
    alphas : (n_alphas,) array of positive floats
    score : {"correlation", "r2"}
        Validation score used to choose alphas.
    X_test : (n_test_rows, n_features) array or None
        When given, predictions of the refit model on it are returned.
    return_weights : bool
        Keep the refit weights (n_features, n_targets) in the result.
    return_cv_scores_all : bool
        Keep mean validation scores for every alpha.
    n_targets_batch : int or None
        Targets per batch; None sizes it from free memory.
    decomposition_dtype : {"float64", "float32"}
        Precision of the ``p x p`` Gram matrices and their decompositions.
    memory_fraction : float
        Share of free memory one target batch may use.
    memory_budget : int or None
        Bytes the whole fit may use (responses, outputs and working set, see
        :func:`gim_brain.encoding.chunking.fit_memory`); sizes the target batches instead of
        ``memory_fraction``. The decompositions are shared by all batches.
    progress : tqdm or None
        Advanced by the number of targets done.

    Returns
    -------
    FastRidgeResult
    """
    from himalaya.backend import get_backend

    B = get_backend()
    alphas_np = checked_score_and_alphas(score, alphas)
    n_rows, n_features = X.shape
    if isinstance(Y, (list, tuple)):  # per-story blocks: never concatenated as a whole
        Y_blocks = [np.asarray(y, dtype=np.float32) for y in Y]
        shapes = [y.shape for y in Y_blocks]
        if any(len(sh) != 2 or sh[1] != shapes[0][1] for sh in shapes):
            raise ValueError(f"Y blocks must be 2-D with equal numbers of targets, got {shapes}")
        y_rows, n_targets = sum(sh[0] for sh in shapes), shapes[0][1]

        def y_batch(batch):
            return np.concatenate([y[:, batch] for y in Y_blocks])
    else:
        if not hasattr(Y, "device"):  # numpy stays in CPU memory; a tensor stays where it is
            Y = np.asarray(Y, dtype=np.float32)
        if Y.ndim != 2:
            raise ValueError(f"Y must be 2-D (n_rows, n_targets), got shape {tuple(Y.shape)}")
        y_rows, n_targets = Y.shape

        def y_batch(batch):
            return Y[:, batch]
    if y_rows != n_rows:
        raise ValueError(f"X has {n_rows} rows but Y has {y_rows}")
    n_alphas = len(alphas_np)
    n_folds = len(folds)
    ddt = decomposition_dtype
    centered = score == "correlation"

    # ---- per-fold decompositions (shared by all target batches) --------------------------------
    Xd = _asarray(B, X if hasattr(X, "device") else np.asarray(X, dtype=np.float32), "float32")
    X64 = _asarray(B, Xd, ddt, like=Xd)
    gram_total = B.matmul(B.transpose(X64, (1, 0)), X64)
    fold_parts = []
    for fold in folds:
        val_idx = _asarray(B, fold.val, "int64", like=Xd)
        Xval64 = X64[val_idx]
        gram_val = B.matmul(B.transpose(Xval64, (1, 0)), Xval64)
        evals, evecs = B.eigh(gram_total - gram_val)
        evals = B.clip(evals, 0, None)
        n_val = Xval64.shape[0]
        x_mean = Xval64.mean(0) if centered else None
        Xval_eff = Xval64 - x_mean[None, :] if centered else Xval64
        XvV = B.matmul(Xval_eff, evecs)  # (n_val, p) in the eigenbasis
        if n_val <= n_features:
            factor = XvV  # F^T F = XvV^T XvV trivially
        else:
            factor = _cholesky_factor(B, B.matmul(B.transpose(XvV, (1, 0)), XvV))
        fold_parts.append(dict(
            val=val_idx, n_val=n_val,
            V=_asarray(B, evecs, "float32", like=Xd),
            L=_asarray(B, evals, "float32", like=Xd),
            F=_asarray(B, factor, "float32", like=Xd),
            x_mean=_asarray(B, x_mean, "float32", like=Xd) if centered else None,
        ))
        del Xval64, gram_val, Xval_eff, XvV, factor
    evals_full, evecs_full = B.eigh(gram_total)
    evals_full = B.clip(evals_full, 0, None)
    V_full = _asarray(B, evecs_full, "float32", like=Xd)
    L_full = _asarray(B, evals_full, "float32", like=Xd)
    del X64, gram_total, evecs_full, evals_full
    alphas_d = _asarray(B, alphas_np, "float32", like=Xd)
    Xt = B.transpose(Xd, (1, 0))
    Xtest_d = None
    if X_test is not None:
        Xtest_d = _asarray(B, np.asarray(X_test, dtype=np.float32), "float32", like=Xd)

    # ---- outputs (CPU) -------------------------------------------------------------------------
    mean_scores = np.zeros((n_alphas, n_targets), dtype=np.float64)
    best_idx = np.zeros(n_targets, dtype=np.int64)
    weights = np.zeros((n_features, n_targets), dtype=np.float32) if return_weights else None
    test_pred = (np.zeros((Xtest_d.shape[0], n_targets), dtype=np.float32)
                 if Xtest_d is not None else None)

    def compute(batch: slice) -> None:
        Yb = _asarray(B, y_batch(batch), "float32", like=Xd)
        tb = Yb.shape[1]
        # X^T Y per fold from one pass: validation parts, and the total
        val_parts = [B.matmul(B.transpose(Xd[part["val"]], (1, 0)), Yb[part["val"]])
                     for part in fold_parts]
        XtY = B.matmul(Xt, Yb)
        fold_scores = np.zeros((n_folds, n_alphas, tb), dtype=np.float64)
        for k, part in enumerate(fold_parts):
            V, L, F = part["V"], part["L"], part["F"]
            Yval = Yb[part["val"]]
            Z = B.matmul(B.transpose(V, (1, 0)), XtY - val_parts[k])  # (p, tb)
            stats = validation_target_stats(Yval, centered)
            cross = val_parts[k]
            if centered:
                cross = cross - part["n_val"] * part["x_mean"][:, None] * stats["y_mean"][None, :]
            A = B.matmul(B.transpose(V, (1, 0)), cross)  # (p, tb) = (Xval V)^T y
            del cross
            fold_scores[k] = to_numpy(alpha_scores(B, Z, A, L, F, alphas_d, stats, centered))
            del A, Z
        del val_parts
        mean_b = fold_scores.mean(0)
        idx = select_best_alphas(mean_b, alphas_np)
        mean_scores[:, batch] = mean_b
        best_idx[batch] = idx
        # refit on all training rows with each target's alpha
        Zf = B.matmul(B.transpose(V_full, (1, 0)), XtY)
        a_b = alphas_d[_asarray(B, idx, "int64", like=Xd)]
        Wb = B.matmul(V_full, Zf / (L_full[:, None] + a_b[None, :]))
        if weights is not None:
            weights[:, batch] = to_numpy(Wb)
        if test_pred is not None:
            test_pred[:, batch] = to_numpy(B.matmul(Xtest_d, Wb))
        del Yb, XtY, Zf, Wb

    if n_targets_batch is None and memory_budget is not None:
        from .chunking import fit_memory

        model = fit_memory(n_rows, 0 if Xtest_d is None else Xtest_d.shape[0], n_features,
                           n_alphas, n_folds, keep_weights=return_weights,
                           max_val_rows=max(part["n_val"] for part in fold_parts))
        n_targets_batch = model.batch_size(n_targets, int(memory_budget))
    if n_targets_batch is None:
        max_val = max(part["n_val"] for part in fold_parts)
        n_test = 0 if Xtest_d is None else Xtest_d.shape[0]
        per_target = 4 * (2 * n_rows + max_val + n_test + (3 * n_alphas + n_folds + 6) * n_features
                          + 4 * n_alphas * n_folds)
        device_name = "torch_cuda" if B.name == "torch_cuda" else B.name
        n_targets_batch = target_batch_size(n_targets, per_target, free_memory_bytes(device_name),
                                            fraction=memory_fraction)
    used = run_target_batches(compute, n_targets, n_targets_batch, progress=progress)

    best_alphas = alphas_np[best_idx].astype(np.float32)
    cv_scores = mean_scores[best_idx, np.arange(n_targets)].astype(np.float32)
    return FastRidgeResult(
        best_alphas=best_alphas,
        cv_scores=cv_scores,
        cv_scores_all=mean_scores.astype(np.float32) if return_cv_scores_all else None,
        weights=weights,
        test_predictions=test_pred,
        n_targets_batch=used,
    )
