"""Run configs (``Experiment`` TOML files): errors that name the key, path resolution, and
flags that override the config whatever their value."""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path

import pytest

from gim_brain.experiment import Experiment
from gim_brain.runconfig import RunConfigError, load_run_config


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(textwrap.dedent(body))
    return path


GOOD = """
    name = "uts03-llm"
    [dataset]
    manifest = "lebel2023_pca"
    data_root = "data"
    subjects = ["UTS03"]
    [features]
    sets = ["wordrate", "wordrate,llm[layer=3]"]
    delays = [1, 2, 3]
    [features.params]
    context = 32
    [encoding]
    backend = "numpy"
    n_folds = 4
    n_permutations = 0
    [outputs]
    out = "runs/x"
    progress = false
"""


@pytest.fixture
def good(tmp_path):
    (tmp_path / "data").mkdir()
    return _write(tmp_path, GOOD)


def _args(*argv: str) -> argparse.Namespace:
    """``gim-brain fit ARGV`` parsed by the real parser."""
    from gim_brain.cli.main import build_parser

    return build_parser().parse_args(["fit", *argv])


def _exp(*argv: str) -> Experiment:
    from gim_brain.cli.fit import build_experiment

    return build_experiment(_args(*argv))


def test_paths_resolve_against_config_folder(good, tmp_path, monkeypatch):
    monkeypatch.chdir("/")
    exp = load_run_config(good)
    assert exp.dataset.data_root == str((tmp_path / "data").resolve())
    assert exp.outputs.out == str((tmp_path / "runs" / "x").resolve())
    assert exp.dataset.manifest == "lebel2023_pca"  # a built-in name stays a name
    assert exp.features.params == {"context": 32}
    assert exp.encoding.backend == "numpy" and exp.features.model is None
    assert exp.subjects == ("UTS03",) and exp.name == "uts03-llm"


def test_config_and_the_same_flags_give_the_same_experiment(good, tmp_path):
    by_config = _exp(str(good))
    by_flags = _exp("--manifest", "lebel2023_pca", "--data-root", str((tmp_path / "data").resolve()),
                    "--subject", "UTS03", "--features", "wordrate", "--features",
                    "wordrate,llm[layer=3]", "--param", "context=32", "--delays", "1,2,3",
                    "--backend", "numpy", "--n-folds", "4", "--n-permutations", "0",
                    "--no-progress", "--out", str((tmp_path / "runs" / "x").resolve()))
    # --param values stay strings (each space converts its own); the rest is equal
    assert by_flags.features.params == {"context": "32"}
    assert by_flags.replace(**{"features.params": {"context": 32}}, name="uts03-llm") == by_config


def test_flags_override_config(good):
    exp = _exp(str(good), "--features", "llm", "--backend", "torch")
    assert exp.features.sets == ("llm",)          # replaced, not appended
    assert exp.encoding.backend == "torch"
    assert exp.encoding.n_folds == 4              # from the config
    assert exp.subjects == ("UTS03",)


def test_a_flag_equal_to_its_default_still_overrides(good):
    """The config says backend numpy, n_permutations 0, progress false: flags that repeat the
    built-in defaults must still win (given flags are detected, not compared with defaults)."""
    exp = _exp(str(good), "--backend", "auto", "--n-permutations", "1000", "--progress",
               "--delays", "1,2,3,4")
    assert exp.encoding.backend == "auto" and exp.encoding.n_permutations == 1000
    assert exp.outputs.progress is True and exp.features.delays == (1, 2, 3, 4)
    assert _exp(str(good)).encoding.backend == "numpy"  # and without the flags, the config


def test_params_flags_merge_key_by_key(good):
    exp = _exp(str(good), "--param", "llm.layer=5")
    assert exp.features.params == {"context": 32, "llm.layer": "5"}


def test_subjects_repeated_and_all(good):
    assert _exp(str(good), "--subject", "A", "--subject", "B").subjects == ("A", "B")
    assert _exp(str(good), "--subject", "all").subjects == ("all",)


def test_unknown_key_names_key_and_suggests(tmp_path):
    (tmp_path / "data").mkdir()
    path = _write(tmp_path, GOOD.replace("backend =", "backnd ="))
    with pytest.raises(RunConfigError) as err:
        load_run_config(path)
    msg = str(err.value)
    assert "encoding.backnd" in msg and "did you mean 'backend'" in msg and str(path) in msg


def test_unknown_section(tmp_path):
    path = _write(tmp_path, GOOD.replace("[encoding]", "[encodings]"))
    with pytest.raises(RunConfigError, match=r"unknown section \[encodings\].*did you mean \[encoding\]"):
        load_run_config(path)


def test_unset_variable_in_path(tmp_path, monkeypatch):
    monkeypatch.delenv("NO_SUCH_ROOT_VAR", raising=False)
    path = _write(tmp_path, GOOD.replace('data_root = "data"', 'data_root = "$NO_SUCH_ROOT_VAR/x"'))
    with pytest.raises(RunConfigError, match="NO_SUCH_ROOT_VAR"):
        load_run_config(path)


@pytest.mark.parametrize("old,new,pattern", [
    ('n_folds = 4', 'n_folds = "4"', r"encoding.n_folds \(--n-folds\) must be an integer"),
    ('n_folds = 4', 'n_folds = 1', r"encoding.n_folds \(--n-folds\) must be >= 2"),
    ('subjects = ["UTS03"]', 'subjects = []', r"dataset.subjects \(--subject\) must be a non-empty"),
    ('context = 32', 'context = [32]', r"features.params.context must be a number"),
    ('delays = [1, 2, 3]', 'delays = ["1"]', r"features.delays \(--delays\) must be a list of whole TRs"),
    ('delays = [1, 2, 3]', 'delays = [1, 2000]', r"2000: each delay must be shorter than 1000"),
    ('backend = "numpy"', 'backend = "cupy"', r"encoding.backend \(--backend\) must be one of"),
    ('out = "runs/x"', '', r"missing required key 'outputs.out'"),
    ('[features]', '[features]\nalpha = 3', r"unknown key 'features.alpha'"),
    ('n_permutations = 0', 'n_permutations = 0\nscore = "pearson"', r"encoding.score \(--score\)"),
])
def test_bad_values(tmp_path, old, new, pattern):
    (tmp_path / "data").mkdir()
    path = _write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(RunConfigError, match=pattern) as err:
        load_run_config(path)
    assert str(path) in str(err.value)


def test_invalid_toml_and_missing_file(tmp_path):
    path = _write(tmp_path, "[dataset\nmanifest = 1")
    with pytest.raises(RunConfigError, match="invalid TOML"):
        load_run_config(path)
    with pytest.raises(FileNotFoundError, match="nope.toml"):
        load_run_config(tmp_path / "nope.toml")


def test_fit_cli_reports_a_bad_config_by_key(tmp_path, capsys):
    from gim_brain.cli.main import main

    (tmp_path / "data").mkdir()
    cfg = _write(tmp_path, GOOD.replace("n_folds = 4", "n_fold = 4"))
    assert main(["fit", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "n_fold" in err and "n_folds" in err
    assert main(["fit", str(tmp_path / "absent.toml")]) == 2
    assert "absent.toml" in capsys.readouterr().err


def test_missing_data_root_names_it(tmp_path, capsys):
    from gim_brain.cli.main import main

    cfg = _write(tmp_path, GOOD)  # no data/ folder
    assert main(["fit", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "dataset.data_root (--data-root)" in err and str((tmp_path / "data").resolve()) in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_config_and_flags_give_the_same_summary(tmp_path, monkeypatch):
    """`gim-brain fit` run from a config and from the equivalent flags writes the same scores."""
    from gim_brain.cli.main import main
    from gim_brain.demo.brain import DEFAULT_REGIONS, PlantedRegion
    from gim_brain.demo.dataset import DemoParams, build_demo_dataset

    monkeypatch.setenv("GIM_BRAIN_CACHE", str(tmp_path / "cache"))
    regions = tuple(PlantedRegion(space, r.centers_mm, r.radius_mm, r.label)
                    for space, r in zip(("wordrate", "letterrate", "wordrate"), DEFAULT_REGIONS))
    root = build_demo_dataset(tmp_path / "data", DemoParams(resolution_mm=10,
                                                            regions=regions, space_params={}),
                              progress=False)
    cfg = _write(tmp_path, """
        [dataset]
        manifest = "data/manifest.toml"
        data_root = "data"
        subjects = ["sim01"]
        [features]
        sets = ["wordrate", "wordrate,letterrate"]
        delays = [1, 2, 3, 4]
        [encoding]
        backend = "numpy"
        n_folds = 2
        n_permutations = 0
        blas_threads = 1
        [outputs]
        out = "run_config"
        progress = false
    """)
    flags = ["fit", "--manifest", str(root / "manifest.toml"), "--data-root", str(root),
             "--subject", "sim01", "--features", "wordrate", "--features", "wordrate,letterrate",
             "--delays", "1,2,3,4", "--backend", "numpy", "--n-folds", "2", "--blas-threads", "1",
             "--n-permutations", "0", "--no-progress", "--out", str(tmp_path / "run_flags")]
    assert main(["fit", str(cfg)]) == 0  # `gim-brain fit CONFIG.toml`
    assert main(flags) == 0
    assert (tmp_path / "run_config" / "report.html").is_file()
    by_config = json.loads((tmp_path / "run_config" / "summary.json").read_text())
    by_flags = json.loads((tmp_path / "run_flags" / "summary.json").read_text())
    assert by_config["parameters"] == by_flags["parameters"]
    for spec in ("wordrate", "wordrate,letterrate"):
        a, b = by_config["feature_sets"][spec], by_flags["feature_sets"][spec]
        assert a["mean_r"] == b["mean_r"] and a["top10_mean_r"] == b["top10_mean_r"]
