"""Transcript readers: TextGrid (long/short, UTF-8/UTF-16, any word tier), tables, arrays."""

from __future__ import annotations

import numpy as np
import pytest

from _data_helpers import textgrid_text, word_intervals
from gim_brain.data import (
    TextGridError,
    TokenCleaner,
    TranscriptError,
    read_textgrid,
    read_transcript,
    read_word_arrays,
    read_word_table,
)
from gim_brain.data.transcripts import textgrid_tiers

WORDS = ["sp", "Hello", "there", "", "{BR}", 'she said "hi"', "naïve", "café", "sp"]


def _tiers():
    items = word_intervals(WORDS, start=1.0)
    return [
        ("IntervalTier", "phone", [(a, b, "AA1") for a, b, _ in items]),
        ("TextTier", "events", [(1.5, "click"), (2.5, "beep")]),
        ("IntervalTier", "word", items),
    ]


@pytest.mark.parametrize("short", [False, True])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be"])
def test_textgrid_formats_and_encodings_give_the_same_words(tmp_path, short, encoding):
    path = tmp_path / "story.TextGrid"
    path.write_bytes(textgrid_text(_tiers(), short=short).encode(encoding))
    t = read_textgrid(path)
    assert t.words == WORDS
    expected = word_intervals(WORDS, start=1.0)
    np.testing.assert_allclose(t.onsets, [a for a, _, _ in expected])
    np.testing.assert_allclose(t.offsets, [b for _, b, _ in expected])
    assert t.onsets.dtype == np.float64


def test_utf16_and_short_textgrids_parse_to_the_same_words_as_utf8_long(tmp_path):
    long8, short16 = tmp_path / "a.TextGrid", tmp_path / "b.TextGrid"
    long8.write_text(textgrid_text(_tiers()), encoding="utf-8")
    short16.write_text(textgrid_text(_tiers(), short=True), encoding="utf-16")
    a, b = read_textgrid(long8), read_textgrid(short16)
    assert a.words == b.words == WORDS
    np.testing.assert_array_equal(a.onsets, b.onsets)


def test_tier_selection_by_name_and_errors(tmp_path):
    path = tmp_path / "x.TextGrid"
    items = word_intervals(["a", "b"])
    path.write_text(textgrid_text([("IntervalTier", "Words", items), ("IntervalTier", "phones", items[:1])]))
    assert read_textgrid(path).words == ["a", "b"]  # "Words" found case-insensitively
    assert read_textgrid(path, tier="phones").words == ["a"]
    with pytest.raises(TextGridError, match="no interval tier named 'word-tier'.*x.TextGrid|x.TextGrid.*'word-tier'"):
        read_textgrid(path, tier="word-tier")
    ambiguous = tmp_path / "amb.TextGrid"
    ambiguous.write_text(textgrid_text([("IntervalTier", "spk1", items), ("IntervalTier", "spk2", items)]))
    with pytest.raises(TextGridError, match="amb.TextGrid.*spk1"):
        read_textgrid(ambiguous)
    single = tmp_path / "single.TextGrid"
    single.write_text(textgrid_text([("IntervalTier", "transcript", items), ("TextTier", "pts", [(0.1, "x")])]))
    assert read_textgrid(single).words == ["a", "b"]  # the only interval tier; point tier ignored
    assert [t[:2] for t in textgrid_tiers(single)] == [("transcript", "IntervalTier"), ("pts", "TextTier")]


def test_truncated_textgrid_names_the_file_and_the_tier(tmp_path):
    full = textgrid_text([("IntervalTier", "word", word_intervals(["w"] * 50))])
    path = tmp_path / "cut.TextGrid"
    path.write_text(full[: len(full) // 2])
    with pytest.raises(TextGridError, match=r"cut\.TextGrid.*ends early.*tier 'word'"):
        read_textgrid(path)


def test_not_a_textgrid_and_missing_file(tmp_path):
    bad = tmp_path / "bad.TextGrid"
    bad.write_text("onset\toffset\tword\n")
    with pytest.raises(TextGridError, match="bad.TextGrid"):
        read_textgrid(bad)
    with pytest.raises(FileNotFoundError, match="nope.TextGrid"):
        read_textgrid(tmp_path / "nope.TextGrid")


def test_word_tables_tsv_and_csv(tmp_path):
    tsv = tmp_path / "w.tsv"
    tsv.write_text("onset\toffset\tword\n0.0\t0.1\t\n0.5\t0.9\tHELLO\n1.0\t1.2\t{CG}\n")
    t = read_word_table(tsv)
    assert t.words == ["", "HELLO", "{CG}"]
    np.testing.assert_allclose(t.onsets, [0.0, 0.5, 1.0])
    csvp = tmp_path / "w.csv"
    csvp.write_text('Word,Start,End\n"well, yes",0.2,0.4\nno,0.5,0.7\n')
    t = read_transcript(csvp)
    assert t.words == ["well, yes", "no"]
    np.testing.assert_allclose(t.offsets, [0.4, 0.7])
    broken = tmp_path / "broken.tsv"
    broken.write_text("onset\toffset\tword\nzero\t0.1\thi\n")
    with pytest.raises(TranscriptError, match=r"broken\.tsv, line 2"):
        read_word_table(broken)
    nocol = tmp_path / "nocol.csv"
    nocol.write_text("a,b\n1,2\n")
    with pytest.raises(TranscriptError, match="nocol.csv.*word"):
        read_word_table(nocol)


def test_word_arrays(tmp_path):
    np.save(tmp_path / "words.npy", np.array(["Harry", "had", "never"]))
    np.save(tmp_path / "times.npy", np.array([20.0, 20.5, 21.0]))
    t = read_word_arrays(tmp_path / "words.npy", tmp_path / "times.npy", word_duration=0.5)
    assert t.words == ["Harry", "had", "never"]
    np.testing.assert_allclose(t.offsets, [20.5, 21.0, 21.5])
    np.save(tmp_path / "short.npy", np.array([1.0]))
    with pytest.raises(TranscriptError, match="short.npy"):
        read_word_arrays(tmp_path / "words.npy", tmp_path / "short.npy")


# ------------------------------------------------------------------ real files in ../shared/data


def test_alice_textgrid_has_2127_words_after_cleaning(shared_data):
    raw = read_textgrid(shared_data / "brennan2016_alice" / "DownTheRabbitHoleFinal_exp120_pad_1.TextGrid")
    assert len(raw) == 2423
    words, report = TokenCleaner(lowercase=False)(raw)
    assert len(words) == 2127
    assert report.dropped["sp"] == 290 and report.dropped[""] == 6
    assert words.words[:3] == ["Alice", "was", "beginning"]
    assert np.all(np.diff(words.onsets) >= 0)


def test_lecture_words_tier_with_noise_marks(shared_data):
    raw = read_textgrid(shared_data / "formats" / "lecture_words_tier.TextGrid")
    assert raw.words[0] == "[noise]"
    words, report = TokenCleaner()(raw)
    assert "[noise]" in report.dropped and all("[" not in w for w in words.words)
    assert words.words[:3] == ["now", "that", "you"]
    assert len(words) > 500


def test_narratives_csv_and_harry_potter_arrays(shared_data):
    black = read_transcript(shared_data / "formats" / "narratives_black_transcript.csv")
    assert len(black) == 1544 and black.words[:2] == ["So", "I"]
    assert np.all(black.offsets >= black.onsets)
    hp = shared_data / "formats" / "harrypotter"
    t = read_transcript(hp / "words_fmri.npy", onsets_path=hp / "time_words_fmri.npy", word_duration=0.5)
    assert len(t) == 5176 and t.words[0] == "Harry" and t.onsets[0] == 20.0
