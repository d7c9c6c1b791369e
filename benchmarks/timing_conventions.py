"""Which timing convention (and which FIR delays) fits ds003020 better, on training stories only.

For each timing convention (``tr_text``: manifest ``lebel2023_pca``; ``reference``: manifest
``lebel2023_pca_reference``), each feature space and each delay set, the training stories of the
subject (never the manifest's test stories) are split into ``--outer-folds`` groups of stories;
each group is held out in turn while a ridge model (alphas by ``--n-folds`` story-grouped CV on
the remaining training stories) is fitted on the rest. The score of a configuration is the mean
over targets of the held-out Pearson r, averaged over the outer folds (and its standard error
over folds); ``cv`` is the mean training-fold CV score at the chosen alphas.

    python benchmarks/timing_conventions.py --data-root ../shared/data/lebel2023 --subject UTS03 \\
        --features wordrate,embedding,llm --outer-folds 4

Prints one line per configuration, a Markdown table and, last, ``RESULT name=value ...``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from gim_brain.data import load_dataset
from gim_brain.encoding import fit_encoding
from gim_brain.features.context import SpaceContext
from gim_brain.features.design import build_design

MANIFESTS = {"tr_text": "lebel2023_pca", "reference": "lebel2023_pca_reference"}


def outer_folds(stories: list[str], k: int) -> list[list[str]]:
    """``k`` disjoint groups of stories (round robin over the sorted names)."""
    names = sorted(stories)
    return [names[i::k] for i in range(k)]


def evaluate(ds, subject: str, spec: str, delays: tuple[int, ...], k: int, n_folds: int) -> dict:
    """Held-out r on ``k`` outer folds of the training stories of ``subject``."""
    train = ds.train_stories(subject)
    ctx = SpaceContext(ds, subject=subject, progress=False, train_stories=train)
    design = build_design(ctx, spec, train, delays=delays)
    Y = {s: ds.load_responses(subject, s) for s in train}
    fold_r, fold_cv = [], []
    for held in outer_folds(train, k):
        result = fit_encoding(design.X, Y, held, n_folds=n_folds, n_permutations=0,
                              feature_set=spec, keep_predictions=False, progress=False)
        fold_r.append(result.mean_r())
        fold_cv.append(float(np.nanmean(result.cv_scores)))
    fold_r = np.asarray(fold_r)
    return {"mean_r": float(fold_r.mean()), "se": float(fold_r.std(ddof=1) / np.sqrt(len(fold_r))),
            "folds": fold_r.tolist(), "cv": float(np.mean(fold_cv)), "timing": design.timing}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--subject", default="UTS03")
    ap.add_argument("--features", default="wordrate,embedding,llm")
    ap.add_argument("--conventions", default="tr_text,reference")
    ap.add_argument("--delays", default="1,2,3,4;0,1,2,3,4", help="delay sets separated by ';'")
    ap.add_argument("--outer-folds", type=int, default=4)
    ap.add_argument("--n-folds", type=int, default=3)
    ap.add_argument("--json", default=None, help="also write every number to this file")
    args = ap.parse_args(argv)
    delay_sets = [tuple(int(d) for d in part.split(",")) for part in args.delays.split(";")]
    rows = []
    for convention in args.conventions.split(","):
        ds = load_dataset(MANIFESTS[convention], args.data_root)
        assert not set(ds.test_stories) & set(ds.train_stories(args.subject))
        for spec in args.features.split(","):
            for delays in delay_sets:
                t0 = time.perf_counter()
                res = evaluate(ds, args.subject, spec, delays, args.outer_folds, args.n_folds)
                res.update(convention=convention, spec=spec, delays=list(delays),
                           seconds=time.perf_counter() - t0)
                rows.append(res)
                print(f"{convention:9s} {spec:10s} delays {min(delays)}-{max(delays)}: "
                      f"r = {res['mean_r']:.4f} ± {res['se']:.4f} (cv {res['cv']:.4f}) "
                      f"[{res['seconds']:.0f} s]", flush=True)
    print("\n| features | delays | " + " | ".join(args.conventions.split(",")) + " |")
    print("| --- | --- | " + " | ".join("---:" for _ in args.conventions.split(",")) + " |")
    for spec in args.features.split(","):
        for delays in delay_sets:
            cells = [next(f"{r['mean_r']:.4f} ± {r['se']:.4f}" for r in rows if r["spec"] == spec
                          and r["convention"] == c and r["delays"] == list(delays))
                     for c in args.conventions.split(",")]
            print(f"| `{spec}` | {min(delays)}–{max(delays)} | " + " | ".join(cells) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    print("RESULT " + " ".join(f"{r['convention']}:{r['spec']}:d{min(r['delays'])}{max(r['delays'])}"
                               f"={r['mean_r']:.4f}" for r in rows))


if __name__ == "__main__":
    main()
