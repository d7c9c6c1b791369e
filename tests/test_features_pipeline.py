"""Time pipeline: resampling word features to TR rows, per-story z-scoring, story-aware delays."""

import numpy as np
import pytest

from gim_brain.features.downsample import Downsampler, downsample, lanczos_kernel, sinc_kernel
from gim_brain.features.preprocess import (FIRDelayer, StoryZScore, Trim, make_delayed, trim,
                                           zscore)

TR = 2.0


def test_lanczos_kernel_shape():
    cutoff = 1 / TR
    assert lanczos_kernel(np.array([0.0]), cutoff)[0] == 1.0
    # zero at every nonzero multiple of the TR, zero beyond the window (3 TRs)
    mult = np.array([-6.0, -4.0, -2.0, 2.0, 4.0, 6.0])
    np.testing.assert_allclose(lanczos_kernel(mult, cutoff), 0.0, atol=1e-12)
    assert np.all(lanczos_kernel(np.array([6.5, -7.0, 20.0]), cutoff) == 0.0)
    assert lanczos_kernel(np.array([1.0]), cutoff)[0] == pytest.approx(
        3 * np.sin(np.pi / 2) * np.sin(np.pi / 6) / (np.pi / 2) ** 2)
    # sinc has the same zeros and no taper
    assert sinc_kernel(np.array([1.0]), cutoff)[0] == pytest.approx(2 / np.pi)


def test_lanczos_recovers_slow_sinusoid_and_suppresses_fast_one():
    dt = 0.1                                  # dense, regular "words"
    t_words = np.arange(0, 400, dt)
    rows = np.arange(20, 380, TR)
    slow = np.sin(2 * np.pi * 0.02 * t_words)  # 0.02 Hz << cutoff 0.5 Hz
    fast = np.sin(2 * np.pi * 0.9 * t_words)   # above the cutoff
    out = downsample(np.stack([slow, fast], 1), t_words, rows, TR, method="lanczos")
    gain = TR / dt                              # a sum, not a mean: area of the kernel / spacing
    expected = gain * np.sin(2 * np.pi * 0.02 * rows)
    np.testing.assert_allclose(out[:, 0], expected, atol=0.03 * gain)
    assert np.abs(out[:, 1]).max() < 0.1 * gain


def test_rectangular_sum_and_mean_with_empty_rows():
    rows = np.array([2.0, 4.0, 6.0, 8.0])       # windows [0,2) [2,4) [4,6) [6,8)
    times = np.array([0.5, 1.5, 3.0, 7.9, 9.0])  # the last one falls after the grid
    feats = np.array([[1.0], [3.0], [5.0], [7.0], [100.0]])
    s = downsample(feats, times, rows, TR, method="sum")[:, 0]
    m = downsample(feats, times, rows, TR, method="mean")[:, 0]
    np.testing.assert_array_equal(s, [4, 5, 0, 7])
    np.testing.assert_array_equal(m, [2, 5, 0, 7])   # a row without words is 0, never NaN
    # a word exactly at a row's end belongs to the next row (onset in [end - TR, end))
    assert downsample(np.ones((1, 1)), [4.0], rows, TR, method="sum")[:, 0].tolist() == [0, 0, 1, 0]


def test_downsample_errors_and_no_words():
    with pytest.raises(ValueError, match="unknown downsampling method"):
        downsample(np.ones((2, 1)), [1, 2], [2, 4], TR, method="cubic")
    with pytest.raises(ValueError, match="word times"):
        downsample(np.ones((3, 1)), [1, 2], [2, 4], TR)
    assert downsample(np.zeros((0, 3)), [], [2, 4], TR).shape == (2, 3)
    d = Downsampler(method="sum").fit()
    assert d.transform(np.ones((2, 1)), word_times=[1, 3], row_times=[2, 4], tr=TR)[:, 0].tolist() == [1, 1]


def test_delays_never_cross_story_boundaries():
    a = np.arange(1, 11, dtype=np.float32)[:, None]        # story A: 1..10
    b = 100 + np.arange(1, 8, dtype=np.float32)[:, None]    # story B: 101..107
    out_a, out_b = FIRDelayer(delays=(1, 2, 3, 4)).fit_transform([a, b])
    assert out_b.shape == (7, 4)
    # the first d rows of story B's delay-d block are zeros, not story A's last rows
    for i, d in enumerate((1, 2, 3, 4)):
        np.testing.assert_array_equal(out_b[:d, i], 0.0)
        np.testing.assert_array_equal(out_b[d:, i], b[:-d, 0])
    assert not np.isin(out_b, a).any()
    # delay 0 and a negative delay (look-ahead) stay within the story too
    np.testing.assert_array_equal(make_delayed(a, [0, -2])[:, 1], np.r_[a[2:, 0], 0, 0])


def test_zscore_is_per_story_and_safe_for_constant_columns():
    rng = np.random.default_rng(0)
    s1 = rng.normal(5, 3, size=(50, 3))
    s2 = rng.normal(-20, 0.1, size=(30, 3))
    s2[:, 2] = 7.0  # a constant column
    z1, z2 = StoryZScore().fit_transform([s1, s2])
    np.testing.assert_allclose(z1.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(z1.std(0), 1, atol=1e-5)
    np.testing.assert_allclose(z2[:, :2].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(z2[:, :2].std(0), 1, atol=1e-5)
    np.testing.assert_array_equal(z2[:, 2], 0.0)
    # per story, not over the concatenation
    assert not np.allclose(zscore(np.vstack([s1, s2]))[:50], z1, atol=1e-3)


def test_trim():
    x = np.arange(10)[:, None]
    np.testing.assert_array_equal(trim(x, 2, 3)[:, 0], [2, 3, 4, 5, 6])
    assert [len(t) for t in Trim(1, 1).fit_transform([x, x[:5]])] == [8, 3]
    with pytest.raises(ValueError, match="leaves nothing"):
        trim(x, 5, 5)
