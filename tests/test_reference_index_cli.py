"""``gim-brain reference-index`` run as a real command: build, reuse, and its bad-input errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

from _real_parts import require_module

REPO = Path(__file__).resolve().parents[1]


def _run(*args):
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "gim_brain.cli.main", "reference-index", *args],
                          capture_output=True, text=True, env=env, check=False)


def test_build_then_refuse_another_tokenizer_and_bad_input(tmp_path):
    """Three real runs (each starts the CLI, ~5 s): build, another tokenizer, a missing tokenizer."""
    require_module("infini_gram", "package infini-gram is not installed")
    text = tmp_path / "corpus.txt"
    text.write_text("In the beginning God created the heaven and the earth.\n", encoding="utf-8")
    out = tmp_path / "idx"
    r = _run("--text", str(text), "--out", str(out), "--engine", "infini-gram", "--tokenizer", "gpt2")
    assert r.returncode == 0, r.stderr
    assert "wrote infini-gram index" in r.stdout and "gpt2-" in r.stdout
    header = json.loads((out / "header.json").read_text())
    assert header["tokenizer"] == "gpt2" and len(header["tokenizer_fingerprint"]) == 64
    r = _run("--text", str(text), "--out", str(out), "--engine", "infini-gram",
             "--tokenizer", "smollm2")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"{out} was built with tokenizer 'gpt2'" in r.stderr and "'smollm2'" in r.stderr
    r = _run("--text", str(text), "--out", str(tmp_path / "i"), "--tokenizer", str(tmp_path / "no"))
    assert r.returncode == 1 and "tokenizer folder" in r.stderr and "Traceback" not in r.stderr
