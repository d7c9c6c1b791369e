"""Banded ridge: split predictions add up, variance partitioning finds the space that matters."""

from __future__ import annotations

import numpy as np
import pytest

from gim_brain.encoding import fit_encoding

from _encoding_helpers import _one_blas_thread  # noqa: F401


@pytest.fixture(scope="module")
def two_spaces():
    """Targets 0-19 driven by space a only, 20-39 by space b only, 40-49 by both."""
    rng = np.random.default_rng(7)
    Wa = np.zeros((6, 50), np.float32)
    Wb = np.zeros((4, 50), np.float32)
    Wa[:, :20] = rng.standard_normal((6, 20))
    Wb[:, 20:40] = rng.standard_normal((4, 20))
    Wa[:, 40:] = rng.standard_normal((6, 10)) * 0.7
    Wb[:, 40:] = rng.standard_normal((4, 10)) * 0.7
    X, Y = {}, {}
    for i in range(6):
        n = int(rng.integers(90, 120))
        a = rng.standard_normal((n, 6)).astype(np.float32)
        b = rng.standard_normal((n, 4)).astype(np.float32)
        X[f"s{i}"] = [a, b]
        y = a @ Wa + b @ Wb + rng.standard_normal((n, 50))
        Y[f"s{i}"] = ((y - y.mean(0)) / y.std(0)).astype(np.float32)  # z-scored per story
    return X, Y


@pytest.mark.parametrize("solver", ["fastpath", "banded_ridge", "multiple_kernel"])
def test_banded_fit_partitions_variance(two_spaces, solver):
    X, Y = two_spaces
    res = fit_encoding(X, Y, ["s0", "s1"], band_names=["a", "b"], feature_set="a,b",
                       solver=solver, n_iter=8, n_permutations=0, progress=False,
                       backend="numpy", keep_weights=True)
    assert res.spaces == ["a", "b"] and res.deltas.shape == (2, 50)
    ua, ub = res.unique_variance["a"], res.unique_variance["b"]
    assert ua[:20].mean() > 0.4 and abs(ub[:20].mean()) < 0.05
    assert ub[20:40].mean() > 0.4 and abs(ua[20:40].mean()) < 0.05
    # independent spaces share (almost) nothing
    assert abs(res.shared_variance.mean()) < 0.05
    # product-measure split sums to the joint R2
    np.testing.assert_allclose(res.split_scores["a"] + res.split_scores["b"], res.scores["r2"],
                               atol=2e-3)
    assert res.weights.shape == (10, 50)
    assert res.provenance["solver_used"] == solver


def test_banded_auto_uses_the_fast_path_and_agrees_with_himalaya(two_spaces):
    X, Y = two_spaces
    kw = {"band_names": ["a", "b"], "feature_set": "a,b", "n_iter": 8, "n_permutations": 0,
          "progress": False, "backend": "numpy"}
    fast = fit_encoding(X, Y, ["s0", "s1"], solver="auto", **kw)
    ref = fit_encoding(X, Y, ["s0", "s1"], solver="banded_ridge", **kw)
    assert fast.provenance["solver_used"] == "fastpath"
    # the same choices except exact ties (a correlation score flat in very large alphas, where
    # himalaya's 1e-10 * log(alpha) tie-break is below float32 noise): the CV scores agree
    same = np.all(np.isclose(fast.deltas, ref.deltas, atol=1e-5), axis=0)
    assert same.mean() >= 0.9, same.mean()
    np.testing.assert_allclose(fast.cv_scores, ref.cv_scores, atol=1e-5)
    np.testing.assert_allclose(fast.scores["r2"][same], ref.scores["r2"][same], atol=1e-5)
    for name in ("a", "b"):
        np.testing.assert_allclose(fast.unique_variance[name][same],
                                   ref.unique_variance[name][same], atol=1e-5)
        np.testing.assert_allclose(fast.split_scores[name][same], ref.split_scores[name][same],
                                   atol=1e-5)


def test_banded_needs_matching_band_lists(two_spaces):
    X, Y = two_spaces
    with pytest.raises(ValueError, match="expected a list of 3 feature arrays"):
        fit_encoding(X, Y, ["s0"], band_names=["a", "b", "c"], progress=False)
