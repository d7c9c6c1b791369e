"""``gim-brain fit`` end to end on a tiny on-disk dataset (features -> encoding -> run folder)."""

import json

import numpy as np
import pytest
from _features_helpers import make_tiny_dataset

from gim_brain.cli.main import main
from gim_brain.encoding import EncodingResult


@pytest.fixture()
def tiny(tmp_path, monkeypatch):
    monkeypatch.setenv("GIM_BRAIN_CACHE", str(tmp_path / "cache"))
    manifest = make_tiny_dataset(tmp_path / "data", n_stories=5)
    return manifest, tmp_path


def _fit(manifest, tmp, *extra):
    return main(["fit", "--manifest", str(manifest), "--data-root", str(tmp / "data"),
                 "--subject", "S1", "--out", str(tmp / "run"), "--no-progress",
                 "--n-permutations", "20", "--n-folds", "2", "--backend", "numpy", *extra])


def test_fit_writes_run_with_plain_and_banded_specs(tiny, capsys):
    manifest, tmp = tiny
    rc = _fit(manifest, tmp, "--features", "wordrate+ar-control[n_components=3]", "--features",
              "wordrate,letterrate")
    assert rc == 0
    summary = json.loads((tmp / "run" / "summary.json").read_text())
    assert summary["subject"] == "S1" and summary["test_stories"] == ["s0"]
    assert set(summary["feature_sets"]) == {"wordrate+ar-control[n_components=3]", "wordrate,letterrate"}
    entry = summary["feature_sets"]["wordrate+ar-control[n_components=3]"]
    assert entry["n_targets"] == 10 and -1 <= entry["mean_r"] <= 1
    assert json.loads((tmp / "run" / "targets.json").read_text())["kind"] == "components"
    res = EncodingResult.load(tmp / "run" / entry["result"])
    assert res.feature_set == "wordrate+ar-control[n_components=3]" and np.isfinite(res.scores["r"]).all()
    assert summary["feature_sets"]["wordrate,letterrate"]["spaces"] == ["wordrate", "letterrate"]
    assert summary["parameters"]["train_stories"] == ["s1", "s2", "s3", "s4"]
    # --resume reuses what is already fitted with the same parameters
    capsys.readouterr()
    assert _fit(manifest, tmp, "--features", "wordrate,letterrate", "--resume") == 0
    assert "reused" in capsys.readouterr().out


def test_fit_bad_input(tiny, capsys):
    manifest, tmp = tiny
    assert _fit(manifest, tmp, "--features", "nosuch") == 2
    assert "unknown feature space 'nosuch'" in capsys.readouterr().err
    assert _fit(manifest, tmp, "--features", "wordrate", "--param", "gap=3") == 2
    assert "parameter 'gap'" in capsys.readouterr().err
    assert _fit(manifest, tmp, "--features", "wordrate", "--train-stories", "s0") == 2
    assert "test stories" in capsys.readouterr().err
    rc = main(["fit", "--manifest", str(manifest), "--data-root", str(tmp / "data"), "--subject",
               "S9", "--features", "wordrate", "--out", str(tmp / "r")])
    assert rc == 2 and "unknown subject 'S9'" in capsys.readouterr().err
