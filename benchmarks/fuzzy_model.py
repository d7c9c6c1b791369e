"""Distilled fuzzy model vs ``lm-hidden`` (and random): ranking quality and embedding speed.

Ranking. For each LeBel TEST story that has words (never seen in training), take the first
``--positions`` positions that have a full W-token window, ``t = W-1 .. W-2+N``. The teacher
(SmolLM2-135M) reads each position's own window ``ids[t-W+1:t+1]`` and gives its next-token
distribution (cached top-k, as in training). For every query ``t`` (from the 32nd on), the
candidates are the earlier positions ``j < t`` of the same story segment — what GIM's fuzzy
branch scores — and the teacher's nearest candidate is ``argmin_j SKL(p_t, p_j)``. Each
embedder ranks the candidates by cosine; we report recall@1, recall@5 and MRR of the teacher's
nearest candidate, pooled over both stories, for the shipped distilled checkpoint, ``lm-hidden``
(layer 4, the previous default) and a random ranking (its exact expected values).

Speed. Tokens/s of embedding the same text (the first ``--speed-tokens`` tokens of the first
test story) with each embedder, both with exact per-window semantics (position t reads only
``ids[t-W+1:t+1]``; the tests check this for both), in this process, one after the other.

Usage: ``python benchmarks/fuzzy_model.py [--checkpoint PATH] [--threads 1]``.
Last line: ``RESULT recall1_distilled=... recall1_lm_hidden=... mrr_distilled=...
mrr_lm_hidden=... speedup=...``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from gim_brain._cache import NpzCache
from gim_brain.data import load_dataset
from gim_brain.gim import DistilledEmbedder, LMHiddenEmbedder
from gim_brain.gim.distill import ranking_metrics
from gim_brain.gim.teacher import skl_matrix, teacher_targets
from gim_brain.lm import load_lm

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_ROOT = REPO.parent / "shared" / "data" / "lebel2023"


def _rank_all(emb: np.ndarray, dist: torch.Tensor, first_query: int) -> dict:
    """Pooled metrics over queries t >= first_query, candidates j < t."""
    sums = {"recall1": 0.0, "recall5": 0.0, "mrr": 0.0}
    n = len(emb)
    sim = torch.as_tensor(emb @ emb.T)
    for t in range(first_query, n):
        target = dist[t, :t].argmin()[None]
        m = ranking_metrics(sim[t:t + 1, :t], target)
        for k in sums:
            sums[k] += m[k]
    return sums


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    ap.add_argument("--checkpoint", type=Path, default=None, help="default: the shipped checkpoint")
    ap.add_argument("--positions", type=int, default=500, help="positions per test story")
    ap.add_argument("--first-query", type=int, default=32, help="queries start at this index")
    ap.add_argument("--layer", type=int, default=4, help="lm-hidden layer (4)")
    ap.add_argument("--speed-tokens", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not (args.data_root / "words").is_dir():
        raise SystemExit(f"LeBel data not found under {args.data_root} (expected ../shared/data/lebel2023)")
    ds = load_dataset("lebel2023_pca", args.data_root)
    stories = [s for s in ds.test_stories if ds.has_words(s)]
    lm = load_lm(None, device="cpu")
    distilled = DistilledEmbedder(lm, checkpoint=args.checkpoint)
    W = distilled.window
    hidden = LMHiddenEmbedder(lm, layer=args.layer, window=W)
    cache = NpzCache(namespace="gim-teacher")
    totals = {name: {"recall1": 0.0, "recall5": 0.0, "mrr": 0.0} for name in ("distilled", "lm-hidden")}
    rand = {"recall1": 0.0, "recall5": 0.0, "mrr": 0.0}
    n_queries = 0
    texts = {}
    for story in stories:
        ids = lm.encode(" ".join(ds.cleaner(ds.load_transcript(story))[0].words))
        texts[story] = ids
        n = min(args.positions, len(ids) - W + 1)
        seg = ids[:W - 1 + n]
        windows = np.stack([seg[t - W + 1:t + 1] for t in range(W - 1, len(seg))])
        t0 = time.perf_counter()
        tgt = teacher_targets(lm, windows, top_k=64, positions="last", cache=cache, progress=True,
                              desc=f"teacher {story}")
        dist = skl_matrix(tgt, tgt)
        print(f"{story}: {n} positions, teacher {time.perf_counter() - t0:.1f} s", flush=True)
        for name, emb in (("distilled", distilled.embed(seg)), ("lm-hidden", hidden.embed(seg))):
            part = _rank_all(emb[W - 1:], dist, args.first_query)
            for k in part:
                totals[name][k] += part[k]
        for t in range(args.first_query, n):     # exact expectation of a random ranking of t candidates
            rand["recall1"] += 1.0 / t
            rand["recall5"] += min(5, t) / t
            rand["mrr"] += sum(1.0 / r for r in range(1, t + 1)) / t
        n_queries += max(0, n - args.first_query)
    results = {name: {k: v / n_queries for k, v in m.items()} for name, m in totals.items()}
    results["random"] = {k: v / n_queries for k, v in rand.items()}
    print(f"\nranking vs the teacher's nearest earlier position: {len(stories)} test stories "
          f"({', '.join(stories)}), {n_queries} queries, W={W}")
    print(f"{'embedder':<12} {'recall@1':>9} {'recall@5':>9} {'MRR':>7}")
    for name, m in results.items():
        print(f"{name:<12} {m['recall1']:9.3f} {m['recall5']:9.3f} {m['mrr']:7.3f}")

    speed_ids = texts[stories[0]][:args.speed_tokens]
    distilled.embed(speed_ids[:64])          # warm-up (builds the projected token table)
    t0 = time.perf_counter()
    distilled.embed(speed_ids)
    t_dist = time.perf_counter() - t0
    t0 = time.perf_counter()
    hidden.embed(speed_ids)
    t_hid = time.perf_counter() - t0
    tps_d, tps_h = len(speed_ids) / t_dist, len(speed_ids) / t_hid
    print(f"\nembedding {len(speed_ids)} tokens of {stories[0]} (torch threads "
          f"{torch.get_num_threads()}): distilled {tps_d:,.0f} tokens/s, lm-hidden {tps_h:,.1f} "
          f"tokens/s, speed-up {tps_d / tps_h:.1f}x")
    print(f"checkpoint {distilled.checkpoint} (weights digest {distilled.digest})")
    r = results
    print(f"RESULT recall1_distilled={r['distilled']['recall1']:.4f} "
          f"recall1_lm_hidden={r['lm-hidden']['recall1']:.4f} "
          f"mrr_distilled={r['distilled']['mrr']:.4f} mrr_lm_hidden={r['lm-hidden']['mrr']:.4f} "
          f"speedup={tps_d / tps_h:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
