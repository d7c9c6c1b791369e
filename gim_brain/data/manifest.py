"""Dataset manifests: TOML files that say where words, TR counts and responses live.

A manifest is found by name among the built-in manifests (the repository's ``data_manifests/``
folder and every folder listed in ``$GIM_BRAIN_MANIFESTS``) or given as a path to a ``.toml``
file. Paths inside it are relative to the data root given at load time and may contain the
placeholders ``{story}`` and ``{subject}``. See ``data_manifests/README.md`` for every key.
"""

from __future__ import annotations

import copy
import difflib
import glob
import os
import re
from pathlib import Path

from .cleaning import CLEANING_FILTERS
from .timing import DEFAULT_CONVENTION, TIMING_CONVENTIONS

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "ManifestError",
    "SCHEMA",
    "manifest_dirs",
    "list_manifests",
    "find_manifest",
    "load_manifest",
    "parse_manifest",
    "fill_template",
    "match_template",
    "unsafe_name",
    "PATH_KEYS",
]


class ManifestError(ValueError):
    """A manifest is missing, malformed or has unknown keys; the message names file and key."""


_ANY = object()

#: Allowed keys: section -> {key: (types, default)}. ``_ANY`` default means required.
SCHEMA: dict[str, dict[str, tuple[tuple[type, ...], object]]] = {
    "": {
        "name": ((str,), _ANY),
        "description": ((str,), ""),
        "license": ((str,), ""),
        "citation": ((str,), ""),
        "url": ((str,), ""),
    },
    "words": {
        "path": ((str,), _ANY),
        "format": ((str,), "auto"),
        "tier": ((str,), None),
        "phone_tier": ((str,), None),
        "word_column": ((str,), None),
        "onset_column": ((str,), None),
        "offset_column": ((str,), None),
        "onsets_path": ((str,), None),
        "word_duration": ((int, float), None),
        "time_offset": ((int, float), 0.0),
    },
    "cleaning": {
        "lowercase": ((bool,), True),
        "strip_whitespace": ((bool,), True),
        "drop": ((list,), None),
        "extra_drop": ((list,), []),
        "drop_bracketed": ((bool,), True),
        "drop_regex": ((str,), None),
        "strip_punctuation": ((bool,), False),
        "filter": ((str,), None),  # None: follows timing.convention (see _resolve_convention)
    },
    "timing": {
        "tr": ((int, float), _ANY),
        "audio_start": ((int, float), 0.0),
        "trim_start": ((int,), 0),
        "trim_end": ((int,), 0),
        "n_trs": ((int, str), None),
        "n_trs_column": ((str,), "n_trs"),
        "story_column": ((str,), "story"),
        "convention": ((str,), DEFAULT_CONVENTION),
    },
    "responses": {
        "path": ((str,), _ANY),
        "key": ((str,), None),
        "mask": ((str,), None),
        "trimmed": ((bool,), True),
        "subjects": ((list,), None),
        "exclude_subjects": ((list,), []),
        "target_names": ((list,), None),
    },
    "stories": {
        "names": ((list,), None),
        "exclude": ((list,), []),
        "test": ((list,), None),
        "test_file": ((str,), None),
        "test_key": ((str,), "test"),
    },
}

_REQUIRED_SECTIONS = ("words", "timing", "responses")

#: ``[cleaning]`` keys that the reference word filter fixes (``lowercase`` and ``strip_whitespace``
#: may be set).
_FIXED_BY_REFERENCE_FILTER = ("drop", "extra_drop", "drop_bracketed", "drop_regex", "strip_punctuation")


def manifest_dirs() -> list[Path]:
    """Folders searched for built-in manifests, in priority order."""
    dirs = [Path(p) for p in os.environ.get("GIM_BRAIN_MANIFESTS", "").split(os.pathsep) if p]
    import gim_brain

    package = Path(gim_brain.__file__).resolve().parent
    dirs += [package.parent / "data_manifests", package / "manifests"]
    return [d for d in dirs if d.is_dir()]


def list_manifests() -> dict[str, Path]:
    """Name -> path of every built-in manifest (earlier folders win on equal names)."""
    found: dict[str, Path] = {}
    for d in manifest_dirs():
        for p in sorted(d.glob("*.toml")):
            found.setdefault(p.stem, p)
    return found


def find_manifest(name_or_path: str | os.PathLike) -> Path:
    """Path of a manifest given by built-in name or by file path."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.is_file():
        return path
    if text.endswith(".toml") or os.sep in text or "/" in text:
        raise ManifestError(f"manifest file not found: {path}")
    known = list_manifests()
    if text in known:
        return known[text]
    hint = difflib.get_close_matches(text, list(known), n=1)
    raise ManifestError(
        f"no manifest named {text!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
        + f"; built-in: {sorted(known)}; or pass the path of a .toml file"
    )


def _check_section(section: str, table: dict, path: Path) -> dict:
    schema = SCHEMA[section]
    prefix = f"{section}." if section else ""
    out = {}
    for key, value in table.items():
        if key not in schema:
            hint = difflib.get_close_matches(key, list(schema), n=1)
            raise ManifestError(
                f"{path}: unknown key {prefix + key!r}" + (f" (did you mean {prefix + hint[0]!r}?)" if hint else "")
                + f"; allowed in {'[' + section + ']' if section else 'the top level'}: {sorted(schema)}"
            )
        types, _ = schema[key]
        if isinstance(value, bool) and bool not in types:
            ok = False
        else:
            ok = isinstance(value, types)
        if not ok:
            names = " or ".join(t.__name__ for t in types)
            raise ManifestError(f"{path}: key {prefix + key!r} must be {names}, got {value!r}")
        out[key] = value
    for key, (_, default) in schema.items():
        if key not in out:
            if default is _ANY:
                raise ManifestError(f"{path}: missing required key {prefix + key!r}")
            out[key] = copy.deepcopy(default)
    return out


def parse_manifest(data: dict, path: str | Path = "<manifest>") -> dict:
    """Validate a manifest dict and fill defaults; raises :class:`ManifestError` naming the key."""
    path = Path(path)
    sections = [s for s in SCHEMA if s]
    top = {k: v for k, v in data.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    for name in tables:
        if name not in sections:
            hint = difflib.get_close_matches(name, sections, n=1)
            raise ManifestError(
                f"{path}: unknown key/section {name!r}" + (f" (did you mean [{hint[0]}]?)" if hint else "")
                + f"; sections: {sections}"
            )
    out = _check_section("", top, path)
    for name in sections:
        if name not in tables and name in _REQUIRED_SECTIONS:
            raise ManifestError(f"{path}: missing section [{name}]")
        out[name] = _check_section(name, tables.get(name, {}), path)
    timing = out["timing"]
    if not timing["tr"] > 0:
        raise ManifestError(f"{path}: timing.tr must be positive seconds, got {timing['tr']}")
    if timing["trim_start"] < 0 or timing["trim_end"] < 0:
        raise ManifestError(f"{path}: timing.trim_start and timing.trim_end must be >= 0")
    for key in ("path", "onsets_path"):
        value = out["words"][key]
        if value is not None and "{subject}" in value:
            raise ManifestError(f"{path}: words.{key} cannot depend on {{subject}}")
    if out["words"]["format"] not in ("auto", "textgrid", "table", "npy"):
        raise ManifestError(f"{path}: words.format must be auto, textgrid, table or npy, got {out['words']['format']!r}")
    if "{story}" not in out["words"]["path"] and not out["stories"]["names"]:
        raise ManifestError(f"{path}: words.path has no {{story}} placeholder, so list the story in stories.names")
    _check_paths_and_lists(out, path)
    _resolve_convention(out, tables.get("cleaning", {}), path)
    return out


#: Keys whose value is a path (template) relative to the data root.
PATH_KEYS = (("words", "path"), ("words", "onsets_path"), ("timing", "n_trs"), ("responses", "path"),
             ("responses", "mask"), ("stories", "test_file"))
#: Keys holding story or subject names (each becomes part of a path).
NAME_LIST_KEYS = (("stories", "names"), ("stories", "exclude"), ("stories", "test"),
                  ("responses", "subjects"), ("responses", "exclude_subjects"))


def _escapes(relpath: str) -> str | None:
    """Why ``relpath`` would leave the folder it is relative to (None when it stays inside)."""
    if not relpath.strip():
        return "it is empty"
    if relpath.startswith(("/", "\\", "~")) or re.match(r"^[A-Za-z]:", relpath):
        return "it is absolute"
    if any(part == ".." for part in re.split(r"[/\\]", relpath)):
        return "it contains '..'"
    if "\0" in relpath:
        return "it contains a NUL byte"
    return None


def unsafe_name(name: str) -> str | None:
    """Why a story or subject name cannot be part of a path (None when it is a plain name)."""
    if not isinstance(name, str):
        return f"it is a {type(name).__name__}, not a string"
    if not name.strip():
        return "it is empty"
    if name in (".", ".."):
        return f"it is {name!r}"
    if "/" in name or "\\" in name:
        return "it contains a path separator"
    if "\0" in name:
        return "it contains a NUL byte"
    return None


def _check_paths_and_lists(out: dict, path: Path) -> None:
    for section, key in PATH_KEYS:
        value = out[section][key]
        if isinstance(value, str):
            why = _escapes(value)
            if why is not None:
                raise ManifestError(f"{path}: {section}.{key} = {value!r} must be a path relative to the "
                                    f"data root that stays inside it, but {why}")
    for section, key in NAME_LIST_KEYS + (("responses", "target_names"),):
        values = out[section][key]
        if values is None:
            continue
        for i, v in enumerate(values):
            if not isinstance(v, str):
                raise ManifestError(f"{path}: {section}.{key}[{i}] must be a string, got {v!r}")
            why = unsafe_name(v) if (section, key) in NAME_LIST_KEYS else None
            if why is not None:
                raise ManifestError(f"{path}: {section}.{key}[{i}] = {v!r} is not a plain name: {why} "
                                    f"(names become file names under the data root)")
        dups = sorted({v for v in values if values.count(v) > 1})
        if dups:
            raise ManifestError(f"{path}: {section}.{key} lists {', '.join(map(repr, dups))} more than once")
    regex = out["cleaning"]["drop_regex"]
    if regex is not None:
        try:
            re.compile(regex)
        except re.error as exc:
            raise ManifestError(f"{path}: cleaning.drop_regex = {regex!r} is not a valid regular "
                                f"expression: {exc}") from None


def _resolve_convention(out: dict, given_cleaning: dict, path: Path) -> None:
    """Check ``timing.convention`` and set ``cleaning.filter`` from it when the file leaves it out.

    ``convention = "reference"`` implies the reference word filter, which fixes every cleaning
    option but ``lowercase`` and ``strip_whitespace``: setting one of them is an error naming it.
    """
    convention = out["timing"]["convention"]
    if convention not in TIMING_CONVENTIONS:
        raise ManifestError(f"{path}: timing.convention must be one of {list(TIMING_CONVENTIONS)}, got {convention!r}")
    cleaning = out["cleaning"]
    if cleaning["filter"] is None:
        cleaning["filter"] = "reference" if convention == "reference" else "default"
    if cleaning["filter"] not in CLEANING_FILTERS:
        raise ManifestError(f"{path}: cleaning.filter must be one of {list(CLEANING_FILTERS)}, got {cleaning['filter']!r}")
    if cleaning["filter"] == "reference":
        fixed = [k for k in _FIXED_BY_REFERENCE_FILTER if k in given_cleaning]
        if fixed:
            raise ManifestError(f"{path}: cleaning.{fixed[0]} cannot be set with the reference word filter "
                                f"(cleaning.filter = 'reference', given or implied by timing.convention = 'reference'); "
                                f"remove it, or set cleaning.filter = 'default'")


def load_manifest(name_or_path: str | os.PathLike) -> tuple[dict, Path]:
    """Read, validate and complete a manifest; returns ``(manifest dict, its path)``."""
    path = find_manifest(name_or_path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{path}: invalid TOML: {exc}") from None
    return parse_manifest(data, path), path


_PLACEHOLDER = re.compile(r"\{(story|subject)\}")


def fill_template(template: str, **values: str) -> str:
    """Replace ``{story}``/``{subject}`` in a path template.

    A missing value, a value that is not a plain name (a path separator, ``..``, empty) and a
    result that is absolute or climbs out with ``..`` raise :class:`ManifestError`.
    """
    def sub(m: re.Match) -> str:
        key = m.group(1)
        if values.get(key) is None:
            raise ManifestError(f"path template {template!r} needs a {key}")
        why = unsafe_name(str(values[key]))
        if why is not None:
            origin = ("stories.names/test, timing.n_trs or stories.test_file" if key == "story"
                      else "responses.subjects or --subject")
            raise ManifestError(f"path template {template!r}: {key} name {str(values[key])!r} is not a "
                                f"plain name ({why}), so it could leave the data root (check {origin})")
        return str(values[key])

    filled = _PLACEHOLDER.sub(sub, template)
    why = _escapes(filled)
    if why is not None:
        raise ManifestError(f"path template {template!r} gives {filled!r}, which would leave the data "
                            f"root: {why}")
    return filled


def match_template(root: str | Path, template: str, **fixed: str) -> list[dict[str, str]]:
    """Every existing path under ``root`` that matches ``template``, as placeholder values.

    Placeholders given in ``fixed`` are filled in first. Returns a list of dicts such as
    ``{"subject": "UTS03", "story": "avatar"}``, sorted.
    """
    root = Path(root)
    partial = _PLACEHOLDER.sub(lambda m: fixed[m.group(1)] if m.group(1) in fixed else m.group(0), template)
    pattern = glob.escape(partial)
    # glob.escape leaves braces alone, so placeholders survive; turn them into wildcards.
    pattern = _PLACEHOLDER.sub("*", pattern)
    parts = _PLACEHOLDER.split(partial)
    regex, seen = "", set()
    for i, part in enumerate(parts):
        if i % 2 == 0:
            regex += re.escape(part)
        else:
            regex += f"(?P={part})" if part in seen else f"(?P<{part}>[^/]+)"
            seen.add(part)
    compiled = re.compile(regex + r"\Z")
    found = []
    for hit in glob.glob(os.path.join(glob.escape(str(root)), pattern)):
        rel = Path(hit).relative_to(root).as_posix()
        m = compiled.match(rel)
        if m:
            found.append(m.groupdict())
    return sorted(found, key=lambda d: tuple(d.values()))  # placeholders in template order
