"""What a feature-space builder may use: the dataset, the subject, the training stories, caches.

One :class:`SpaceContext` is shared by all spaces of a design, so expensive intermediate results
(e.g. the LM's word features, used by ``llm`` and by ``gim-induction``'s similarity) are computed
once per run and cached on disk by content key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .._cache import NpzCache, content_key
from .downsample import downsample

__all__ = ["SpaceContext", "story_fingerprint", "word_times", "row_times_for", "words_to_rows",
           "EmptyStoryError"]


class EmptyStoryError(ValueError):
    """A story without any word: no text feature can be built for it."""


def story_fingerprint(story) -> dict:
    """JSON-like content of a story that every feature depends on (words, times, grid)."""
    tr = story.transcript
    return {
        "name": story.name,
        "words": list(tr.words),
        "onsets": np.asarray(tr.onsets, dtype=np.float64),
        "offsets": np.asarray(tr.offsets, dtype=np.float64),
        "tr": float(story.grid.tr),
        "row_times": np.asarray(story.grid.row_times, dtype=np.float64),
        # kernel centres that differ from the window ends (the "reference" timing convention);
        # left out where they coincide, so caches of the "tr_text" convention stay valid
        **({} if np.array_equal(story.grid.kernel_times, story.grid.row_times)
           else {"kernel_times": np.asarray(story.grid.kernel_times, dtype=np.float64)}),
    }


def word_times(story, method: str) -> np.ndarray:
    """Word times used for resampling: onsets for rectangular windows (the row-assignment rule),
    word midpoints for the (Lanczos-)sinc kernels (the Huth-lab convention)."""
    tr = story.transcript
    onsets = np.asarray(tr.onsets, dtype=np.float64)
    if method in ("sum", "mean"):
        return onsets
    return (onsets + np.asarray(tr.offsets, dtype=np.float64)) / 2.0


def row_times_for(story, method: str) -> np.ndarray:
    """The grid times a resampling ``method`` uses: the kernel centres (``grid.kernel_times``)
    for Lanczos/sinc, the window ends (``grid.row_times``) for the rectangular ``sum``/``mean``;
    both follow the story's timing convention."""
    grid = story.grid
    return grid.row_times if method in ("sum", "mean") else grid.kernel_times


def words_to_rows(story, word_features: np.ndarray, method: str = "lanczos") -> np.ndarray:
    """Resample one story's word-level features ``(n_words, p)`` onto its rows ``(n_rows, p)``,
    at the times of its grid's timing convention (:func:`row_times_for`)."""
    n_words = len(story.transcript.words)
    if n_words == 0:
        raise EmptyStoryError(f"story {story.name!r} has no words after cleaning: "
                              "no text feature can be built for it")
    word_features = np.asarray(word_features)
    if len(word_features) != n_words:
        raise ValueError(f"story {story.name!r}: {len(word_features)} word-feature rows for "
                         f"{n_words} words")
    return downsample(word_features, word_times(story, method), row_times_for(story, method),
                      story.grid.tr, method=method)


@dataclass
class SpaceContext:
    """Shared state of one feature-building run.

    Parameters
    ----------
    dataset : gim_brain.data.Dataset
    subject : str or None
        Needed only by response-derived spaces.
    train_stories : list of str or None
        Stories whose responses may be used to fit anything (PCA of responses); default: the
        dataset's training stories (words and responses of ``subject``, not a test story).
    cache : NpzCache or None
        Per-story feature cache (``None``: the user cache, namespace ``features``).
    progress : bool
        Show tqdm progress bars.
    lm_model : str, LanguageModel or None
        Which LM the LM-based spaces use by default (None: load the offline SmolLM2-135M; a
        :class:`gim_brain.lm.LanguageModel` is used as given).
    device : str
    """

    dataset: Any
    subject: str | None = None
    train_stories: list[str] | None = None
    cache: NpzCache | None = None
    progress: bool = True
    lm_model: Any = None
    device: str = "auto"
    memo: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.cache is None:
            self.cache = NpzCache(namespace="features")

    # -- data ---------------------------------------------------------------------------------
    def story(self, name: str):
        key = ("story", name)
        if key not in self.memo:
            self.memo[key] = self.dataset.load_story(name)
        return self.memo[key]

    def responses(self, name: str) -> np.ndarray:
        if self.subject is None:
            raise ValueError("this feature space uses responses: name a subject (--subject)")
        key = ("responses", self.subject, name)
        if key not in self.memo:
            self.memo[key] = np.asarray(self.dataset.load_responses(self.subject, name), np.float32)
        return self.memo[key]

    def training_stories(self) -> list[str]:
        if self.train_stories is not None:
            return list(self.train_stories)
        return list(self.dataset.train_stories(self.subject))

    # -- caching ------------------------------------------------------------------------------
    def cached(self, what: str, parts: Any, compute: Callable[[], dict[str, np.ndarray]]
               ) -> dict[str, np.ndarray]:
        """``compute()`` unless an entry for ``(what, parts)`` exists; memoised in this run too."""
        key = content_key("gim_brain.features", what, parts)
        mkey = ("cached", key)
        if mkey not in self.memo:
            self.memo[mkey] = self.cache.get_or_compute(key, compute)
        return self.memo[mkey]

    def lm(self, model: str | None = None):
        """The language model (loaded once per run)."""
        from ..lm import load_lm

        model = self.lm_model if model is None else model
        if model is not None and not isinstance(model, str):
            return model  # a LanguageModel given directly
        key = ("lm", model, self.device)
        if key not in self.memo:
            self.memo[key] = load_lm(model, device=self.device)
        return self.memo[key]
