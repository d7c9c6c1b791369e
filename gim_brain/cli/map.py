"""``gim-brain map``: brain maps (volume, surface, flat, interactive HTML) of a fitted run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .main import UsageError

EPILOG = """examples:
  gim-brain map runs/uts03 --out maps/
  gim-brain map runs/uts03 --out maps/ --kind surface,flat --value r --feature-set gim
  gim-brain map runs/uts03 --out maps/ --value unique:gim --feature-set "lm,gim"
  gim-brain map runs/uts03 --out maps/ --value diff:gim-lm --kind flat,html

RUN is a run directory written by `gim-brain fit`: RUN/results/<slug>/ (one saved result per
feature set) and RUN/targets.json (what the targets are: an MNI/native NIfTI mask, or a
ds003020 pycortex-db subject). Each map is saved as PNG/HTML together with the data behind it
(.nii.gz, per-vertex .npz, ROI .csv). Nothing is downloaded.
"""


def register(subparsers) -> None:
    from ..maps.render import MAP_KINDS
    from ..maps.values import VALUE_HELP

    parser = subparsers.add_parser(
        "map", help="draw brain maps of a fitted run (volume, surface, flat, html)",
        description="Draw per-voxel results of a run as brain maps with nilearn, offline and "
                    "without pycortex.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run", help="run directory (with results/ and targets.json)")
    parser.add_argument("--out", required=True, help="folder for the maps")
    parser.add_argument("--kind", default=",".join(MAP_KINDS),
                        help=f"comma-separated map kinds among {','.join(MAP_KINDS)} (default: all)")
    parser.add_argument("--value", default="r", help=f"what to map: {VALUE_HELP} (default: r)")
    parser.add_argument("--feature-set", dest="feature_set",
                        help="feature set (result folder name or SPEC) when the run has several")
    parser.add_argument("--dpi", type=int, default=100, help="PNG resolution (default: 100)")
    parser.set_defaults(func=run)


def read_run(run_dir: str | Path) -> tuple[dict, dict]:
    """Load a run directory: ``({slug: EncodingResult}, targets dict)``.

    The only place that knows the run layout (``results/<slug>/``, ``targets.json``).
    """
    from ..encoding import EncodingResult

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UsageError(f"run directory {run_dir} does not exist")
    targets_path = run_dir / "targets.json"
    if not targets_path.is_file():
        raise UsageError(f"{targets_path} is missing: cannot tell where the targets are in the brain")
    try:
        targets = json.loads(targets_path.read_text())
    except json.JSONDecodeError as exc:
        raise UsageError(f"{targets_path} is not valid JSON: {exc}") from None
    summary_path = run_dir / "summary.json"
    if "subject" not in targets and summary_path.is_file():
        try:
            targets["subject"] = json.loads(summary_path.read_text()).get("subject")
        except json.JSONDecodeError:
            pass  # the subject only goes into titles
    results_dir = run_dir / "results"
    folders = sorted(p for p in results_dir.iterdir() if p.is_dir()) if results_dir.is_dir() else []
    if not folders:
        raise UsageError(f"no saved results under {results_dir}")
    results = {}
    for folder in folders:
        try:
            results[folder.name] = EncodingResult.load(folder)
        except (FileNotFoundError, ValueError) as exc:
            raise UsageError(f"cannot read result {folder}: {exc}") from None
    return results, targets


def run(args) -> int:
    from ..maps.volume import MaskShapeError
    from ..maps.render import MAP_KINDS, TargetsError, parse_targets, render_maps
    from ..maps.values import UnknownValueError, select_values

    kinds = [k.strip() for k in args.kind.split(",") if k.strip()]
    bad = [k for k in kinds if k not in MAP_KINDS]
    if bad or not kinds:
        raise UsageError(f"--kind {args.kind!r}: unknown kind(s) {bad}; choose among "
                         f"{','.join(MAP_KINDS)}")
    results, targets_spec = read_run(args.run)
    try:
        selected = select_values(args.value, results, args.feature_set)
        targets = parse_targets(targets_spec, base=args.run,
                                source=str(Path(args.run) / "targets.json"))
        written = render_maps(selected, targets, args.out, kinds, dpi=args.dpi)
    except (UnknownValueError, TargetsError, MaskShapeError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    for kind, paths in written.items():
        for path in paths:
            print(f"{kind:8s} {path}")
    return 0
