"""Fast primal banded ridge: himalaya's random search over band weightings, on the fast path.

Same model, candidates and selection rule as himalaya ``BandedRidgeCV(solver="random_search")``:
band ``s`` is scaled by ``sqrt(gamma_s)`` (``gamma`` on the simplex; the first candidate uniform,
then seeded Dirichlet draws, :func:`banded_candidates`), each scaled design is a plain ridge problem
scored for every alpha, each target keeps the first candidate whose best mean validation score
beats the best so far by more than float32 epsilon, and ``deltas = log(gamma / alpha)``.

Computed differently (no pass over the rows per candidate):

- ``G = X^T X``, each fold's validation Gram and ``X^T Y`` are computed ONCE (float64 Grams);
- a candidate's training Gram is ``D (G - G_val) D`` with ``D = diag(sqrt(gamma))``; its
  eigendecomposition ``V diag(L) V^T`` per fold (``p x p``) is the only cubic work per candidate;
- ``Z = V^T D Xtr^T Ytr``, ``A = V^T D Xval^T y``, and ``F = R D V`` where ``R^T R`` is the fold's
  (centered) validation Gram, factored once per fold; the scores for all alphas follow from
  :func:`gim_brain.encoding.fastpath.alpha_scores`;
- the refit solves ``(D G D + alpha I) w = D X^T y`` (Cholesky) per chosen (candidate, alpha).

Written with himalaya backend functions (``numpy``, ``torch``, ``torch_cuda``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .backend import free_memory_bytes, target_batch_size, to_numpy
from .cv import Fold
from .fastpath import (
    _asarray,
    _cholesky_factor,
    alpha_scores,
    checked_score_and_alphas,
    select_best_alphas,
    validation_target_stats,
)

__all__ = ["BandedFastResult", "banded_candidates", "banded_ridge_cv_fastpath"]


@dataclass
class BandedFastResult:
    """Output of :func:`banded_ridge_cv_fastpath`.

    Attributes
    ----------
    gammas : float32 (n_candidates, n_spaces)
        Band weightings searched, in order.
    best_candidate : int64 (n_targets,)
        Index into ``gammas`` chosen per target.
    best_alphas : float32 (n_targets,)
    deltas : float32 (n_spaces, n_targets)
        ``log(gamma_s / alpha)`` at the chosen candidate and alpha.
    cv_scores : float32 (n_targets,)
        Best mean validation score over candidates (as himalaya's ``cv_scores_.max(0)``).
    cv_scores_candidates : float32 (n_candidates, n_targets)
        Each candidate's mean validation score at its best alpha (himalaya's ``cv_scores_``).
    cv_scores_all : float32 (n_candidates, n_alphas, n_targets) or None
        Mean validation score of every (candidate, alpha), when ``return_cv_scores_all``.
    weights : float32 (n_features_total, n_targets)
        Refit weights on the unscaled, concatenated bands.
    split_predictions : float32 (n_spaces, n_test_rows, n_targets) or None
        Each band's part of the test predictions.
    """

    gammas: np.ndarray
    best_candidate: np.ndarray
    best_alphas: np.ndarray
    deltas: np.ndarray
    cv_scores: np.ndarray
    cv_scores_candidates: np.ndarray
    cv_scores_all: np.ndarray | None
    weights: np.ndarray
    split_predictions: np.ndarray | None


def banded_candidates(n_iter, n_spaces: int, random_state=None) -> np.ndarray:
    """The band weightings himalaya's random search tries: float32 (n_iter, n_spaces).

    ``n_iter`` int: the first row uniform, then Dirichlet draws (concentrations 0.1 and 1
    alternating, himalaya's ``generate_dirichlet_samples`` with ``random_state``); an array
    (n_iter, n_spaces) is used as given. Cast to float32, as himalaya does.
    """
    from himalaya.kernel_ridge import generate_dirichlet_samples

    if isinstance(n_iter, (int, np.integer)):
        if n_iter < 1:
            raise ValueError(f"n_iter={n_iter} must be >= 1")
        gammas = np.asarray(generate_dirichlet_samples(n_samples=int(n_iter), n_kernels=n_spaces,
                                                       concentration=[0.1, 1.0],
                                                       random_state=random_state),
                            dtype=np.float64)
        gammas[0] = 1.0 / n_spaces
    else:
        gammas = np.asarray(n_iter, dtype=np.float64)
        if gammas.ndim != 2 or gammas.shape[1] != n_spaces or np.any(gammas < 0):
            raise ValueError(f"n_iter as candidates must be (n_iter, {n_spaces}) non-negative "
                             f"weights, got shape {gammas.shape}")
    return gammas.astype(np.float32)


def _ridge_solve(B, gram, alpha: float, rhs, eig=None):
    """``(gram + alpha I)^-1 rhs`` (float64): from ``eig = eigh(gram)`` when given, else Cholesky
    (falling back to the eigendecomposition if ``gram + alpha I`` is not numerically PD)."""
    if eig is None:
        n = gram.shape[0]
        eye = (np.eye(n) if B.name == "numpy"
               else B.eye(n, dtype=gram.dtype, device=getattr(gram, "device", "cpu")))
        try:
            if B.name.startswith("torch"):
                import torch

                lower, info = torch.linalg.cholesky_ex(gram + alpha * eye)
                if int(info) == 0:
                    return torch.cholesky_solve(rhs, lower)
            else:
                from scipy.linalg import LinAlgError, cho_factor, cho_solve

                try:
                    return cho_solve(cho_factor(gram + alpha * eye), rhs)
                except LinAlgError:
                    pass
        finally:
            del eye
        eig = B.eigh(gram)
    evals, evecs = eig
    evals = B.clip(evals, 0, None)
    return B.matmul(evecs, B.matmul(B.transpose(evecs, (1, 0)), rhs) / (evals[:, None] + alpha))


def banded_ridge_cv_fastpath(Xs: Sequence[np.ndarray], Y, folds: Sequence[Fold], alphas, *,
                             n_iter=20, random_state=None, score: str = "correlation",
                             Xs_test: Sequence[np.ndarray] | None = None,
                             return_cv_scores_all: bool = False,
                             n_targets_batch: int | None = None, memory_fraction: float = 0.3,
                             progress=None) -> BandedFastResult:
    """Banded ridge with himalaya's random search, scored with the fast path's statistics.

    Parameters
    ----------
    Xs : list of float32 (n_rows, n_features_s)
        Training design of each band (delayed, z-scored; no intercept).
    Y : float32 (n_rows, n_targets)
    folds : sequence of Fold
    alphas : (n_alphas,) positive floats
    n_iter : int or (n_iter, n_spaces) array
        Number of candidate band weightings (see :func:`banded_candidates`), or the candidates.
    random_state : int or None
        Seed of the Dirichlet draws.
    score : {"correlation", "r2"}
    Xs_test : list of (n_test_rows, n_features_s) or None
        When given, split test predictions of the refit model are returned.
    return_cv_scores_all : bool
    n_targets_batch : int or None
        Targets scored at once; None sizes it from free memory.
    memory_fraction : float
    progress : tqdm or None
        Advanced by one per candidate.

    Returns
    -------
    BandedFastResult
    """
    from himalaya.backend import get_backend

    B = get_backend()
    alphas_np = checked_score_and_alphas(score, alphas)
    n_spaces = len(Xs)
    widths = [int(X.shape[1]) for X in Xs]
    bounds = np.concatenate([[0], np.cumsum(widths)])
    band_of = np.repeat(np.arange(n_spaces), widths)  # (p,) band of each column
    gammas = banded_candidates(n_iter, n_spaces, random_state)
    n_cand = gammas.shape[0]
    Y = np.asarray(Y, dtype=np.float32)
    n_rows, n_targets = Y.shape
    if any(X.shape[0] != n_rows for X in Xs):
        raise ValueError(f"band row counts {[X.shape[0] for X in Xs]} differ from Y's {n_rows}")
    n_features = int(bounds[-1])
    n_alphas, n_folds = len(alphas_np), len(folds)
    centered = score == "correlation"
    eps = float(np.finfo(np.float32).eps)

    # ---- once: Grams (float64), fold validation factors, X^T Y parts --------------------------
    Xd = _asarray(B, np.concatenate([np.asarray(X, dtype=np.float32) for X in Xs], axis=1),
                  "float32")
    X64 = _asarray(B, Xd, "float64", like=Xd)
    gram = B.matmul(B.transpose(X64, (1, 0)), X64)
    folds_once = []
    for fold in folds:
        val = _asarray(B, fold.val, "int64", like=Xd)
        Xv = X64[val]
        n_val = Xv.shape[0]
        gram_val = B.matmul(B.transpose(Xv, (1, 0)), Xv)
        x_mean = Xv.mean(0) if centered else None
        Xv_eff = Xv - x_mean[None, :] if centered else Xv
        # R with R^T R = Xv_eff^T Xv_eff: the rows themselves when fewer than p
        R = Xv_eff if n_val <= n_features else _cholesky_factor(
            B, B.matmul(B.transpose(Xv_eff, (1, 0)), Xv_eff))
        folds_once.append({"val": val, "n_val": n_val, "gram_train": gram - gram_val, "R": R,
                           "x_mean": None if x_mean is None else
                           _asarray(B, x_mean, "float32", like=Xd)})
        del Xv, gram_val, Xv_eff
    del X64
    alphas_d = _asarray(B, alphas_np, "float32", like=Xd)
    Xt = B.transpose(Xd, (1, 0))

    if n_targets_batch is None:
        max_val = max(f["n_val"] for f in folds_once)
        per_target = 4 * (max_val + (3 * n_alphas + 3 * n_folds + 6) * n_features
                          + 2 * n_alphas * n_folds)
        n_targets_batch = target_batch_size(n_targets, per_target, free_memory_bytes(B.name),
                                            fraction=memory_fraction)
    n_targets_batch = max(1, int(n_targets_batch))
    batches = [slice(a, min(a + n_targets_batch, n_targets))
               for a in range(0, n_targets, n_targets_batch)]
    # per batch, per fold: unscaled Xtr^T Ytr, (centered) Xval^T y and the y statistics; kept
    # for all candidates when they fit in memory, else recomputed per candidate
    cache_bytes = 4 * n_features * n_targets * (2 * n_folds + 1)
    keep_parts = cache_bytes <= memory_fraction * free_memory_bytes(B.name)
    parts_cache: dict[int, list] = {}

    def target_parts(b: int, batch: slice):
        if b in parts_cache:
            return parts_cache[b]
        Yb = _asarray(B, Y[:, batch], "float32", like=Xd)
        XtY = B.matmul(Xt, Yb)
        out = []
        for f in folds_once:
            Yval = Yb[f["val"]]
            val_part = B.matmul(B.transpose(Xd[f["val"]], (1, 0)), Yval)
            stats = validation_target_stats(Yval, centered)
            cross = val_part
            if centered:
                cross = cross - f["n_val"] * f["x_mean"][:, None] * stats["y_mean"][None, :]
            out.append((XtY - val_part, cross, stats))
        parts = (XtY, out)
        if keep_parts:
            parts_cache[b] = parts
        return parts

    # ---- random search over candidates -------------------------------------------------------
    best_score32 = np.full(n_targets, -np.inf, dtype=np.float32)  # himalaya keeps float32
    best_cand = np.zeros(n_targets, dtype=np.int64)
    best_alpha_idx = np.zeros(n_targets, dtype=np.int64)
    cand_scores = np.zeros((n_cand, n_targets), dtype=np.float64)
    all_scores = (np.zeros((n_cand, n_alphas, n_targets), dtype=np.float32)
                  if return_cv_scores_all else None)
    for c in range(n_cand):
        scale_np = np.sqrt(gammas[c].astype(np.float32)).astype(np.float64)[band_of]  # (p,)
        s64 = _asarray(B, scale_np, "float64", like=Xd)
        s32 = _asarray(B, scale_np, "float32", like=Xd)
        decomp = []
        for f in folds_once:
            evals, evecs = B.eigh(s64[:, None] * f["gram_train"] * s64[None, :])
            evals = B.clip(evals, 0, None)
            F = B.matmul(f["R"] * s64[None, :], evecs)
            decomp.append((_asarray(B, B.transpose(evecs, (1, 0)), "float32", like=Xd),
                           _asarray(B, evals, "float32", like=Xd),
                           _asarray(B, F, "float32", like=Xd)))
            del evals, evecs, F
        for b, batch in enumerate(batches):
            _, per_fold = target_parts(b, batch)
            tb = batch.stop - batch.start
            fold_scores = np.zeros((n_folds, n_alphas, tb), dtype=np.float64)
            for k, ((Vt, L, F), (train_part, cross, stats)) in enumerate(zip(decomp, per_fold)):
                Z = B.matmul(Vt, s32[:, None] * train_part)
                A = B.matmul(Vt, s32[:, None] * cross)
                fold_scores[k] = to_numpy(alpha_scores(B, Z, A, L, F, alphas_d, stats, centered))
                del Z, A
            mean_b = fold_scores.mean(0)  # (n_alphas, tb)
            idx = select_best_alphas(mean_b, alphas_np)
            score_b = (mean_b + (np.log(alphas_np) * 1e-10)[:, None])[idx, np.arange(tb)]
            score_b = np.where(np.isnan(score_b), -np.inf, score_b)
            cand_scores[c, batch] = mean_b[idx, np.arange(tb)]
            if all_scores is not None:
                all_scores[c, :, batch] = mean_b
            better = score_b > best_score32[batch].astype(np.float64) + eps
            tgt = np.flatnonzero(better) + batch.start
            best_score32[tgt] = score_b[better]
            best_cand[tgt] = c
            best_alpha_idx[tgt] = idx[better]
        del decomp
        if progress is not None:
            progress.update(1)

    # ---- refit on all training rows ------------------------------------------------------------
    # one Cholesky solve of (D G D + alpha I) per chosen (candidate, alpha) pair (~1/30 of an
    # eigendecomposition each), or one eigendecomposition per candidate when pairs are many
    weights = np.zeros((n_features, n_targets), dtype=np.float32)
    for c in np.unique(best_cand):
        scale_np = np.sqrt(gammas[c].astype(np.float32)).astype(np.float64)[band_of]
        s64 = _asarray(B, scale_np, "float64", like=Xd)
        s32 = _asarray(B, scale_np, "float32", like=Xd)
        gram_c = s64[:, None] * gram * s64[None, :]
        pair_alphas = np.unique(best_alpha_idx[best_cand == c])
        eig = None if len(pair_alphas) <= 8 else B.eigh(gram_c)
        for b, batch in enumerate(batches):
            XtY, _ = target_parts(b, batch)
            for a in pair_alphas:
                sel = np.flatnonzero((best_cand[batch] == c) & (best_alpha_idx[batch] == a))
                if sel.size == 0:
                    continue
                rhs = _asarray(B, s32[:, None] * XtY[:, _asarray(B, sel, "int64", like=Xd)],
                               "float64", like=Xd)
                W_scaled = _ridge_solve(B, gram_c, float(alphas_np[a]), rhs, eig)
                weights[:, sel + batch.start] = to_numpy(s64[:, None] * W_scaled)  # unscaled
                del rhs, W_scaled
        del gram_c, eig
    parts_cache.clear()

    split = None
    if Xs_test is not None:
        split = np.stack([np.asarray(Xt_s, dtype=np.float32) @ weights[bounds[s]:bounds[s + 1]]
                          for s, Xt_s in enumerate(Xs_test)])
    best_alphas = alphas_np[best_alpha_idx].astype(np.float32)
    deltas = np.log(gammas[best_cand].T.astype(np.float32) / best_alphas[None, :])
    return BandedFastResult(
        gammas=gammas, best_candidate=best_cand, best_alphas=best_alphas,
        deltas=deltas.astype(np.float32),
        cv_scores=cand_scores.max(0).astype(np.float32),
        cv_scores_candidates=cand_scores.astype(np.float32), cv_scores_all=all_scores,
        weights=weights, split_predictions=split)
