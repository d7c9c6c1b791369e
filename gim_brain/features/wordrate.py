"""Low-level rate spaces: words, letters and (estimated) syllables per response row.

``letterrate`` and ``syllablerate`` count the letters and orthographic syllables (vowel groups)
of each word: spelling-based proxies that need no pronunciation. Phonemes themselves (from a
phone tier or CMUdict) are ``phonemerate`` and ``articulation`` (:mod:`.phonemes`).
"""

from __future__ import annotations

import re

import numpy as np

from .context import story_fingerprint, words_to_rows
from .downsample import DOWNSAMPLE_METHODS
from .registry import Param, register_space

__all__ = ["count_letters", "count_syllables"]

_METHOD = Param("method", str, "lanczos", "resampling to TR times", DOWNSAMPLE_METHODS)
_VOWELS = re.compile(r"[aeiouy]+")


def count_letters(word: str) -> int:
    """Alphabetic characters of a word."""
    return sum(ch.isalpha() for ch in word)


def count_syllables(word: str) -> int:
    """Orthographic syllable estimate: vowel groups, a final silent 'e' dropped, at least 1 for
    a word with letters (0 otherwise)."""
    w = "".join(ch for ch in word.lower() if ch.isalpha())
    if not w:
        return 0
    n = len(_VOWELS.findall(w))
    if w.endswith("e") and not w.endswith(("le", "ee")) and n > 1:
        n -= 1
    return max(n, 1)


def _rate(ctx, params, story_name, what, per_word):
    story = ctx.story(story_name)
    parts = (what, params, story_fingerprint(story))

    def compute():
        counts = np.array([per_word(w) for w in story.transcript.words], dtype=np.float32)
        return {"x": words_to_rows(story, counts[:, None], params["method"])}

    return ctx.cached("rate", parts, compute)["x"]


@register_space("wordrate", "number of words per TR (resampled like every word feature)",
                params=(_METHOD,))
def _wordrate(ctx, params, story):
    return _rate(ctx, params, story, "words", lambda w: 1.0)


@register_space("letterrate", "letters per TR (phoneme-rate proxy: the transcripts have no "
                "phoneme timings)", params=(_METHOD,))
def _letterrate(ctx, params, story):
    return _rate(ctx, params, story, "letters", count_letters)


@register_space("syllablerate", "orthographic syllables (vowel groups) per TR",
                params=(_METHOD,))
def _syllablerate(ctx, params, story):
    return _rate(ctx, params, story, "syllables", count_syllables)
