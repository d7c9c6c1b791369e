"""``gim-brain compare`` and the run-directory report on run folders written with EncodingResult."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from gim_brain.encoding.comparison import compare_scores, paired_difference_test
from gim_brain.cli.main import main
from gim_brain.encoding.result import EncodingResult
from gim_brain.report import write_report


def _result(spec, r, pvalues=None, unique=None):
    r = np.asarray(r, dtype=np.float32)
    q = None if pvalues is None else np.asarray(pvalues)
    return EncodingResult(feature_set=spec, spaces=spec.split(","), scores={"r": r, "r2": r ** 2},
                          alphas=np.ones_like(r), pvalues=q, qvalues=q,
                          unique_variance=unique or {})


def _run(tmp_path, name, results, mask_shape=(4, 5, 3)):
    run = tmp_path / name
    for i, res in enumerate(results):
        res.save(run / "results" / f"set{i}")
    n = results[0].n_targets
    mask = np.zeros(mask_shape, dtype=np.uint8)
    mask.reshape(-1)[:n] = 1
    nib.save(nib.Nifti1Image(mask, np.diag([8.0, 8.0, 8.0, 1.0])), tmp_path / "mask.nii.gz")
    (run / "targets.json").write_text(json.dumps({"kind": "volume", "mask": str(tmp_path / "mask.nii.gz"),
                                                  "subject": "sim01"}))
    summary = {"subject": "sim01", "feature_sets": {r.feature_set: dict(r.summary(), result=f"results/set{i}")
                                                    for i, r in enumerate(results)}}
    (run / "summary.json").write_text(json.dumps(summary))
    return run


def test_paired_test_detects_shift_and_not_noise():
    rng = np.random.default_rng(0)
    shifted = paired_difference_test(rng.normal(0.05, 0.1, size=200), 2000, seed=1)
    assert shifted["p_permutation"] < 0.01 and shifted["p_wilcoxon"] < 0.01
    null = paired_difference_test(rng.normal(0.0, 0.1, size=200), 2000, seed=1)
    assert null["p_permutation"] > 0.05
    assert shifted["frac_positive"] > 0.6
    with pytest.raises(ValueError, match="at least 2"):
        paired_difference_test(np.array([np.nan, 1.0]))


def test_compare_scores_checks_targets():
    a, b = _result("x", [0.1, 0.2, 0.3]), _result("y", [0.1, 0.2])
    with pytest.raises(ValueError, match="3 targets"):
        compare_scores(a, b)
    s = compare_scores(_result("x", [0.3, 0.2, 0.1, 0.4]), _result("y", [0.1, 0.2, 0.2, 0.0]), n_permutations=200)
    assert s["most_improved_targets"][0] == 3 and s["most_worsened_targets"][0] == 2
    assert s["mean"] == pytest.approx(0.125)


def test_compare_cli_runs_and_specs(tmp_path, capsys):
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 0.3, size=50)
    run_a = _run(tmp_path, "a", [_result("llm", base + 0.05, pvalues=np.full(50, 0.01)),
                                 _result("wordrate", base)])
    run_b = _run(tmp_path, "b", [_result("llm", base)])
    out = tmp_path / "cmp"
    code = main(["compare", str(run_a), str(run_b), "--out", str(out), "--json", str(tmp_path / "c.json"),
                 "--n-permutations", "500"])
    assert code == 0
    text = capsys.readouterr().out
    assert "a:llm  vs  b:llm" in text and "+0.0500" in text
    stats = json.loads((tmp_path / "c.json").read_text())["comparisons"]
    assert len(stats) == 1 and stats[0]["frac_positive"] == 1.0 and stats[0]["p_permutation"] < 0.01
    assert stats[0]["n_significant_a"] == 50 and stats[0]["n_significant_b"] is None
    assert (out / "compare_llm_vs_llm.png").stat().st_size > 1000
    assert (out / "diffmap_llm_vs_llm.png").stat().st_size > 1000
    # two feature sets of the same run
    assert main(["compare", f"{run_a}:llm", f"{run_a}:wordrate", "--n-permutations", "100"]) == 0
    assert "a:llm  vs  a:wordrate" in capsys.readouterr().out


def test_compare_cli_bad_input(tmp_path, capsys):
    run_a = _run(tmp_path, "a", [_result("llm", [0.1, 0.2, 0.3])])
    assert main(["compare", str(run_a), str(tmp_path / "nope")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["compare", f"{run_a}:gim", str(run_a)]) == 2
    assert "no feature set 'gim'" in capsys.readouterr().err


def test_report_has_table_and_maps(tmp_path):
    uv = {"llm": np.linspace(0, 0.2, 20).astype(np.float32)}
    run = _run(tmp_path, "r", [_result("llm,wordrate", np.linspace(-0.1, 0.5, 20), unique=uv)])
    path = write_report(run)
    page = path.read_text()
    assert "<td>llm,wordrate</td>" in page and "0.2000" in page  # mean r of linspace(-0.1, 0.5)
    assert page.count("data:image/png;base64,") == 2  # r map + unique-variance map
    assert "src='http" not in page


def test_only_significant_targets(tmp_path, capsys):
    rng = np.random.default_rng(1)
    base = rng.uniform(0, 0.3, size=40)
    p_a = np.where(np.arange(40) < 10, 0.001, 0.9)
    run = _run(tmp_path, "s", [_result("x", base + np.where(np.arange(40) < 10, 0.1, 0.0), pvalues=p_a),
                               _result("y", base, pvalues=np.full(40, 0.9))])
    assert main(["compare", f"{run}:x", f"{run}:y", "--only-significant", "--n-permutations", "200"]) == 0
    assert "(10 significant in either targets" in capsys.readouterr().out
    s = compare_scores(_result("x", base, pvalues=p_a), _result("y", base), only_significant=False,
                       n_permutations=10)
    assert s["n"] == 40
    with pytest.raises(ValueError, match="p-values in both"):
        compare_scores(_result("x", base, pvalues=p_a), _result("y", base), only_significant=True)
