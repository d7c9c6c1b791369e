"""Build time of ``phonemerate`` + ``articulation`` for every LeBel story, and the CMUdict miss rate.

The LeBel word tables have no phone tier, so ``source=auto`` takes CMUdict pronunciations spread
over each word. The features are built through a fresh (empty) cache in a temporary folder, so
the time is the cold build: loading CMUdict, looking up every word, resampling ~500k phonemes.
The miss rate counts word tokens (and distinct words) without a pronunciation.

Usage::

    nice python benchmarks/phoneme_features.py [--data-root ../shared/data/lebel2023]

Last line: ``RESULT stories=<n> seconds=<s> phonemes=<n> oov_tokens=<rate> oov_types=<rate>``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from gim_brain._cache import NpzCache
from gim_brain.data import load_dataset
from gim_brain.features import SpaceContext, build_design

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lebel2023"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", type=Path, default=DATA)
    args = ap.parse_args()
    if not (args.data_root / "words").is_dir():
        sys.exit(f"LeBel words not found under {args.data_root}; pass --data-root")
    ds = load_dataset("lebel2023_pca", args.data_root)
    stories = ds.stories()
    with tempfile.TemporaryDirectory() as tmp:
        ctx = SpaceContext(ds, cache=NpzCache(Path(tmp) / "cache"), progress=False)
        t0 = time.perf_counter()
        design = build_design(ctx, "phonemerate+articulation", stories=stories)
        seconds = time.perf_counter() - t0
    rep = design.spaces[0]["report"]
    oov = rep["not_in_cmudict"]
    types = set()
    all_types = set()
    for s in stories:
        st = ctx.story(s)
        all_types.update(st.words)
        types.update(st.cleaning_report.not_in_dictionary)
    print(f"{len(stories)} stories, {design.n_features} features, {rep['phonemes']} phonemes "
          f"(from CMUdict: {rep['phones_from_cmudict']} stories, tier: {rep['phones_from_tier']})")
    print(f"cold build {seconds:.1f} s")
    print(f"not in CMUdict: {oov['words']} of {oov['of_words']} word tokens ({oov['rate']:.2%}), "
          f"{len(types)} of {len(all_types)} distinct words ({len(types) / len(all_types):.2%})")
    print("most common misses:", ", ".join(f"{w}x{c}" for w, c in list(oov["most_common"].items())[:15]))
    print(f"RESULT stories={len(stories)} seconds={seconds:.1f} phonemes={rep['phonemes']} "
          f"oov_tokens={oov['rate']:.4f} oov_types={len(types) / len(all_types):.4f}")


if __name__ == "__main__":
    main()
