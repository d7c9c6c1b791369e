"""Explicit, configurable token cleaning with a report of every dropped or changed token."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from .transcripts import Transcript

__all__ = ["TokenCleaner", "CleaningReport", "DEFAULT_DROP", "REFERENCE_DROP", "CLEANING_FILTERS",
           "clean_transcript"]

#: Silence, breath (br), laughter (lg), lip smack (ls), noise (ns) and sentence markers dropped
#: by default, compared case-insensitively after stripping whitespace and any enclosing
#: brackets. Real words (``noise``, ``breath``) are kept unless bracketed (``[noise]``).
DEFAULT_DROP = frozenset(
    {"", "sp", "sil", "br", "lg", "ls", "ns", "cg", "sl", "ig", "sentence_start", "sentence_end"}
)

#: The word filter of the ds003020 reference code (HuthLab ``deep-fMRI-dataset``): a token is
#: dropped when ``token.lower().strip("{}").strip()`` is one of these, so ``{CG}``-style marks,
#: ``(BR}``, ``{LS)`` and empty words are kept.
REFERENCE_DROP = frozenset({"sentence_start", "sentence_end", "br", "lg", "ls", "ns", "sp"})

#: Named word filters: ``"default"`` (configurable, below) and ``"reference"`` (the rule above,
#: words lower-cased and otherwise kept exactly as written).
CLEANING_FILTERS = ("default", "reference")

_OPEN, _CLOSE = "{[(<", "}])>"


def _is_bracketed(token: str) -> bool:
    """True for marks like ``{CG}``, ``(BR}``, ``[noise]``, ``{LS)``: any opening and closing bracket."""
    return len(token) >= 2 and token[0] in _OPEN and token[-1] in _CLOSE


def _unbracket(token: str) -> str:
    return token[1:-1] if _is_bracketed(token) else token


@dataclass
class CleaningReport:
    """What cleaning did to one transcript.

    Attributes
    ----------
    n_in, n_out : number of tokens before and after cleaning.
    dropped : Counter of raw token -> times dropped.
    changed : Counter of (raw token, cleaned token) -> times changed.
    dropped_index : indices (into the raw transcript) of dropped tokens.
    not_in_dictionary : Counter of cleaned word -> times it has no pronunciation in
        ``dictionary`` (filled by :func:`gim_brain.data.pronunciations.note_dictionary_misses`
        when phonemes come from a pronouncing dictionary; empty otherwise).
    dictionary : name of that dictionary (``"cmudict"``), or ``""`` when none was consulted.
    """

    n_in: int = 0
    n_out: int = 0
    dropped: Counter = field(default_factory=Counter)
    changed: Counter = field(default_factory=Counter)
    dropped_index: list[int] = field(default_factory=list)
    not_in_dictionary: Counter = field(default_factory=Counter)
    dictionary: str = ""

    @property
    def n_dropped(self) -> int:
        return self.n_in - self.n_out

    @property
    def n_changed(self) -> int:
        return sum(self.changed.values())

    def summary(self, top: int = 8) -> str:
        """One line: counts plus the most frequent dropped and changed tokens."""
        drops = ", ".join(f"{t!r}x{c}" for t, c in self.dropped.most_common(top))
        changes = ", ".join(f"{a!r}->{b!r}x{c}" for (a, b), c in self.changed.most_common(top))
        out = (f"{self.n_in} tokens -> {self.n_out} words; dropped {self.n_dropped} ({drops or 'none'}); "
               f"changed {self.n_changed} ({changes or 'none'})")
        if self.dictionary:
            misses = ", ".join(f"{t!r}x{c}" for t, c in self.not_in_dictionary.most_common(top))
            out += (f"; not in {self.dictionary} {sum(self.not_in_dictionary.values())} "
                    f"({misses or 'none'})")
        return out

    def to_dict(self) -> dict:
        return {
            "n_in": self.n_in,
            "n_out": self.n_out,
            "dropped": dict(self.dropped.most_common()),
            "changed": {f"{a} -> {b}": c for (a, b), c in self.changed.most_common()},
            **({"dictionary": self.dictionary,
                "not_in_dictionary": dict(self.not_in_dictionary.most_common())} if self.dictionary else {}),
        }


@dataclass
class TokenCleaner:
    """Turn raw transcript tokens into words.

    ``filter="reference"`` applies the reference code's rule instead (:data:`REFERENCE_DROP`,
    see :meth:`reference`); the steps below are those of ``filter="default"``. Steps, in order,
    each optional: strip whitespace; drop tokens whose text (lower-cased, brackets removed) is in ``drop``; drop any bracketed mark (``{CG}``, ``(BR}``, ``[noise]``);
    drop tokens matching ``drop_regex``; lower-case; strip punctuation at the word edges.

    Parameters
    ----------
    lowercase : bool
        Lower-case every kept word (the ds003020 convention).
    strip_whitespace : bool
        Remove spaces around tokens (``"YOU "`` -> ``"YOU"``).
    drop : iterable of str
        Tokens to drop, compared case-insensitively without enclosing brackets.
    extra_drop : iterable of str
        Added to ``drop`` (convenient in manifests).
    drop_bracketed : bool
        Drop every token enclosed in brackets of any kind.
    drop_regex : str or None
        Also drop tokens fully matching this regular expression.
    strip_punctuation : bool
        Strip non-alphanumeric characters (apostrophes kept) at both ends of words; a token
        left empty is dropped.
    filter : {"default", "reference"}
        ``"reference"``: drop a token when ``token.lower().strip("{}").strip()`` is in ``drop``
        and keep every other token, empty ones included (lower-cased when ``lowercase``, spaces
        around it removed when ``strip_whitespace``); the other options are not used. Build it
        with :meth:`reference`.
    """

    lowercase: bool = True
    strip_whitespace: bool = True
    drop: frozenset = DEFAULT_DROP
    extra_drop: tuple = ()
    drop_bracketed: bool = True
    drop_regex: str | None = None
    strip_punctuation: bool = False
    filter: str = "default"

    def __post_init__(self) -> None:
        if self.filter not in CLEANING_FILTERS:
            raise ValueError(f"cleaning filter must be one of {list(CLEANING_FILTERS)}, got {self.filter!r}")

    @classmethod
    def reference(cls, lowercase: bool = True, strip_whitespace: bool = True) -> "TokenCleaner":
        """The word filter of the ds003020 reference code (:data:`REFERENCE_DROP`).

        It keeps the same tokens, hence the same word times, as that code. Kept words are
        lower-cased like there; ``strip_whitespace`` (default) also removes the spaces around a
        few raw tokens (``"YOU "``), which that code keeps: no time changes, and language
        models read ``you`` rather than ``you`` followed by a second space.
        """
        return cls(lowercase=lowercase, strip_whitespace=strip_whitespace, drop=REFERENCE_DROP,
                   drop_bracketed=False, filter="reference")

    def _drop_set(self) -> set[str]:
        return {str(t).strip().lower() for t in (*self.drop, *self.extra_drop)}

    def clean_tokens(self, tokens: list[str]) -> tuple[np.ndarray, list[str], CleaningReport]:
        """Clean a token list.

        Returns
        -------
        keep : bool array (n_tokens,), which tokens survive.
        words : the cleaned surviving words, length ``keep.sum()``.
        report : :class:`CleaningReport`.
        """
        drop = self._drop_set()
        pattern = re.compile(self.drop_regex) if self.drop_regex else None
        keep = np.zeros(len(tokens), dtype=bool)
        words: list[str] = []
        report = CleaningReport(n_in=len(tokens))
        reference = self.filter == "reference"
        for i, raw in enumerate(tokens):
            if reference:
                if raw.lower().strip("{}").strip() in drop:
                    report.dropped[raw] += 1
                    report.dropped_index.append(i)
                    continue
                tok = raw.strip() if self.strip_whitespace else raw
                tok = tok.lower() if self.lowercase else tok
                keep[i] = True
                words.append(tok)
                if tok != raw:
                    report.changed[(raw, tok)] += 1
                continue
            tok = raw.strip() if self.strip_whitespace else raw
            key = _unbracket(tok.strip()).strip().lower()
            dropped = (
                key in drop
                or tok.strip().lower() in drop
                or (self.drop_bracketed and _is_bracketed(tok.strip()))
                or (pattern is not None and pattern.fullmatch(tok) is not None)
            )
            if not dropped:
                if self.lowercase:
                    tok = tok.lower()
                if self.strip_punctuation:
                    tok = re.sub(r"^[^\w']+|[^\w']+$", "", tok)
                dropped = tok.strip() == ""
            if dropped:
                report.dropped[raw] += 1
                report.dropped_index.append(i)
                continue
            keep[i] = True
            words.append(tok)
            if tok != raw:
                report.changed[(raw, tok)] += 1
        report.n_out = len(words)
        return keep, words, report

    def __call__(self, transcript: Transcript) -> tuple[Transcript, CleaningReport]:
        """Clean a :class:`Transcript`; returns the cleaned transcript and the report."""
        keep, words, report = self.clean_tokens(transcript.words)
        out = Transcript(words, transcript.onsets[keep], transcript.offsets[keep], source=transcript.source,
                         phones=transcript.phones)
        return out, report

    @classmethod
    def from_config(cls, config: dict | None, where: str = "cleaning") -> "TokenCleaner":
        """Build from a manifest ``[cleaning]`` table; unknown keys raise ``ValueError`` naming them.

        With ``filter = "reference"`` only ``lowercase`` and ``strip_whitespace`` may be set; any
        other option that differs from its default is a ``ValueError`` (the reference filter is
        fixed).
        """
        config = dict(config or {})
        allowed = {"lowercase", "strip_whitespace", "drop", "extra_drop", "drop_bracketed",
                   "drop_regex", "strip_punctuation", "filter"}
        unknown = sorted(set(config) - allowed)
        if unknown:
            raise ValueError(f"{where}: unknown cleaning option(s) {unknown}; allowed: {sorted(allowed)}")
        name = config.pop("filter", None) or "default"
        if name not in CLEANING_FILTERS:
            raise ValueError(f"{where}: cleaning.filter must be one of {list(CLEANING_FILTERS)}, got {name!r}")
        if name == "reference":
            defaults = cls()
            as_field = {"drop": frozenset, "extra_drop": tuple}
            clash = sorted(k for k, v in config.items()
                           if k not in ("lowercase", "strip_whitespace") and v is not None
                           and as_field.get(k, lambda x: x)(v) != getattr(defaults, k))
            if clash:
                raise ValueError(f"{where}: cleaning.{clash[0]} cannot be combined with cleaning.filter = "
                                 f"'reference' (the reference code's fixed word filter); remove it, or "
                                 f"use filter = 'default'")
            return cls.reference(lowercase=bool(config.get("lowercase", True)),
                                 strip_whitespace=bool(config.get("strip_whitespace", True)))
        if "drop" in config:
            config["drop"] = frozenset(config["drop"])
        if "extra_drop" in config:
            config["extra_drop"] = tuple(config["extra_drop"])
        return cls(**config)


def clean_transcript(transcript: Transcript, **options) -> tuple[Transcript, CleaningReport]:
    """Clean with a :class:`TokenCleaner` built from ``options``."""
    return TokenCleaner(**options)(transcript)
