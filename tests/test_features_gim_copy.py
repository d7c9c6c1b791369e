"""gim-copy: the llm features of the word GIM copies, causal by construction, and its control.

"Causal" here means: the feature of word i is a function of words 0..i only, and the copied word
comes from before word i (source < i). Checked by rewriting the words after a point: every word
before it keeps its copied word and its feature."""

import shutil

import numpy as np
import pytest
from _features_helpers import make_tiny_dataset
from _lm_fixtures import offline_lm

from gim_brain._cache import NpzCache
from gim_brain.data import load_dataset
from gim_brain.features import (
    FeatureParameterError,
    SpaceContext,
    build_design,
    resolve_params,
)
from gim_brain.features.gim_copy_spaces import (
    copied_word_features,
    copy_sources,
    random_copy_ends,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    lm = offline_lm()
    root = tmp_path_factory.mktemp("gim-copy")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GIM_BRAIN_CACHE", str(root / "usercache"))
        manifest = make_tiny_dataset(root / "data", n_stories=3, silent_gap=False)
        yield lm, manifest, root


def _ctx(tiny, data=None, cache="cache"):
    lm, manifest, root = tiny
    return SpaceContext(load_dataset(manifest, data or root / "data"), subject="S1",
                        cache=NpzCache(root / cache), progress=False, lm_model=lm)


def test_copied_word_is_earlier_and_predicts_the_next_word_of_repeated_text(tiny):
    ctx = _ctx(tiny)
    params = resolve_params("gim-copy")
    found = copy_sources(ctx, params, "s1", "gim", "gim-copy")
    source, n = found["source"], len(found["source"])
    assert (source < np.arange(n)).all() and (source[2:] >= 0).all()
    words = ctx.story("s1").transcript.words
    # the story repeats a 30-word text: an exact match copies the word after the earlier occurrence
    exact = np.flatnonzero(found["exact_lengths"][:-1] >= params["tau"])
    assert len(exact) > 30
    assert all(words[source[i]] == words[i + 1] for i in exact)
    # copied=matched: the word of the matched token itself, i.e. the earlier occurrence of word i
    matched = copy_sources(ctx, resolve_params("gim-copy", {"copied": "matched"}), "s1", "gim",
                           "gim-copy")["source"]
    assert (matched <= source).all() and (matched < np.arange(n)).all()
    assert all(words[matched[i]] == words[i] for i in exact)


def test_copy_features_of_earlier_words_ignore_later_words(tiny, tmp_path):
    root = tiny[2]
    data = tmp_path / "data"
    shutil.copytree(root / "data", data)
    path = data / "words" / "s1.tsv"
    lines = path.read_text().splitlines()
    cut = (len(lines) - 1) // 2                               # first rewritten word
    lines[1 + cut:] = ["\t".join(ln.split("\t")[:2] + ["PURPLE"]) for ln in lines[1 + cut:]]
    path.write_text("\n".join(lines) + "\n")
    for space, rule in (("gim-copy", "gim"), ("gim-copy-random", "random")):
        params = resolve_params(space)
        ctx_a, ctx_b = _ctx(tiny), _ctx(tiny, data, cache="cache-rewritten")
        assert ctx_b.story("s1").transcript.words[cut] == "purple"
        src_a = copy_sources(ctx_a, params, "s1", rule, space)["source"]
        src_b = copy_sources(ctx_b, params, "s1", rule, space)["source"]
        assert (src_b < np.arange(len(src_b))).all()
        np.testing.assert_array_equal(src_b[:cut], src_a[:cut], err_msg=space)
        assert not np.array_equal(src_b, src_a)
        x_a = copied_word_features(ctx_a, params, "s1", rule, space)
        x_b = copied_word_features(ctx_b, params, "s1", rule, space)
        np.testing.assert_allclose(x_b[:cut], x_a[:cut], atol=1e-4, err_msg=space)
        assert not np.allclose(x_b[cut:], x_a[cut:], atol=1e-4)


def test_random_control_keeps_the_words_and_the_distance_distribution():
    rng = np.random.default_rng(0)
    queries = np.cumsum(rng.integers(1, 3, size=200))
    hi = queries - 2
    gim = np.where(np.arange(200) >= 3, queries - rng.integers(2, 40, size=200), -1)
    gim = np.where(gim <= hi, gim, -1)
    gim[gim < 0] = -1
    rand = random_copy_ends(gim, queries, hi, seed=1)
    assert ((rand >= 0) == (gim >= 0)).all() and (rand <= hi).all()
    distances = queries - gim
    drawn_from_pool = 0
    for i in np.flatnonzero(rand >= 0):       # a distance of one of the 100 GIM matches before i
        k = np.arange(max(0, i - 100), i)
        k = k[(gim[k] >= 0) & (distances[k] <= queries[i]) & (distances[k] >= queries[i] - hi[i])]
        if len(k):
            assert queries[i] - rand[i] in distances[k]
            drawn_from_pool += 1
    assert drawn_from_pool > 150
    assert not np.array_equal(rand, gim)
    np.testing.assert_array_equal(random_copy_ends(gim, queries, hi, seed=1), rand)


def test_design_and_bad_window(tiny):
    ctx = _ctx(tiny)
    d = build_design(ctx, "gim-copy,gim-copy-random", delays=(1,))
    width = offline_lm().hidden_size
    assert d.n_features == 2 * width
    assert all(np.isfinite(x).all() and x.shape[0] == ctx.story(s).grid.n_rows
               for s, x in d.X.items())
    with pytest.raises(FeatureParameterError, match="'window' of feature space 'gim-copy'"):
        build_design(ctx, "gim-copy[window=64]", delays=(1,))
    with pytest.raises(FeatureParameterError, match="'tau'"):
        resolve_params("gim-copy-random", {"tau": 0})
