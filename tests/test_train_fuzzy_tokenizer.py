"""A distilled fuzzy student on another tokenizer than its teacher's (re-tokenised teacher)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from _lm_fixtures import tiny_lm

from gim_brain._cache import NpzCache
from gim_brain.gim.corpus import select_windows
from gim_brain.gim.distill import TrainConfig, train
from gim_brain.gim.fuzzy import DEFAULT_CHECKPOINT, DistilledEmbedder
from gim_brain.gim.retokenise import prefix_reading, retokenised_teacher_targets
from gim_brain.gim.student import CheckpointError
from gim_brain.gim.tokenizers import TokenizerNotFoundError, load_tokenizer

REPO = Path(__file__).resolve().parents[1]
STORIES = sorted((REPO / "gim_brain" / "demo" / "stories").glob("*.txt"))
TINY = {"width": 32, "depth": 2, "heads": 2, "out_dim": 32, "window": 16, "windows_per_step": 16,
        "queries": 32, "candidates": 128, "warmup": 5, "min_context": 4, "windows_per_doc": None,
        "val_fraction": 0.2, "val_queries": 64, "val_candidates": 128, "embedding": "table"}


@pytest.fixture(scope="module")
def gpt2():
    try:
        return load_tokenizer("gpt2")
    except TokenizerNotFoundError as exc:
        pytest.skip(f"GPT-2 tokenizer unavailable: {exc}")


@pytest.fixture(scope="module")
def gpt2_run(gpt2, tmp_path_factory):
    """A tiny GPT-2-token student of the tiny SmolLM2-tokenizer teacher: (summary, out folder)."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("gpt2_student")
    lm = tiny_lm()
    docs = [gpt2.encode(p.read_text()) for p in STORIES]
    cfg = TrainConfig(**TINY, steps=60, lr=1e-2, eval_every=20, save_every=20)
    summary = train(docs, lm, cfg, out / "run", teacher_cache=NpzCache(out / "cache"),
                    progress=False, tokenizer=gpt2.label, student_tokenizer=gpt2)
    return summary, out / "run"


def test_the_retokenised_target_is_the_teacher_reading_the_same_text_prefix(gpt2):
    lm = tiny_lm()
    text = STORIES[0].read_text()
    windows, _ = select_windows([gpt2.encode(text)], 16)
    windows = windows[:8]
    n_own_pass = sum(len(prefix_reading(w, gpt2, lm.encode)[0]) - 1 for w in windows)
    got = retokenised_teacher_targets(lm, windows, gpt2, top_k=8, batch_size=5)
    assert got.ids.shape == (8, 16, 8) and got.vocab_size == lm.vocab_size
    for w in range(len(windows)):
        for i in range(16):
            prefix = gpt2.decode(windows[w, :i + 1])          # the text up to student token i
            ids = torch.as_tensor(lm.encode(prefix))[None]
            _, final = lm.forward(ids, (), final=True)
            direct = lm.logprobs_from_final(final[0, -1]).numpy()
            np.testing.assert_allclose(direct[got.ids[w, i]], got.logp[w, i], atol=2e-5)
            np.testing.assert_allclose(np.sort(direct)[::-1][:8], got.logp[w, i], atol=2e-5)
    # the text-aligned reading differs from cutting the window's whole encoding somewhere:
    # those positions had their own teacher pass, and still matched above
    assert n_own_pass >= 1


def test_a_gpt2_student_learns_and_its_checkpoint_embeds_gpt2_ids(gpt2, gpt2_run):
    summary, run = gpt2_run
    curve = summary["validation_curve"]
    assert summary["best"]["mrr"] > curve[0]["mrr"]
    losses = [h["loss"] for h in summary["train_curve"]]
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 0.1
    assert summary["student_tokenizer"]["fingerprint"] == gpt2.fingerprint
    assert summary["model_kwargs"]["vocab_size"] == gpt2.vocab_size

    emb = DistilledEmbedder(checkpoint=run / "best.pt")        # no LM: the checkpoint's tokenizer
    assert emb.tokenizer.fingerprint == gpt2.fingerprint and emb.vocab_size == gpt2.vocab_size
    ids = gpt2.encode(STORIES[1].read_text())[:100]
    e = emb.embed(ids)
    assert e.shape == (100, 32) and np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    # the same ids through an embedder given the tokenizer explicitly
    again = DistilledEmbedder(checkpoint=run / "best.pt", tokenizer=gpt2).embed(ids)
    np.testing.assert_allclose(again, e, atol=1e-6)
    with pytest.raises(ValueError, match="token id"):
        emb.embed(np.array([gpt2.vocab_size]))


def test_tokenizer_mismatches_are_refused_naming_checkpoint_and_tokenizers(gpt2, gpt2_run):
    _, run = gpt2_run
    ckpt = run / "best.pt"
    with pytest.raises(CheckpointError) as err:          # text tokenised by the LM's SmolLM2
        DistilledEmbedder(tiny_lm(), checkpoint=ckpt)
    msg = str(err.value)
    assert str(ckpt) in msg and "'gpt2'" in msg and tiny_lm().name in msg
    smollm2 = load_tokenizer("smollm2")
    with pytest.raises(CheckpointError, match="student tokenizer 'gpt2'.*'smollm2'"):
        DistilledEmbedder(checkpoint=ckpt, tokenizer=smollm2)
    with pytest.raises(CheckpointError) as err:          # the shipped SmolLM2 student, GPT-2 text
        DistilledEmbedder(checkpoint=DEFAULT_CHECKPOINT, tokenizer=gpt2)
    assert str(DEFAULT_CHECKPOINT) in str(err.value) and "'gpt2'" in str(err.value)
    assert "SmolLM2" in str(err.value)


def _main(capsys, *args):
    from gim_brain.cli.main import main

    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_lm_eval_runs_gim_with_a_gpt2_checkpoint_and_refuses_it_for_smollm2_tokens(
        gpt2_run, tmp_path, capsys):
    _, run = gpt2_run
    text = tmp_path / "story.txt"
    text.write_text(STORIES[2].read_text())
    common = ("lm-eval", "--text", str(text), "--fuzzy", "distilled", "--fuzzy-checkpoint",
              str(run / "best.pt"), "--protocol", "every-token", "--context", "64", "--no-progress")
    rc, out, err = _main(capsys, *common, "--tokenizer", "gpt2", "--json", str(tmp_path / "r.json"))
    assert rc == 0, err
    assert "gim" in out and "fuzzy" in out
    import json
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["config"]["fuzzy"] == ["distilled W=16"]
    assert result["config"]["tokenizer"].startswith("gpt2-")
    rc, _, err = _main(capsys, *common, "--methods", "gim")          # SmolLM2 tokens
    assert rc == 2 and "--fuzzy-checkpoint" in err and str(run / "best.pt") in err
    assert "'gpt2'" in err
    rc, _, err = _main(capsys, *common, "--tokenizer", "gpt2", "--methods", "gim,lm")
    assert rc == 2 and "--methods lm" in err


def test_train_fuzzy_names_an_unloadable_student_tokenizer(tmp_path, capsys):
    text = tmp_path / "t.txt"
    text.write_text(STORIES[0].read_text())
    rc, _, err = _main(capsys, "train-fuzzy", "--corpus", str(text), "--out", str(tmp_path / "o"),
                       "--student-tokenizer", str(tmp_path / "no_such_tokenizer"))
    assert rc == 2 and "--student-tokenizer" in err and "no_such_tokenizer" in err


def test_train_fuzzy_cli_trains_a_gpt2_student_and_smollm2_is_the_default_path(gpt2, tmp_path,
                                                                              capsys):
    from gim_brain.cli.train_fuzzy import _foreign_to

    # naming the teacher's own tokenizer is the default path (no re-tokenisation, same checkpoint)
    assert _foreign_to(load_tokenizer("smollm2"), tiny_lm()) is None
    assert _foreign_to(gpt2, tiny_lm()) is gpt2
    text = tmp_path / "t.txt"
    text.write_text(STORIES[0].read_text())
    out = tmp_path / "o"
    rc, _, err = _main(capsys, "train-fuzzy", "--corpus", str(text), "--student-tokenizer", "gpt2",
                       "--size", "quick", "--window", "16", "--min-context", "4", "--steps", "2",
                       "--eval-every", "1", "--width", "16", "--heads", "2", "--out-dim", "16",
                       "--depth", "1", "--windows-per-doc", "0", "--val-fraction", "0.2",
                       "--queries", "16", "--candidates", "32", "--threads", "1", "--no-progress",
                       "--out", str(out))
    assert rc == 0, err
    ckpt = torch.load(out / "best.pt", map_location="cpu", weights_only=True)
    assert ckpt["student_tokenizer"] == {"name": "gpt2", "fingerprint": gpt2.fingerprint,
                                         "vocab_size": gpt2.vocab_size}
    assert ckpt["model_kwargs"]["embedding"] == "table"
    assert ckpt["model"]["tok_emb.weight"].shape == (gpt2.vocab_size, 16)
    assert ckpt["tokenizer"] == gpt2.label
