"""The demo chain recovers its planted structure (small configuration, tiny random-weight LM)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gim_brain.demo.dataset import demo_dataset, load_planted, DemoParams
from gim_brain.demo.pipeline import DemoConfig, planted_recovery, run_demo


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory):
    """One small demo run (10-mm brain, tiny random-weight Llama for the LM spaces, no maps)."""
    from _lm_fixtures import tiny_lm

    root = tmp_path_factory.mktemp("demo")
    lm = tiny_lm()
    lm.model.save_pretrained(root / "tiny_lm")
    lm.tokenizer.save_pretrained(root / "tiny_lm")
    spec = {"model": str(root / "tiny_lm")}
    data = DemoParams(resolution_mm=10, space_params={"wordrate": {}, "llm": dict(spec),
                                                      "gim-stats": dict(spec)})
    config = DemoConfig(data=data, n_permutations=0, single_spaces=False, n_iter=8,
                        variance_partitioning=False, maps="", surface_map=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GIM_BRAIN_CACHE", str(root / "cache"))
        summary = run_demo(root / "run", config, progress=False)
    return root / "run", config, summary


def test_planted_recovery_counts():
    split = {"a": np.array([0.5, 0.1, 0.0, 0.2]), "b[k=1]": np.array([0.1, 0.3, np.nan, 0.9])}
    rec = planted_recovery(split, np.array([0, 1, 1, -1]), ["a", "b"])
    assert rec["fraction"] == pytest.approx(2 / 3)  # voxel 2 (NaN for b) goes to a
    assert rec["per_space"] == {"a": {"n_voxels": 1, "recovered": 1, "fraction": 1.0},
                                "b": {"n_voxels": 2, "recovered": 1, "fraction": 0.5}}
    with pytest.raises(ValueError, match="no band for planted space"):
        planted_recovery(split, np.array([0]), ["c"])


@pytest.mark.slow
def test_demo_recovers_planted_structure(small_demo):
    run, config, summary = small_demo
    assert summary["planted_recovery"] >= 0.8, summary["planted"]["per_space"]
    on_disk = json.loads((run / "summary.json").read_text())
    assert on_disk["planted_recovery"] == summary["planted_recovery"]
    for key in ("parameters", "versions", "timings", "feature_sets", "demo_timings"):
        assert key in on_disk, key
    assert (run / "report.html").read_text().count("data:image/png;base64,") >= 1
    assert (run / "demo.toml").is_file()
    # attributing the ground truth to the wrong spaces destroys recovery: the statistic can fail
    from gim_brain.encoding import EncodingResult

    banded = EncodingResult.load(run / on_disk["feature_sets"][config.banded_spec]["result"])
    labels = load_planted(run / "data")["labels"]
    wrong = planted_recovery(banded.split_scores, labels, ["llm", "gim-stats", "wordrate"])
    assert wrong["fraction"] < 0.5


@pytest.mark.slow
def test_demo_dataset_loads_like_real_data(small_demo, monkeypatch):
    run, config, _ = small_demo
    root = run / "data"
    monkeypatch.setenv("GIM_BRAIN_CACHE", str(run.parent / "cache"))
    stamp = (root / "responses" / "sim01" / "baker.npz").stat().st_mtime_ns
    ds = demo_dataset(root, config.data, progress=False)  # same key: reused, not rebuilt
    assert (root / "responses" / "sim01" / "baker.npz").stat().st_mtime_ns == stamp
    assert ds.name == "demo" and ds.subjects() == ["sim01"] and ds.test_stories == ["clockmaker"]
    assert len(ds.stories()) == 5
    story = ds.load_story("baker")
    assert not story.cleaning_report.dropped  # no real word lost to noise-mark cleaning
    y = ds.load_responses("sim01", "baker")
    assert y.shape == (story.grid.n_rows, 1876) and y.dtype == np.float32
    # ~2.5 words/s: about 5 words per 2-s row while the narrator speaks
    counts = story.grid.words_per_row(story.transcript.onsets)
    assert 4.0 < counts[counts > 0].mean() < 6.5
    planted = load_planted(root)
    assert [r["space"] for r in planted["regions"]] == ["wordrate", "llm", "gim-stats"]
    assert planted["labels"].shape == (1876,)


def test_demo_cli_rejects_bad_options(tmp_path, capsys):
    from gim_brain.cli.main import main

    assert main(["demo", "--out", str(tmp_path / "x"), "--snr", "0"]) == 2
    assert "--snr must be > 0" in capsys.readouterr().err
    assert main(["demo", "--out", str(tmp_path / "x"), "--resolution", "2"]) == 2
    assert "--resolution" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()  # nothing computed or written


@pytest.mark.slow
def test_fit_on_demo_toml_reproduces_the_demo_scores_exactly(small_demo, tmp_path, monkeypatch):
    """`gim-brain fit OUT/demo.toml --out X` is the demo's experiment: the same scores, bit for bit."""
    from gim_brain.cli.main import main
    from gim_brain.encoding import load_results

    run, config, summary = small_demo
    monkeypatch.setenv("GIM_BRAIN_CACHE", str(run.parent / "cache"))
    assert main(["fit", str(run / "demo.toml"), "--out", str(tmp_path / "refit"),
                 "--no-progress"]) == 0
    demo, refit = load_results(run), load_results(tmp_path / "refit")
    assert list(refit) == list(demo) == config.feature_sets
    for spec in demo:
        for name in ("r", "r2"):
            assert np.array_equal(demo[spec].scores[name], refit[spec].scores[name]), (spec, name)
        assert np.array_equal(demo[spec].alphas, refit[spec].alphas)
        for band, values in demo[spec].split_scores.items():
            assert np.array_equal(values, refit[spec].split_scores[band])
    again = json.loads((tmp_path / "refit" / "summary.json").read_text())
    assert again["parameters"] == summary["parameters"]
    assert again["response_preprocessing"]["method"] == "center"
    for spec, entry in summary["feature_sets"].items():
        assert again["feature_sets"][spec]["mean_r"] == entry["mean_r"]
