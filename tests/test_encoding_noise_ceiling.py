"""Noise ceiling from repeats: explainable variance and normalised correlation."""

from __future__ import annotations

import numpy as np
import pytest

from gim_brain.encoding import fit_encoding
from gim_brain.encoding.noise_ceiling import cc_max, explainable_variance, noise_ceiling

from _encoding_helpers import _one_blas_thread, synthetic_stories  # noqa: F401


def _repeats(n_rep=6, n=2000, snr=(0.0, 0.25, 1.0, 4.0), seed=0):
    rng = np.random.default_rng(seed)
    signal = rng.standard_normal((n, len(snr))) * np.sqrt(snr)
    return signal[None] + rng.standard_normal((n_rep, n, len(snr))), signal, np.asarray(snr)


def test_explainable_variance_matches_signal_share():
    reps, _, snr = _repeats()
    ev = explainable_variance(reps)
    np.testing.assert_allclose(ev, snr / (snr + 1), atol=0.04)


def test_perfect_model_has_normalised_correlation_one():
    reps, signal, _ = _repeats()
    mean = reps.mean(0)
    r = np.array([0.0] + [np.corrcoef(signal[:, j], mean[:, j])[0, 1] for j in range(1, 4)])
    out = noise_ceiling({"t": reps}, r=r)
    np.testing.assert_allclose(out["r_normalized"][1:], 1.0, atol=0.05)
    assert abs(out["explainable_variance"][0]) < 0.02  # pure noise: nothing explainable
    assert cc_max(reps)[3] > 0.95


def test_needs_two_repeats():
    with pytest.raises(ValueError, match="story 'x'.*at least 2"):
        noise_ceiling({"x": np.zeros((1, 10, 3))})


def test_fit_encoding_reports_noise_ceiling():
    X, Y, _ = synthetic_stories(n_stories=5, n_features=8, n_targets=10, seed=2)
    rng = np.random.default_rng(0)
    reps = Y["story00"][None] + 0.5 * rng.standard_normal((3, *Y["story00"].shape))
    res = fit_encoding(X, Y, ["story00"], n_permutations=0, progress=False, backend="numpy",
                       test_repeats={"story00": reps.astype(np.float32)})
    assert set(res.noise_ceiling) == {"explainable_variance", "cc_max", "r_normalized"}
    assert res.noise_ceiling["r_normalized"].shape == (10,)


def test_normalised_r_uses_the_same_stories_as_the_ceiling():
    """With repeats for only one of two test stories, r is normalised over that story alone."""
    from gim_brain.encoding.noise_ceiling import normalized_correlation

    X, Y, _ = synthetic_stories(n_stories=6, n_features=8, n_targets=10, seed=3)
    rng = np.random.default_rng(1)
    reps = Y["story00"][None] + 0.5 * rng.standard_normal((3, *Y["story00"].shape))
    kwargs = dict(n_permutations=0, progress=False, backend="numpy")
    both = fit_encoding(X, Y, ["story00", "story01"], keep_predictions=True, **kwargs,
                        test_repeats={"story00": reps.astype(np.float32)})
    n0 = Y["story00"].shape[0]
    pred0 = both.predictions[:n0].astype(np.float64)
    y0 = Y["story00"].astype(np.float64)
    r0 = np.array([np.corrcoef(pred0[:, j], y0[:, j])[0, 1] for j in range(y0.shape[1])])
    expected = normalized_correlation(r0, reps.astype(np.float32))
    np.testing.assert_allclose(both.noise_ceiling["r_normalized"], expected, rtol=1e-4, atol=1e-5)
    assert not np.allclose(r0, both.scores["r"], atol=1e-3)  # the subset differs from all stories
