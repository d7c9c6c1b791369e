"""Readers for word transcripts: Praat TextGrids, word tables (TSV/CSV) and word/time arrays.

Every reader returns a :class:`Transcript` holding the raw tokens exactly as the file has them
(no cleaning: see :mod:`gim_brain.data.cleaning`) with onsets and offsets in seconds from the
start of the audio. A TextGrid's phone tier, when it has one (ds003020's TextGrids do), comes
along as :attr:`Transcript.phones` (raw labels, e.g. ``AH0``, ``sp``); tables and arrays have none.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "Transcript",
    "TranscriptError",
    "TextGridError",
    "read_textgrid",
    "read_word_table",
    "read_word_arrays",
    "read_transcript",
    "textgrid_tiers",
    "PhoneTier",
    "WORD_TIER_NAMES",
    "PHONE_TIER_NAMES",
]

#: Tier names tried, in order and case-insensitively, when no tier is given.
WORD_TIER_NAMES = ("word", "words", "wordtier", "word_tier", "token", "tokens")
#: Tier names tried, in order and case-insensitively, for the phone tier (when no tier is given).
PHONE_TIER_NAMES = ("phone", "phones", "phoneme", "phonemes", "phonetier", "phone_tier")


class TranscriptError(ValueError):
    """A transcript file cannot be read; the message names the file."""


class TextGridError(TranscriptError):
    """A Praat TextGrid is malformed, truncated or has no usable word tier."""


@dataclass
class PhoneTier:
    """The phone intervals of a story, as the TextGrid has them (silences included).

    Parameters
    ----------
    labels : list of str, length n_phones (raw labels such as ``AH0``, ``sp``, ``""``)
    onsets, offsets : float64 arrays, shape (n_phones,), seconds from the start of the audio
    name : the tier's name in the file
    """

    labels: list[str]
    onsets: np.ndarray
    offsets: np.ndarray
    name: str = "phone"

    def __post_init__(self) -> None:
        self.labels = [str(x) for x in self.labels]
        self.onsets = np.asarray(self.onsets, dtype=np.float64).reshape(-1)
        self.offsets = np.asarray(self.offsets, dtype=np.float64).reshape(-1)
        if self.onsets.shape != (len(self.labels),) or self.offsets.shape != (len(self.labels),):
            raise TranscriptError(f"phone tier {self.name!r}: {len(self.labels)} labels but "
                                  f"{self.onsets.size} onsets and {self.offsets.size} offsets")

    def __len__(self) -> int:
        return len(self.labels)

    def shifted(self, seconds: float) -> PhoneTier:
        """The same phones ``seconds`` later."""
        return PhoneTier(self.labels, self.onsets + seconds, self.offsets + seconds, self.name)


@dataclass
class Transcript:
    """Words of one story with their times.

    Parameters
    ----------
    words : list of str, length n_words
    onsets, offsets : float64 arrays, shape (n_words,)
        Seconds from the start of the audio.
    source : str
        Where the words came from (file path), for messages.
    phones : PhoneTier or None
        The file's phone tier (TextGrids that have one), untouched by word cleaning.
    """

    words: list[str]
    onsets: np.ndarray
    offsets: np.ndarray
    source: str = field(default="", compare=False)
    phones: PhoneTier | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        self.words = [str(w) for w in self.words]
        self.onsets = np.asarray(self.onsets, dtype=np.float64).reshape(-1)
        self.offsets = np.asarray(self.offsets, dtype=np.float64).reshape(-1)
        n = len(self.words)
        if self.onsets.shape != (n,) or self.offsets.shape != (n,):
            raise TranscriptError(
                f"{self.source or 'transcript'}: {n} words but {self.onsets.size} onsets and "
                f"{self.offsets.size} offsets"
            )
        if not (np.all(np.isfinite(self.onsets)) and np.all(np.isfinite(self.offsets))):
            raise TranscriptError(f"{self.source or 'transcript'}: word times contain NaN or inf")

    def __len__(self) -> int:
        return len(self.words)

    def select(self, keep: np.ndarray) -> "Transcript":
        """A new transcript with the words where boolean ``keep`` (n_words,) is true."""
        keep = np.asarray(keep, dtype=bool)
        return Transcript([w for w, k in zip(self.words, keep) if k], self.onsets[keep],
                          self.offsets[keep], source=self.source, phones=self.phones)

    @property
    def duration(self) -> float:
        """Seconds from audio start to the end of the last word (0 when empty)."""
        return float(self.offsets.max()) if len(self) else 0.0


# --------------------------------------------------------------------------- TextGrid


def _decode(raw: bytes, path: Path) -> str:
    """Decode text bytes: UTF-16 (with BOM or NUL-interleaved) or UTF-8 (with/without BOM).

    Bytes that are not valid in the encoding (a Latin-1 file, a file cut in the middle of a
    character, binary data) raise :class:`TranscriptError` naming the file and the byte offset;
    nothing is guessed or replaced.
    """
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding, body = "utf-16", raw
    elif raw.startswith(b"\xef\xbb\xbf"):
        encoding, body = "utf-8", raw[3:]
    elif len(raw) >= 2 and b"\x00" in raw[:200]:
        # UTF-16 without a byte-order mark: guess the endianness from where the NULs are.
        encoding, body = ("utf-16-le" if raw[1] == 0 else "utf-16-be"), raw
    else:
        encoding, body = "utf-8", raw
    try:
        return body.decode(encoding)
    except UnicodeDecodeError as exc:
        raise TranscriptError(
            f"{path}: not valid {encoding.upper()} text at byte {exc.start} ({exc.reason}); the file "
            f"is truncated, binary, or in another encoding (re-save it as UTF-8, e.g. "
            f"iconv -f latin1 -t utf-8)") from None


# A quoted Praat string ("" escapes a quote), a flag, an index in brackets (skipped),
# a bare identifier such as ``xmin`` (skipped), or a number.
_TOKEN = re.compile(
    r'"((?:[^"]|"")*)"'            # 1: string
    r"|(<exists>|<absent>)"        # 2: flag
    r"|\[\s*\d*\s*\]"              # index, skipped
    r"|[A-Za-z_][A-Za-z_0-9?]*"    # identifier, skipped
    r"|([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"  # 3: number
)


class _Tokens:
    """Stream of the values of a TextGrid, identical for the long and the short text formats."""

    def __init__(self, text: str, path: Path):
        self.path = path
        self.items: list[tuple[str, str]] = []
        for m in _TOKEN.finditer(text):
            if m.group(1) is not None:
                self.items.append(("str", m.group(1).replace('""', '"')))
            elif m.group(2) is not None:
                self.items.append(("flag", m.group(2)))
            elif m.group(3) is not None:
                self.items.append(("num", m.group(3)))
        self.pos = 0

    def _next(self, kind: str, what: str) -> str:
        if self.pos >= len(self.items):
            raise TextGridError(f"{self.path}: file ends early (truncated?) while reading {what}")
        k, v = self.items[self.pos]
        if k != kind:
            raise TextGridError(f"{self.path}: expected {what} but found {v!r} (value #{self.pos + 1})")
        self.pos += 1
        return v

    def string(self, what: str) -> str:
        return self._next("str", what)

    def number(self, what: str) -> float:
        return float(self._next("num", what))

    def count(self, what: str) -> int:
        value = self.number(what)
        if value < 0 or value != int(value):
            raise TextGridError(f"{self.path}: {what} must be a non-negative integer, got {value}")
        return int(value)

    def flag(self, what: str) -> str:
        return self._next("flag", what)


@dataclass
class _Tier:
    name: str
    kind: str  # "IntervalTier" or "TextTier"
    starts: list[float]
    ends: list[float]
    labels: list[str]


def _parse_textgrid(path: Path) -> list[_Tier]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"TextGrid not found: {path}") from None
    text = _decode(raw, path)
    if "ooTextFile" not in text[:200]:
        if "ooBinaryFile" in text[:200]:
            raise TextGridError(f"{path}: binary TextGrids are not supported; save it as text in Praat")
        raise TextGridError(f"{path}: not a Praat TextGrid (no 'ooTextFile' header)")
    tok = _Tokens(text, path)
    tok.string("file type")
    if tok.string("object class") != "TextGrid":
        raise TextGridError(f"{path}: object class is not 'TextGrid'")
    tok.number("xmin")
    tok.number("xmax")
    if tok.flag("tiers flag") == "<absent>":
        return []
    n_tiers = tok.count("number of tiers")
    tiers = []
    for t in range(n_tiers):
        kind = tok.string(f"class of tier {t + 1}")
        name = tok.string(f"name of tier {t + 1}")
        tok.number(f"xmin of tier {name!r}")
        tok.number(f"xmax of tier {name!r}")
        n = tok.count(f"size of tier {name!r}")
        starts, ends, labels = [], [], []
        if kind == "IntervalTier":
            for i in range(n):
                what = f"interval {i + 1} of {n} of tier {name!r}"
                starts.append(tok.number(what))
                ends.append(tok.number(what))
                labels.append(tok.string(what))
        elif kind == "TextTier":
            for i in range(n):
                what = f"point {i + 1} of {n} of tier {name!r}"
                time = tok.number(what)
                starts.append(time)
                ends.append(time)
                labels.append(tok.string(what))
        else:
            raise TextGridError(f"{path}: tier {name!r} has unknown class {kind!r}")
        tiers.append(_Tier(name, kind, starts, ends, labels))
    return tiers


def textgrid_tiers(path: str | Path) -> list[tuple[str, str, int]]:
    """``(name, class, size)`` of every tier of a TextGrid (point tiers included)."""
    return [(t.name, t.kind, len(t.labels)) for t in _parse_textgrid(Path(path))]


def _find_phone_tier(path: Path, tiers: list[_Tier], words: _Tier, phone_tier: str | None):
    if phone_tier is not None:
        chosen = ([t for t in tiers if t.name == phone_tier]
                  or [t for t in tiers if t.name.lower() == phone_tier.lower()])
        if not chosen:
            raise TextGridError(f"{path}: no interval tier named {phone_tier!r} (phone_tier, manifest "
                                f"key words.phone_tier); interval tiers: {[t.name for t in tiers]}")
        t = chosen[0]
    else:
        t = next((t for wanted in PHONE_TIER_NAMES for t in tiers
                  if t is not words and t.name.strip().lower() == wanted), None)
        if t is None:
            return None
    return PhoneTier(t.labels, np.array(t.starts), np.array(t.ends), name=t.name)


def read_textgrid(path: str | Path, tier: str | None = None, phone_tier: str | None = None) -> Transcript:
    """Read the word tier of a Praat TextGrid (long or short text format, UTF-8 or UTF-16).

    Parameters
    ----------
    path : path to the ``.TextGrid`` file.
    tier : name of the interval tier holding words. By default the first interval tier named
        one of :data:`WORD_TIER_NAMES` (case-insensitive), or the only interval tier.
        Point tiers (``TextTier``) are never used.
    phone_tier : name of the interval tier holding phones (an error when absent). By default the
        first interval tier named one of :data:`PHONE_TIER_NAMES` (case-insensitive), if any.

    Returns
    -------
    Transcript with the raw interval labels (silences included; clean them afterwards) and,
    when the file has a phone tier, its raw intervals as ``phones``.
    """
    path = Path(path)
    tiers = [t for t in _parse_textgrid(path) if t.kind == "IntervalTier"]
    if not tiers:
        raise TextGridError(f"{path}: no interval tier (only point tiers or none)")
    names = [t.name for t in tiers]
    if tier is not None:
        chosen = [t for t in tiers if t.name == tier] or [t for t in tiers if t.name.lower() == tier.lower()]
        if not chosen:
            raise TextGridError(f"{path}: no interval tier named {tier!r}; interval tiers: {names}")
    else:
        chosen = []
        for wanted in WORD_TIER_NAMES:
            chosen = [t for t in tiers if t.name.strip().lower() == wanted]
            if chosen:
                break
        if not chosen:
            if len(tiers) != 1:
                raise TextGridError(
                    f"{path}: cannot tell which tier holds words among {names}; pass tier=NAME "
                    f"(manifest key words.tier)"
                )
            chosen = tiers
    t = chosen[0]
    phones = _find_phone_tier(path, tiers, t, phone_tier)
    return Transcript(t.labels, np.array(t.starts), np.array(t.ends), source=str(path), phones=phones)


# --------------------------------------------------------------------------- tables

_WORD_COLUMNS = ("word", "words", "token", "text", "label")
_ONSET_COLUMNS = ("onset", "start", "xmin", "tmin", "start_time", "onset_time", "time")
_OFFSET_COLUMNS = ("offset", "end", "stop", "xmax", "tmax", "end_time", "offset_time")


def _pick(header: list[str], wanted: str | None, candidates: tuple[str, ...], what: str, path: Path) -> int:
    lower = [h.strip().lower() for h in header]
    if wanted is not None:
        if wanted.strip().lower() not in lower:
            raise TranscriptError(f"{path}: no {what} column named {wanted!r}; columns: {header}")
        return lower.index(wanted.strip().lower())
    for c in candidates:
        if c in lower:
            return lower.index(c)
    raise TranscriptError(f"{path}: no {what} column (looked for {list(candidates)}); columns: {header}")


def read_word_table(
    path: str | Path,
    word_column: str | None = None,
    onset_column: str | None = None,
    offset_column: str | None = None,
    delimiter: str | None = None,
) -> Transcript:
    """Read a word table with a header row: TSV (``.tsv``) or CSV (``.csv``, or sniffed).

    Columns are found by name, case-insensitively (``word``/``token``/``text``,
    ``onset``/``start``, ``offset``/``end``) unless given. Empty words are kept as ``""``.
    Times are seconds from audio start.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"word table not found: {path}")
    text = _decode(path.read_bytes(), path)
    if delimiter is None:
        if path.suffix.lower() == ".tsv":
            delimiter = "\t"
        elif path.suffix.lower() == ".csv":
            delimiter = ","
        else:
            first = text.split("\n", 1)[0]
            delimiter = "\t" if "\t" in first else ","
    try:
        numbered = [(i, r) for i, r in enumerate(csv.reader(text.splitlines(), delimiter=delimiter, strict=True),
                                                 start=1) if r]  # blank lines skipped
    except csv.Error as exc:
        raise TranscriptError(f"{path}: not a readable {'TSV' if delimiter == chr(9) else 'CSV'} table ({exc})") from None
    if not numbered:
        raise TranscriptError(f"{path}: empty word table")
    header = numbered[0][1]
    rows = [r for _, r in numbered]
    line_of = [i for i, _ in numbered]
    iw = _pick(header, word_column, _WORD_COLUMNS, "word", path)
    ion = _pick(header, onset_column, _ONSET_COLUMNS, "onset", path)
    ioff = _pick(header, offset_column, _OFFSET_COLUMNS, "offset", path)
    words, onsets, offsets = [], [], []
    for line_no, r in zip(line_of[1:], rows[1:]):
        if len(r) != len(header):
            raise TranscriptError(
                f"{path}, line {line_no}: {len(r)} field(s) but the header has {len(header)} "
                f"({', '.join(header)}): truncated file or a stray {'tab' if delimiter == chr(9) else repr(delimiter)}?")
        try:
            onsets.append(float(r[ion]))
            offsets.append(float(r[ioff]))
        except ValueError:
            raise TranscriptError(
                f"{path}, line {line_no}: onset/offset are not numbers: {r[ion]!r}, {r[ioff]!r}"
            ) from None
        words.append(r[iw])
    return Transcript(words, np.array(onsets), np.array(offsets), source=str(path))


# --------------------------------------------------------------------------- arrays


def _load_array(path: Path, what: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, EOFError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise TranscriptError(f"{path}: cannot read the {what} array (truncated or not a .npy file?): "
                              f"{type(exc).__name__}: {first}") from None


def read_word_arrays(
    words_path: str | Path, onsets_path: str | Path, word_duration: float | None = None
) -> Transcript:
    """Read words and onsets stored as two ``.npy`` arrays of equal length.

    Parameters
    ----------
    words_path : ``.npy`` array of strings, shape (n_words,).
    onsets_path : ``.npy`` array of onsets in seconds, shape (n_words,).
    word_duration : seconds each word lasts (e.g. 0.5 for rapid serial visual presentation).
        Default: until the next word's onset (the last word gets the median gap).
    """
    words_path, onsets_path = Path(words_path), Path(onsets_path)
    for p in (words_path, onsets_path):
        if not p.is_file():
            raise FileNotFoundError(f"word array not found: {p}")
    words = _load_array(words_path, "words").reshape(-1)
    onsets_raw = _load_array(onsets_path, "onsets").reshape(-1)
    if not np.issubdtype(onsets_raw.dtype, np.number):
        raise TranscriptError(f"{onsets_path}: onsets must be numbers, got dtype {onsets_raw.dtype}")
    onsets = onsets_raw.astype(np.float64)
    if words.shape != onsets.shape:
        raise TranscriptError(
            f"{words_path} has {words.size} words but {onsets_path} has {onsets.size} onsets"
        )
    if word_duration is not None:
        offsets = onsets + float(word_duration)
    else:
        gaps = np.diff(onsets)
        last = float(np.median(gaps)) if gaps.size else 0.0
        offsets = onsets + np.append(gaps, last)
    return Transcript([str(w) for w in words], onsets, offsets, source=str(words_path))


def read_transcript(path: str | Path, **options) -> Transcript:
    """Read any supported transcript, chosen by file suffix.

    ``.TextGrid`` -> :func:`read_textgrid` (options ``tier``, ``phone_tier``); ``.tsv``/``.csv``/``.txt`` ->
    :func:`read_word_table` (options ``word_column``, ``onset_column``, ``offset_column``);
    ``.npy`` -> :func:`read_word_arrays` (options ``onsets_path`` (required), ``word_duration``).
    Unknown options raise ``TypeError``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".textgrid":
        return read_textgrid(path, **options)
    if suffix in (".tsv", ".csv", ".txt"):
        return read_word_table(path, **options)
    if suffix == ".npy":
        if "onsets_path" not in options:
            raise TranscriptError(f"{path}: a .npy word array needs the path of its onsets array (onsets_path)")
        return read_word_arrays(path, **options)
    raise TranscriptError(f"{path}: unknown transcript format {suffix!r} (expected .TextGrid, .tsv, .csv or .npy)")
