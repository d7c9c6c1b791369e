"""Story-grouped folds: whole stories only, every story validated once, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from gim_brain.encoding.cv import check_folds_respect_stories, story_folds, story_row_slices

from _encoding_helpers import _one_blas_thread  # noqa: F401


def _rows(n=7, seed=0):
    rng = np.random.default_rng(seed)
    return {f"s{i}": int(rng.integers(50, 300)) for i in range(n)}


def test_folds_never_split_a_story_and_cover_each_story_once():
    rows = _rows()
    folds = story_folds(rows, n_folds=3)
    story_of_row = np.concatenate([[s] * n for s, n in rows.items()])
    check_folds_respect_stories(folds, story_of_row)
    validated = [s for f in folds for s in f.val_stories]
    assert sorted(validated) == sorted(rows)
    n_total = sum(rows.values())
    for f in folds:
        assert len(np.intersect1d(f.train, f.val)) == 0
        assert len(f.train) + len(f.val) == n_total
        assert set(story_of_row[f.val]) == set(f.val_stories)


def test_check_detects_a_split_story():
    rows = {"a": 10, "b": 10}
    folds = story_folds(rows, 2)
    story_of_row = np.array(["a"] * 10 + ["b"] * 10)
    bad = story_of_row.copy()
    bad[0] = "b"  # pretend row 0 of story a belongs to b: b is now on both sides
    with pytest.raises(ValueError, match="splits stories"):
        check_folds_respect_stories(folds, bad)


def test_folds_are_balanced_deterministic_and_capped():
    rows = {f"s{i}": 100 for i in range(10)}
    folds = story_folds(rows, 5)
    assert [len(f.val) for f in folds] == [200] * 5
    assert [f.val_stories for f in folds] == [f.val_stories for f in story_folds(rows, 5)]
    assert len(story_folds({"a": 5, "b": 6, "c": 7}, n_folds=5)) == 3  # leave-one-story-out


def test_single_story_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 2 training stories.*'only'"):
        story_folds({"only": 100}, 5)
    with pytest.raises(ValueError, match="n_folds"):
        story_folds({"a": 5, "b": 5}, 1)
    with pytest.raises(ValueError, match="'b' has 0 rows"):
        story_folds({"a": 5, "b": 0}, 2)


def test_row_slices_follow_dict_order():
    assert story_row_slices({"x": 3, "y": 2}) == {"x": slice(0, 3), "y": slice(3, 5)}
