"""A tiny dataset on disk in the ``lebel2023_pca`` layout, for feature-space tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

TEXT = ("the old man walked to the river and the old man sat down by the water and looked at the "
        "boats that came in from the sea every morning he walked to the river").split()

MANIFEST = """
name = "tiny"
description = "tiny test dataset"
[words]
path = "words/{story}.tsv"
[cleaning]
lowercase = true
[timing]
tr = 2.0
audio_start = 10.0
trim_start = 10
trim_end = 10
n_trs = "stories.csv"
story_column = "story"
n_trs_column = "n_trs"
[responses]
path = "responses/{subject}/{story}.npz"
key = "responses"
trimmed = true
[stories]
test_file = "splits.json"
test_key = "test"
"""


def make_tiny_dataset(root: Path, n_stories: int = 4, n_targets: int = 10, seed: int = 0,
                      silent_gap: bool = True) -> Path:
    """Write stories ``s0..s{n-1}`` (``s0`` is the test story) and subject ``S1``; returns the manifest.

    Each story repeats TEXT at one word per 0.6 s after the audio start; with ``silent_gap`` the
    words between 30 s and 42 s are removed, so several TRs have no words.
    """
    rng = np.random.default_rng(seed)
    root = Path(root)
    (root / "words").mkdir(parents=True, exist_ok=True)
    (root / "responses" / "S1").mkdir(parents=True, exist_ok=True)
    rows = ["story,n_trs"]
    for i in range(n_stories):
        name = f"s{i}"
        words = (TEXT * 3)[: 90 + 10 * i]
        onsets = 1.0 + 0.6 * np.arange(len(words))
        keep = ~((onsets > 30) & (onsets < 42)) if silent_gap else np.ones(len(words), bool)
        lines = ["onset\toffset\tword"] + [f"{o:.3f}\t{o + 0.4:.3f}\t{w.upper()}"
                                           for o, w, k in zip(onsets, words, keep) if k]
        (root / "words" / f"{name}.tsv").write_text("\n".join(lines) + "\n")
        n_trs = int(np.ceil((onsets[-1] + 10) / 2.0)) + 20
        rows.append(f"{name},{n_trs}")
        np.savez(root / "responses" / "S1" / f"{name}.npz",
                 responses=rng.normal(size=(n_trs - 20, n_targets)).astype(np.float32))
    (root / "stories.csv").write_text("\n".join(rows) + "\n")
    (root / "splits.json").write_text(json.dumps({"test": ["s0"]}))
    manifest = root / "tiny.toml"
    manifest.write_text(MANIFEST)
    return manifest
