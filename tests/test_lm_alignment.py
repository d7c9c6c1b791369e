"""Word <-> token alignment: odd words, errors, and a round trip over every real LeBel transcript."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from _lm_fixtures import tiny_lm
from gim_brain.lm.alignment import UnencodableWordError, align_words


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_lm().tokenizer


def _check_round_trip(tok, words, al):
    assert al.spans.shape == (len(words), 2)
    assert (al.n_tokens >= 1).all()
    assert al.spans[0, 0] == 0 and al.spans[-1, 1] == al.ids.size
    assert (al.spans[1:, 0] == al.spans[:-1, 1]).all()  # contiguous, in order
    assert tok.decode(al.ids.tolist()) == al.text
    for i, w in enumerate(words):
        s, e = al.spans[i]
        assert tok.decode(al.ids[s:e].tolist()) == al.text[al.char_spans[i, 0]:al.char_spans[i, 1]] == " " + w


@pytest.mark.parametrize("words", [
    ["TOM", "WAITS", "LOVED"],
    ["a", "", "b"],
    ["", "", "x", "", "", "", "y", ""],
    ["{CG}", "(BR}", "I'M", "don't", "—", "naïve", "\u4e2d\u6587", "  "],
])
def test_every_word_gets_tokens_and_round_trips(tokenizer, words):
    al = align_words(tokenizer, words)
    _check_round_trip(tokenizer, words, al)
    assert (al.word_of_token() == np.repeat(np.arange(len(words)), al.n_tokens)).all()


def test_without_leading_space(tokenizer):
    al = align_words(tokenizer, ["Hello", "world"], leading_space=False)
    assert al.text == "Hello world"
    assert tokenizer.decode(al.ids[al.spans[1, 0]:al.spans[1, 1]].tolist()) == " world"


def test_errors_name_story_and_word(tokenizer):
    with pytest.raises(ValueError, match="story 'avatar'.*empty story"):
        align_words(tokenizer, [], story="avatar")
    with pytest.raises(UnencodableWordError, match=r"story 'avatar': word 1 \('<\|endoftext\|>'\)"):
        align_words(tokenizer, ["so", "<|endoftext|>", "then"], story="avatar")
    with pytest.raises(ValueError, match="word 0 is float"):
        align_words(tokenizer, [float("nan"), "x"])


def test_unknown_token_is_an_error():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel({"[UNK]": 0, "hello": 1, "world": 2}, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]")
    al = align_words(tok, ["hello", "world"])
    assert al.ids.tolist() == [1, 2]
    with pytest.raises(UnencodableWordError, match=r"word 1 \('zebra'\).*unknown token"):
        align_words(tok, ["hello", "zebra"])


def test_round_trip_on_every_lebel_transcript(tokenizer, lebel_root):
    files = sorted((lebel_root / "words").glob("*.tsv"))
    assert len(files) == 84
    n_empty = n_noise = 0
    for path in files:
        with open(path, newline="") as f:
            words = [row["word"] for row in csv.DictReader(f, delimiter="\t")]
        al = align_words(tokenizer, words, story=path.stem)
        n_empty += sum(w == "" for w in words)
        n_noise += sum(w.startswith(("{", "(")) for w in words)
        assert (al.n_tokens >= 1).all(), path.stem
        assert tokenizer.decode(al.ids.tolist()) == al.text, path.stem
        decoded = tokenizer.batch_decode([al.ids[s:e].tolist() for s, e in al.spans])
        assert decoded == [" " + w for w in words], path.stem
        assert (np.diff(al.char_spans[:, 0]) > 0).all()
    assert n_empty > 50 and n_noise > 0  # the odd cases were really exercised
