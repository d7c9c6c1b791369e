"""The fast path chooses the same alphas as himalaya RidgeCV, gives the same scores, and recovers
known weights; backends agree; out-of-memory errors shrink batches without changing results."""

from __future__ import annotations

import numpy as np
import pytest

from gim_brain.encoding.backend import run_target_batches, target_batch_size, use_backend
from gim_brain.encoding.cv import story_folds
from gim_brain.encoding.fastpath import ridge_cv_fastpath
from gim_brain.encoding.ridge import fit_ridge

from _encoding_helpers import _one_blas_thread, synthetic_stories  # noqa: F401

ALPHAS = np.logspace(0, 8, 17)


def _design(n_stories=8, n_features=20, n_targets=60, seed=0, noise=1.0):
    X, Y, W = synthetic_stories(n_stories, n_features, n_targets, seed=seed, noise=noise)
    rows = {s: x.shape[0] for s, x in X.items()}
    return (np.concatenate(list(X.values())), np.concatenate(list(Y.values())), W,
            story_folds(rows, 4))


@pytest.mark.parametrize("score", ["correlation", "r2"])
def test_fastpath_matches_himalaya_ridgecv(score):
    X, Y, _, folds = _design()
    with use_backend("torch"):
        fast = ridge_cv_fastpath(X, Y, folds, ALPHAS, score=score, return_cv_scores_all=True)
        ref = fit_ridge(X, Y, folds, ALPHAS, solver="ridge", score=score)
    same = np.isclose(fast.best_alphas, ref.best_alphas, rtol=1e-4)
    assert same.mean() >= 0.95
    # any disagreement is a tie: the two alphas' mean CV scores are within float32 noise
    idx_ref = np.searchsorted(ALPHAS, ref.best_alphas * (1 - 1e-4))
    gap = fast.cv_scores - fast.cv_scores_all[idx_ref, np.arange(len(idx_ref))]
    assert np.all(gap[~same] < 1e-5)
    assert np.max(np.abs(fast.cv_scores - ref.cv_scores)) < 1e-4
    np.testing.assert_allclose(fast.weights[:, same], ref.weights[:, same], atol=2e-4, rtol=1e-3)


@pytest.mark.parametrize("score", ["correlation", "r2"])
def test_fastpath_matches_himalaya_with_fewer_validation_rows_than_features(score):
    # 3 stories x 30 rows, 120 features: every validation fold (30 rows) is smaller than p, the
    # branch that works in the n_val-row space instead of the p-dim eigenbasis
    X, Y, _ = synthetic_stories(3, 120, 5, rows=(30, 31), seed=6,
                                weight_scales=np.array([1.0, 0.3, 0.1, 0.03, 0.01]))
    rows = {s: x.shape[0] for s, x in X.items()}
    assert set(rows.values()) == {30}
    Xc, Yc, folds = np.concatenate(list(X.values())), np.concatenate(list(Y.values())), \
        story_folds(rows, 3)
    assert len(folds) == 3
    with use_backend("torch"):
        fast = ridge_cv_fastpath(Xc, Yc, folds, ALPHAS, score=score, return_cv_scores_all=True)
        ref = fit_ridge(Xc, Yc, folds, ALPHAS, solver="ridge", score=score)
    same = np.isclose(fast.best_alphas, ref.best_alphas, rtol=1e-4)
    idx_ref = np.searchsorted(ALPHAS, ref.best_alphas * (1 - 1e-4))
    gap = fast.cv_scores - fast.cv_scores_all[idx_ref, np.arange(len(idx_ref))]
    assert np.all(gap[~same] < 1e-5)          # any disagreement is a tie in mean CV score
    assert same.sum() >= 4
    np.testing.assert_allclose(fast.cv_scores, ref.cv_scores, atol=1e-4)
    np.testing.assert_allclose(fast.weights[:, same], ref.weights[:, same], atol=2e-4, rtol=1e-3)


def test_known_weights_and_alphas_are_recovered():
    # Bayes-optimal ridge alpha = noise variance / weight variance
    scales = np.repeat([1.0, 0.1, 0.01], 20)
    X, Y, W = synthetic_stories(12, 10, 60, rows=(150, 200), noise=1.0, weight_scales=scales,
                                seed=3)
    rows = {s: x.shape[0] for s, x in X.items()}
    Xc, Yc = np.concatenate(list(X.values())), np.concatenate(list(Y.values()))
    with use_backend("numpy"):
        fit = ridge_cv_fastpath(Xc, Yc, story_folds(rows, 5), ALPHAS, score="r2")
    for k, scale in enumerate([1.0, 0.1, 0.01]):
        chosen = np.median(np.log10(fit.best_alphas[20 * k:20 * (k + 1)]))
        assert abs(chosen - np.log10(1.0 / scale**2)) <= 1.0, (scale, chosen)
    strong = slice(0, 20)  # high SNR: weights close to the truth
    err = np.abs(fit.weights[:, strong] - W[:, strong])
    assert err.mean() < 0.03 and err.max() < 0.15, (err.mean(), err.max())  # OLS s.e. ~0.02
    assert np.corrcoef(fit.weights[:, strong].ravel(), W[:, strong].ravel())[0, 1] > 0.99


def test_backends_agree_numpy_vs_torch_cpu():
    X, Y, _, folds = _design(seed=1)
    out = {}
    for name in ("numpy", "torch"):
        with use_backend(name):
            out[name] = ridge_cv_fastpath(X, Y, folds, ALPHAS, X_test=X[:40])
    a, b = out["numpy"], out["torch"]
    assert np.mean(a.best_alphas == b.best_alphas) >= 0.98
    assert np.max(np.abs(a.cv_scores - b.cv_scores)) < 1e-5
    same = a.best_alphas == b.best_alphas
    np.testing.assert_allclose(a.test_predictions[:, same], b.test_predictions[:, same],
                               atol=1e-4, rtol=1e-4)


def test_out_of_memory_shrinks_batches_and_gives_the_same_result(monkeypatch):
    import himalaya.backend.torch as torch_backend
    import torch

    X, Y, _, folds = _design(n_targets=48, seed=2)
    with use_backend("torch"):
        whole = ridge_cv_fastpath(X, Y, folds, ALPHAS, X_test=X[:30], n_targets_batch=48)
        real_matmul = torch_backend.matmul

        def matmul_with_small_memory(a, b):  # a device that cannot hold more than 12 targets
            if b.ndim == 2 and b.shape[0] == X.shape[0] and 12 < b.shape[1] != X.shape[1]:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
            return real_matmul(a, b)

        monkeypatch.setattr(torch_backend, "matmul", matmul_with_small_memory)
        with pytest.warns(RuntimeWarning, match="out of memory"):
            small = ridge_cv_fastpath(X, Y, folds, ALPHAS, X_test=X[:30], n_targets_batch=48)
    assert small.n_targets_batch <= 12
    np.testing.assert_array_equal(small.best_alphas, whole.best_alphas)
    np.testing.assert_allclose(small.test_predictions, whole.test_predictions, atol=1e-5)


def test_run_target_batches_reraises_other_errors_and_sizes_batches():
    def boom(batch):
        raise KeyError("not memory")

    with pytest.raises(KeyError):
        run_target_batches(boom, 10, 5)
    assert target_batch_size(1000, bytes_per_target=100, free_bytes=10_000, fraction=0.5) == 50
    assert target_batch_size(10, bytes_per_target=1, free_bytes=10**9) == 10


def test_bad_alphas_and_shapes():
    X, Y, _, folds = _design(n_targets=4)
    with pytest.raises(ValueError, match="alphas"):
        ridge_cv_fastpath(X, Y, folds, [1.0, -1.0])
    with pytest.raises(ValueError, match="rows"):
        ridge_cv_fastpath(X, Y[:-1], folds, ALPHAS)


def test_per_story_blocks_give_the_same_fit_as_the_concatenation():
    X, Y, W = synthetic_stories(5, 8, 30, seed=4)
    rows = {s: x.shape[0] for s, x in X.items()}
    Xc = np.concatenate(list(X.values()))
    folds = story_folds(rows, 3)
    with use_backend("numpy"):
        whole = ridge_cv_fastpath(Xc, np.concatenate(list(Y.values())), folds, ALPHAS,
                                  n_targets_batch=7)
        blocks = ridge_cv_fastpath(Xc, list(Y.values()), folds, ALPHAS, n_targets_batch=7)
    np.testing.assert_array_equal(whole.best_alphas, blocks.best_alphas)
    np.testing.assert_array_equal(whole.weights, blocks.weights)
