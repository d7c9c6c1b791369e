"""Build time of the GIM induction and copy spaces on one real LeBel story, cold then warm.

Spaces: ``ngram-induction``, ``gim-induction`` (``similarity`` distilled, lm-window,
lm-context with ``tau=6``), ``gim-copy``, ``gim-copy-random``, in that order, on
``wheretheressmoke`` for UTS03 (the response PCA is fitted on the training stories). "cold" runs
with an empty feature cache and an empty user cache under ``--cache`` (the LM is converted once
there first; its load time is reported apart), so it includes the distilled embedding, the LM's
window passes and the ``llm`` hidden states the first space that needs them computes; "warm"
repeats everything in a new process context with those caches filled. Also reports how often
the exact branch (>= tau tokens) decided a match.

Usage: python benchmarks/induction_spaces.py [--data-root ../shared/data/lebel2023]
       [--story wheretheressmoke] [--cache DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

SPECS = [("ngram-induction", {}), ("gim-induction", {}),
         ("gim-induction", {"similarity": "lm-window"}),
         ("gim-induction", {"similarity": "lm-context", "tau": 6}),
         ("gim-copy", {}), ("gim-copy-random", {})]


def _label(name, params):
    return name + ("[" + ";".join(f"{k}={v}" for k, v in params.items()) + "]" if params else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = Path(__file__).resolve().parents[1]
    ap.add_argument("--data-root", default=str(here.parent / "shared" / "data" / "lebel2023"))
    ap.add_argument("--story", default="wheretheressmoke")
    ap.add_argument("--subject", default="UTS03")
    ap.add_argument("--cache", default=None, help="cache folder (default: a new temporary one)")
    args = ap.parse_args()
    cache = Path(args.cache or tempfile.mkdtemp(prefix="gim-induction-bench-"))
    os.environ["GIM_BRAIN_CACHE"] = str(cache / "user")

    from gim_brain._cache import NpzCache
    from gim_brain.data import load_dataset
    from gim_brain.features import SpaceContext, build_space, resolve_params
    from gim_brain.features.gim_copy_spaces import copy_sources
    from gim_brain.features.induction_spaces import gim_row_matches

    ds = load_dataset("lebel2023_pca", args.data_root)
    times = {}
    for run in ("cold", "warm"):
        ctx = SpaceContext(ds, subject=args.subject, cache=NpzCache(cache / "features"),
                           progress=False, device="cpu")
        t0 = time.perf_counter()
        ctx.lm(None)
        times[f"{run}_lm_load"] = time.perf_counter() - t0
        for name, params in SPECS:
            t0 = time.perf_counter()
            x, _ = build_space(ctx, name, params, [args.story])
            dt = time.perf_counter() - t0
            times[f"{run}:{_label(name, params)}"] = dt
            print(f"{run:4s} {_label(name, params):45s} {x[args.story].shape} {dt:7.2f} s",
                  flush=True)
    st = ctx.story(args.story)
    print(f"story {args.story}: {st.grid.n_rows} rows, {len(st.transcript.words)} words")
    for sim in ("distilled", "lm-window"):
        r = gim_row_matches(ctx, resolve_params("gim-induction", {"similarity": sim}), args.story)
        print(f"gim-induction[similarity={sim}]: exact branch in {int(r['used_exact'].sum())} of "
              f"{int((r['matches'] >= 0).sum())} matched rows (longest allowed exact match "
              f"{int(r['exact_lengths'].max())} tokens)")
    for space, rule in (("gim-copy", "gim"), ("gim-copy-random", "random")):
        src = copy_sources(ctx, resolve_params(space), args.story, rule, space)["source"]
        i = np.arange(len(src))
        words = st.transcript.words
        hit = np.mean([words[src[k]] == words[k + 1] for k in range(len(src) - 1) if src[k] >= 0])
        print(f"{space}: median copy distance {np.median((i - src)[src >= 0]):.1f} words, "
              f"copied word = next word for {hit:.1%} of words")
    cold = {k.split(":", 1)[1]: v for k, v in times.items() if k.startswith("cold:")}
    print("RESULT " + " ".join(f"{k.replace('[', '_').replace(']', '').replace('=', '-').replace(';', '_')}"
                               f"_cold_s={v:.2f}" for k, v in cold.items()))


if __name__ == "__main__":
    main()
