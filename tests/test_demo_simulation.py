"""Demo dataset pieces that need no other layer: stories, timings, brain mask, simulation."""

from __future__ import annotations

import numpy as np
import pytest

from gim_brain.demo.brain import DEFAULT_REGIONS, demo_mask, plant_regions, voxel_coordinates
from gim_brain.demo.simulate import SimulationParams, canonical_hrf, simulate_responses
from gim_brain.demo.stories import STORY_NAMES, story_text, story_words
from gim_brain.demo.timing import synthesize_timings


def test_stories_are_shipped_and_repeat_phrases():
    assert 4 <= len(STORY_NAMES) <= 6
    for name in STORY_NAMES:
        words, bounds = story_words(name)
        assert 300 <= len(words) <= 600, name
        assert len(bounds) == len(words)
        assert bounds.count("sentence") > 10 and "paragraph" in bounds
        # some 5-word phrase occurs at least twice (something for induction matching to find)
        grams = [" ".join(words[i:i + 5]).lower() for i in range(len(words) - 4)]
        assert len(set(grams)) < len(grams), name
    with pytest.raises(KeyError, match="lighthouse"):
        story_text("nope")


def test_timings_rate_pauses_and_seed():
    words, bounds = story_words("lighthouse")
    on, off = synthesize_timings(words, bounds, rate=2.5, seed=3)
    assert on.shape == off.shape == (len(words),)
    assert np.all(off > on) and np.all(on[1:] >= off[:-1] - 1e-12)
    total = off[-1] - on[0]
    assert len(words) / total == pytest.approx(2.5, rel=0.02)
    gaps = on[1:] - off[:-1]
    b = np.array(bounds[:-1])
    assert gaps[b == "sentence"].mean() > 5 * gaps[b == ""].mean()
    assert gaps[b == "paragraph"].mean() > gaps[b == "sentence"].mean()
    on2, _ = synthesize_timings(words, bounds, rate=2.5, seed=3)
    on3, _ = synthesize_timings(words, bounds, rate=2.5, seed=4)
    assert np.array_equal(on, on2) and not np.array_equal(on, on3)
    with pytest.raises(ValueError, match="boundaries"):
        synthesize_timings(words, bounds[:-1])
    with pytest.raises(ValueError, match="no words"):
        synthesize_timings([])


def test_mask_and_planted_regions_land_where_asked():
    mask = demo_mask(8)
    assert mask.shape == (26, 30, 25) and int(np.asarray(mask.dataobj).sum()) == 3666
    labels = plant_regions(mask)
    coords = voxel_coordinates(mask)
    for k, region in enumerate(DEFAULT_REGIONS):
        vox = coords[labels == k]
        assert len(vox) >= 20
        d = np.min([np.linalg.norm(vox - np.array(c), axis=1) for c in region.centers_mm], axis=0)
        assert d.max() <= region.radius_mm
    assert (labels == -1).sum() > 3000


def test_hrf_shape():
    h = canonical_hrf(2.0)
    assert h[0] == 0 and h.argmax() in (2, 3) and h.max() == 1.0  # peak at ~5 s, between lags 2 and 3
    assert h.min() < 0  # undershoot
    with pytest.raises(ValueError):
        canonical_hrf(0)


def test_simulation_plants_signal_in_the_right_voxels():
    rng = np.random.default_rng(0)
    rows = [120, 100, 110]
    drivers = {"a": [rng.normal(size=(n, 1)) for n in rows],
               "b": [rng.normal(size=(n, 6)) for n in rows]}
    labels = np.array([0] * 5 + [1] * 5 + [-1] * 20)
    ys = simulate_responses(drivers, labels, ["a", "b"], tr=2.0,
                            params=SimulationParams(snr=4.0, seed=1))
    assert [y.shape for y in ys] == [(n, 30) for n in rows] and ys[0].dtype == np.float32
    assert np.allclose(ys[0].mean(0), 0, atol=1e-5) and np.allclose(ys[0].std(0), 1, atol=1e-4)
    # voxels of region "a" follow the HRF-convolved driver a; noise voxels do not
    h = canonical_hrf(2.0)
    conv = np.concatenate([np.convolve(x[:, 0], h)[: len(x)] for x in drivers["a"]])
    y = np.concatenate(ys)
    r = np.array([abs(np.corrcoef(conv, y[:, v])[0, 1]) for v in range(30)])
    assert r[:5].min() > 0.8 and r[10:].max() < 0.3
    again = simulate_responses(drivers, labels, ["a", "b"], tr=2.0,
                               params=SimulationParams(snr=4.0, seed=1))
    assert all(np.array_equal(u, v) for u, v in zip(ys, again))
    with pytest.raises(ValueError, match="planted space"):
        simulate_responses({"a": drivers["a"]}, labels, ["a", "b"], tr=2.0)
