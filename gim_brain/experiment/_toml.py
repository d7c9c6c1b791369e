"""A small TOML writer for experiment configs (tables of strings, numbers, booleans, lists).

Only what :meth:`Experiment.to_toml` needs; the output reads back with :mod:`tomllib` to the
same values (floats are written with ``repr``, which round-trips exactly).
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["dumps", "key", "value"]

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _string(text: str) -> str:
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def key(name: str) -> str:
    """A TOML key: bare when possible, else a quoted string."""
    return name if _BARE.match(name) else _string(name)


def value(v: Any) -> str:
    """One TOML value (str, bool, int, float or a list of those)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        text = repr(v)
        return text if any(c in text for c in ".eE") else text + ".0"
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(value(x) for x in v) + "]"
    raise TypeError(f"cannot write a {type(v).__name__} ({v!r}) as a TOML value")


def _table(lines: list[str], path: list[str], table: dict[str, Any]) -> None:
    plain = {k: v for k, v in table.items() if v is not None and not isinstance(v, dict)}
    if path:
        if lines:
            lines.append("")
        lines.append("[" + ".".join(key(p) for p in path) + "]")
    lines.extend(f"{key(k)} = {value(v)}" for k, v in plain.items())
    for k, sub in table.items():
        if isinstance(sub, dict) and sub:  # an empty table reads back as the default {}
            _table(lines, path + [k], sub)


def dumps(tables: list[tuple[str, dict[str, Any]]], header: str = "") -> str:
    """TOML text of ``[(table name, {key: value})]``; table "" is the top level.

    Values that are None are left out (TOML has no null: the reader's default applies). A dict
    value becomes a sub-table ``[name.key]``.
    """
    lines = [f"# {line}" if line else "#" for line in header.splitlines()] if header else []
    for name, table in tables:
        _table(lines, [name] if name else [], table)
    return "\n".join(lines) + "\n"
