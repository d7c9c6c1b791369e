"""Phoneme spaces: ``phonemerate`` (phonemes per TR) and ``articulation`` (22 articulatory
features per phoneme), resampled to the response rows like the word features.

Where the phones come from (parameter ``source``):

``tier``
    The transcript's phone tier (a TextGrid interval tier named ``phone``/``phones``/..., or the
    manifest's ``words.phone_tier``; ds003020's TextGrids have one). Labels are ARPAbet with stress
    digits (``AH0``); silences (``sp``, ``sil``, ``""``) and noise marks are not phonemes and are
    left out (counted in the space's report). A story without a phone tier is an error.
``cmudict``
    Each cleaned word's first pronunciation in the CMU Pronouncing Dictionary
    (:mod:`gim_brain.data.pronunciations`), its phonemes spread evenly over the word's
    ``[onset, offset]`` (each lasts ``duration / n_phonemes``; they tile the word exactly). Words
    missing from the dictionary contribute no phoneme; they are counted in the story's cleaning
    report (``Story.cleaning_report.not_in_dictionary``), in ``features.json`` and in
    ``gim-brain datasets check``.
``auto`` (default)
    ``tier`` for a story whose transcript has a phone tier, else ``cmudict``.

Each phoneme is an event at its midpoint (its onset for the rectangular ``sum``/``mean``
methods), resampled onto the rows exactly as words are (:func:`gim_brain.features.context.row_times_for`).

Articulatory features (:data:`ARTICULATORY_FEATURES`): the 22 of the Huth lab's
``get_articulation_vectors`` (HuthLab/deep-fMRI-dataset, ``encoding/feature_spaces.py``; de Heer
et al. 2017, J Neurosci 37:6539): places ``bilabial postalveolar alveolar dental labiodental velar
glottal palatal``, manners ``plosive affricate fricative nasal lateral approximant``, voicing
``voiced unvoiced`` (consonants), and vowel height ``low mid high`` and backness ``front central
back``. That code spells ``affricate`` as ``affricative``; the mapping below is written from the
IPA values of General American English, so it differs from that code's table in three places:
``W`` is labial-velar (bilabial + velar; there velar only), ``IH`` is a high (near-close) vowel
(there mid), and ``AY``/``AW`` glide up to a high vowel (there mid). The diphthongs ``AY AW OY``
carry the height/backness of both their start and end; ``EY``/``OW`` count as their mid
nucleus. Vowels carry no voicing feature, as in that code. Unlike that code's ``phonemerate``,
silences (``sp``) are not counted as phonemes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..data.pronunciations import (
    DICTIONARY_NAME,
    cmudict_version,
    load_cmudict,
    note_dictionary_misses,
    phone_symbol,
    pronounce,
)
from .context import EmptyStoryError, row_times_for, story_fingerprint
from .downsample import DOWNSAMPLE_METHODS, downsample
from .registry import Param, register_space

__all__ = [
    "ARTICULATION",
    "ARTICULATORY_FEATURES",
    "PHONE_SOURCES",
    "PhoneEvents",
    "PhoneTierMissingError",
    "articulation_matrix",
    "dictionary_phones",
    "phones_to_rows",
    "spread_evenly",
    "story_phones",
    "tier_phones",
]

ARTICULATORY_FEATURES = (
    "bilabial", "postalveolar", "alveolar", "dental", "labiodental", "velar", "glottal", "palatal",
    "plosive", "affricate", "fricative", "nasal", "lateral", "approximant", "voiced", "unvoiced",
    "low", "mid", "high", "front", "central", "back",
)
PHONE_SOURCES = ("auto", "tier", "cmudict")

# consonant: place(s), manner, voicing
_CONSONANTS = {
    "P": "bilabial plosive unvoiced", "B": "bilabial plosive voiced", "M": "bilabial nasal voiced",
    "W": "bilabial velar approximant voiced",
    "F": "labiodental fricative unvoiced", "V": "labiodental fricative voiced",
    "TH": "dental fricative unvoiced", "DH": "dental fricative voiced",
    "T": "alveolar plosive unvoiced", "D": "alveolar plosive voiced", "N": "alveolar nasal voiced",
    "S": "alveolar fricative unvoiced", "Z": "alveolar fricative voiced",
    "L": "alveolar lateral voiced", "R": "alveolar approximant voiced",
    "SH": "postalveolar fricative unvoiced", "ZH": "postalveolar fricative voiced",
    "CH": "postalveolar affricate unvoiced", "JH": "postalveolar affricate voiced",
    "Y": "palatal approximant voiced",
    "K": "velar plosive unvoiced", "G": "velar plosive voiced", "NG": "velar nasal voiced",
    "HH": "glottal fricative unvoiced",
}
# vowel: height and backness (diphthongs: start and end targets)
_VOWELS = {
    "IY": "high front", "IH": "high front", "EY": "mid front", "EH": "mid front", "AE": "low front",
    "AH": "mid central", "ER": "mid central",
    "UW": "high back", "UH": "high back", "OW": "mid back", "AO": "mid back", "AA": "low back",
    "AY": "low central high front", "AW": "low central high back", "OY": "mid back high front",
}
#: ARPAbet phoneme -> its articulatory features.
ARTICULATION = {ph: frozenset(v.split()) for ph, v in {**_CONSONANTS, **_VOWELS}.items()}
_ART_INDEX = {f: i for i, f in enumerate(ARTICULATORY_FEATURES)}

_SOURCE = Param("source", str, "auto", "phones from the transcript's phone tier, from CMUdict "
                "pronunciations spread over each word, or auto (tier when the transcript has one)",
                PHONE_SOURCES)
_METHOD = Param("method", str, "lanczos", "resampling to TR times", DOWNSAMPLE_METHODS)


class PhoneTierMissingError(ValueError):
    """``source=tier`` for a story whose transcript has no phone tier."""


def articulation_matrix(symbols: list[str]) -> np.ndarray:
    """``(n_phones, 22)`` float32 indicators of :data:`ARTICULATORY_FEATURES` per ARPAbet phoneme."""
    out = np.zeros((len(symbols), len(ARTICULATORY_FEATURES)), dtype=np.float32)
    for i, sym in enumerate(symbols):
        for feat in ARTICULATION[sym]:
            out[i, _ART_INDEX[feat]] = 1.0
    return out


def spread_evenly(onset: float, offset: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` back-to-back intervals tiling ``[onset, offset]`` (seconds): onsets and offsets,
    each ``(n,)`` float64; the first starts at ``onset``, the last ends exactly at ``offset``."""
    edges = onset + (offset - onset) * np.arange(n + 1, dtype=np.float64) / max(n, 1)
    edges[-1] = offset
    return edges[:-1], edges[1:]


@dataclass
class PhoneEvents:
    """The phonemes of one story with their times.

    Attributes
    ----------
    symbols : list of str (ARPAbet without stress), length n_phones
    onsets, offsets : float64 (n_phones,), seconds from audio start
    source : ``"tier"`` or ``"cmudict"``
    misses : Counter of words without a pronunciation (``cmudict``)
    n_words : words looked up (``cmudict``) or 0
    other_labels : Counter of tier labels that are not phonemes (silences, noise; ``tier``)
    """

    symbols: list[str]
    onsets: np.ndarray
    offsets: np.ndarray
    source: str
    misses: Counter = field(default_factory=Counter)
    n_words: int = 0
    other_labels: Counter = field(default_factory=Counter)


def dictionary_phones(transcript, dictionary: dict | None = None) -> PhoneEvents:
    """Phonemes of each word of ``transcript`` from CMUdict, spread evenly over its duration."""
    dictionary = load_cmudict() if dictionary is None else dictionary
    symbols, ons, offs, misses = [], [], [], Counter()
    for word, on, off in zip(transcript.words, transcript.onsets, transcript.offsets):
        phones = pronounce(word, dictionary)
        if not phones:
            misses[word] += 1
            continue
        a, b = spread_evenly(float(on), float(off), len(phones))
        symbols += phones
        ons.append(a)
        offs.append(b)
    cat = lambda parts: np.concatenate(parts) if parts else np.zeros(0)
    return PhoneEvents(symbols, cat(ons), cat(offs), DICTIONARY_NAME, misses, len(transcript.words))


def tier_phones(transcript, story: str = "") -> PhoneEvents:
    """The ARPAbet phonemes of the transcript's phone tier (silences and noise left out)."""
    tier = transcript.phones
    if tier is None:
        where = transcript.source or "the transcript"
        kind = ("a TextGrid without a phone tier (looked for interval tiers named phone/phones/phoneme; "
                "set words.phone_tier in the manifest if yours has another name)"
                if str(where).lower().endswith(".textgrid") else "a word table without phone timings")
        raise PhoneTierMissingError(
            f"story {story!r}: source=tier needs a phone tier, but {where} is {kind}; use "
            f"source=cmudict (CMUdict pronunciations spread over each word) or source=auto")
    keep, symbols, other = [], [], Counter()
    for i, label in enumerate(tier.labels):
        sym = phone_symbol(label)
        if sym is None:
            other[label] += 1
        else:
            keep.append(i)
            symbols.append(sym)
    keep = np.asarray(keep, dtype=np.int64)
    return PhoneEvents(symbols, tier.onsets[keep], tier.offsets[keep], "tier", other_labels=other)


def story_phones(ctx, story_name: str, source: str) -> PhoneEvents:
    """Phonemes of one story from ``source`` (memoised per run); dictionary misses are written
    into the story's cleaning report."""
    if source not in PHONE_SOURCES:
        raise ValueError(f"phone source must be one of {list(PHONE_SOURCES)}, got {source!r}")
    story = ctx.story(story_name)
    use = source if source != "auto" else ("tier" if story.transcript.phones is not None else "cmudict")
    key = ("phones", story_name, use)
    if key not in ctx.memo:
        if use == "tier":
            ctx.memo[key] = tier_phones(story.transcript, story_name)
        else:
            ev = dictionary_phones(story.transcript)
            note_dictionary_misses(story.cleaning_report, ev.misses)
            ctx.memo[key] = ev
    return ctx.memo[key]


def phones_to_rows(story, features: np.ndarray, events: PhoneEvents, method: str = "lanczos") -> np.ndarray:
    """Resample phoneme-level ``features`` ``(n_phones, p)`` onto the story's rows ``(n_rows, p)``:
    at phoneme midpoints for the kernels, onsets for ``sum``/``mean`` (as words)."""
    times = events.onsets if method in ("sum", "mean") else (events.onsets + events.offsets) / 2.0
    return downsample(features, times, row_times_for(story, method), story.grid.tr, method=method)


def _phone_space(ctx, params, story_name, what, per_phone):
    story = ctx.story(story_name)
    events = story_phones(ctx, story_name, params["source"])
    if not events.symbols:
        why = (f"all {events.n_words} words are missing from CMUdict" if events.source != "tier"
               else "its phone tier holds no ARPAbet phoneme")
        raise EmptyStoryError(f"story {story_name!r} has no phoneme ({why}): no {what} feature can be "
                              f"built for it")
    tier = story.transcript.phones
    parts = (what, params, events.source, story_fingerprint(story),
             {"labels": list(tier.labels), "onsets": tier.onsets, "offsets": tier.offsets}
             if events.source == "tier" else cmudict_version())
    return ctx.cached("phonemes", parts, lambda: {
        "x": phones_to_rows(story, per_phone(events.symbols), events, params["method"])})["x"]


def _phone_report(ctx, params, stories) -> dict:
    """What ``features.json`` records: phone source per story and CMUdict misses."""
    evs = {s: story_phones(ctx, s, params["source"]) for s in stories}
    from_tier = [s for s, e in evs.items() if e.source == "tier"]
    dict_evs = {s: e for s, e in evs.items() if e.source != "tier"}
    out = {"phones_from_tier": len(from_tier), "phones_from_cmudict": len(dict_evs),
           "phonemes": int(sum(len(e.symbols) for e in evs.values()))}
    if dict_evs:
        misses = sum((e.misses for e in dict_evs.values()), Counter())
        n_words = sum(e.n_words for e in dict_evs.values())
        n_missed = sum(misses.values())
        out["not_in_cmudict"] = {
            "words": n_missed, "of_words": n_words,
            "rate": round(n_missed / n_words, 5) if n_words else 0.0,
            "per_story": {s: sum(e.misses.values()) for s, e in dict_evs.items()},
            "most_common": dict(misses.most_common(50)),
        }
    if from_tier:
        other = sum((evs[s].other_labels for s in from_tier), Counter())
        out["tier_labels_not_phonemes"] = dict(other.most_common(20))
    return out


def _onehot_rate(symbols):
    return np.ones((len(symbols), 1), dtype=np.float32)


@register_space("phonemerate", "phonemes per TR (phone tier, or CMUdict pronunciations spread over "
                "each word)", params=(_SOURCE, _METHOD), report=_phone_report)
def _phonemerate(ctx, params, story):
    return _phone_space(ctx, params, story, "phonemerate", _onehot_rate)


@register_space("articulation", "22 articulatory features of the phonemes per TR (place, manner, "
                "voicing, vowel height/backness; Huth-lab set)", params=(_SOURCE, _METHOD),
                report=_phone_report)
def _articulation(ctx, params, story):
    return _phone_space(ctx, params, story, "articulation", articulation_matrix)
