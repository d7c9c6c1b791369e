"""The demo's stories: short original texts shipped with the package.

The five stories under ``gim_brain/demo/stories/*.txt`` were written for this project (no
third-party text). Each is ~500 words and repeats a few phrases on purpose ("Light the lamp before
the sun goes down", "One watch at a time, one small wheel at a time"), so that in-context matching
(GIM's exact and fuzzy induction) has something to find.
"""

from __future__ import annotations

import re
from importlib import resources

__all__ = ["STORY_NAMES", "story_text", "story_words", "SENTENCE_END", "CLAUSE_END"]

#: Story names in a fixed order (the last one is the demo's held-out test story).
STORY_NAMES: tuple[str, ...] = ("lighthouse", "baker", "night_train", "garden_robot", "clockmaker")

SENTENCE_END = re.compile(r"[.!?][\"')\]]*$")
CLAUSE_END = re.compile(r"[,;:][\"')\]]*$")


def story_text(name: str) -> str:
    """The full text of one demo story (paragraphs separated by blank lines).

    Raises
    ------
    KeyError
        If ``name`` is not one of :data:`STORY_NAMES`.
    """
    if name not in STORY_NAMES:
        raise KeyError(f"unknown demo story {name!r}; the demo stories are {', '.join(STORY_NAMES)}")
    return resources.files("gim_brain.demo").joinpath("stories").joinpath(f"{name}.txt").read_text("utf-8")


def story_words(name: str) -> tuple[list[str], list[str]]:
    """Words of a story as spoken, and the boundary that follows each word.

    Returns
    -------
    words : list of str
        Whitespace-separated words with their punctuation, as a narrator would read them.
    boundaries : list of str
        For each word, ``"paragraph"``, ``"sentence"``, ``"clause"`` or ``""``: the kind of pause
        a narrator makes after it (used by :func:`gim_brain.demo.timing.synthesize_timings`).
    """
    words: list[str] = []
    boundaries: list[str] = []
    paragraphs = [p for p in re.split(r"\n\s*\n", story_text(name)) if p.strip()]
    for p_index, paragraph in enumerate(paragraphs):
        tokens = paragraph.split()
        for i, token in enumerate(tokens):
            words.append(token)
            if i == len(tokens) - 1 and p_index < len(paragraphs) - 1:
                boundaries.append("paragraph")
            elif SENTENCE_END.search(token):
                boundaries.append("sentence")
            elif CLAUSE_END.search(token):
                boundaries.append("clause")
            else:
                boundaries.append("")
    return words, boundaries
