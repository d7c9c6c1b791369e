"""Several subjects in one command: per-subject run folders and a cross-subject table."""

from __future__ import annotations

import json

import pytest

from gim_brain.cli.main import main


@pytest.fixture(scope="module")
def three_subjects(tmp_path_factory):
    """The demo generator with three simulated subjects (text-rate spaces only: fast)."""
    from gim_brain.demo.brain import DEFAULT_REGIONS, PlantedRegion
    from gim_brain.demo.dataset import DemoParams, build_demo_dataset

    root = tmp_path_factory.mktemp("three")
    regions = tuple(PlantedRegion(space, r.centers_mm, r.radius_mm, r.label)
                    for space, r in zip(("wordrate", "letterrate", "wordrate"), DEFAULT_REGIONS))
    params = DemoParams(subjects=("sim01", "sim02", "sim03"), resolution_mm=12, regions=regions,
                        space_params={})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GIM_BRAIN_CACHE", str(root / "cache"))
        build_demo_dataset(root / "data", params, progress=False)
    return root


@pytest.mark.slow
def test_three_subjects_in_one_command(three_subjects, monkeypatch, capsys):
    root = three_subjects
    monkeypatch.setenv("GIM_BRAIN_CACHE", str(root / "cache"))
    out = root / "run"
    rc = main(["fit", "--manifest", str(root / "data" / "manifest.toml"), "--data-root",
               str(root / "data"), "--subject", "all", "--features", "wordrate", "--features",
               "wordrate,letterrate", "--n-folds", "2", "--n-permutations", "0", "--backend",
               "numpy", "--n-iter", "3", "--alphas", "logspace:0:6:7", "--blas-threads", "1",
               "--no-progress", "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "wordrate,letterrate" in printed and "median r" in printed
    top = json.loads((out / "summary.json").read_text())
    assert top["subjects"] == ["sim01", "sim02", "sim03"]
    rows = top["per_subject"]
    assert len(rows) == 6 and {r["subject"] for r in rows} == {"sim01", "sim02", "sim03"}
    for row in rows:
        sub = json.loads((out / row["subject"] / "summary.json").read_text())
        entry = sub["feature_sets"][row["feature_set"]]
        assert row["mean_r"] == entry["mean_r"] and row["median_r"] == entry["median_r"]
        assert row["top10_mean_r"] == entry["top10_mean_r"]
        assert sub["subject"] == row["subject"]
        result = json.loads((out / row["subject"] / entry["result"] / "result.json").read_text())
        if row["feature_set"] == "wordrate,letterrate":  # bands: the banded fast path (auto)
            assert result["provenance"]["solver_used"] == "fastpath"
            arrays = set(result["arrays"])
            assert {"unique_variance/wordrate", "unique_variance/letterrate"} <= arrays
        assert (out / row["subject"] / "report.html").is_file()
    cross = top["cross_subject"]["wordrate"]
    assert cross["n_subjects"] == 3
    means = [r["mean_r"] for r in rows if r["feature_set"] == "wordrate"]
    assert cross["mean_r"] == pytest.approx(sum(means) / 3)
    # the planted wordrate voxels are found in every subject
    assert all(m > 0 for m in means)
    page = (out / "report.html").read_text()
    assert "sim02" in page and "median r" in page and "data:image/png;base64," in page
    # the subjects' simulations differ (own weights and noise): not one subject copied thrice
    assert len({round(m, 6) for m in means}) == 3


def test_unknown_subject_among_several_is_named(three_subjects, capsys):
    root = three_subjects
    rc = main(["fit", "--manifest", str(root / "data" / "manifest.toml"), "--data-root",
               str(root / "data"), "--subject", "sim01", "--subject", "sim09", "--features",
               "wordrate", "--out", str(root / "bad")])
    assert rc == 2
    assert "unknown subject 'sim09'" in capsys.readouterr().err
    assert not (root / "bad").exists()


@pytest.mark.slow
def test_map_of_a_several_subject_run_maps_each_subject(three_subjects, monkeypatch):
    root = three_subjects
    monkeypatch.setenv("GIM_BRAIN_CACHE", str(root / "cache"))
    out = root / "run2"
    assert main(["fit", "--manifest", str(root / "data" / "manifest.toml"), "--data-root",
                 str(root / "data"), "--subject", "sim01", "--subject", "sim03", "--features",
                 "wordrate", "--n-folds", "2", "--n-permutations", "0", "--backend", "numpy",
                 "--no-progress", "--no-report", "--out", str(out)]) == 0
    assert not (out / "report.html").exists()  # --no-report
    assert sorted(json.loads((out / "summary.json").read_text())["runs"]) == ["sim01", "sim03"]
    assert main(["map", str(out), "--out", str(root / "maps"), "--kind", "volume",
                 "--dpi", "30"]) == 0
    for subject in ("sim01", "sim03"):
        assert (root / "maps" / subject / "r_wordrate.nii.gz").is_file()
    assert not (root / "maps" / "sim02").exists()
