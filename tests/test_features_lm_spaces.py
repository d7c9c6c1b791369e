"""LM and GIM feature spaces on a tiny dataset with a tiny random-weight LM (fast)."""

import numpy as np
import pytest
from _features_helpers import make_tiny_dataset
from _lm_fixtures import tiny_lm

from gim_brain._cache import NpzCache
from gim_brain.data import load_dataset
from gim_brain.features import SpaceContext, build_design
from gim_brain.features.gim_spaces import gim_word_prediction
from gim_brain.features.lm_spaces import word_static_embeddings


@pytest.fixture()
def ctx(tmp_path, monkeypatch):
    lm = tiny_lm()  # built first: its tokenizer comes from the user cache
    monkeypatch.setenv("GIM_BRAIN_CACHE", str(tmp_path / "usercache"))  # LM features go here
    manifest = make_tiny_dataset(tmp_path / "data", n_stories=3)
    ds = load_dataset(manifest, tmp_path / "data")
    return SpaceContext(ds, subject="S1", cache=NpzCache(tmp_path / "cache"), progress=False,
                        lm_model=lm)


def test_lm_and_gim_spaces_shapes(ctx):
    hidden = tiny_lm().hidden_size
    d = build_design(ctx, "embedding,llm[context=16],gim-stats[context=16],gim-next[context=16]",
                     delays=(1, 2))
    widths = {b: s.stop - s.start for b, s in d.band_slices.items()}
    assert list(widths.values()) == [2 * hidden, 2 * hidden, 2 * 7, 2 * hidden]
    for s, x in d.X.items():
        assert x.shape[0] == ctx.story(s).grid.n_rows and np.isfinite(x).all()


def test_static_embedding_is_the_mean_of_token_rows(ctx):
    from gim_brain.lm.alignment import align_words

    lm = tiny_lm()
    emb = word_static_embeddings(ctx, "s1", None)
    al = align_words(lm.tokenizer, ctx.story("s1").transcript.words)
    table = lm.model.get_input_embeddings().weight.detach().numpy()
    a, b = al.spans[5]
    np.testing.assert_allclose(emb[5], table[al.ids[a:b]].mean(0), rtol=1e-5, atol=1e-6)


def test_gim_over_words_copies_repeated_text(ctx):
    params = {"model": None, "layer": None, "context": 16, "tau": 6, "temperature": 0.1}
    pred, ids = gim_word_prediction(ctx, "s1", params)
    words = ctx.story("s1").transcript.words
    assert len(ids) == len(words)
    # the story repeats one passage: in the repeats GIM uses the exact branch and is right
    branches = pred.branch_names
    tail = slice(len(words) // 2, len(words) - 1)
    assert (branches[tail] == "context").mean() > 0.8
    assert np.nanmean(pred.next_token_prob[tail]) > 0.8


def test_gim_induction_space(ctx):
    # the lm-context rule reads any LM (the default distilled one needs its teacher, SmolLM2)
    d = build_design(ctx, "gim-induction[n_components=4;context=16;similarity=lm-context]")
    assert d.n_features == 36 and not d.spaces[0]["delayed"]
    assert not d.X["s0"][:4].any() and d.X["s0"][10:].any()
