"""Token cleaning and the TR grid / word-to-row assignment."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gim_brain.data import TimingError, TokenCleaner, Transcript, TRGrid


def test_default_cleaning_drops_silence_noise_and_markers_and_reports_them():
    raw = ["sp", "SIL", "br", "lg", "ls", "ns", "{CG}", "(BR}", "[noise]", "{LS)", "sentence_start",
           "sentence_end", "", "  ", "HELLO", "World ", "it's", "{SL}"]
    t = Transcript(raw, np.arange(len(raw), dtype=float), np.arange(len(raw)) + 0.5)
    out, report = TokenCleaner()(t)
    assert out.words == ["hello", "world", "it's"]
    np.testing.assert_array_equal(out.onsets, [14.0, 15.0, 16.0])
    assert report.n_in == len(raw) and report.n_out == 3 and report.n_dropped == len(raw) - 3
    assert report.dropped["(BR}"] == 1 and report.dropped["[noise]"] == 1 and report.dropped[""] == 1
    assert report.changed[("HELLO", "hello")] == 1 and report.changed[("World ", "world")] == 1
    assert "dropped 15" in report.summary()
    assert report.to_dict()["n_out"] == 3


def test_real_words_that_name_noises_are_kept_unless_bracketed():
    t = Transcript(["a", "breath", "of", "noise", "[noise]", "{BREATH}", "laugh"], range(7), range(1, 8))
    assert TokenCleaner()(t)[0].words == ["a", "breath", "of", "noise", "laugh"]


def test_cleaning_is_configurable():
    t = Transcript(["Hello,", "{CG}", "uh", "THERE!"], [0, 1, 2, 3], [1, 2, 3, 4])
    keep_case = TokenCleaner(lowercase=False, drop_bracketed=False, drop=frozenset({"uh"}))
    assert keep_case(t)[0].words == ["Hello,", "{CG}", "THERE!"]
    punct = TokenCleaner(strip_punctuation=True, extra_drop=("uh",))
    assert punct(t)[0].words == ["hello", "there"]
    regex = TokenCleaner(drop_regex=r"[A-Z]+!")
    assert regex(t)[0].words == ["hello,", "uh"]
    with pytest.raises(ValueError, match="lowercas"):
        TokenCleaner.from_config({"lowercas": True}, where="m.toml")


def test_ds003020_grid_convention():
    grid = TRGrid.from_convention(n_trs=30, tr=2.0, audio_start=10.0, trim_start=10, trim_end=10)
    assert grid.n_rows == 10
    np.testing.assert_array_equal(grid.row_times, 10 + 2 * np.arange(10))
    onsets = np.array([0.0, 7.99, 8.0, 9.999, 10.0, 27.99, 28.0, 100.0])
    np.testing.assert_array_equal(grid.assign_words(onsets), [-1, -1, 0, 0, 1, 9, -1, -1])
    np.testing.assert_array_equal(grid.words_per_row(onsets), [2, 1, 0, 0, 0, 0, 0, 0, 0, 1])
    assert grid.row_words(list("abcdefgh"), onsets)[0] == ["c", "d"]


def test_grid_with_other_tr_and_errors():
    grid = TRGrid.from_convention(n_trs=100, tr=1.5, audio_start=0.0, trim_start=0, trim_end=0)
    np.testing.assert_allclose(grid.row_times[:3], [0.0, 1.5, 3.0])
    assert grid.assign_words(np.array([0.1, 1.6]))[0] == 1  # first window ends at 0 s: nothing before audio
    with pytest.raises(TimingError, match="'tiny'"):
        TRGrid.from_convention(n_trs=5, tr=2.0, trim_start=3, trim_end=3, story="tiny")
    with pytest.raises(TimingError, match="tr must be positive"):
        TRGrid(0.0, 1, np.array([1.0]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-20, 200, allow_nan=False), max_size=50),
       st.sampled_from([1.0, 1.5, 2.0, 2.5]), st.integers(0, 12), st.floats(0, 20))
def test_assignment_matches_the_window_definition(onsets, tr, trim_start, audio_start):
    grid = TRGrid.from_convention(n_trs=60, tr=tr, audio_start=audio_start, trim_start=trim_start, trim_end=3)
    rows = grid.assign_words(np.array(onsets, dtype=float))
    for onset, r in zip(onsets, rows):
        inside = np.flatnonzero((grid.row_times - tr <= onset) & (onset < grid.row_times))
        assert r == (inside[0] if inside.size else -1)
