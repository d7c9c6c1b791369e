"""The layers only import downwards: data -> (lm, gim) -> features -> encoding -> maps -> top.

A lower layer never imports a higher one (ARCHITECTURE.md). This reads every module's imports
from its source, so a violation fails here before it turns into an import cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import gim_brain

PACKAGE = Path(gim_brain.__file__).resolve().parent

# layer -> the gim_brain layers it may import (besides itself and private helpers like _cache)
ALLOWED = {
    "data": set(),
    "lm": set(),
    "gim": set(),
    "features": {"data", "lm", "gim"},
    "encoding": set(),
    "maps": {"encoding"},
    "report": {"encoding", "maps"},
    "experiment": {"data", "lm", "features", "encoding", "report"},
    "runconfig": {"experiment"},
    "demo": {"data", "lm", "gim", "features", "encoding", "maps", "report", "runconfig",
             "experiment"},
    "cli": {"data", "lm", "gim", "features", "encoding", "maps", "report", "runconfig", "demo",
            "experiment"},
}


def _layer_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


def _imported_layers(source: str, module: tuple[str, ...]) -> set[str]:
    """gim_brain layers imported by ``source``, the module at ``gim_brain.<module...>``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level:
            base = ["gim_brain", *module[: len(module) - node.level]]
            names = [".".join(base + [node.module])] if node.module else [
                ".".join(base + [a.name]) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "gim_brain" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_every_layer_only_imports_lower_layers():
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        layer = _layer_of(path)
        if layer.startswith("_") or layer not in ALLOWED:
            continue
        module = path.relative_to(PACKAGE).with_suffix("").parts
        for other in _imported_layers(path.read_text(encoding="utf-8"), module) - {layer}:
            if other.startswith("_"):
                continue
            if other not in ALLOWED[layer]:
                problems.append(f"{path.relative_to(PACKAGE.parent)} ({layer}) imports {other}")
    assert not problems, "layer violations:\n" + "\n".join(problems)


def test_the_checker_resolves_relative_and_absolute_imports():
    source = ("from ..encoding import fit\nfrom . import cleaning\nfrom .. import maps\n"
              "import gim_brain.lm.model\nfrom gim_brain.gim import GIM\nfrom .. import __version__\n")
    assert _imported_layers(source, ("features", "design")) == {
        "encoding", "features", "maps", "lm", "gim", "__version__"}
    assert _imported_layers("from ...data import x\n", ("cli", "sub", "mod")) == {"data"}
