"""Which timing convention (and which FIR delays) fits ds003020 better, on training stories only.

For each timing convention (``tr_text``: manifest ``lebel2023_pca``; ``reference``: manifest
``lebel2023_pca_reference``), each feature space and each delay set, a ridge model is fitted on
training stories of the subject only (never the manifest's test stories):

* ``--outer-folds K`` (K >= 2): the training stories are split into K groups of stories; each
  group is held out in turn while the model (alphas by ``--n-folds`` story-grouped CV on the
  others) is fitted on the rest. Score: mean over targets of the held-out Pearson r, averaged
  over the K folds.
* ``--outer-folds 1`` (cheaper): one fit; the score is the story-grouped CV score of the
  training folds at each target's chosen alpha (``EncodingResult.cv_scores``), averaged over
  targets. The last training story is set aside only because a fit needs a held-out story.

Both conventions see the same stories and the same folds, so their scores are paired; the table
gives ``reference - tr_text`` per target, mean ± standard error over targets.

    python benchmarks/timing_conventions.py --data-root ../shared/data/lebel2023 --subject UTS03 \\
        --features wordrate,embedding,llm --outer-folds 1 --max-stories 28

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


def evaluate(ds, subject: str, spec: str, delays: tuple[int, ...], k: int, n_folds: int,
             max_stories: int | None = None) -> dict:
    """Per-target scores of ``spec`` on the training stories of ``subject`` (the first
    ``max_stories`` of them in name order, if given); see the module docstring."""
    train = sorted(ds.train_stories(subject))[:max_stories]
    ctx = SpaceContext(ds, subject=subject, progress=False, train_stories=train)
    design = build_design(ctx, spec, train, delays=delays)
    Y = {s: ds.load_responses(subject, s) for s in train}
    per_target = []
    for held in (outer_folds(train, k) if k >= 2 else [train[-1:]]):
        result = fit_encoding(design.X, Y, held, n_folds=n_folds, n_permutations=0,
                              feature_set=spec, keep_predictions=False, progress=False)
        per_target.append(np.asarray(result.scores["r"] if k >= 2 else result.cv_scores, np.float64))
    per_target = np.mean(per_target, axis=0)
    return {"score": float(np.nanmean(per_target)), "per_target": per_target.tolist(),
            "timing": design.timing, "n_stories": len(train),
            "mode": f"{k} outer folds, held-out r" if k >= 2 else "training-fold CV score"}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--subject", default="UTS03")
    ap.add_argument("--features", default="wordrate,embedding,llm")
    ap.add_argument("--conventions", default="tr_text,reference")
    ap.add_argument("--delays", default="1,2,3,4;0,1,2,3,4", help="delay sets separated by ';'")
    ap.add_argument("--outer-folds", type=int, default=1)
    ap.add_argument("--n-folds", type=int, default=3)
    ap.add_argument("--max-stories", type=int, default=None,
                    help="use only the first N training stories in name order (default: all)")
    ap.add_argument("--json", default=None, help="also write every number to this file")
    args = ap.parse_args(argv)
    delay_sets = [tuple(int(d) for d in part.split(",")) for part in args.delays.split(";")]
    conventions = args.conventions.split(",")
    rows = []
    for spec in args.features.split(","):
        for delays in delay_sets:
            for convention in conventions:
                ds = load_dataset(MANIFESTS[convention], args.data_root)
                assert not set(ds.test_stories) & set(ds.train_stories(args.subject))
                t0 = time.perf_counter()
                res = evaluate(ds, args.subject, spec, delays, args.outer_folds, args.n_folds,
                               args.max_stories)
                res.update(convention=convention, spec=spec, delays=list(delays),
                           seconds=time.perf_counter() - t0)
                rows.append(res)
                print(f"{convention:9s} {spec:10s} delays {min(delays)}-{max(delays)}: "
                      f"{res['score']:.4f} ({res['mode']}, {res['n_stories']} stories, "
                      f"{res['seconds']:.0f} s)", flush=True)
            if args.json:
                with open(args.json, "w") as f:
                    json.dump(rows, f, indent=1)

    def find(spec, convention, delays):
        return next(r for r in rows if r["spec"] == spec and r["convention"] == convention
                    and r["delays"] == list(delays))

    print("\n| features | delays | " + " | ".join(conventions) + " | reference − tr_text |")
    print("| --- | --- | " + " | ".join("---:" for _ in conventions) + " | ---: |")
    for spec in args.features.split(","):
        for delays in delay_sets:
            cells = [f"{find(spec, c, delays)['score']:.4f}" for c in conventions]
            diff = ""
            if {"tr_text", "reference"} <= set(conventions):
                d = (np.asarray(find(spec, "reference", delays)["per_target"])
                     - np.asarray(find(spec, "tr_text", delays)["per_target"]))
                diff = f"{d.mean():+.4f} ± {d.std(ddof=1) / np.sqrt(d.size):.4f}"
            print(f"| `{spec}` | {min(delays)}–{max(delays)} | " + " | ".join(cells) + f" | {diff} |")
    print("RESULT " + " ".join(f"{r['convention']}:{r['spec']}:d{min(r['delays'])}{max(r['delays'])}"
                               f"={r['score']:.4f}" for r in rows))


if __name__ == "__main__":
    main()
