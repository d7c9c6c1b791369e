"""``gim-brain compare RUN_A RUN_B``: per-target differences between two fits, with significance.

Each side is a run directory, optionally with ``:SPEC`` to pick one of its feature sets
(``runs/x:llm``); the same run may appear on both sides with two feature sets. Without ``:SPEC``
the feature sets the two runs have in common are compared (or the only one of each).

Significance across targets: a sign-flip permutation test of the mean per-target difference and
a Wilcoxon signed-rank test. Both treat targets as exchangeable units; neighbouring voxels are
correlated, so read the p-values as optimistic for voxels (they are apt for response components).
Where both fits saved block-permutation p-values, the numbers of FDR-significant targets of each
side are shown too.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .main import UsageError

__all__ = ["register", "run"]

EPILOG = """examples:
  gim-brain compare runs/llm runs/gim                      # feature sets the two runs share
  gim-brain compare runs/demo:llm runs/demo:wordrate --out cmp/   # two feature sets of one run
  gim-brain compare runs/a runs/b --metric r2 --json cmp.json
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare", help="per-target differences between two runs / feature sets, with significance",
        description="Compare held-out scores target by target (voxel or response component): "
                    "mean difference, fraction of targets improved, sign-flip permutation and "
                    "Wilcoxon tests across targets; with --out, a scatter/histogram figure and, "
                    "for volume targets, a glass-brain map of the difference.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_a", metavar="RUN_A[:SPEC]", help="first run directory (optionally :SPEC)")
    parser.add_argument("run_b", metavar="RUN_B[:SPEC]", help="second run directory (optionally :SPEC)")
    parser.add_argument("--metric", choices=("r", "r2"), default="r", help="score to compare (default r)")
    parser.add_argument("--n-permutations", type=int, default=10000,
                        help="sign flips for the permutation test (default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sign flips")
    parser.add_argument("--only-significant", action="store_true",
                        help="test only targets that are FDR-significant in either fit (needs "
                             "p-values in both; most voxels of a brain carry no signal)")
    parser.add_argument("--out", metavar="DIR", help="write figures (PNG) into DIR")
    parser.add_argument("--json", metavar="FILE", help="write the statistics as JSON")
    parser.set_defaults(func=run)


def _split(arg: str) -> tuple[Path, str | None]:
    path = Path(arg)
    if path.is_dir() or ":" not in arg:
        return path, None
    head, spec = arg.rsplit(":", 1)
    return Path(head), spec


def _pairs(results_a: dict, spec_a: str | None, results_b: dict, spec_b: str | None,
           run_a: Path, run_b: Path) -> list[tuple[str, str]]:
    for spec, results, run in ((spec_a, results_a, run_a), (spec_b, results_b, run_b)):
        if spec is not None and spec not in results:
            raise UsageError(f"run {run} has no feature set {spec!r}; it has: {', '.join(results)}")
    if spec_a is not None or spec_b is not None:
        sa = spec_a if spec_a is not None else (spec_b if spec_b in results_a else None)
        sb = spec_b if spec_b is not None else (spec_a if spec_a in results_b else None)
        if sa is None or sb is None:
            raise UsageError("give :SPEC on both sides (the other run has no feature set of that name)")
        return [(sa, sb)]
    common = [s for s in results_a if s in results_b]
    if common:
        return [(s, s) for s in common]
    if len(results_a) == 1 and len(results_b) == 1:
        return [(next(iter(results_a)), next(iter(results_b)))]
    raise UsageError(f"the runs share no feature set ({run_a}: {', '.join(results_a)}; {run_b}: "
                     f"{', '.join(results_b)}); pick one on each side as RUN:SPEC")


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:80]


def run(args) -> int:
    from ..encoding.comparison import compare_scores
    from ..encoding.run import RunDirError, load_results, read_targets

    run_a, spec_a = _split(args.run_a)
    run_b, spec_b = _split(args.run_b)
    try:
        results_a = load_results(run_a)
        results_b = results_a if run_b.resolve() == run_a.resolve() else load_results(run_b)
    except (RunDirError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    if args.n_permutations < 1:
        raise UsageError(f"--n-permutations must be >= 1, got {args.n_permutations}")
    out_dir = Path(args.out) if args.out else None
    report = {"run_a": str(run_a), "run_b": str(run_b), "comparisons": []}
    for sa, sb in _pairs(results_a, spec_a, results_b, spec_b, run_a, run_b):
        ra, rb = results_a[sa], results_b[sb]
        try:
            stats = compare_scores(ra, rb, args.metric, args.n_permutations, args.seed,
                                   args.only_significant)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        name_a, name_b = f"{run_a.name}:{sa}", f"{run_b.name}:{sb}"
        stats.update(a=name_a, b=name_b)
        which = " significant in either" if args.only_significant else ""
        print(f"{name_a}  vs  {name_b}  ({stats['n']}{which} targets, metric {args.metric})")
        print(f"  mean {args.metric}: {stats['mean_a']:.4f} vs {stats['mean_b']:.4f}; "
              f"difference mean {stats['mean']:+.4f}, median {stats['median']:+.4f}; "
              f"A better on {100 * stats['frac_positive']:.1f}% of targets")
        print(f"  sign-flip permutation p = {stats['p_permutation']:.2g} "
              f"({stats['n_permutations']} flips); Wilcoxon signed-rank p = {stats['p_wilcoxon']:.2g}"
              "  [targets treated as independent: optimistic for correlated voxels]")
        if stats["n_significant_a"] is not None or stats["n_significant_b"] is not None:
            print(f"  FDR-significant targets: {stats['n_significant_a']} vs {stats['n_significant_b']}")
        if out_dir is not None:
            from ..maps.scores import save_comparison_figures

            try:
                targets_a, targets_b = read_targets(run_a), read_targets(run_b)
            except RunDirError:  # a run without targets.json: no map, the numbers stand
                targets_a = targets_b = None
            written = save_comparison_figures(ra, rb, name_a, name_b, args.metric, out_dir,
                                              f"{_slug(sa)}_vs_{_slug(sb)}", targets_a,
                                              targets_b, base=run_a)
            stats.update(written)
            for path in written.values():
                print(f"  wrote {path}")
        report["comparisons"].append(stats)
    if args.json:
        from .._cache import atomic_write_bytes

        atomic_write_bytes(Path(args.json), json.dumps(report, indent=1).encode())
        print(f"wrote {args.json}")
    return 0
