"""Banded ridge over several feature spaces, split predictions and variance partitioning.

Solvers: ``fastpath`` (primal, :mod:`gim_brain.encoding.banded_fastpath`: himalaya's random
search and selection rule on Gram matrices computed once), ``banded_ridge`` (himalaya
``BandedRidgeCV``, an SVD of the design per fold per candidate) and ``multiple_kernel`` (dual,
``MultipleKernelRidgeCV`` on precomputed linear kernels). ``auto``: ``fastpath`` when there are at
least as many rows as features in all spaces together, else ``multiple_kernel``. All search
per-target space weights by random search on the simplex (``n_iter`` draws, the first one
uniform, the same draws for the same ``random_state``) and a per-target alpha from the grid, with
story-grouped folds.

Variance partitioning (held-out R²): the *unique* variance of space ``s`` is the joint model's R²
minus the R² of the model fitted without ``s``; the *shared* variance is the joint R² minus the
sum of unique variances (for two spaces: ``R²_A + R²_B - R²_AB``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .backend import free_memory_bytes, is_out_of_memory, target_batch_size, to_numpy
from .banded_fastpath import banded_ridge_cv_fastpath
from .cv import Fold
from .ridge import _score_func, fit_ridge

__all__ = ["BANDED_SOLVERS", "BandedFit", "banded_progress_steps", "choose_banded_solver",
           "fit_banded"]

BANDED_SOLVERS = ("auto", "fastpath", "banded_ridge", "multiple_kernel")


@dataclass
class BandedFit:
    """Result of :func:`fit_banded`.

    Attributes
    ----------
    best_alphas : float32 (n_targets,)
        ``1 / sum_s exp(deltas[s])``.
    deltas : float32 (n_spaces, n_targets)
        Log space weights (``exp(deltas[s]) = gamma_s / alpha``).
    cv_scores : float32 (n_targets,)
        Best mean validation score over the random search.
    weights : float32 (n_features_total, n_targets) or None
        Primal weights on the unscaled, concatenated spaces.
    test_predictions : float32 (n_test_rows, n_targets)
    split_predictions : float32 (n_spaces, n_test_rows, n_targets)
        Each space's part of the test predictions (they sum to ``test_predictions``).
    split_r2 : dict space -> float32 (n_targets,)
        Product-measure split of the joint test R² (sums to the joint R²).
    unique_variance : dict space -> float32 (n_targets,)
    shared_variance : float32 (n_targets,) or None
    solver : str
    """

    best_alphas: np.ndarray
    deltas: np.ndarray
    cv_scores: np.ndarray
    weights: np.ndarray | None
    test_predictions: np.ndarray
    split_predictions: np.ndarray
    split_r2: dict[str, np.ndarray] = field(default_factory=dict)
    unique_variance: dict[str, np.ndarray] = field(default_factory=dict)
    shared_variance: np.ndarray | None = None
    solver: str = ""


def choose_banded_solver(n_rows: int, n_features_total: int, solver: str = "auto") -> str:
    """``fastpath`` (primal) when rows >= total features, else ``multiple_kernel``."""
    if solver not in BANDED_SOLVERS:
        raise ValueError(f"banded solver={solver!r} is not one of {BANDED_SOLVERS}")
    if solver != "auto":
        return solver
    return "fastpath" if n_rows >= n_features_total else "multiple_kernel"


def _r2(Y, P) -> np.ndarray:
    ss_res = ((Y - P) ** 2).sum(0, dtype=np.float64)
    ss_tot = ((Y - Y.mean(0)) ** 2).sum(0, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(ss_tot > 0, 1 - ss_res / ss_tot, 0.0)
    return r2.astype(np.float32)


def banded_progress_steps(n_spaces: int, n_iter: int, variance_partitioning: bool) -> int:
    """Steps :func:`fit_banded` advances ``progress`` by: ``n_iter`` per banded fit (the joint one,
    and the leave-one-out ones of 3+ spaces), 1 per plain leave-one-out fit."""
    steps = n_iter
    if variance_partitioning:
        steps += n_spaces * (1 if n_spaces == 2 else n_iter)
    return steps


def _fit_banded_once(Xs, Y, Xs_test, folds, alphas, solver, n_iter, score, n_targets_batch,
                     random_state, progress=None):
    n_spaces = len(Xs)
    if solver == "fastpath":
        fast = banded_ridge_cv_fastpath(Xs, Y, folds, alphas, n_iter=n_iter,
                                        random_state=random_state, score=score, Xs_test=Xs_test,
                                        n_targets_batch=n_targets_batch, progress=progress)
        best_alphas = (1.0 / np.exp(fast.deltas.astype(np.float64)).sum(0)).astype(np.float32)
        return best_alphas, fast.deltas, fast.cv_scores, fast.weights, fast.split_predictions
    cv = [fold.as_pair() for fold in folds]
    while True:
        params = dict(alphas=np.asarray(alphas, dtype=np.float32), n_iter=n_iter,
                      score_func=_score_func(score), n_targets_batch=n_targets_batch,
                      n_targets_batch_refit=n_targets_batch, progress_bar=False)
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*slower than solving.*")
                if solver == "banded_ridge":
                    from himalaya.ridge import BandedRidgeCV

                    model = BandedRidgeCV(groups="input", solver="random_search",
                                          solver_params=params, cv=cv, random_state=random_state)
                    model.fit(Xs, Y)
                    weights = to_numpy(model.coef_).astype(np.float32)
                    split = to_numpy(model.predict(Xs_test, split=True)).astype(np.float32)
                else:
                    from himalaya.kernel_ridge import MultipleKernelRidgeCV

                    Ks = np.stack([X @ X.T for X in Xs])
                    Ks_test = np.stack([Xt @ X.T for Xt, X in zip(Xs_test, Xs)])
                    model = MultipleKernelRidgeCV(kernels="precomputed", solver="random_search",
                                                  solver_params=params, cv=cv,
                                                  random_state=random_state)
                    model.fit(Ks, Y)
                    dual = to_numpy(model.dual_coef_).astype(np.float32)
                    scale = np.exp(to_numpy(model.deltas_).astype(np.float64)).astype(np.float32)
                    weights = np.concatenate(
                        [X.T @ (dual * scale[s][None, :]) for s, X in enumerate(Xs)], axis=0)
                    split = to_numpy(model.predict(Ks_test, split=True)).astype(np.float32)
            break
        except BaseException as exc:  # noqa: BLE001 - re-raised unless out of memory
            if not is_out_of_memory(exc) or n_targets_batch <= 1:
                raise
            n_targets_batch = max(1, n_targets_batch // 2)
            warnings.warn(f"out of memory; retrying banded fit with n_targets_batch="
                          f"{n_targets_batch}", RuntimeWarning, stacklevel=2)
    deltas = to_numpy(model.deltas_).astype(np.float32).reshape(n_spaces, -1)
    cv_scores = to_numpy(model.cv_scores_).astype(np.float32)
    cv_scores = cv_scores.max(0) if cv_scores.ndim == 2 else cv_scores
    best_alphas = (1.0 / np.exp(deltas.astype(np.float64)).sum(0)).astype(np.float32)
    if progress is not None:
        progress.update(n_iter)
    return best_alphas, deltas, cv_scores, weights, split


def fit_banded(Xs: Sequence[np.ndarray], Y, folds: Sequence[Fold], alphas, *,
               band_names: Sequence[str], Xs_test: Sequence[np.ndarray], Y_test,
               solver: str = "auto", n_iter: int = 20, score: str = "correlation",
               return_weights: bool = True, n_targets_batch: int | None = None,
               variance_partitioning: bool = True, random_state: int = 0,
               progress=None) -> BandedFit:
    """Banded ridge over ``Xs`` with story-grouped CV, split predictions and variance partitioning.

    Parameters
    ----------
    Xs : list of float32 (n_rows, n_features_s)
        Training design of each space.
    Y : float32 (n_rows, n_targets)
    folds : sequence of Fold
    alphas : (n_alphas,) positive floats
    band_names : list of str
        One name per space.
    Xs_test : list of float32 (n_test_rows, n_features_s)
    Y_test : float32 (n_test_rows, n_targets)
        Used for split R² and variance partitioning (held-out).
    solver : {"auto", "fastpath", "banded_ridge", "multiple_kernel"}
    n_iter : int
        Random-search draws of space weights (the first is uniform).
    score : {"correlation", "r2"}
    return_weights : bool
    n_targets_batch : int or None
    variance_partitioning : bool
        Also fit the models that leave out one space (n_spaces extra fits).
    random_state : int
    progress : tqdm or None
        Advanced by one per candidate band weighting (see :func:`banded_progress_steps`).

    Returns
    -------
    BandedFit
    """
    from himalaya.backend import get_backend
    from himalaya.scoring import r2_score_split

    if len(Xs) != len(band_names) or len(Xs_test) != len(band_names):
        raise ValueError(f"{len(band_names)} band names for {len(Xs)} training and "
                         f"{len(Xs_test)} test spaces")
    if len(Xs) < 2:
        raise ValueError("banded ridge needs at least 2 feature spaces; use fit_ridge for one")
    Xs = [np.asarray(X, dtype=np.float32) for X in Xs]
    Xs_test = [np.asarray(X, dtype=np.float32) for X in Xs_test]
    Y = np.asarray(Y, dtype=np.float32)
    Y_test = np.asarray(Y_test, dtype=np.float32)
    n_rows = Y.shape[0]
    n_total = sum(X.shape[1] for X in Xs)
    solver = choose_banded_solver(n_rows, n_total, solver)
    if n_targets_batch is None and solver != "fastpath":  # the fast path sizes its own
        B = get_backend()
        per_target = 4 * len(alphas) * n_rows * 3
        n_targets_batch = target_batch_size(Y.shape[1], per_target, free_memory_bytes(B.name), 0.3)

    best_alphas, deltas, cv_scores, weights, split = _fit_banded_once(
        Xs, Y, Xs_test, folds, alphas, solver, n_iter, score, n_targets_batch, random_state,
        progress)
    joint = split.sum(0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*zero-mean.*")
        split_r2 = to_numpy(r2_score_split(Y_test, split)).astype(np.float32)
    out = BandedFit(best_alphas=best_alphas, deltas=deltas, cv_scores=cv_scores,
                    weights=weights if return_weights else None, test_predictions=joint,
                    split_predictions=split,
                    split_r2={name: split_r2[s] for s, name in enumerate(band_names)},
                    solver=solver)
    if variance_partitioning:
        r2_joint = _r2(Y_test, joint)
        unique = {}
        for s, name in enumerate(band_names):
            keep = [i for i in range(len(Xs)) if i != s]
            if len(keep) == 1:
                # a plain ridge fit: the fast path when rows >= features (``auto``)
                reduced = fit_ridge(Xs[keep[0]], Y, folds, alphas, score=score,
                                    X_test=Xs_test[keep[0]], return_weights=False)
                if progress is not None:
                    progress.update(1)
                pred = reduced.test_predictions
            else:
                reduced = fit_banded([Xs[i] for i in keep], Y, folds, alphas,
                                     band_names=[band_names[i] for i in keep],
                                     Xs_test=[Xs_test[i] for i in keep], Y_test=Y_test,
                                     solver=solver, n_iter=n_iter, score=score,
                                     return_weights=False, n_targets_batch=n_targets_batch,
                                     variance_partitioning=False, random_state=random_state,
                                     progress=progress)
                pred = reduced.test_predictions
            unique[name] = (r2_joint - _r2(Y_test, pred)).astype(np.float32)
        out.unique_variance = unique
        out.shared_variance = (r2_joint - sum(unique.values())).astype(np.float32)
    return out
