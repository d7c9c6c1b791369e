"""Cross-validation folds grouped by story: a story is never split between train and validation.

Rows of the training design are the training stories concatenated in a fixed order; each fold
validates on whole stories. Stories are dealt to folds largest first, each to the fold with the
fewest rows so far, so folds have similar sizes and the assignment is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

__all__ = ["Fold", "story_folds", "story_row_slices", "check_folds_respect_stories"]


@dataclass(frozen=True)
class Fold:
    """One cross-validation split of the concatenated training rows.

    Attributes
    ----------
    train, val : int64 arrays
        Row indices into the concatenated training design.
    val_stories : list of str
        The stories whose rows form ``val``.
    """

    train: np.ndarray
    val: np.ndarray
    val_stories: list[str]

    def as_pair(self) -> tuple[np.ndarray, np.ndarray]:
        return self.train, self.val


def story_row_slices(story_rows: Mapping[str, int]) -> dict[str, slice]:
    """Row slice of each story in the concatenation of stories in ``story_rows`` order."""
    slices, start = {}, 0
    for story, n in story_rows.items():
        slices[story] = slice(start, start + int(n))
        start += int(n)
    return slices


def story_folds(story_rows: Mapping[str, int], n_folds: int = 5) -> list[Fold]:
    """Folds over whole stories.

    Parameters
    ----------
    story_rows : mapping story -> number of rows, in the order rows are concatenated
    n_folds : int
        Wanted number of folds; capped at the number of stories (leave-one-story-out then).

    Returns
    -------
    list of Fold

    Raises
    ------
    ValueError
        Fewer than two training stories (no story-grouped CV possible), ``n_folds < 2``, or a
        story with no rows.
    """
    stories = list(story_rows)
    if n_folds < 2:
        raise ValueError(f"n_folds={n_folds}: story-grouped cross-validation needs at least 2 folds")
    if len(stories) < 2:
        names = ", ".join(repr(s) for s in stories) or "none"
        raise ValueError(
            f"story-grouped cross-validation needs at least 2 training stories, got {len(stories)} "
            f"({names}); add training stories or move one out of test_stories")
    for story, n in story_rows.items():
        if int(n) <= 0:
            raise ValueError(f"story {story!r} has {n} rows; every story needs at least one row")
    n_folds = min(int(n_folds), len(stories))
    slices = story_row_slices(story_rows)
    n_total = sum(int(n) for n in story_rows.values())

    order = sorted(range(len(stories)), key=lambda i: (-int(story_rows[stories[i]]), i))
    fold_rows = [0] * n_folds
    members: list[list[int]] = [[] for _ in range(n_folds)]
    for i in order:
        k = min(range(n_folds), key=lambda f: (fold_rows[f], f))
        members[k].append(i)
        fold_rows[k] += int(story_rows[stories[i]])

    all_rows = np.arange(n_total)
    folds = []
    for k in range(n_folds):
        in_val = np.zeros(n_total, dtype=bool)
        val_stories = [stories[i] for i in sorted(members[k])]
        for story in val_stories:
            in_val[slices[story]] = True
        folds.append(Fold(train=all_rows[~in_val], val=all_rows[in_val], val_stories=val_stories))
    return folds


def check_folds_respect_stories(folds: list[Fold], story_of_row: np.ndarray) -> None:
    """Raise ValueError if any story has rows on both sides of a fold."""
    story_of_row = np.asarray(story_of_row)
    for k, fold in enumerate(folds):
        shared = set(story_of_row[fold.train]) & set(story_of_row[fold.val])
        if shared:
            raise ValueError(f"fold {k} splits stories {sorted(shared)} across train and validation")
