"""Chunked vs per-word LM feature extraction at equal context, on a real LeBel transcript.

Default mode: featurize one whole story with :func:`word_features` (chunked, batched, no cache)
and ``--per-word`` words from the middle of the same story with the per-word reference
:func:`word_features_per_word` (one pass per word over exactly the same context); compare the
numbers on those words and the time per word.

``--all-lebel``: featurize all LeBel stories with the ``llm`` feature-space defaults
(layer n_layers // 2, context 256, through the content-keyed cache) and report the total time.

Usage::

    python benchmarks/lm_features.py [--story avatar] [--context 256] [--per-word 200] [--threads 1]
    nice python benchmarks/lm_features.py --all-lebel --threads 1

Last line: ``RESULT speedup=<x> max_abs_diff=<d>`` (``RESULT stories=... seconds=...`` with --all-lebel).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from gim_brain.data import load_dataset
from gim_brain.lm import load_lm
from gim_brain.lm.extraction import word_features, word_features_per_word

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lebel2023"


def _dataset(root: Path):
    if not (root / "words").is_dir():
        sys.exit(f"LeBel words not found under {root}; pass --data-root")
    return load_dataset("lebel2023_pca", root)


def compare(args, lm, ds) -> None:
    story = ds.load_story(args.story)
    words = story.transcript.words
    layer = lm.n_layers // 2 if args.layer is None else args.layer
    kw = dict(layers=[layer], context_tokens=args.context, stride=args.stride, progress=False)
    t0 = time.perf_counter()
    chunked = word_features(lm, words, cache=False, batch_size=args.batch_size, **kw)
    t_chunked = time.perf_counter() - t0
    n_words, n_tokens = len(words), int(chunked.token_ids.size)

    mid = n_words // 2
    idx = np.arange(max(0, mid - args.per_word // 2), min(n_words, mid - args.per_word // 2 + args.per_word))
    t0 = time.perf_counter()
    ref = word_features_per_word(lm, words, indices=idx, **kw)
    t_per_word = time.perf_counter() - t0

    a, b = chunked.hidden[lm.check_layer(layer)][idx], ref.hidden[lm.check_layer(layer)][idx]
    max_abs = float(np.abs(a - b).max())
    max_rel = float((np.abs(a - b) / np.maximum(np.abs(b).max(axis=1, keepdims=True), 1e-12)).max())
    per_word_story = t_per_word / len(idx) * n_words
    speedup = per_word_story / t_chunked
    print(f"model {lm.name} ({args.dtype}) on {lm.device}, torch threads {torch.get_num_threads()}")
    print(f"story {args.story}: {n_words} words, {n_tokens} tokens; layer {layer}, context "
          f"{args.context} tokens, stride {args.stride or args.context}")
    print(f"chunked  : {t_chunked:8.2f} s for the whole story   {n_tokens / t_chunked:8.1f} tokens/s  "
          f"{n_words / t_chunked:8.1f} words/s")
    print(f"per-word : {t_per_word:8.2f} s for {len(idx)} words        {len(idx) / t_per_word:8.2f} words/s "
          f"-> {per_word_story:8.1f} s for the story (extrapolated)")
    print(f"hidden states on the {len(idx)} compared words: max |diff| {max_abs:.3g}, max |diff| / "
          f"max|value| per word {max_rel:.3g}, max |value| {float(np.abs(b).max()):.4g}")
    print(f"RESULT speedup={speedup:.1f} max_abs_diff={max_abs:.3g}")


def all_lebel(args, lm, ds) -> None:
    layer = lm.n_layers // 2
    names = ds.stories()
    print(f"model {lm.name} on {lm.device}, torch threads {torch.get_num_threads()}; "
          f"word_features(lm, words, layers=[{layer}], context_tokens=256)", flush=True)
    t_start = time.perf_counter()
    n_words = n_tokens = 0
    done = 0
    for name in names:
        words = ds.load_story(name).transcript.words
        t0 = time.perf_counter()
        wf = word_features(lm, words, layers=[layer], context_tokens=256, story=name, progress=False)
        dt = time.perf_counter() - t0
        n_words += len(words)
        n_tokens += int(wf.token_ids.size)
        done += 1
        elapsed = time.perf_counter() - t_start
        print(f"{done:3d}/{len(names)} {name:32s} {len(words):6d} words {dt:7.1f} s  "
              f"(total {elapsed / 60:6.1f} min, {n_tokens / elapsed:7.1f} tokens/s)", flush=True)
    total = time.perf_counter() - t_start
    print(f"all {done} stories: {n_words} words, {n_tokens} tokens in {total / 60:.1f} min "
          f"({n_tokens / total:.1f} tokens/s)")
    print(f"RESULT stories={done} seconds={total:.0f} tokens_per_s={n_tokens / total:.1f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="hub id, folder or .gguf (default offline SmolLM2-135M)")
    p.add_argument("--data-root", type=Path, default=DATA)
    p.add_argument("--story", default="avatar")
    p.add_argument("--layer", type=int, default=None, help="default n_layers // 2")
    p.add_argument("--context", type=int, default=256)
    p.add_argument("--stride", type=int, default=None)
    p.add_argument("--per-word", type=int, default=200, help="words run through the per-word reference")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="float32", help="float64 shows the chunking is exact up to rounding")
    p.add_argument("--all-lebel", action="store_true", help="featurize all stories (llm-space defaults)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    ds = _dataset(args.data_root)
    t0 = time.perf_counter()
    lm = load_lm(args.model, device=args.device, dtype=args.dtype)
    print(f"load_lm: {time.perf_counter() - t0:.2f} s")
    (all_lebel if args.all_lebel else compare)(args, lm, ds)


if __name__ == "__main__":
    main()
