"""``fit_encoding``: one subject, one feature set, per-story arrays in, an ``EncodingResult`` out.

Training stories are every story with both features and responses that is not a test story.
Alphas are chosen by story-grouped cross-validation on the training stories; the model refit on
all training stories predicts the held-out test stories, which give the scores, the
block-permutation p-values and the noise ceiling.
"""

from __future__ import annotations

import platform
import time
from typing import Mapping, Sequence

import numpy as np

from .. import __version__
from .backend import resolve_backend, use_backend
from .banded import banded_progress_steps, fit_banded
from .chunking import parse_bytes
from .cv import story_folds
from .noise_ceiling import noise_ceiling as compute_noise_ceiling
from .result import EncodingResult
from .ridge import fit_ridge
from .significance import block_permutation_pvalues, fdr_bh

__all__ = ["fit_encoding", "DEFAULT_ALPHAS"]

#: Default alpha grid: 17 values, 1e0 .. 1e8.
DEFAULT_ALPHAS = np.logspace(0, 8, 17)


def _versions() -> dict[str, str]:
    import himalaya
    import scipy
    import sklearn

    out = {"gim_brain": __version__, "numpy": np.__version__, "scipy": scipy.__version__,
           "himalaya": himalaya.__version__, "scikit-learn": sklearn.__version__,
           "python": platform.python_version()}
    try:
        import torch

        out["torch"] = torch.__version__
    except ImportError:  # pragma: no cover
        pass
    return out


def _as_bands(x, story: str, band_names: Sequence[str] | None) -> list[np.ndarray]:
    """The feature arrays of one story as a list (one per band)."""
    if band_names is None:
        if isinstance(x, (list, tuple)):
            raise ValueError(f"story {story!r}: features are a list of {len(x)} arrays but no "
                             "band_names were given (banded fits need band_names)")
        bands = [x]
    else:
        if not isinstance(x, (list, tuple)) or len(x) != len(band_names):
            got = f"a list of {len(x)}" if isinstance(x, (list, tuple)) else "a single array"
            raise ValueError(f"story {story!r}: expected a list of {len(band_names)} feature "
                             f"arrays ({', '.join(band_names)}), got {got}")
        bands = list(x)
    out = []
    for i, b in enumerate(bands):
        b = np.asarray(b)
        name = band_names[i] if band_names is not None else "features"
        if b.ndim != 2:
            raise ValueError(f"story {story!r}: {name} must be 2-D (n_rows, n_features), "
                             f"got shape {b.shape}")
        if not np.all(np.isfinite(b)):
            raise ValueError(f"story {story!r}: {name} contain NaN or inf")
        out.append(b.astype(np.float32, copy=False))
    return out


def _check_inputs(X_by_story, Y_by_story, test_stories, band_names):
    """Validated per-story float32 bands and responses; train/test story lists."""
    if not isinstance(X_by_story, Mapping) or not isinstance(Y_by_story, Mapping):
        raise TypeError("X_by_story and Y_by_story must be dicts story -> array")
    test_stories = list(test_stories)
    if not test_stories:
        raise ValueError("test_stories is empty: at least one held-out story is needed")
    for s in test_stories:
        if s not in X_by_story:
            raise ValueError(f"test story {s!r} has no features")
        if s not in Y_by_story:
            raise ValueError(f"test story {s!r} has no responses")
    # stories with only one of features / responses are left out (and recorded)
    stories = [s for s in Y_by_story if s in X_by_story]
    skipped = sorted(set(X_by_story).symmetric_difference(Y_by_story))
    train = [s for s in stories if s not in test_stories]

    bands, responses = {}, {}
    n_features = None
    n_targets = None
    for s in stories:
        Y = np.asarray(Y_by_story[s])
        if Y.ndim != 2:
            raise ValueError(f"story {s!r}: responses must be 2-D (n_rows, n_targets), got "
                             f"shape {Y.shape}")
        if np.isnan(Y).any():
            raise ValueError(f"story {s!r}: responses contain {int(np.isnan(Y).sum())} NaN "
                             "value(s); remove or fill them before fitting")
        if not np.all(np.isfinite(Y)):
            raise ValueError(f"story {s!r}: responses contain inf")
        b = _as_bands(X_by_story[s], s, band_names)
        for arr in b:
            if arr.shape[0] != Y.shape[0]:
                raise ValueError(f"story {s!r}: features have {arr.shape[0]} rows but responses "
                                 f"have {Y.shape[0]} rows")
        widths = [arr.shape[1] for arr in b]
        if n_features is None:
            n_features, n_targets = widths, Y.shape[1]
        elif widths != n_features:
            raise ValueError(f"story {s!r}: features have {widths} columns, other stories "
                             f"{n_features}")
        elif Y.shape[1] != n_targets:
            raise ValueError(f"story {s!r}: responses have {Y.shape[1]} targets, other stories "
                             f"{n_targets}")
        bands[s] = b
        responses[s] = Y.astype(np.float32, copy=False)
    return bands, responses, train, test_stories, skipped


def fit_encoding(X_by_story, Y_by_story, test_stories: Sequence[str], *,
                 alphas=DEFAULT_ALPHAS, n_folds: int = 5, backend: str = "auto",
                 solver: str = "auto", n_permutations: int = 1000, block_size: int = 10,
                 fdr_alpha: float = 0.05, feature_set: str = "features",
                 keep_weights: bool = False, keep_predictions: bool = True,
                 progress: bool = True, band_names: Sequence[str] | None = None,
                 score: str = "correlation", n_iter: int = 20,
                 variance_partitioning: bool = True, test_repeats=None,
                 n_targets_batch: int | None = None, memory_budget: int | str | None = None,
                 seed: int = 0) -> EncodingResult:
    """Fit a voxelwise encoding model with story-grouped CV and score it on held-out stories.

    Parameters
    ----------
    X_by_story : dict story -> float (n_rows, n_features), or (banded) story -> list of arrays
        Features, already delayed and z-scored per story, one list entry per band.
    Y_by_story : dict story -> float32 (n_rows, n_targets)
        Responses (rows must match the features of the same story; no NaN).
    test_stories : list of str
        Held-out stories (never used to choose alphas).
    alphas : (n_alphas,) positive floats
        Ridge grid; default 17 values 1e0..1e8.
    n_folds : int
        Story-grouped folds over the training stories (capped at their number).
    backend : {"auto", "numpy", "torch", "torch_cuda"}
    solver : str
        Plain fits: ``auto`` (fast path when rows >= features, else kernel), ``fastpath``,
        ``ridge`` (himalaya RidgeCV) or ``kernel`` (KernelRidgeCV). Banded fits: ``auto``,
        ``fastpath`` (fast primal random search, the ``auto`` choice when rows >= features),
        ``banded_ridge`` (himalaya BandedRidgeCV) or ``multiple_kernel``.
    n_permutations : int
        Block permutations for p-values; 0 disables significance testing.
    block_size : int
        Rows (TRs) per permuted block.
    fdr_alpha : float
        Benjamini–Hochberg level for the significant-target count.
    feature_set : str
        The SPEC string recorded in the result.
    keep_weights, keep_predictions : bool
        Store the refit weights / held-out predictions in the result.
    progress : bool
        Show tqdm progress bars.
    band_names : list of str or None
        Names of the bands for a banded fit (features are lists of arrays then).
    score : {"correlation", "r2"}
        Validation score used to choose alphas.
    n_iter : int
        Banded fits: random-search draws of space weights.
    variance_partitioning : bool
        Banded fits: also fit leave-one-space-out models for unique/shared variance.
    test_repeats : dict story -> (n_repeats, n_rows, n_targets) or None
        Single repeats of test stories; gives the noise ceiling.
    n_targets_batch : int or None
        Targets per batch; None sizes batches from ``memory_budget`` (or free memory).
    memory_budget : int, str or None
        Bytes (or ``"8GB"``) the plain fit may use; target batches of the fast path are sized
        from it and share one decomposition per fold. Raises
        :class:`~gim_brain.encoding.chunking.MemoryBudgetError` (naming the budget) when not
        one target fits. Chunking the targets of a subject across fits: see
        :mod:`gim_brain.encoding.chunking`.
    seed : int
        Seed of the permutations and the banded random search.

    Returns
    -------
    EncodingResult

    Raises
    ------
    ValueError
        Row-count mismatch (names the story and both counts), NaN in responses (names the story),
        fewer than two training stories, unknown backend/solver, and similar bad input.
    """
    from tqdm.auto import tqdm

    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    bands, responses, train, test, skipped = _check_inputs(X_by_story, Y_by_story,
                                                           test_stories, band_names)
    train_rows = {s: responses[s].shape[0] for s in train}
    folds = story_folds(train_rows, n_folds)
    backend_name = resolve_backend(backend)
    alphas = np.asarray(alphas, dtype=np.float64).ravel()
    if alphas.size == 0 or np.any(~np.isfinite(alphas)) or np.any(alphas <= 0):
        raise ValueError(f"alphas must be finite and > 0, got {alphas}")
    if n_permutations < 0:
        raise ValueError(f"n_permutations={n_permutations} must be >= 0")
    budget = None if memory_budget is None else parse_bytes(memory_budget)

    n_bands = len(next(iter(bands.values())))
    Xs_train = [np.concatenate([bands[s][i] for s in train]) for i in range(n_bands)]
    Xs_test = [np.concatenate([bands[s][i] for s in test]) for i in range(n_bands)]
    Y_train_blocks = [responses[s] for s in train]  # concatenated only where a solver needs it
    Y_test = np.concatenate([responses[s] for s in test])
    test_rows = {s: responses[s].shape[0] for s in test}
    n_targets = Y_test.shape[1]
    n_train_rows = sum(train_rows.values())
    timings["prepare_s"] = time.perf_counter() - t_start

    extra: dict = {}
    t0 = time.perf_counter()
    with use_backend(backend_name):
        if band_names is None:
            bar = tqdm(total=n_targets, desc=f"ridge {feature_set}", unit="target",
                       disable=not progress, leave=False)
            with bar:
                fit = fit_ridge(Xs_train[0], Y_train_blocks, folds, alphas, solver=solver,
                                score=score, X_test=Xs_test[0], return_weights=keep_weights,
                                n_targets_batch=n_targets_batch, memory_budget=budget,
                                progress=bar)
            predictions, weights, used_solver = fit.test_predictions, fit.weights, fit.solver
            best_alphas, cv_scores = fit.best_alphas, fit.cv_scores
            spaces = [feature_set]
        else:
            steps = banded_progress_steps(len(band_names), n_iter, variance_partitioning)
            bar = tqdm(total=steps, desc=f"banded {feature_set}", unit="candidate",
                       disable=not progress, leave=False)
            with bar:
                bfit = fit_banded(Xs_train, np.concatenate(Y_train_blocks), folds, alphas,
                                  band_names=list(band_names), Xs_test=Xs_test, Y_test=Y_test,
                                  solver=solver, n_iter=n_iter, score=score,
                                  return_weights=keep_weights,
                                  n_targets_batch=n_targets_batch,
                                  variance_partitioning=variance_partitioning, random_state=seed,
                                  progress=bar)
            predictions, weights, used_solver = bfit.test_predictions, bfit.weights, bfit.solver
            best_alphas, cv_scores = bfit.best_alphas, bfit.cv_scores
            spaces = list(band_names)
            extra = dict(split_scores=bfit.split_r2, unique_variance=bfit.unique_variance,
                         shared_variance=bfit.shared_variance, deltas=bfit.deltas)
        timings["fit_s"] = time.perf_counter() - t0

        r, r2 = _test_scores(Y_test, predictions)
        pvalues = qvalues = None
        if n_permutations > 0:
            t0 = time.perf_counter()
            bar = tqdm(total=n_targets, desc="permutations", unit="target",
                       disable=not progress, leave=False)
            with bar:
                pvalues, _ = block_permutation_pvalues(
                    Y_test, predictions, test_rows, block_size=block_size,
                    n_permutations=n_permutations, seed=seed, progress=bar)
            _, qvalues = fdr_bh(pvalues, fdr_alpha)
            timings["permutation_s"] = time.perf_counter() - t0

    nc = {}
    if test_repeats:
        with_repeats = [s for s in test if s in test_repeats]
        r_nc = r
        if len(with_repeats) < len(test):  # normalise r over the same stories as the ceiling
            starts = np.cumsum([0] + [test_rows[s] for s in test])
            rows = np.concatenate([np.arange(starts[i], starts[i + 1])
                                   for i, s in enumerate(test) if s in test_repeats])
            r_nc, _ = _test_scores(Y_test[rows], predictions[rows])
        nc = compute_noise_ceiling(test_repeats, r=r_nc, test_stories=with_repeats)
    timings["total_s"] = time.perf_counter() - t_start
    parameters = dict(alphas=alphas.tolist(), n_folds=len(folds), n_folds_requested=n_folds,
                      backend=backend, solver=solver, n_permutations=n_permutations,
                      block_size=block_size, fdr_alpha=fdr_alpha, score=score,
                      memory_budget=budget,
                      n_iter=n_iter if band_names is not None else None, seed=seed)
    provenance = dict(
        versions=_versions(), parameters=parameters, backend_used=backend_name,
        solver_used=used_solver, timings=timings,
        shapes=dict(n_train_rows=int(n_train_rows), n_test_rows=int(Y_test.shape[0]),
                    n_features=[int(X.shape[1]) for X in Xs_train], n_targets=int(n_targets)),
        created_unix=time.time(),
    )
    splits = dict(train_stories=train, test_stories=test,
                  test_rows=[test_rows[s] for s in test],
                  folds=[fold.val_stories for fold in folds], skipped_stories=skipped)
    return EncodingResult(
        feature_set=feature_set, spaces=spaces, scores={"r": r, "r2": r2},
        alphas=np.asarray(best_alphas, dtype=np.float32), pvalues=pvalues, qvalues=qvalues,
        cv_scores=np.asarray(cv_scores, dtype=np.float32), noise_ceiling=nc,
        weights=weights if keep_weights else None,
        predictions=predictions if keep_predictions else None,
        splits=splits, provenance=provenance, **extra)


def _test_scores(Y_test: np.ndarray, predictions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Held-out correlation and R² per target (float32), over the concatenated test rows."""
    Y = Y_test.astype(np.float64)
    P = predictions.astype(np.float64)
    Yc, Pc = Y - Y.mean(0), P - P.mean(0)
    num = (Yc * Pc).sum(0)
    den = np.sqrt((Yc ** 2).sum(0) * (Pc ** 2).sum(0))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(den > 0, num / den, 0.0)
        ss_tot = (Yc ** 2).sum(0)
        r2 = np.where(ss_tot > 0, 1 - ((Y - P) ** 2).sum(0) / ss_tot, 0.0)
    return r.astype(np.float32), r2.astype(np.float32)
