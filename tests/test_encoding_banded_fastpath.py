"""The banded fast path makes himalaya BandedRidgeCV's choices: same candidates, same deltas,
alphas, CV scores, weights and split predictions; ``auto`` picks it when rows >= features."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from gim_brain.encoding.backend import use_backend
from gim_brain.encoding.banded import choose_banded_solver, fit_banded
from gim_brain.encoding.banded_fastpath import banded_candidates, banded_ridge_cv_fastpath
from gim_brain.encoding.cv import story_folds

from _encoding_helpers import _one_blas_thread  # noqa: F401

ALPHAS = np.logspace(-1, 4, 11)


def _problem(widths, n_targets=30, n_stories=6, seed=0):
    """Bands of ``widths`` columns; each target's weight scale per band drawn from {0, .05, .3}."""
    rng = np.random.default_rng(seed)
    rows = {f"s{i}": int(rng.integers(60, 90)) for i in range(n_stories)}
    n = sum(rows.values())
    Xs = [rng.standard_normal((n, w)).astype(np.float32) for w in widths]
    Xs_test = [rng.standard_normal((40, w)).astype(np.float32) for w in widths]
    Y = rng.standard_normal((n, n_targets))
    for X, w in zip(Xs, widths):
        scale = rng.choice([0.0, 0.05, 0.3], size=(1, n_targets))
        Y += X @ (rng.standard_normal((w, n_targets)) * scale)
    return Xs, Y.astype(np.float32), Xs_test, story_folds(rows, 3)


def _himalaya(Xs, Y, folds, score, n_iter, seed):
    from himalaya.ridge import BandedRidgeCV
    from himalaya.scoring import correlation_score, r2_score

    params = {"alphas": ALPHAS.astype(np.float32), "n_iter": n_iter, "progress_bar": False,
              "score_func": {"correlation": correlation_score, "r2": r2_score}[score]}
    model = BandedRidgeCV(groups="input", solver="random_search", solver_params=params,
                          cv=[f.as_pair() for f in folds], random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(Xs, Y)
    return model


@pytest.mark.parametrize("widths", [(8, 5), (8, 5, 3)])
@pytest.mark.parametrize("score", ["correlation", "r2"])
def test_banded_fastpath_matches_himalaya_banded_ridge_cv(widths, score):
    Xs, Y, Xs_test, folds = _problem(widths)
    with use_backend("numpy"):
        fast = banded_ridge_cv_fastpath(Xs, Y, folds, ALPHAS, n_iter=8, random_state=1,
                                        score=score, Xs_test=Xs_test, return_cv_scores_all=True)
        ref = _himalaya(Xs, Y, folds, score, 8, 1)
    ref_deltas = np.asarray(ref.deltas_)
    # the same candidates and choices: deltas equal (also where a gamma is 0: -inf)
    both_inf = np.isneginf(ref_deltas) & np.isneginf(fast.deltas)
    same = np.all(both_inf | np.isclose(ref_deltas, fast.deltas, atol=1e-5), axis=0)
    assert same.mean() >= 0.95, same.mean()
    # any other choice is a tie: our score at himalaya's (candidate, alpha) is within 1e-5
    if not same.all():
        gam = np.exp(ref_deltas[:, ~same]) / np.exp(ref_deltas[:, ~same]).sum(0)
        cand = np.argmin(np.abs(fast.gammas[:, :, None] - gam[None]).sum(1), axis=0)
        a_idx = np.abs(np.log(1 / np.exp(ref_deltas[:, ~same]).sum(0))[:, None]
                       - np.log(ALPHAS)[None]).argmin(1)
        theirs = fast.cv_scores_all[cand, a_idx, np.flatnonzero(~same)]
        assert np.all(fast.cv_scores[~same] - theirs < 1e-5)
    np.testing.assert_allclose(fast.best_alphas, np.asarray(ref.best_alphas_), rtol=1e-4)
    np.testing.assert_allclose(fast.cv_scores_candidates, np.asarray(ref.cv_scores_), atol=1e-5)
    np.testing.assert_allclose(fast.weights[:, same], np.asarray(ref.coef_)[:, same],
                               atol=1e-5, rtol=1e-4)
    split_ref = np.asarray(ref.predict(Xs_test, split=True))
    np.testing.assert_allclose(fast.split_predictions[:, :, same], split_ref[:, :, same],
                               atol=1e-5, rtol=1e-4)


def test_candidates_are_himalayas_and_explicit_candidates_are_used_as_given():
    gam = banded_candidates(6, 3, random_state=4)
    assert gam.shape == (6, 3) and gam.dtype == np.float32
    np.testing.assert_allclose(gam[0], 1 / 3)
    np.testing.assert_allclose(gam.sum(1), 1, atol=1e-6)
    assert np.array_equal(gam, banded_candidates(6, 3, random_state=4))
    assert not np.array_equal(gam, banded_candidates(6, 3, random_state=5))
    Xs, Y, _, folds = _problem((4, 3), n_targets=5)
    given = np.array([[0.5, 0.5], [0.9, 0.1]])
    with use_backend("numpy"):
        fit = banded_ridge_cv_fastpath(Xs, Y, folds, ALPHAS, n_iter=given)
    np.testing.assert_array_equal(fit.gammas, given.astype(np.float32))
    with pytest.raises(ValueError, match=r"\(n_iter, 2\)"):
        banded_candidates(np.ones((3, 3)), 2)


def test_banded_fastpath_with_fewer_validation_rows_than_features_matches_himalaya():
    # 40 features, validation folds of ~25-30 rows: the validation factor is the rows themselves
    Xs, Y, _, _ = _problem((25, 15), n_targets=8, n_stories=3)
    folds = story_folds({f"s{i}": n for i, n in enumerate(np.diff([0, 25, 55, 83]))}, 3)
    Xs = [X[:83] for X in Xs]
    Y = Y[:83]
    with use_backend("torch"):
        fast = banded_ridge_cv_fastpath(Xs, Y, folds, ALPHAS, n_iter=5, random_state=0)
        ref = _himalaya(Xs, Y, folds, "correlation", 5, 0)
    assert all(f.val.size < 40 for f in folds)
    np.testing.assert_allclose(fast.cv_scores_candidates,
                               np.asarray(ref.cv_scores_.cpu()), atol=1e-4)


def test_auto_picks_the_fast_path_in_the_primal_case():
    assert choose_banded_solver(1000, 1000) == "fastpath"
    assert choose_banded_solver(999, 1000) == "multiple_kernel"
    Xs, Y, Xs_test, folds = _problem((6, 4), n_targets=6)
    with use_backend("numpy"):
        fit = fit_banded(Xs, Y, folds, ALPHAS, band_names=["a", "b"], Xs_test=Xs_test,
                         Y_test=Y[:40], n_iter=4,
                         variance_partitioning=False)
    assert fit.solver == "fastpath"


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_refit_solve_by_cholesky_equals_the_eigendecomposition(backend):
    from gim_brain.encoding.banded_fastpath import _ridge_solve

    rng = np.random.default_rng(2)
    X = rng.standard_normal((50, 12))
    rhs = rng.standard_normal((12, 3))
    expected = np.linalg.solve(X.T @ X + 0.5 * np.eye(12), rhs)
    with use_backend(backend) as B:
        gram, rhs_b = B.asarray(X.T @ X), B.asarray(rhs)
        by_chol = _ridge_solve(B, gram, 0.5, rhs_b)
        by_eig = _ridge_solve(B, gram, 0.5, rhs_b, B.eigh(gram))
    np.testing.assert_allclose(np.asarray(by_chol), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(by_eig), expected, rtol=1e-8, atol=1e-10)
