"""StoryRidgeCV / StoryBandedRidgeCV: the same alphas and scores as fit_encoding."""

from __future__ import annotations

import numpy as np
import pytest
from _encoding_helpers import _one_blas_thread, synthetic_stories  # noqa: F401

from gim_brain.encoding import fit_encoding
from gim_brain.encoding.estimators import StoryBandedRidgeCV, StoryRidgeCV

ALPHAS = np.logspace(-1, 4, 11)


def _split(X, Y, test=("story00",)):
    train = {s: x for s, x in X.items() if s not in test}
    return train, {s: Y[s] for s in train}, {s: X[s] for s in test}, {s: Y[s] for s in test}


def test_story_ridge_cv_matches_fit_encoding():
    X, Y, W = synthetic_stories(n_stories=6, n_features=12, n_targets=30, seed=3)
    Xtr, Ytr, Xte, Yte = _split(X, Y)
    model = StoryRidgeCV(alphas=ALPHAS, n_folds=3, backend="numpy")
    assert not hasattr(model, "coef_")  # no work in __init__
    assert model.fit(Xtr, Ytr) is model
    ref = fit_encoding(X, Y, ["story00"], alphas=ALPHAS, n_folds=3, backend="numpy",
                       n_permutations=0, progress=False)
    np.testing.assert_array_equal(model.best_alphas_, ref.alphas)
    np.testing.assert_allclose(model.score(Xte, Yte), ref.scores["r"], atol=1e-5)
    assert model.coef_.shape == (12, 30) and len(model.folds_) == 3
    pred = model.predict(Xte)
    assert pred["story00"].shape == Yte["story00"].shape
    np.testing.assert_allclose(model.predict(Xte["story00"]), pred["story00"])
    assert model.get_params()["n_folds"] == 3
    r2 = StoryRidgeCV(alphas=ALPHAS, n_folds=3, score="r2", backend="numpy").fit(Xtr, Ytr)
    np.testing.assert_allclose(r2.score(Xte, Yte),
                               fit_encoding(X, Y, ["story00"], alphas=ALPHAS, n_folds=3,
                                            score="r2", backend="numpy", n_permutations=0,
                                            progress=False).scores["r2"], atol=1e-4)


def test_story_banded_ridge_cv_matches_fit_encoding():
    X, Y, _ = synthetic_stories(n_stories=6, n_features=10, n_targets=20, seed=4)
    Xb = {s: [x[:, :4], x[:, 4:]] for s, x in X.items()}
    Xtr, Ytr, Xte, Yte = _split(Xb, Y)
    model = StoryBandedRidgeCV(alphas=ALPHAS, n_folds=3, n_iter=5, backend="numpy").fit(Xtr, Ytr)
    ref = fit_encoding(Xb, Y, ["story00"], band_names=["a", "b"], alphas=ALPHAS, n_folds=3,
                       n_iter=5, backend="numpy", n_permutations=0, progress=False,
                       variance_partitioning=False)
    np.testing.assert_allclose(model.best_alphas_, ref.alphas, rtol=1e-5)
    np.testing.assert_allclose(model.score(Xte, Yte), ref.scores["r"], atol=1e-4)
    assert model.deltas_.shape == (2, 20) and model.band_widths_ == [4, 6]


def test_estimators_reject_bad_input():
    X, Y, _ = synthetic_stories(n_stories=4, n_features=5, n_targets=3)
    with pytest.raises(RuntimeError, match="not fitted"):
        StoryRidgeCV().predict(X)
    bad = dict(Y, story01=Y["story01"][:-1])
    with pytest.raises(ValueError, match="story01"):
        StoryRidgeCV(n_folds=2, backend="numpy").fit(X, bad)
    with pytest.raises(ValueError, match="at least 2 bands"):
        StoryBandedRidgeCV(n_folds=2, backend="numpy").fit(X, Y)
