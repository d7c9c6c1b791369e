"""Training the distilled fuzzy model: learning, kill-and-resume, and the CLI's bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _features_helpers import TEXT, make_tiny_dataset
from _lm_fixtures import tiny_lm

from gim_brain._cache import NpzCache
from gim_brain.gim.corpus import WindowError, find_overlap, select_windows
from gim_brain.gim.distill import FuzzyStudent, TrainConfig, lr_at, train  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
STORIES = sorted((REPO / "gim_brain" / "demo" / "stories").glob("*.txt"))
TINY = dict(width=32, depth=2, heads=2, out_dim=32, window=16, windows_per_step=16, queries=32,
            candidates=128, warmup=5, min_context=4, windows_per_doc=None, val_fraction=0.2,
            val_queries=64, val_candidates=128)


def _docs(lm):
    return [lm.encode(p.read_text()) for p in STORIES]


def test_a_tiny_training_run_lowers_the_loss_and_raises_validation_recall(tmp_path):
    torch.set_num_threads(1)
    lm = tiny_lm()
    cfg = TrainConfig(**TINY, steps=120, lr=1e-2, eval_every=40, save_every=40)
    s = train(_docs(lm), lm, cfg, tmp_path / "run", teacher_cache=NpzCache(tmp_path / "cache"),
              progress=False)
    curve = s["validation_curve"]
    assert curve[0]["step"] == 0 and curve[-1]["step"] == 120
    assert s["best"]["mrr"] > curve[0]["mrr"] + 0.03
    assert s["best"]["recall1"] > curve[0]["recall1"]
    losses = [h["loss"] for h in s["train_curve"]]
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 0.3
    assert (tmp_path / "run" / "best.pt").is_file() and (tmp_path / "run" / "last.pt").is_file()
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["best_step"] == s["best_step"] and saved["distance"] == "skl"
    assert saved["random_baseline"]["recall1"] == pytest.approx(1 / 128)


def test_learning_rate_warms_up_then_decays_to_the_floor():
    cfg = TrainConfig(steps=100, warmup=10, lr=1e-3, min_lr=1e-5)
    assert lr_at(cfg, 5) == pytest.approx(5e-4) and lr_at(cfg, 10) == pytest.approx(1e-3)
    assert lr_at(cfg, 100) == pytest.approx(1e-5)
    assert all(lr_at(cfg, s) >= lr_at(cfg, s + 1) for s in range(10, 100))


_RUN = """
import os, sys, torch
sys.path.insert(0, {tests!r})
torch.set_num_threads(1)
from pathlib import Path
from _lm_fixtures import tiny_lm
from gim_brain._cache import NpzCache
from gim_brain.gim.distill import TrainConfig, train
lm = tiny_lm()
docs = [lm.encode(Path(p).read_text()) for p in {stories!r}]
cfg = TrainConfig(**{cfg!r})
kill_at = int(sys.argv[2])
def on_step(step, record):
    if step == kill_at:
        os.kill(os.getpid(), 9)
train(docs, lm, cfg, Path(sys.argv[1]), teacher_cache=NpzCache({cache!r}), progress=False,
      on_step=on_step)
"""


def test_kill_and_resume_reaches_the_same_checkpoint(tmp_path):
    cfg = dict(TINY, steps=12, lr=5e-3, eval_every=4, save_every=2)
    script = tmp_path / "run.py"
    script.write_text(_RUN.format(tests=str(REPO / "tests"), stories=[str(p) for p in STORIES],
                                  cfg=cfg, cache=str(tmp_path / "cache")))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    run = lambda out, kill: subprocess.run([sys.executable, str(script), str(out), str(kill)],
                                           env=env, capture_output=True, text=True, timeout=600)
    killed = run(tmp_path / "a", 7)
    assert killed.returncode == -9, killed.stderr[-2000:]
    state = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    assert state["step"] == 6                       # saved every 2 steps; step 7 was lost
    resumed = run(tmp_path / "a", -1)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    straight = run(tmp_path / "b", -1)
    assert straight.returncode == 0, straight.stderr[-2000:]
    for name in ("last.pt", "best.pt"):
        a = torch.load(tmp_path / "a" / name, weights_only=True)
        b = torch.load(tmp_path / "b" / name, weights_only=True)
        assert a["step"] == b["step"]
        assert a["model"].keys() == b["model"].keys()
        for k in a["model"]:
            assert torch.equal(a["model"][k], b["model"][k]), (name, k)
    a = json.loads((tmp_path / "a" / "summary.json").read_text())
    b = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert a["validation_curve"] == b["validation_curve"]


def test_windows_and_overlap_checks():
    docs = [np.arange(10), np.arange(40)]
    win, which = select_windows(docs, 16)
    assert win.shape == (2, 16) and which.tolist() == [1, 1]
    with pytest.raises(WindowError, match="W=64 is longer than every document"):
        select_windows(docs, 64, names=["a.txt", "b.txt"])
    story = " ".join(TEXT)
    assert find_overlap({"file x": "Intro. " + story.upper() + " the end"}, {"test story s0": story}) \
        == [("file x", "test story s0")]
    assert find_overlap({"file y": "a completely different text " * 20}, {"s0": story}) == []


def _cli(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    entry = "import sys; from gim_brain.cli.main import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", entry, *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_train_fuzzy_rejects_a_window_longer_than_every_document(tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("a few words only, far fewer than the window.\n")
    r = _cli("train-fuzzy", "--corpus", str(short), "--window", "64", "--out", str(tmp_path / "o"),
             "--no-progress")
    assert r.returncode == 2, r.stderr
    assert "--window 64" in r.stderr and "longer than every document" in r.stderr
    assert "file " + str(short) in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()


def _main(capsys, *args):
    """The real ``gim-brain`` entry point in this process (faster than a subprocess)."""
    from gim_brain.cli.main import main

    rc = main(list(args))
    return rc, capsys.readouterr().err


def test_train_fuzzy_rejects_a_corpus_that_contains_a_test_story(tmp_path, capsys):
    manifest = make_tiny_dataset(tmp_path / "data", n_stories=3)
    leak = tmp_path / "leak.txt"
    leak.write_text("Some preface.\n" + " ".join(TEXT * 3).capitalize() + "\n")
    rc, err = _main(capsys, "train-fuzzy", "--manifest", str(manifest), "--data-root",
                    str(tmp_path / "data"), "--corpus", str(leak), "--out", str(tmp_path / "o"),
                    "--no-progress")
    assert rc == 2, err
    assert "contains a test story" in err and str(leak) in err and "test story s0" in err
    assert not (tmp_path / "o").exists()


def test_train_fuzzy_rejects_bad_parameters(tmp_path, capsys):
    text = tmp_path / "t.txt"
    text.write_text(" ".join(TEXT * 10))
    rc, err = _main(capsys, "train-fuzzy", "--corpus", str(text), "--width", "30", "--heads", "4",
                    "--out", str(tmp_path / "o"))
    assert rc == 2 and "--width (30) must be divisible by --heads (4)" in err
    rc, err = _main(capsys, "train-fuzzy", "--corpus", str(tmp_path / "missing.txt"), "--out",
                    str(tmp_path / "o"))
    assert rc == 2 and "missing.txt does not exist" in err


def _checkpoint_with_tokenizer(path, digest):
    from gim_brain.gim.distill import save_checkpoint

    model = FuzzyStudent(49152, width=8, depth=1, heads=2, out_dim=8, window=8, teacher_dim=8,
                         embedding="table")
    save_checkpoint(path, model, {"tokenizer": "other-tokenizer", "tokenizer_digest": digest})


@pytest.mark.parametrize("kind", ["missing", "corrupt", "tokenizer"])
def test_lm_eval_rejects_bad_fuzzy_checkpoints(tmp_path, capsys, kind):
    text = tmp_path / "doc.txt"
    text.write_text(" ".join(TEXT))
    ckpt = tmp_path / f"{kind}.pt"
    if kind == "corrupt":
        ckpt.write_bytes(b"\x00garbage")
    elif kind == "tokenizer":
        _checkpoint_with_tokenizer(ckpt, "0000000000000000")
    rc, err = _main(capsys, "lm-eval", "--text", str(text), "--fuzzy", "distilled",
                    "--fuzzy-checkpoint", str(ckpt), "--methods", "gim", "--no-progress")
    assert rc == 2, err
    assert "--fuzzy-checkpoint" in err and str(ckpt) in err
    assert {"missing": "does not exist", "corrupt": "not a readable torch checkpoint",
            "tokenizer": "trained with tokenizer 'other-tokenizer'"}[kind] in err


def test_train_fuzzy_refuses_to_resume_another_run(tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "last.pt").write_bytes(b"not a checkpoint")
    text = tmp_path / "t.txt"
    text.write_text(" ".join(TEXT * 4))
    rc, err = _main(capsys, "train-fuzzy", "--corpus", str(text), "--size", "quick", "--window", "8",
                    "--min-context", "2", "--steps", "2", "--val-fraction", "0.3", "--out", str(out),
                    "--no-progress")
    assert rc == 2 and f"--out {out}" in err and "cannot resume" in err
