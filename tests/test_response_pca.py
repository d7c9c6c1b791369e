"""ResponsePCA: the exact solver is scikit-learn's full PCA, the randomized one agrees with it on
low-rank + noise responses, both are seeded and deterministic, and a fit never holds a copy of
all the stories (walked story by story, in float32 row blocks)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from scipy.linalg import subspace_angles
from sklearn.decomposition import PCA

from gim_brain.data.response_pca import ResponsePCA, ResponsePCAError


def _stories(n_stories=8, rows=150, targets=300, rank=12, seed=0, offset=3.0):
    """Per-story float32 responses: ``rank`` strong directions + isotropic noise."""
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((rank, targets))
    scale = np.linspace(8.0, 3.0, rank)
    return {f"s{i}": ((rng.standard_normal((rows, rank)) * scale) @ basis
                      + rng.standard_normal((rows, targets)) + offset).astype(np.float32)
            for i in range(n_stories)}


def _angle_deg(a, b) -> float:
    return float(np.degrees(subspace_angles(np.asarray(a, float).T, np.asarray(b, float).T)).max())


@pytest.mark.parametrize("solver", ["exact", "randomized"])
def test_agrees_with_sklearn_full_pca(solver):
    stories = _stories()
    stacked = np.concatenate(list(stories.values()))
    ref = PCA(n_components=20, whiten=True, svd_solver="full").fit(stacked.astype(np.float64))
    ours = ResponsePCA(20, whiten=True, solver=solver).fit(stories)
    assert ours.solver_ == solver and ours.n_components_ == 20 and ours.n_samples_ == 1200
    np.testing.assert_allclose(ours.mean_, ref.mean_, rtol=1e-6, atol=1e-6)
    # the 12 signal components: same subspace, same variances, same signs, same whitened scores
    assert _angle_deg(ours.components_[:12], ref.components_[:12]) < 0.05
    np.testing.assert_allclose(ours.explained_variance_[:12], ref.explained_variance_[:12],
                               rtol=1e-4)
    np.testing.assert_allclose(ours.explained_variance_ratio_[:12],
                               ref.explained_variance_ratio_[:12], rtol=1e-4)
    np.testing.assert_allclose(ours.components_[:12], ref.components_[:12], atol=2e-3)
    z, z_ref = ours.transform(stacked), ref.transform(stacked.astype(np.float64))
    assert z.dtype == np.float32 and z.shape == (1200, 20)
    np.testing.assert_allclose(z[:, :12], z_ref[:, :12], atol=5e-3)
    if solver == "exact":  # noise components too: the exact solver is the full PCA
        np.testing.assert_allclose(ours.explained_variance_, ref.explained_variance_, rtol=1e-5)


def test_auto_picks_exact_for_few_targets_and_randomized_for_many():
    stories = _stories(n_stories=3, rows=60, targets=50)
    assert ResponsePCA(5).fit(stories).solver_ == "exact"
    assert ResponsePCA(5, exact_max_targets=20).fit(stories).solver_ == "randomized"
    # K is capped at the rank the data can have
    assert ResponsePCA(500).fit(stories).n_components_ == 50


def test_seeded_and_deterministic_whatever_the_container():
    stories = _stories(n_stories=4, targets=120)
    a = ResponsePCA(10, solver="randomized", seed=3).fit(stories)
    b = ResponsePCA(10, solver="randomized", seed=3).fit(list(stories.values()))
    np.testing.assert_array_equal(a.components_, b.components_)
    np.testing.assert_array_equal(a.explained_variance_, b.explained_variance_)
    c = ResponsePCA(10, solver="randomized", seed=4).fit(stories)
    assert not np.array_equal(a.components_, c.components_)  # the seed is used ...
    assert _angle_deg(a.components_[:8], c.components_[:8]) < 0.1  # ... and does not matter


def _fit_peak_bytes(stories, solver) -> int:
    tracemalloc.start()
    try:
        ResponsePCA(20, solver=solver).fit(stories)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("solver,n_stories,targets", [("randomized", 24, 2000), ("exact", 12, 500)])
def test_a_fit_never_copies_all_the_stories(solver, n_stories, targets):
    # float64 stories: a stacked float32 copy alone would be half of data_bytes
    stories = {k: v.astype(np.float64) for k, v in
               _stories(n_stories=n_stories, rows=250, targets=targets, rank=10).items()}
    data_bytes = sum(v.nbytes for v in stories.values())
    covariance = 3 * 8 * targets**2 if solver == "exact" else 0  # its own p x p work
    peak = _fit_peak_bytes(stories, solver)
    assert peak < covariance + 0.25 * data_bytes, (peak, data_bytes)


def test_bad_responses_name_the_story():
    stories = _stories(n_stories=3, rows=20, targets=10)
    stories["s1"] = stories["s1"][:, :9]
    with pytest.raises(ResponsePCAError, match="s1: 9 targets, the first story has 10"):
        ResponsePCA(3).fit(stories)
    stories = _stories(n_stories=3, rows=20, targets=10)
    stories["s2"][4, 2] = np.nan
    with pytest.raises(ResponsePCAError, match="s2: responses contain NaN"):
        ResponsePCA(3).fit(stories)
    with pytest.raises(ResponsePCAError, match="at least one story"):
        ResponsePCA(3).fit([])
    with pytest.raises(ResponsePCAError, match="2-D"):
        ResponsePCA(3).fit([np.zeros(5)])
    with pytest.raises(ValueError, match="solver"):
        ResponsePCA(3, solver="svd").fit([np.zeros((5, 2))])
    pca = ResponsePCA(3).fit(_stories(n_stories=2, rows=20, targets=10))
    with pytest.raises(ResponsePCAError, match=r"expected \(n_rows, 10\)"):
        pca.transform(np.zeros((4, 11), np.float32))
