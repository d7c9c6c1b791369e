"""Chunked word features equal the per-word definition; caching; errors."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from _lm_fixtures import offline_lm, tiny_lm
from gim_brain._cache import NpzCache
from gim_brain.lm.alignment import UnencodableWordError
from gim_brain.lm.extraction import word_features, word_features_per_word


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def avatar_words(lebel_root):
    with open(lebel_root / "words" / "avatar.tsv", newline="") as f:
        return [row["word"] for row in csv.DictReader(f, delimiter="\t")]


def _assert_same(chunked, ref, n=None):
    sl = slice(0, n)
    assert chunked.hidden.keys() == ref.hidden.keys()
    for layer in ref.hidden:
        np.testing.assert_allclose(chunked.hidden[layer][sl], ref.hidden[layer][sl], rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(chunked.embeddings, ref.embeddings)
    for name in ("surprisal", "next_token_logprobs"):
        a, b = getattr(chunked, name), getattr(ref, name)
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a[sl], b[sl], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("context,stride,prefix", [(12, 5, True), (7, 20, False)])
def test_chunked_equals_per_word_tiny(avatar_words, context, stride, prefix):
    lm = tiny_lm()
    words = avatar_words[:80]
    kw = dict(layers=[0, 2, -1], context_tokens=context, stride=stride, surprisal=True, next_token=True,
              prefix=prefix, progress=False)
    chunked = word_features(lm, words, batch_size=3, cache=False, **kw)
    ref = word_features_per_word(lm, words, **kw)
    _assert_same(chunked, ref)
    assert sorted(chunked.hidden) == [0, 2, 4]
    # the definition: context starts at a stride multiple, >= context tokens before the word (or 0)
    before = chunked.spans[:, 0] - chunked.context_start
    assert (chunked.context_start % stride == 0).all()
    assert ((before >= context) | (chunked.context_start == 0)).all() and (before < context + stride).all()
    assert len(np.unique(chunked.context_start)) > 5  # many chunks were used
    assert np.isnan(chunked.surprisal[0]) == (not prefix) and np.isfinite(chunked.surprisal[1:]).all()
    np.testing.assert_allclose(np.exp(chunked.next_token_logprobs).sum(1), 1, rtol=1e-4)


def test_chunked_equals_per_word_smollm2(avatar_words):
    lm = offline_lm()
    words = avatar_words[:40]
    kw = dict(layers=[lm.n_layers // 2], context_tokens=8, stride=4, surprisal=True, progress=False)
    chunked = word_features(lm, words, cache=False, **kw)
    ref = word_features_per_word(lm, words, indices=range(10), **kw)
    _assert_same(chunked, ref, n=10)
    assert np.isnan(ref.hidden[15][10:]).all()
    assert chunked.hidden[15].shape == (40, 576) and chunked.embeddings.shape == (40, 576)
    # trained model: function words are less surprising than content words on average
    assert np.nanmedian(chunked.surprisal) < 20


def test_static_embeddings_are_token_means():
    lm = tiny_lm()
    words = ["naïveté", "a", ""]
    f = word_features(lm, words, layers=[1], context_tokens=4, cache=False, progress=False)
    table = lm.model.get_input_embeddings().weight.detach().numpy()
    for i in range(3):
        s, e = f.spans[i]
        np.testing.assert_allclose(f.embeddings[i], table[f.token_ids[s:e]].mean(0), atol=1e-7)
    assert f.token_ids[0] == lm.document_start_id


def test_cache_round_trip_and_key(tmp_path):
    lm = tiny_lm()
    words = "once upon a time there was a story about a model".split()
    store = NpzCache(tmp_path)
    a = word_features(lm, words, layers=[1, 3], context_tokens=4, surprisal=True, cache=store, progress=False)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    b = word_features(lm, words, layers=[1, 3], context_tokens=4, surprisal=True, cache=store, progress=False)
    for layer in (1, 3):
        np.testing.assert_array_equal(a.hidden[layer], b.hidden[layer])
    np.testing.assert_array_equal(a.surprisal, b.surprisal)
    word_features(lm, words, layers=[1, 3], context_tokens=5, cache=store, progress=False)
    word_features(lm, words[:-1] + ["tale"], layers=[1, 3], context_tokens=4, cache=store, progress=False)
    assert len(list(tmp_path.glob("*.npz"))) == 3


def test_bad_input_errors():
    lm = tiny_lm()
    with pytest.raises(ValueError, match="story 'empty'.*empty story"):
        word_features(lm, [], story="empty", cache=False)
    with pytest.raises(ValueError, match="layer 9 is out of range"):
        word_features(lm, ["a"], layers=[9], cache=False)
    with pytest.raises(ValueError, match="context_tokens"):
        word_features(lm, ["a"], context_tokens=0, cache=False)
    with pytest.raises(UnencodableWordError, match="story 'x': word 1"):
        word_features(lm, ["a", "<|im_start|>"], story="x", cache=False)
    with pytest.raises(ValueError, match="lower context_tokens or stride"):
        word_features(lm, ["word"] * 3000, context_tokens=1500, stride=1000, story="long", cache=False)


def test_other_architecture_gpt2():
    """Block discovery, hooks and the chunk definition also hold for GPT-2 (learned positions)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from gim_brain.lm import LanguageModel

    tok = tiny_lm().tokenizer
    torch.manual_seed(2)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=16, n_layer=3, n_head=2, n_positions=128))
    lm = LanguageModel.from_pretrained_objects(model, tok, "tiny-gpt2")
    assert lm.n_layers == 3 and lm.hidden_size == 16
    words = "the quick brown fox jumps over the lazy dog while the cat sleeps in the sun".split()
    kw = dict(layers=[1, 3], context_tokens=3, stride=2, surprisal=True, progress=False)
    _assert_same(word_features(lm, words, cache=False, batch_size=2, **kw), word_features_per_word(lm, words, **kw))


def test_chunking_is_exact_in_float64(avatar_words):
    """In float64 the chunked and per-word paths agree to rounding: the difference is not a model one."""
    import copy

    from gim_brain.lm import LanguageModel

    tiny = tiny_lm()
    lm = LanguageModel.from_pretrained_objects(copy.deepcopy(tiny.model).double(), tiny.tokenizer, "tiny64")
    kw = dict(layers=[2, 4], context_tokens=10, stride=6, surprisal=True, progress=False)
    chunked = word_features(lm, avatar_words[:60], cache=False, batch_size=4, **kw)
    ref = word_features_per_word(lm, avatar_words[:60], **kw)
    assert chunked.hidden[4].dtype == np.float64
    for layer in (2, 4):
        np.testing.assert_allclose(chunked.hidden[layer], ref.hidden[layer], rtol=0, atol=1e-12)
    np.testing.assert_allclose(chunked.surprisal, ref.surprisal, rtol=0, atol=1e-10)
