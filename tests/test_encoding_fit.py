"""fit_encoding end to end on synthetic stories: scores, solvers, backends, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from gim_brain.encoding import fit_encoding

from _encoding_helpers import _one_blas_thread, synthetic_stories  # noqa: F401

TEST = ["story00", "story01"]


@pytest.fixture(scope="module")
def stories():
    return synthetic_stories(n_stories=7, n_features=12, n_targets=40, seed=5)


def test_fit_scores_and_records_splits(stories):
    X, Y, W = stories
    res = fit_encoding(X, Y, TEST, n_permutations=50, progress=False, keep_weights=True,
                       feature_set="syn", backend="numpy")
    assert res.feature_set == "syn" and res.spaces == ["syn"]
    assert res.scores["r"].shape == res.scores["r2"].shape == res.alphas.shape == (40,)
    # strong targets (large weight scale) are predicted well, the weakest barely
    assert res.scores["r"][-10:].mean() > 0.8 and res.scores["r"][:5].mean() < 0.3
    assert res.weights.shape == (12, 40) and res.predictions.shape[0] == sum(
        Y[s].shape[0] for s in TEST)
    assert res.splits["test_stories"] == TEST
    assert set(res.splits["train_stories"]) == set(X) - set(TEST)
    for val in res.splits["folds"]:
        assert not set(val) & set(TEST)
    assert res.pvalues.shape == (40,) and res.n_significant() >= 10
    prov = res.provenance
    assert prov["solver_used"] == "fastpath" and prov["backend_used"] == "numpy"
    assert {"himalaya", "numpy", "gim_brain"} <= set(prov["versions"])
    assert prov["timings"]["fit_s"] > 0


def test_test_story_responses_never_reach_model_selection(stories):
    # the folds exclude test stories by construction; what matters is that their responses
    # cannot influence alpha choice or CV scores in any other way (scaling, centring, ...)
    X, Y, _ = stories
    kw = dict(n_permutations=0, progress=False, backend="numpy", keep_weights=True)
    ref = fit_encoding(X, Y, TEST, **kw)
    rng = np.random.default_rng(17)
    Y2 = dict(Y)
    for s in TEST:
        Y2[s] = (rng.normal(scale=50.0, size=Y[s].shape) + 7.0).astype(Y[s].dtype)
    other = fit_encoding(X, Y2, TEST, **kw)
    np.testing.assert_array_equal(other.alphas, ref.alphas)
    np.testing.assert_array_equal(other.cv_scores, ref.cv_scores)
    np.testing.assert_array_equal(other.weights, ref.weights)
    # ... while the held-out scores do see the new test responses
    assert not np.allclose(other.scores["r"], ref.scores["r"], atol=1e-3)
    assert other.scores["r"][-10:].mean() < 0.3 < ref.scores["r"][-10:].mean()


def test_solvers_and_backends_agree(stories):
    X, Y, _ = stories
    kw = dict(n_permutations=0, progress=False)
    ref = fit_encoding(X, Y, TEST, solver="fastpath", backend="numpy", **kw)
    for backend, solver in [("torch", "fastpath"), ("torch", "ridge"), ("numpy", "kernel")]:
        other = fit_encoding(X, Y, TEST, solver=solver, backend=backend, **kw)
        differ = other.alphas != ref.alphas
        assert differ.mean() <= 0.1, (backend, solver)
        # differences only at ties: same mean CV score (float32 noise), same held-out r
        np.testing.assert_allclose(other.cv_scores[differ], ref.cv_scores[differ], atol=1e-6)
        np.testing.assert_allclose(other.scores["r"], ref.scores["r"], atol=1e-4)


def test_row_mismatch_names_story_and_counts(stories):
    X, Y, _ = stories
    X = dict(X)
    X["story03"] = X["story03"][:-2]
    n = Y["story03"].shape[0]
    with pytest.raises(ValueError, match=rf"'story03'.*{n - 2} rows.*{n} rows"):
        fit_encoding(X, Y, TEST, n_permutations=0, progress=False)


def test_nan_in_responses_names_story(stories):
    X, Y, _ = stories
    Y = dict(Y)
    Y["story04"] = Y["story04"].copy()
    Y["story04"][3, 2] = np.nan
    with pytest.raises(ValueError, match="'story04'.*NaN"):
        fit_encoding(X, Y, TEST, n_permutations=0, progress=False)


def test_single_training_story_and_missing_test_story(stories):
    X, Y, _ = stories
    few = ["story00", "story01", "story02"]
    with pytest.raises(ValueError, match="at least 2 training stories"):
        fit_encoding({s: X[s] for s in few}, {s: Y[s] for s in few}, TEST, progress=False)
    with pytest.raises(ValueError, match="'nope' has no features"):
        fit_encoding(X, Y, ["nope"], progress=False)
    with pytest.raises(ValueError, match="backend"):
        fit_encoding(X, Y, TEST, backend="tpu", progress=False)
    with pytest.raises(ValueError, match="band_names"):
        fit_encoding({s: [x] for s, x in X.items()}, Y, TEST, progress=False)
