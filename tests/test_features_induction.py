"""Induction features over responses: match rules, and the guarantee that nothing leaks."""

import numpy as np
import pytest
from _features_helpers import make_tiny_dataset

from gim_brain._cache import NpzCache
from gim_brain.data import load_dataset
from gim_brain.features import SpaceContext, build_design, resolve_params
from gim_brain.features.induction import (ResponseInduction, combine_exact_fuzzy,
                                          cosine_similarity_rows, induction_block,
                                          match_autoregressive, match_by_ngram,
                                          match_by_similarity, match_random, row_last_word)
from gim_brain.features.induction_spaces import fitted_induction


def _fitted(rng, n_targets=12, k=5, gap=4, horizon=3):
    train = [rng.normal(size=(80, n_targets)).astype(np.float32) for _ in range(3)]
    return ResponseInduction(n_components=k, gap=gap, horizon=horizon).fit(train)


def _all_rules(rng, n, gap, horizon):
    sim, valid = cosine_similarity_rows(rng.normal(size=(n, 6)))
    words = rng.integers(0, 5, size=3 * n)              # a small vocabulary: many n-gram matches
    word_rows = np.sort(rng.integers(-2, n, size=3 * n))
    ngram, lengths = match_by_ngram(words, word_rows, n, gap)
    fuzzy = match_by_similarity(sim, gap, valid)
    return {
        "gim": combine_exact_fuzzy(ngram, lengths, fuzzy, tau=3),
        "similarity": fuzzy,
        "ngram": ngram,
        "random": match_random(n, gap, seed=1),
        "ar": match_autoregressive(n, gap),
    }


@pytest.mark.parametrize("gap,horizon", [(4, 3), (4, 2), (6, 3), (2, 1)])
def test_features_of_row_t_use_no_response_after_t_minus_gap_plus_horizon(gap, horizon):
    """Responses that change only at/after the bound must leave row t's features untouched."""
    rng = np.random.default_rng(gap * 10 + horizon)
    n = 60
    model = _fitted(rng, gap=gap, horizon=horizon)
    responses = rng.normal(size=(n, 12)).astype(np.float32)
    for name, matches in _all_rules(rng, n, gap, horizon).items():
        base = model.transform(responses, matches)
        assert base.shape == (n, 3 * horizon * 5)
        for t in range(n):
            bound = t - gap + horizon + 1           # first row that must never be read
            leaky = responses.copy()
            leaky[max(bound, 0):] = rng.normal(scale=1e3, size=leaky[max(bound, 0):].shape)
            np.testing.assert_array_equal(model.transform(leaky, matches)[t], base[t],
                                          err_msg=f"{name}: row {t} read a response at/after row {bound}")


def test_brief_bound_t_minus_gap_plus_3_holds_for_horizon_2_and_default_reads_only_the_past():
    rng = np.random.default_rng(0)
    n, gap = 50, 4
    responses = rng.normal(size=(n, 12)).astype(np.float32)
    # horizon 2: nothing at or after t - gap + 3 is read
    model = _fitted(rng, gap=gap, horizon=2)
    m = match_autoregressive(n, gap)
    base = model.transform(responses, m)
    for t in range(n):
        leaky = responses.copy()
        leaky[max(t - gap + 3, 0):] += 1e3
        np.testing.assert_array_equal(model.transform(leaky, m)[t], base[t])
    # defaults (gap 4, horizon 3): row t itself and everything later is never read ...
    model = _fitted(rng)
    base = model.transform(responses, m)
    for t in range(n):
        leaky = responses.copy()
        leaky[t:] += 1e3
        np.testing.assert_array_equal(model.transform(leaky, m)[t], base[t])
    # ... and the bound is tight: the test above would see a change at t - gap + horizon
    t = 30
    leaky = responses.copy()
    leaky[t - 1] += 1e3
    assert not np.array_equal(model.transform(leaky, m)[t], base[t])


def test_gap_violations_are_refused():
    z = np.zeros((10, 2), np.float32)
    bad = match_autoregressive(10, 4)
    bad[7] = 5                                      # 5 > 7 - 4
    with pytest.raises(ValueError, match="broke the gap"):
        induction_block(z, bad, gap=4)
    with pytest.raises(ValueError, match="horizon"):
        induction_block(z, match_autoregressive(10, 4), gap=4, horizon=4)
    with pytest.raises(ValueError, match="gap"):
        match_autoregressive(10, 0)


def _ar_control_run(data_root, manifest, cache_root):
    """Build ``ar-control`` for every story of the tiny dataset; return (PCA, features by story)."""
    ctx = SpaceContext(load_dataset(manifest, data_root), subject="S1",
                       cache=NpzCache(cache_root), progress=False)
    design = build_design(ctx, "ar-control[n_components=4]")
    pca = fitted_induction(ctx, resolve_params("ar-control", {"n_components": "4"})).pca_
    assert ctx.training_stories() == ["s1", "s2", "s3"]
    return pca, design.X


def _replace_responses(data_root, story, scale, seed):
    path = data_root / "responses" / "S1" / f"{story}.npz"
    shape = np.load(path)["responses"].shape
    noise = np.random.default_rng(seed).normal(scale=scale, size=shape).astype(np.float32)
    np.savez(path, responses=noise)


def test_pca_is_fitted_on_training_stories_only(tmp_path):
    root = tmp_path / "data"
    manifest = make_tiny_dataset(root)                 # s0 is the test story
    pca_a, x_a = _ar_control_run(root, manifest, tmp_path / "cache-a")
    # the test story's responses become large noise: nothing fitted or built for training may move
    _replace_responses(root, "s0", scale=1000.0, seed=11)
    pca_b, x_b = _ar_control_run(root, manifest, tmp_path / "cache-b")
    np.testing.assert_array_equal(pca_b.components_, pca_a.components_)
    np.testing.assert_array_equal(pca_b.mean_, pca_a.mean_)
    for s in ("s1", "s2", "s3"):
        np.testing.assert_array_equal(x_b[s], x_a[s])
    assert not np.allclose(x_b["s0"], x_a["s0"])       # the perturbation did reach the run
    # sanity: the same perturbation of a TRAINING story changes the PCA and training features
    _replace_responses(root, "s1", scale=1000.0, seed=12)
    pca_c, x_c = _ar_control_run(root, manifest, tmp_path / "cache-c")
    assert not np.allclose(pca_c.mean_, pca_b.mean_)
    assert not np.allclose(np.abs(pca_c.components_), np.abs(pca_b.components_))
    assert not np.allclose(x_c["s2"], x_b["s2"])


def test_induction_block_values():
    z = np.arange(20, dtype=np.float32).reshape(10, 2) ** 2
    m = match_autoregressive(10, 4)
    out = induction_block(z, m, gap=4, horizon=3, lags=(0, 1))
    t = 7                                           # m = 3
    np.testing.assert_array_equal(out[t, :2], z[4] - z[3])
    np.testing.assert_array_equal(out[t, 4:6], z[6] - z[3])
    np.testing.assert_array_equal(out[t, 6:8], z[3] - z[2])   # lag 1: row 6 matched row 2, step 1
    assert not out[:4].any()


def test_match_rules():
    sim = np.zeros((8, 8))
    sim[7, 1] = 0.9
    sim[7, 3] = 0.9        # tie: the most recent wins
    sim[7, 4] = 5.0        # too recent for gap 4 (4 > 7 - 4)
    m = match_by_similarity(sim, gap=4)
    assert m[7] == 3 and (m[:4] == -1).all()
    r = match_random(100, 4, seed=0)
    assert (r[:4] == -1).all() and all(0 <= r[t] <= t - 4 for t in range(4, 100))
    assert match_random(100, 4, seed=0).tolist() == r.tolist()
    # words "a b c x a b c": the last row's n-gram "a b c" matched at the word of row 2
    ids = np.array([0, 1, 2, 9, 8, 7, 6, 0, 1, 2])
    rows = np.array([0, 1, 2, 3, 4, 5, 6, 7, 7, 8])
    mt, ln = match_by_ngram(ids, rows, 9, gap=4)
    assert mt[8] == 2 and ln[8] == 3
    assert combine_exact_fuzzy(mt, ln, np.full(9, 1), tau=3)[8] == 2
    assert combine_exact_fuzzy(mt, ln, np.full(9, 1), tau=4)[8] == 1
    # rows without words carry the last word heard; words before the grid count for row 0
    assert row_last_word(np.array([-1, -1, 0, 2]), 4).tolist() == [2, 2, 3, 3]
    assert row_last_word(np.array([5, 6]) * 0 - 1, 2).tolist() == [-1, -1]  # nothing in the grid
