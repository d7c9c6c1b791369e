"""EncodingResult save/load round trip and the run directory written by write_run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gim_brain.encoding import EncodingResult, read_summary, slugify, write_run

from _encoding_helpers import _one_blas_thread  # noqa: F401


def _result(spec="llm", n=30, banded=False, seed=0):
    rng = np.random.default_rng(seed)
    r = rng.uniform(-0.1, 0.6, n).astype(np.float32)
    p = rng.uniform(0, 1, n)
    p[:10] = 1e-4
    extra = {}
    if banded:
        extra = dict(split_scores={"a": r / 2, "b": r / 2}, unique_variance={"a": r / 3, "b": r / 4},
                     shared_variance=r / 10, deltas=rng.standard_normal((2, n)).astype(np.float32))
    return EncodingResult(
        feature_set=spec, spaces=spec.split(",") if banded else [spec],
        scores={"r": r, "r2": r**2}, alphas=np.full(n, 100.0, np.float32), pvalues=p,
        qvalues=np.minimum(p * 3, 1), cv_scores=r, predictions=rng.standard_normal((5, n)),
        splits={"train_stories": ["a", "b"], "test_stories": ["c"], "test_rows": [5],
                "folds": [["a"], ["b"]]},
        provenance={"parameters": {"fdr_alpha": 0.05}, "timings": {"fit_s": 1.5},
                    "versions": {"himalaya": "x"}, "nan": float("nan")}, **extra)


def test_save_load_round_trip(tmp_path):
    res = _result("a,b", banded=True)
    res.save(tmp_path / "r")
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["arrays.npz", "predictions.npy",
                                                                  "result.json"]
    back = EncodingResult.load(tmp_path / "r")
    assert back.feature_set == "a,b" and back.spaces == ["a", "b"]
    for key in ("r", "r2"):
        np.testing.assert_array_equal(back.scores[key], res.scores[key])
    np.testing.assert_array_equal(back.unique_variance["b"], res.unique_variance["b"])
    np.testing.assert_array_equal(back.deltas, res.deltas)
    np.testing.assert_array_equal(back.predictions, res.predictions)
    assert back.weights is None and back.splits == res.splits
    assert back.provenance["nan"] is None  # stored as valid JSON
    assert back.n_significant() == res.n_significant() == int(np.sum(res.qvalues <= 0.05))


def test_load_errors_name_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="result.json"):
        EncodingResult.load(tmp_path)
    _result().save(tmp_path / "r")
    (tmp_path / "r" / "result.json").write_text("{bad")
    with pytest.raises(ValueError, match="not valid JSON"):
        EncodingResult.load(tmp_path / "r")


def test_write_run_summary_shape(tmp_path):
    results = {"llm": _result("llm"), "llm,gim": _result("llm,gim", banded=True, seed=1),
               "a+b": _result("a+b", seed=2)}
    path = write_run(tmp_path / "RUN", results, subject="UTS03", test_stories=["c"],
                     targets={"kind": "components", "reason": "response PCs"},
                     parameters={"backend": "auto"})
    summary = json.loads(path.read_text())
    assert summary == read_summary(tmp_path / "RUN")
    assert summary["subject"] == "UTS03" and summary["test_stories"] == ["c"]
    entry = summary["feature_sets"]["llm"]
    r = results["llm"].scores["r"]
    assert entry["mean_r"] == pytest.approx(float(r.mean()), abs=1e-6)
    assert entry["top10_mean_r"] == pytest.approx(float(np.sort(r)[-3:].mean()), abs=1e-6)
    assert entry["n_targets"] == 30 and entry["n_significant"] == results["llm"].n_significant()
    assert summary["parameters"] == {"backend": "auto"}
    assert json.loads((tmp_path / "RUN" / "targets.json").read_text())["kind"] == "components"
    for spec in results:
        back = EncodingResult.load(tmp_path / "RUN" / summary["feature_sets"][spec]["result"])
        assert back.feature_set == spec
    assert slugify("a+b") == "a_plus_b" and slugify("llm,gim") == "llm__gim"


def test_write_run_rejects_bad_targets(tmp_path):
    with pytest.raises(ValueError, match="kind"):
        write_run(tmp_path, {"x": _result("x")}, subject="S", test_stories=[],
                  targets={"kind": "surface"}, parameters={})
    with pytest.raises(ValueError, match=r"\['mask'\]"):
        write_run(tmp_path, {"x": _result("x")}, subject="S", test_stories=[],
                  targets={"kind": "volume"}, parameters={})


def test_write_run_saves_only_the_results_asked_for(tmp_path):
    """A run growing one feature set at a time saves each result once; the summary has them all."""
    run = tmp_path / "RUN"
    kw = dict(subject="S", test_stories=["c"], targets={"kind": "components", "reason": "PCs"},
              parameters={})
    first = {"llm": _result("llm")}
    write_run(run, first, **kw)
    saved = run / "results" / "llm" / "result.json"
    stamp = saved.stat().st_mtime_ns
    both = {**first, "a+b": _result("a+b", seed=2)}
    write_run(run, both, save=["a+b"], **kw)
    assert saved.stat().st_mtime_ns == stamp                   # llm was not rewritten
    assert EncodingResult.load(run / "results" / "a_plus_b").feature_set == "a+b"
    assert set(read_summary(run)["feature_sets"]) == {"llm", "a+b"}
    with pytest.raises(ValueError, match="not in results.*'zz'"):
        write_run(run, both, save=["zz"], **kw)


def test_load_results_reads_only_what_the_summary_lists(tmp_path):
    """A results/<slug>/ folder left by an earlier fit into the same --out is never read back."""
    from gim_brain.encoding import load_results
    from gim_brain.encoding.run import RunDirError

    run = tmp_path / "RUN"
    kw = dict(subject="S", test_stories=["c"], targets={"kind": "components", "reason": "PCs"},
              parameters={})
    write_run(run, {"old": _result("old", seed=3)}, **kw)           # an earlier fit ...
    write_run(run, {"llm": _result("llm"), "a+b": _result("a+b", seed=2)}, **kw)  # ... replaced
    assert (run / "results" / "old" / "result.json").is_file()      # still on disk
    assert list(load_results(run)) == ["llm", "a+b"]                 # but not read back
    import shutil

    shutil.rmtree(run / "results" / "a_plus_b")
    with pytest.raises(RunDirError, match="lists feature set 'a\\+b'"):
        load_results(run)


def test_load_results_refuses_a_malformed_summary(tmp_path):
    from gim_brain.encoding import load_results
    from gim_brain.encoding.run import RunDirError

    run = tmp_path / "RUN"
    write_run(run, {"llm": _result("llm")}, subject="S", test_stories=["c"],
              targets={"kind": "components", "reason": "PCs"}, parameters={})
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps(dict(summary, feature_sets=["llm"])))
    with pytest.raises(RunDirError, match="'feature_sets' must map"):
        load_results(run)
    outside = dict(summary["feature_sets"]["llm"], result="../../elsewhere")
    (run / "summary.json").write_text(json.dumps(dict(summary, feature_sets={"llm": outside})))
    with pytest.raises(RunDirError, match="outside the run directory"):
        load_results(run)
