"""``gim_brain.cli`` only parses, calls and prints: the fit/demo/map/compare/features commands
do no pipeline work of their own (no features built, no fits, no arrays, no figures, no split).

This reads their source: a name of the pipeline (building, fitting, writing runs, choosing test
stories, numpy, matplotlib) appearing there fails here, so such work goes to the layers."""

from __future__ import annotations

import ast
from pathlib import Path

import gim_brain

CLI = Path(gim_brain.__file__).resolve().parent / "cli"
THIN = ("fit", "demo", "map", "compare", "features")
PIPELINE = {
    "build_design", "build_space", "fit_encoding", "fit_feature_set", "fit_ridge", "fit_banded",
    "write_run", "SpaceContext", "load_responses", "load_story", "stories_with_responses",
    "test_stories", "train_stories", "threadpool_limits", "savefig", "values_to_img", "plot_glass",
    "parse_spec", "get_space", "resolve_params", "story_folds", "render_maps", "mkdir",
    "preprocess_responses", "data_fingerprint", "paired_difference_test",
}
MODULES = {"numpy", "matplotlib", "threadpoolctl", "nibabel", "nilearn", "himalaya", "torch"}


def _names(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, ast.ImportFrom):
            found.update(a.name for a in node.names)
            if not node.level:
                found.add((node.module or "").split(".")[0])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
    return found


def test_thin_commands_hold_no_pipeline_work():
    problems = []
    for name in THIN:
        path = CLI / f"{name}.py"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        used = _names(tree)
        for bad in sorted((PIPELINE | MODULES) & used):
            problems.append(f"cli/{name}.py uses {bad}")
    assert not problems, "pipeline work in cli/:\n" + "\n".join(problems)


def test_the_check_can_fail():
    tree = ast.parse("import numpy as np\nfrom ..features import build_design\nx.savefig('a')\n")
    assert {"numpy", "build_design", "savefig"} <= _names(tree)
