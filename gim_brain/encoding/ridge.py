"""Ridge with a per-target alpha chosen by story-grouped CV: fast path or himalaya estimators.

``solver``:

- ``"fastpath"`` – :func:`gim_brain.encoding.fastpath.ridge_cv_fastpath` (primal, eigendecomposition
  of ``X^T X`` per fold; same alphas and scores as himalaya ``RidgeCV``);
- ``"ridge"`` – himalaya ``RidgeCV`` (primal, SVD of the design per fold);
- ``"kernel"`` – himalaya ``KernelRidgeCV`` with a linear kernel (dual; fastest when
  ``n_features > n_rows``);
- ``"auto"`` – ``fastpath`` when ``n_rows >= n_features``, else ``kernel``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .backend import free_memory_bytes, is_out_of_memory, target_batch_size, to_numpy
from .cv import Fold
from .fastpath import ridge_cv_fastpath

__all__ = ["RidgeFit", "fit_ridge", "choose_solver", "SOLVERS"]

SOLVERS = ("auto", "fastpath", "ridge", "kernel")


@dataclass
class RidgeFit:
    """Result of :func:`fit_ridge`.

    Attributes
    ----------
    best_alphas : float32 (n_targets,)
    cv_scores : float32 (n_targets,)
        Mean validation score at the chosen alpha.
    weights : float32 (n_features, n_targets) or None
    test_predictions : float32 (n_test_rows, n_targets) or None
    solver : str
        The solver actually used.
    n_targets_batch : int or None
    """

    best_alphas: np.ndarray
    cv_scores: np.ndarray
    weights: np.ndarray | None
    test_predictions: np.ndarray | None
    solver: str
    n_targets_batch: int | None = None


def snap_to_grid(values, alphas) -> np.ndarray:
    """Each value replaced by the nearest grid alpha in log space (himalaya returns
    ``exp(-log(1/alpha))``, a few ulps off the grid)."""
    grid = np.log(np.asarray(alphas, dtype=np.float64))
    logs = np.log(np.asarray(values, dtype=np.float64))
    idx = np.abs(logs[:, None] - grid[None, :]).argmin(1)
    return np.asarray(alphas, dtype=np.float64)[idx].astype(np.float32)


def choose_solver(n_rows: int, n_features: int, solver: str = "auto") -> str:
    """The concrete solver: primal fast path when rows >= features, else kernel ridge."""
    if solver not in SOLVERS:
        raise ValueError(f"solver={solver!r} is not one of {SOLVERS}")
    if solver != "auto":
        return solver
    return "fastpath" if n_rows >= n_features else "kernel"


def _score_func(score: str):
    from himalaya.scoring import correlation_score, r2_score

    try:
        return {"correlation": correlation_score, "r2": r2_score}[score]
    except KeyError:
        raise ValueError(f"score={score!r} is not one of ('correlation', 'r2')") from None


def _fit_himalaya(estimator_cls, X, Y, folds, alphas, score, n_targets_batch, extra):
    """Fit a himalaya CV estimator, halving ``n_targets_batch`` after an out-of-memory error."""
    cv = [fold.as_pair() for fold in folds]
    while True:
        params = dict(score_func=_score_func(score), n_targets_batch=n_targets_batch,
                      n_targets_batch_refit=n_targets_batch)
        model = estimator_cls(alphas=np.asarray(alphas, dtype=np.float32), cv=cv,
                              solver_params=params, **extra)
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*slower than solving.*")
                model.fit(X, Y)
            return model, n_targets_batch
        except BaseException as exc:  # noqa: BLE001 - re-raised unless out of memory
            if not is_out_of_memory(exc) or n_targets_batch <= 1:
                raise
            n_targets_batch = max(1, n_targets_batch // 2)
            warnings.warn(f"out of memory; retrying with n_targets_batch={n_targets_batch}",
                          RuntimeWarning, stacklevel=2)


def fit_ridge(X, Y, folds: Sequence[Fold], alphas, *, solver: str = "auto",
              score: str = "correlation", X_test=None, return_weights: bool = True,
              n_targets_batch: int | None = None, memory_budget: int | None = None,
              progress=None) -> RidgeFit:
    """Fit ridge with a per-target alpha, chosen by CV over ``folds`` (current himalaya backend).

    Parameters
    ----------
    X : float32 (n_rows, n_features)
    Y : float32 (n_rows, n_targets), or list of per-story blocks (rows in order)
        The fast path never concatenates the blocks whole (memory of a full subject).
    folds : sequence of Fold
    alphas : (n_alphas,) positive floats
    solver : {"auto", "fastpath", "ridge", "kernel"}
    score : {"correlation", "r2"}
        Validation score used to pick alphas.
    X_test : float32 (n_test_rows, n_features) or None
    return_weights : bool
    n_targets_batch : int or None
        None sizes batches from ``memory_budget``, or from free memory.
    memory_budget : int or None
        Bytes the fit may use (see :func:`gim_brain.encoding.chunking.fit_memory`).
    progress : tqdm or None

    Returns
    -------
    RidgeFit
    """
    from himalaya.backend import get_backend

    n_rows, n_features = np.shape(X)
    n_targets = (Y[0] if isinstance(Y, (list, tuple)) else Y).shape[1]
    solver = choose_solver(n_rows, n_features, solver)
    if solver == "fastpath":
        out = ridge_cv_fastpath(X, Y, folds, alphas, score=score, X_test=X_test,
                                return_weights=return_weights, n_targets_batch=n_targets_batch,
                                memory_budget=memory_budget, progress=progress)
        return RidgeFit(out.best_alphas, out.cv_scores, out.weights, out.test_predictions,
                        solver, out.n_targets_batch)

    if isinstance(Y, (list, tuple)):
        Y = np.concatenate(Y)
    B = get_backend()
    if n_targets_batch is None:
        per_target = 4 * len(alphas) * n_rows * 3
        if memory_budget is not None:
            n_targets_batch = target_batch_size(n_targets, per_target, int(memory_budget),
                                                fraction=1.0)
        else:
            n_targets_batch = target_batch_size(n_targets, per_target,
                                                free_memory_bytes(B.name), fraction=0.3)
    if solver == "ridge":
        from himalaya.ridge import RidgeCV

        model, used = _fit_himalaya(RidgeCV, X, Y, folds, alphas, score, n_targets_batch, {})
        weights = to_numpy(model.coef_).astype(np.float32)
    else:
        from himalaya.kernel_ridge import KernelRidgeCV

        model, used = _fit_himalaya(KernelRidgeCV, X, Y, folds, alphas, score, n_targets_batch,
                                    {"kernel": "linear"})
        dual = to_numpy(model.dual_coef_).astype(np.float32)
        weights = np.asarray(X, dtype=np.float32).T @ dual
    test_pred = None
    if X_test is not None:
        test_pred = np.asarray(X_test, dtype=np.float32) @ weights
    if progress is not None:
        progress.update(n_targets)
    return RidgeFit(
        best_alphas=snap_to_grid(to_numpy(model.best_alphas_), alphas),
        cv_scores=to_numpy(model.cv_scores_).astype(np.float32).reshape(-1),
        weights=weights if return_weights else None,
        test_predictions=test_pred,
        solver=solver,
        n_targets_batch=used,
    )
