"""The Experiment: lossless TOML, every encoding option from TOML and from flags, parameter
routing, and the guards of run_experiment (out, lock, folds, resume on changed data)."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gim_brain.experiment import (DatasetSpec, EncodingSpec, Experiment, ExperimentError,
                                  FeatureSpec, OutputSpec, ResponseSpec, route_params,
                                  run_experiment)

_text = st.text(max_size=12)
_name = st.text(min_size=1, max_size=12).filter(lambda s: s.strip() != "")
_key = st.from_regex(r"\A[A-Za-z0-9_-]{1,8}(\.[A-Za-z0-9_]{1,8})?\Z")
_int64 = st.integers(min_value=-(2 ** 63), max_value=2 ** 63 - 1)
_value = st.one_of(_int64, st.floats(allow_nan=False, allow_infinity=False), st.booleans(), _text)
_opt_int = st.none() | st.integers(1, 2 ** 31)


@st.composite
def experiments(draw):
    encoding = EncodingSpec(
        alphas=tuple(draw(st.lists(st.floats(min_value=1e-300, max_value=1e300), min_size=1,
                                   max_size=5))),
        n_folds=draw(st.integers(2, 50)), backend=draw(st.sampled_from(
            ["auto", "numpy", "torch", "torch_cuda"])),
        solver=draw(st.sampled_from(["auto", "fastpath", "ridge", "kernel", "banded_ridge",
                                     "multiple_kernel"])),
        score=draw(st.sampled_from(["correlation", "r2"])), n_iter=draw(st.integers(1, 10 ** 6)),
        variance_partitioning=draw(st.booleans()), n_permutations=draw(st.integers(0, 10 ** 6)),
        block_size=draw(st.integers(1, 1000)),
        fdr_alpha=draw(st.floats(min_value=1e-9, max_value=0.999)),
        seed=draw(st.integers(0, 2 ** 32)), keep_weights=draw(st.booleans()),
        keep_predictions=draw(st.booleans()), n_targets_batch=draw(_opt_int),
        blas_threads=draw(_opt_int))
    try:
        return Experiment(
            name=draw(_text), description=draw(_text),
            dataset=DatasetSpec(manifest=draw(_name), data_root=draw(_text),
                                train_stories=draw(st.none() | st.lists(_name, min_size=1,
                                                                        max_size=3))),
            subjects=draw(st.lists(_name, min_size=1, max_size=3, unique=True)),
            features=FeatureSpec(sets=draw(st.lists(_name, min_size=1, max_size=3, unique=True)),
                                 params=draw(st.dictionaries(_key, _value, max_size=4)),
                                 delays=draw(st.lists(st.integers(-999, 999), min_size=1,
                                                      max_size=5)),
                                 model=draw(st.none() | _text), device=draw(_text)),
            responses=ResponseSpec(draw(st.sampled_from(["center", "zscore", "none"]))),
            encoding=encoding,
            outputs=OutputSpec(out=draw(_name), resume=draw(st.booleans()),
                               progress=draw(st.booleans()), report=draw(st.booleans())))
    except ExperimentError:
        assume(False)  # e.g. a parameter named like a space of another parameter


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(experiments())
def test_toml_round_trip_is_lossless(exp):
    text = exp.to_toml()
    assert Experiment.from_toml(text) == exp
    assert Experiment.from_toml(Experiment.from_toml(text).to_toml()).to_toml() == text


def _base(tmp_path) -> Experiment:
    return Experiment(dataset=DatasetSpec("m", str(tmp_path)), subjects=("S1",),
                      features=FeatureSpec(sets=("wordrate",)), outputs=OutputSpec(str(tmp_path / "o")))


#: a value other than the default for every option of fit_encoding that the Experiment holds,
#: and the flag that sets it
OPTION_VALUES = {
    "alphas": ((1.0, 100.0), ["--alphas", "1,100"]),
    "n_folds": (3, ["--n-folds", "3"]),
    "backend": ("numpy", ["--backend", "numpy"]),
    "solver": ("kernel", ["--solver", "kernel"]),
    "score": ("r2", ["--score", "r2"]),
    "n_iter": (7, ["--n-iter", "7"]),
    "variance_partitioning": (False, ["--no-variance-partitioning"]),
    "n_permutations": (11, ["--n-permutations", "11"]),
    "block_size": (4, ["--block-size", "4"]),
    "fdr_alpha": (0.1, ["--fdr-alpha", "0.1"]),
    "seed": (5, ["--seed", "5"]),
    "keep_weights": (True, ["--keep-weights"]),
    "keep_predictions": (False, ["--no-keep-predictions"]),
    "n_targets_batch": (64, ["--n-targets-batch", "64"]),
    "blas_threads": (2, ["--blas-threads", "2"]),
    "memory_budget": ("8GB", ["--memory-budget", "8GB"]),
    "scheduler": ("tcp://127.0.0.1:8786", ["--scheduler", "tcp://127.0.0.1:8786"]),
    "workers": (3, ["--workers", "3"]),
}


def test_every_fit_encoding_option_is_in_the_experiment():
    import inspect

    from gim_brain.encoding import fit_encoding

    options = set(inspect.signature(fit_encoding).parameters) - {
        "X_by_story", "Y_by_story", "test_stories"}
    # chosen by the run itself: the SPEC names the result and its bands, progress is an output
    # option, and test repeats (noise ceiling) would come from the dataset, which has none
    derived = {"feature_set", "band_names", "progress", "test_repeats"}
    held = {f.name for f in dataclasses.fields(EncodingSpec)}
    assert options - derived <= held, options - derived - held
    assert set(OPTION_VALUES) == held
    # and every one reaches fit_encoding by name
    from gim_brain.experiment.runner import _fit_options

    exp = Experiment(dataset=DatasetSpec("m"), subjects=("S",),
                     features=FeatureSpec(sets=("wordrate",)), outputs=OutputSpec("o"))
    assert set(_fit_options(exp)) == (options - {"feature_set", "band_names", "test_repeats"})


@pytest.mark.parametrize("name", sorted(OPTION_VALUES))
def test_every_encoding_option_from_toml_and_from_flags(tmp_path, name):
    from gim_brain.cli.fit import build_experiment
    from gim_brain.cli.main import build_parser
    from gim_brain.experiment.runner import _fit_options

    value, flags = OPTION_VALUES[name]
    assert value != getattr(EncodingSpec(), name)
    cfg = tmp_path / "exp.toml"
    _base(tmp_path).write(cfg)  # every option at its default
    written = json.dumps(list(value) if isinstance(value, tuple) else value)
    by_hand = [ln for ln in cfg.read_text().splitlines() if not ln.startswith(f"{name} = ")]
    by_hand.insert(by_hand.index("[encoding]") + 1, f"{name} = {written}")
    (tmp_path / "by_hand.toml").write_text("\n".join(by_hand) + "\n")
    assert getattr(Experiment.read(tmp_path / "by_hand.toml").encoding, name) == value
    # a flag overrides the file's (default) value
    exp = build_experiment(build_parser().parse_args(["fit", str(cfg), *flags]))
    assert getattr(exp.encoding, name) == value
    # and the value reaches fit_encoding (blas_threads limits the BLAS pool around it;
    # scheduler and workers choose where the fits run)
    opts = _fit_options(exp)
    if name not in ("blas_threads", "scheduler", "workers"):
        assert (tuple(opts[name]) if name == "alphas" else opts[name]) == value


def test_validation_names_key_and_flag(tmp_path):
    with pytest.raises(ExperimentError, match=r"encoding.fdr_alpha \(--fdr-alpha\)"):
        dataclasses.replace(_base(tmp_path), encoding=EncodingSpec(fdr_alpha=1.5))
    with pytest.raises(ExperimentError, match=r"responses.preprocess \(--response-preprocess\)"):
        _base(tmp_path).replace(**{"responses.preprocess": "demean"})
    with pytest.raises(ExperimentError, match=r"encoding.alphas \(--alphas\)"):
        _base(tmp_path).replace(**{"encoding.alphas": [1.0, -1.0]})
    with pytest.raises(ExperimentError, match=r"encoding.n_iter \(--n-iter\) must be >= 1"):
        _base(tmp_path).replace(**{"encoding.n_iter": 0})
    with pytest.raises(ExperimentError, match="unknown key 'encoding.alpha'.*did you mean 'alphas'"):
        _base(tmp_path).replace(**{"encoding.alpha": [1.0]})


def test_params_go_to_the_one_space_that_has_them():
    routed = route_params(["llm", "wordrate+ar-control"], {"n_components": 3, "layer": 2})
    assert routed["llm"].params == {"layer": 2}
    assert routed["wordrate+ar-control"].params == {"n_components": 3}
    assert routed["llm"].per_space["llm"]["layer"] == 2


def test_a_param_that_several_spaces_have_must_be_addressed():
    with pytest.raises(ExperimentError, match=r"spaces llm, gim-stats .* address one.*llm.layer=3"):
        route_params(["llm", "gim-stats"], {"layer": 3})
    routed = route_params(["llm", "gim-stats", "llm+gim-stats"], {"llm.layer": 3})
    assert routed["llm"].build_spec == "llm" and routed["llm"].params == {"layer": 3}
    assert routed["gim-stats"].params == {}
    # inside one SPEC that has both spaces the value is written into llm's brackets only
    both = routed["llm+gim-stats"]
    assert both.build_spec == "llm[layer=3]+gim-stats" and both.params == {}
    assert both.per_space["gim-stats"]["layer"] != 3
    with pytest.raises(ExperimentError, match="no SPEC of the run .* uses a space 'embedding'"):
        route_params(["llm"], {"embedding.model": "x"})
    with pytest.raises(ExperimentError, match="'llm' has no parameter 'gap'"):
        route_params(["llm"], {"llm.gap": 3})


def test_out_naming_a_file_is_an_error_before_any_work(tmp_path):
    (tmp_path / "o").write_text("not a folder")
    with pytest.raises(ExperimentError, match=r"outputs.out \(--out\) .* is a file"):
        run_experiment(_base(tmp_path), log=None)


def test_cli_out_naming_a_file(tmp_path, capsys):
    from gim_brain.cli.main import main

    (tmp_path / "o").write_text("x")
    rc = main(["fit", "--manifest", "m", "--data-root", str(tmp_path), "--subject", "S1",
               "--features", "wordrate", "--out", str(tmp_path / "o")])
    assert rc == 2 and "is a file" in capsys.readouterr().err


def test_the_lock_refuses_a_second_writer(tmp_path):
    from gim_brain.experiment.runner import RunLockedError, run_lock

    with run_lock(tmp_path / "run"):
        with pytest.raises(RunLockedError, match=f"being written by gim-brain pid {os.getpid()}"):
            with run_lock(tmp_path / "run"):
                pass
    with run_lock(tmp_path / "run"):  # released
        pass


def test_second_concurrent_fit_on_the_same_out_gets_a_clear_error(tmp_path):
    """A real second `gim-brain fit` process while the lock is held: exit 2, a clear message."""
    import subprocess
    import sys

    from _features_helpers import make_tiny_dataset
    from gim_brain.experiment.runner import run_lock

    manifest = make_tiny_dataset(tmp_path / "data", n_stories=5)
    env = dict(os.environ, GIM_BRAIN_CACHE=str(tmp_path / "cache"))
    with run_lock(tmp_path / "run"):
        proc = subprocess.run(
            [sys.executable, "-c", "import sys; from gim_brain.cli.main import main; sys.exit(main())",
             "fit", "--manifest", str(manifest),
             "--data-root", str(tmp_path / "data"), "--subject", "S1", "--features", "wordrate",
             "--n-folds", "2", "--out", str(tmp_path / "run")],
            capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "is being written by gim-brain pid" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run" / "summary.json").exists()


def test_too_many_folds_is_an_error(tmp_path, monkeypatch, capsys):
    from _features_helpers import make_tiny_dataset
    from gim_brain.cli.main import main

    monkeypatch.setenv("GIM_BRAIN_CACHE", str(tmp_path / "cache"))
    manifest = make_tiny_dataset(tmp_path / "data", n_stories=5)
    rc = main(["fit", "--manifest", str(manifest), "--data-root", str(tmp_path / "data"),
               "--subject", "S1", "--features", "wordrate", "--n-folds", "5", "--out",
               str(tmp_path / "run")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "--n-folds" in err and "4 training stories" in err
    assert not (tmp_path / "run").exists()


def test_resume_never_reuses_results_of_other_data(tmp_path, monkeypatch, capsys):
    import numpy as np
    from _features_helpers import make_tiny_dataset

    from gim_brain.cli.main import main

    monkeypatch.setenv("GIM_BRAIN_CACHE", str(tmp_path / "cache"))
    manifest = make_tiny_dataset(tmp_path / "data", n_stories=5)
    argv = ["fit", "--manifest", str(manifest), "--data-root", str(tmp_path / "data"),
            "--subject", "S1", "--features", "wordrate", "--n-folds", "2", "--n-permutations",
            "0", "--backend", "numpy", "--no-progress", "--resume", "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    first = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert first["response_preprocessing"]["method"] == "center"
    assert first["data_fingerprint"]["n_files"] >= 10
    capsys.readouterr()
    assert main(argv) == 0
    assert "reused" in capsys.readouterr().out
    # the same file names, other numbers: the responses of one training story change
    target = tmp_path / "data" / "responses" / "S1" / "s1.npz"
    arr = np.load(target)["responses"]
    np.savez(target, responses=(arr[::-1] * 2 + 1).astype(arr.dtype))
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "reused" not in out and "mean r" in out
    second = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert second["data_fingerprint"]["digest"] != first["data_fingerprint"]["digest"]


def test_resume_follows_the_data_content_not_its_place(tmp_path, monkeypatch, capsys):
    """The same data copied to another folder (new paths, new modification times, as after a
    fresh download) or touched is still the same data: `--resume` reuses the fit. Other bytes
    under the same names are not."""
    import os
    import shutil

    import numpy as np
    from _features_helpers import make_tiny_dataset

    from gim_brain.cli.main import main

    monkeypatch.setenv("GIM_BRAIN_CACHE", str(tmp_path / "cache"))
    manifest = make_tiny_dataset(tmp_path / "data", n_stories=5)

    def argv(root):
        return ["fit", "--manifest", str(root / Path(manifest).relative_to(tmp_path / "data")),
                "--data-root", str(root), "--subject", "S1", "--features", "wordrate",
                "--n-folds", "2", "--n-permutations", "0", "--backend", "numpy",
                "--no-progress", "--resume", "--out", str(tmp_path / "run")]

    assert main(argv(tmp_path / "data")) == 0
    first = json.loads((tmp_path / "run" / "summary.json").read_text())
    capsys.readouterr()
    moved = tmp_path / "elsewhere"
    shutil.copytree(tmp_path / "data", moved)  # copytree keeps mtimes: set new ones
    for path in moved.rglob("*"):
        os.utime(path, ns=(10**18, 10**18))
    shutil.rmtree(tmp_path / "data")
    assert main(argv(moved)) == 0
    assert "reused" in capsys.readouterr().out
    again = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert again["data_fingerprint"]["digest"] == first["data_fingerprint"]["digest"]
    # same size, other bytes, the old modification time put back
    target = moved / "responses" / "S1" / "s2.npz"
    stamp = target.stat().st_mtime_ns
    arr = np.load(target)["responses"]
    np.savez(target, responses=(-arr).astype(arr.dtype))
    os.utime(target, ns=(stamp, stamp))
    assert main(argv(moved)) == 0
    assert "reused" not in capsys.readouterr().out
    changed = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert changed["data_fingerprint"]["digest"] != first["data_fingerprint"]["digest"]


def test_known_file_digest_is_remembered_and_follows_content(tmp_path, monkeypatch):
    import hashlib
    import os

    from gim_brain._cache import known_file_digest

    monkeypatch.setenv("GIM_BRAIN_CACHE", str(tmp_path / "cache"))
    f = tmp_path / "x.bin"
    f.write_bytes(b"abc")
    assert known_file_digest(f) == hashlib.sha256(b"abc").hexdigest()
    assert len(list((tmp_path / "cache" / "digests").glob("*.json"))) == 1
    stamp = f.stat().st_mtime_ns
    f.write_bytes(b"abd")  # same size; the mtime put back: the change time still differs
    os.utime(f, ns=(stamp, stamp))
    assert known_file_digest(f) == hashlib.sha256(b"abd").hexdigest()
    f.write_bytes(b"abcd")
    assert known_file_digest(tmp_path / "." / "x.bin") == hashlib.sha256(b"abcd").hexdigest()


def test_response_preprocessing(tmp_path):
    import numpy as np

    from gim_brain.experiment import preprocess_responses

    y = {"a": np.arange(12, dtype=np.float32).reshape(6, 2) + 5, "b": np.ones((4, 2), np.float32)}
    c = preprocess_responses(y, "center")
    assert np.allclose(c["a"].mean(0), 0) and np.allclose(c["b"], 0)
    z = preprocess_responses(y, "zscore")
    assert np.allclose(z["a"].std(0), 1) and np.allclose(z["b"], 0)
    assert np.array_equal(preprocess_responses(y, "none")["a"], y["a"])


def test_dataset_split_and_targets_are_decided_in_one_place(tmp_path):
    from _features_helpers import make_tiny_dataset

    from gim_brain.data import load_dataset
    from gim_brain.data.dataset import SplitError

    manifest = make_tiny_dataset(tmp_path / "data", n_stories=5)
    ds = load_dataset(manifest, tmp_path / "data")
    split = ds.split("S1")
    assert split.test == ["s0"] and split.train == ["s1", "s2", "s3", "s4"]
    assert split.stories == ["s1", "s2", "s3", "s4", "s0"] and split.test_without_data == []
    assert ds.split("S1", ["s3", "s1"]).train == ["s3", "s1"]
    with pytest.raises(SplitError, match="unknown subject 'S2'"):
        ds.split("S2")
    with pytest.raises(SplitError, match="s0 are test stories"):
        ds.split("S1", ["s0", "s1"])
    with pytest.raises(SplitError, match="at least 2 training stories"):
        ds.split("S1", ["s1"])
    assert ds.targets("S1")["kind"] == "components"
    (tmp_path / "data" / "derivative" / "pycortex-db" / "S1").mkdir(parents=True)
    assert ds.targets("S1") == {"kind": "pycortex_db", "subject": "S1",
                                "db": str(tmp_path / "data" / "derivative" / "pycortex-db")}


def test_resume_key_sees_a_file_rewritten_in_place(tmp_path):
    """A parameter naming a file (e.g. a retrained fuzzy_checkpoint) keys the fit by its content
    stamp, so `--resume` never reuses a fit made with the old file."""
    import os

    from gim_brain.experiment.runner import _named_files

    ckpt = tmp_path / "best.pt"
    ckpt.write_bytes(b"old weights")
    params = {"gim-stats": {"fuzzy_checkpoint": str(ckpt), "tau": 4}, "llm": {"layer": "15"}}
    before = _named_files(params)
    assert [p for p, *_ in before] == [str(ckpt.resolve())]
    ckpt.write_bytes(b"new weights, retrained")
    os.utime(ckpt, ns=(1, 2))
    assert _named_files(params) != before
