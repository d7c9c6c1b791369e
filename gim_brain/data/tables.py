"""Strict readers of a dataset's small listing files: TR-count tables and test-story lists.

Unlike a lenient reader, nothing here is repaired: a story listed twice, a TR count that is
not a whole positive number, a row that does not fit the header, bytes that are not UTF-8 and
a story name that is not a plain file name are each a :class:`ManifestError` naming the file,
the line or story, and the manifest key that points at the file.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from .manifest import ManifestError, unsafe_name

__all__ = ["read_n_trs_table", "read_story_list"]


def _text(path: Path, key: str) -> str:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (manifest key {key})")
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path} (manifest key {key}): not valid UTF-8 at byte {exc.start} "
                            f"({exc.reason}); truncated or in another encoding") from None


def _count(value, where: str) -> int:
    """A TR count: a whole positive number (``300``, ``"300"``, ``300.0``); anything else raises."""
    if isinstance(value, bool):
        raise ManifestError(f"{where}: TR count {value!r} is not a number")
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                raise ManifestError(f"{where}: TR count {text!r} is not a number") from None
    if isinstance(value, float):
        if not value.is_integer():
            raise ManifestError(f"{where}: TR count {value!r} is not a whole number")
        value = int(value)
    if not isinstance(value, int):
        raise ManifestError(f"{where}: TR count {value!r} is not a number")
    if value <= 0:
        raise ManifestError(f"{where}: TR count {value} must be positive")
    return value


def _story_name(name, where: str) -> str:
    why = unsafe_name(name)
    if why is not None:
        raise ManifestError(f"{where}: story name {name!r} is not a plain name ({why}); story names "
                            f"become file names under the data root")
    return name


def read_n_trs_table(path: str | Path, story_column: str = "story", n_trs_column: str = "n_trs",
                     key: str = "timing.n_trs") -> dict[str, int]:
    """TR counts per story from a JSON object ``{story: n_trs}`` (or ``{story: {n_trs: ..}}``) or a
    CSV/TSV table with a header; an empty count means unknown (the story is left out).

    Raises
    ------
    ManifestError
        Duplicated stories, non-integer or non-positive counts, rows that do not fit the header,
        missing columns, non-UTF-8 bytes, unsafe story names — naming the file and line/story.
    FileNotFoundError
        The file does not exist.
    """
    path = Path(path)
    text = _text(path, key)
    where = f"{path} (manifest key {key})"
    out: dict[str, int] = {}
    if path.suffix.lower() == ".json":
        def pairs(items):
            seen = [k for k, _ in items]
            dups = sorted({k for k in seen if seen.count(k) > 1})
            if dups:
                raise ManifestError(f"{where}: {', '.join(map(repr, dups))} listed more than once")
            return dict(items)

        try:
            data = json.loads(text, object_pairs_hook=pairs)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{where}: invalid JSON (truncated?): {exc}") from None
        if not isinstance(data, dict):
            raise ManifestError(f"{where}: expected a JSON object story -> number of TRs")
        for story, value in data.items():
            if isinstance(value, dict):
                value = value.get(n_trs_column)
            if value is None or value == "":
                continue
            out[_story_name(story, where)] = _count(value, f"{where}, story {story!r}")
        return out
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        rows = [(i, r) for i, r in enumerate(csv.reader(text.splitlines(), delimiter=delimiter, strict=True),
                                             start=1) if r]
    except csv.Error as exc:
        raise ManifestError(f"{where}: not a readable table ({exc})") from None
    if not rows:
        raise ManifestError(f"{where}: empty table")
    header = rows[0][1]
    for col in (story_column, n_trs_column):
        if col not in header:
            raise ManifestError(f"{where}: no column {col!r} (timing.story_column/n_trs_column); columns: {header}")
    i_story, i_n = header.index(story_column), header.index(n_trs_column)
    first_line: dict[str, int] = {}
    for line, r in rows[1:]:
        if len(r) != len(header):
            raise ManifestError(f"{where}, line {line}: {len(r)} field(s) but the header has {len(header)} "
                                f"(truncated file or a stray delimiter?)")
        story, value = r[i_story], r[i_n]
        if story in first_line:
            raise ManifestError(f"{where}, line {line}: story {story!r} is listed again (first on line "
                                f"{first_line[story]})")
        first_line[story] = line
        if value.strip() == "":
            continue
        out[_story_name(story, f"{where}, line {line}")] = _count(value, f"{where}, line {line}")
    return out


def read_story_list(path: str | Path, list_key: str | None = "test", key: str = "stories.test_file") -> list[str]:
    """Story names from a JSON list, or from the list under ``list_key`` of a JSON object.

    Raises :class:`ManifestError` for invalid JSON, a missing key, non-string or unsafe names and
    names listed more than once.
    """
    path = Path(path)
    text = _text(path, key)
    where = f"{path} (manifest key {key})"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{where}: invalid JSON (truncated?): {exc}") from None
    if isinstance(data, dict):
        if list_key not in data:
            raise ManifestError(f"{where}: no key {list_key!r} (stories.test_key); keys: {list(data)}")
        data = data[list_key]
    if not isinstance(data, list):
        raise ManifestError(f"{where}: expected a list of story names")
    for i, name in enumerate(data):
        if not isinstance(name, str):
            raise ManifestError(f"{where}: entry {i} is {name!r}, not a story name")
        _story_name(name, where)
    dups = sorted({s for s in data if data.count(s) > 1})
    if dups:
        raise ManifestError(f"{where}: {', '.join(map(repr, dups))} listed more than once")
    return list(data)
