"""Run configs: validation errors that name the key, path resolution, flags equivalence."""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path

import pytest

from gim_brain.runconfig import (RunConfigError, apply_run_config, fit_argv, load_run_config,
                                 merge_with_flags, parse_run_config)


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


def _fit_parser() -> argparse.ArgumentParser:
    """The real ``gim-brain fit`` parser."""
    from gim_brain.cli import fit

    sub = argparse.ArgumentParser(prog="gim-brain").add_subparsers()
    fit.register(sub)
    return sub.choices["fit"]


def test_paths_resolve_against_config_folder(good, tmp_path, monkeypatch):
    monkeypatch.chdir("/")
    cfg = load_run_config(good)
    assert cfg.data_root == (tmp_path / "data").resolve()
    assert cfg.out == (tmp_path / "runs" / "x").resolve()
    assert cfg.manifest == "lebel2023_pca"
    assert cfg.params == {"context": 32}
    assert cfg.encoding["backend"] == "numpy" and cfg.encoding["model"] is None


def test_fit_argv_is_what_the_flags_say(good, tmp_path):
    argv = fit_argv(load_run_config(good))
    args = _fit_parser().parse_args(argv)
    assert args.manifest == "lebel2023_pca"
    assert Path(args.data_root) == (tmp_path / "data").resolve()
    assert args.subject == "UTS03"
    assert args.features == ["wordrate", "wordrate,llm[layer=3]"]
    assert args.param == ["context=32"] and args.delays == "1,2,3"
    assert args.backend == "numpy" and args.n_folds == 4 and args.n_permutations == 0
    assert args.no_progress and not args.resume
    # the same fit written as flags by hand parses to the same namespace
    by_hand = _fit_parser().parse_args([
        "--manifest", "lebel2023_pca", "--data-root", str((tmp_path / "data").resolve()),
        "--subject", "UTS03", "--features", "wordrate", "--features", "wordrate,llm[layer=3]",
        "--param", "context=32", "--delays", "1,2,3", "--backend", "numpy",
        "--n-folds", "4", "--n-permutations", "0", "--no-progress",
        "--out", str((tmp_path / "runs" / "x").resolve())])
    assert vars(args) == vars(by_hand)


def test_flags_override_config(good):
    parser = _fit_parser()
    args = merge_with_flags(parser, fit_argv(load_run_config(good)),
                            ["--features", "llm", "--backend", "torch"])
    assert args.features == ["llm"]          # replaced, not appended
    assert args.backend == "torch"
    assert args.n_folds == 4                 # from the config
    assert args.subject == "UTS03"
    # the parser is left as it was
    assert parser.parse_args([]).backend == "auto"


def test_unknown_key_names_key_and_suggests(tmp_path):
    (tmp_path / "data").mkdir()
    path = _write(tmp_path, GOOD.replace("backend =", "backnd ="))
    with pytest.raises(RunConfigError) as err:
        load_run_config(path)
    msg = str(err.value)
    assert "encoding.backnd" in msg and "did you mean 'backend'" in msg and str(path) in msg


def test_unknown_section(tmp_path):
    (tmp_path / "data").mkdir()
    path = _write(tmp_path, GOOD.replace("[encoding]", "[encodings]"))
    with pytest.raises(RunConfigError, match=r"unknown section \[encodings\].*did you mean \[encoding\]"):
        load_run_config(path)


def test_missing_data_root_says_which_and_how(tmp_path):
    path = _write(tmp_path, GOOD)  # no data/ folder
    with pytest.raises(RunConfigError) as err:
        load_run_config(path)
    msg = str(err.value)
    assert "dataset.data_root" in msg and str((tmp_path / "data").resolve()) in msg
    assert "--data-root" in msg


def test_empty_data_root_uses_env(tmp_path, monkeypatch):
    path = _write(tmp_path, GOOD.replace('data_root = "data"', 'data_root = ""'))
    monkeypatch.delenv("GIM_BRAIN_DATA_ROOT", raising=False)
    with pytest.raises(RunConfigError, match="GIM_BRAIN_DATA_ROOT"):
        load_run_config(path)
    monkeypatch.setenv("GIM_BRAIN_DATA_ROOT", str(tmp_path))
    assert load_run_config(path).data_root == tmp_path.resolve()


def test_unset_variable_in_path(tmp_path, monkeypatch):
    monkeypatch.delenv("NO_SUCH_ROOT_VAR", raising=False)
    path = _write(tmp_path, GOOD.replace('data_root = "data"', 'data_root = "$NO_SUCH_ROOT_VAR/x"'))
    with pytest.raises(RunConfigError, match="NO_SUCH_ROOT_VAR"):
        load_run_config(path)


@pytest.mark.parametrize("old,new,pattern", [
    ('n_folds = 4', 'n_folds = "4"', "encoding.n_folds' must be a int"),
    ('subjects = ["UTS03"]', 'subjects = []', "dataset.subjects must be a non-empty"),
    ('context = 32', 'context = [32]', r"features.params.context must be a number"),
    ('delays = [1, 2, 3]', 'delays = ["1"]', r"features.delays must be a list of whole TRs"),
    ('manifest = "lebel2023_pca"', 'manifest = "nope/m.toml"', "dataset.manifest"),
    ('out = "runs/x"', '', "missing required key 'outputs.out'"),
])
def test_bad_values(tmp_path, old, new, pattern):
    (tmp_path / "data").mkdir()
    path = _write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(RunConfigError, match=pattern):
        load_run_config(path)


def test_invalid_toml_and_missing_file(tmp_path):
    path = _write(tmp_path, "[dataset\nmanifest = 1")
    with pytest.raises(RunConfigError, match="invalid TOML"):
        load_run_config(path)
    with pytest.raises(FileNotFoundError, match="nope.toml"):
        load_run_config(tmp_path / "nope.toml")


def test_several_subjects_get_their_own_folders(tmp_path):
    (tmp_path / "data").mkdir()
    cfg = parse_run_config({"dataset": {"manifest": "m", "data_root": str(tmp_path / "data"),
                                        "subjects": ["S1", "S2"]},
                            "features": {"sets": ["wordrate"]},
                            "outputs": {"out": str(tmp_path / "run")}})
    with pytest.raises(RunConfigError, match="choose one"):
        fit_argv(cfg)
    argv = fit_argv(cfg, "S2")
    assert argv[argv.index("--out") + 1] == str(tmp_path / "run" / "S2")
    with pytest.raises(RunConfigError, match="S3"):
        fit_argv(cfg, "S3")


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
    cfg = _write(tmp_path, f"""
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
        [outputs]
        out = "run_config"
        progress = false
    """)
    from threadpoolctl import threadpool_limits

    limit = threadpool_limits(1)  # the banded random search: one BLAS thread is far faster here
    flags = ["fit", "--manifest", str(root / "manifest.toml"), "--data-root", str(root),
             "--subject", "sim01", "--features", "wordrate", "--features", "wordrate,letterrate",
             "--delays", "1,2,3,4", "--backend", "numpy", "--n-folds", "2",
             "--n-permutations", "0", "--no-progress", "--out", str(tmp_path / "run_flags")]
    try:
        assert main(["fit", str(cfg)]) == 0  # `gim-brain fit CONFIG.toml`
        assert main(flags) == 0
    finally:
        limit.restore_original_limits()
    assert (tmp_path / "run_config" / "report.html").is_file()
    by_config = json.loads((tmp_path / "run_config" / "summary.json").read_text())
    by_flags = json.loads((tmp_path / "run_flags" / "summary.json").read_text())
    assert by_config["parameters"] == by_flags["parameters"]
    for spec in ("wordrate", "wordrate,letterrate"):
        a, b = by_config["feature_sets"][spec], by_flags["feature_sets"][spec]
        assert a["mean_r"] == b["mean_r"] and a["top10_mean_r"] == b["top10_mean_r"]


def test_apply_run_config_to_parsed_args(good, tmp_path):
    parser = _fit_parser()
    args = parser.parse_args(["--backend", "torch", "--features", "llm"])
    merged = apply_run_config(args, parser, good)
    assert merged.backend == "torch" and merged.features == ["llm"]       # flags win
    assert merged.n_folds == 4 and merged.subject == "UTS03"              # config fills the rest
    assert merged.data_root == str((tmp_path / "data").resolve())
    plain = apply_run_config(parser.parse_args([]), parser, good)
    assert plain.features == ["wordrate", "wordrate,llm[layer=3]"] and plain.backend == "numpy"


def test_fit_cli_reports_a_bad_config_by_key(tmp_path, capsys):
    from gim_brain.cli.main import main

    (tmp_path / "data").mkdir()
    cfg = _write(tmp_path, GOOD.replace("n_folds = 4", "n_fold = 4"))
    assert main(["fit", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "n_fold" in err and "n_folds" in err
    assert main(["fit", str(tmp_path / "absent.toml")]) == 2
    assert "absent.toml" in capsys.readouterr().err
