"""The science table of README.md from a finished run of ``benchmarks/uts03_science.toml``.

    gim-brain fit benchmarks/uts03_science.toml
    python benchmarks/science_table.py runs/uts03-science [--banded runs/uts03-science-banded]

For every SPEC: mean held-out r, top-10 % r, targets significant at the run's FDR level and fit
seconds. For each base space ``X`` (``embedding``, ``llm``) and each added space ``Y``: the
change in mean r and in mean held-out R² of ``X+Y`` (one shared penalty) over ``X``, with a
sign-flip test of the r change across targets,
and for the banded fit ``X,Y`` the joint r and ``Y``'s unique variance (held-out R² of ``X,Y``
minus that of the model without ``Y``; mean over targets, and targets where it is > 0); each
GIM space against its random control, by r (``+``) and by unique variance (``,``).
Targets are response PCs here (200 for UTS03): a sign-flip test across them is apt for
components; for voxels, neighbouring targets are correlated and the p-values are optimistic.
The last line is ``RESULT ...`` (machine-readable).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from gim_brain.encoding.comparison import paired_difference_test
from gim_brain.encoding.run import load_results

BASES = ("embedding", "llm")
ADDED = ("gim-induction", "gim-induction-random", "ngram-induction", "ar-control", "gim-copy",
         "gim-copy-random")


def _seconds(res) -> float:
    """Wall seconds of the fit (``total_s``: preparation, fit and permutations)."""
    return float((res.provenance.get("timings") or {}).get("total_s", float("nan")))


def _fmt_sig(res) -> str:
    n = res.n_significant()
    return "n/a" if n is None else f"{n}/{res.n_targets}"


def table_order(specs) -> list[str]:
    """SPECs in run order, with each banded ``X,Y`` moved to the place of ``X+Y`` in the
    concatenated block (so both halves list their pairs alike, whatever order they ran in)."""
    specs = list(specs)
    cat = {s: i for i, s in enumerate(specs) if "," not in s}
    banded = [s for s in specs if "," in s]
    rank = {s: cat.get(s.replace(",", "+"), len(specs) + i) for i, s in enumerate(banded)}
    return list(cat) + sorted(banded, key=rank.__getitem__)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="run directory (one subject: RUN or RUN/SUBJECT)")
    parser.add_argument("--banded", type=Path, default=None,
                        help="run directory of uts03_science_banded.toml (its X,Y results)")
    args = parser.parse_args(argv)
    run = args.run
    if not (run / "summary.json").is_file() or not (run / "results").is_dir():
        subs = [p for p in sorted(run.iterdir()) if (p / "results").is_dir()] if run.is_dir() else []
        if len(subs) != 1:
            print(f"science_table: {run} is not a one-subject run directory", file=sys.stderr)
            return 2
        run = subs[0]
    results = load_results(run)
    if args.banded is not None and (args.banded / "summary.json").is_file():
        results.update(load_results(args.banded))

    print("| features | mean r | top-10% r | significant | seconds |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for spec in table_order(results):  # concatenated SPECs, then the banded ones
        res = results[spec]
        print(f"| `{spec}` | {res.mean_r():.3f} | {res.top10_mean_r():.3f} | {_fmt_sig(res)} | "
              f"{_seconds(res):.0f} |")

    print()
    print("| base + added | Δ mean r (`+`) | p (sign flip) | Δ mean R² (`+`) | banded `,` mean r | "
          "unique R² of added (`,`, mean) | targets with unique R² > 0 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    result_line = {}
    for base in BASES:
        if base not in results:
            continue
        r_base = np.asarray(results[base].scores["r"], dtype=np.float64)
        r2_base = np.asarray(results[base].scores["r2"], dtype=np.float64)
        for added in ADDED:
            cat, band = results.get(f"{base}+{added}"), results.get(f"{base},{added}")
            if cat is None and band is None:
                continue
            cells = [f"`{base}` + `{added}`"]
            if cat is not None:
                diff = np.asarray(cat.scores["r"], dtype=np.float64) - r_base
                test = paired_difference_test(diff, n_permutations=10000, seed=0)
                d_r2 = float(np.nanmean(np.asarray(cat.scores["r2"], dtype=np.float64) - r2_base))
                cells += [f"{test['mean']:+.4f}", f"{test['p_permutation']:.3g}", f"{d_r2:+.4f}"]
                result_line[f"d_{base}_{added}"] = round(test["mean"], 4)
            else:
                cells += ["", "", ""]
            if band is not None and added in band.unique_variance:
                uv = np.asarray(band.unique_variance[added], dtype=np.float64)
                cells += [f"{band.mean_r():.3f}", f"{np.nanmean(uv):+.4f}",
                          f"{int(np.sum(uv > 0))}/{uv.size}"]
                result_line[f"uv_{base}_{added}"] = round(float(np.nanmean(uv)), 4)
            else:
                cells += ["", "", ""]
            print("| " + " | ".join(cells) + " |")
    print()
    print("| GIM space vs its random control | Δ mean | p (sign flip) |")
    print("| --- | ---: | ---: |")
    for base in BASES:
        for added in ("gim-induction", "gim-copy"):
            real, ctrl = results.get(f"{base}+{added}"), results.get(f"{base}+{added}-random")
            if real is None or ctrl is None:
                continue
            diff = (np.asarray(real.scores["r"], dtype=np.float64)
                    - np.asarray(ctrl.scores["r"], dtype=np.float64))
            test = paired_difference_test(diff, n_permutations=10000, seed=0)
            print(f"| `{base}+{added}` − `{base}+{added}-random` (r) | {test['mean']:+.4f} | "
                  f"{test['p_permutation']:.3g} |")
            result_line[f"vs_control_{base}_{added}"] = round(test["mean"], 4)
        for added in ("gim-induction", "gim-copy"):
            real, ctrl = results.get(f"{base},{added}"), results.get(f"{base},{added}-random")
            if (real is None or ctrl is None or added not in real.unique_variance
                    or f"{added}-random" not in ctrl.unique_variance):
                continue
            diff = (np.asarray(real.unique_variance[added], dtype=np.float64)
                    - np.asarray(ctrl.unique_variance[f"{added}-random"], dtype=np.float64))
            test = paired_difference_test(diff, n_permutations=10000, seed=0)
            print(f"| `{base},{added}` − `{base},{added}-random` (unique R²) | "
                  f"{test['mean']:+.4f} | {test['p_permutation']:.3g} |")
            result_line[f"uv_vs_control_{base}_{added}"] = round(test["mean"], 4)
    print()
    print("RESULT " + " ".join(f"{k.replace('-', '_')}={v}" for k, v in result_line.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
