"""``gim-brain map``: brain maps (volume, surface, flat, interactive HTML) of a fitted run."""

from __future__ import annotations

import argparse

from .main import UsageError

EPILOG = """examples:
  gim-brain map runs/uts03 --out maps/                  # every feature set of the run
  gim-brain map runs/uts03 --out maps/ --kind surface,flat --value r --feature-set gim
  gim-brain map runs/uts03 --out maps/ --value unique:gim --feature-set "lm,gim"
  gim-brain map runs/uts03 --out maps/ --value diff:gim-lm --kind flat,html

RUN is a run directory written by `gim-brain fit`: RUN/results/<slug>/ (one saved result per
feature set) and RUN/targets.json (what the targets are: an MNI/native NIfTI mask, or a
ds003020 pycortex-db subject). A run of several subjects is mapped subject by subject into
OUT/<subject>/. Without --feature-set every feature set of the run is mapped. Each map is saved as PNG/HTML together with the data behind it
(.nii.gz, per-vertex .npz, ROI .csv). Nothing is downloaded.
"""


def register(subparsers) -> None:
    from ..maps.render import map_kinds
    from ..maps.values import VALUE_HELP

    kinds = list(map_kinds())

    parser = subparsers.add_parser(
        "map", help="draw brain maps of a fitted run (volume, surface, flat, html)",
        description="Draw per-voxel results of a run as brain maps with nilearn, offline and "
                    "without pycortex.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run", help="run directory (with results/ and targets.json)")
    parser.add_argument("--out", required=True, help="folder for the maps")
    parser.add_argument("--kind", default=",".join(kinds),
                        help=f"comma-separated map kinds among {','.join(kinds)} (default: all)")
    parser.add_argument("--value", default="r", help=f"what to map: {VALUE_HELP} (default: r)")
    parser.add_argument("--feature-set", dest="feature_set",
                        help="feature set (result folder name or SPEC); default: every feature "
                             "set of the run")
    parser.add_argument("--dpi", type=int, default=100, help="PNG resolution (default: 100)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..encoding.run import RunDirError
    from ..maps.render import TargetsError, map_kinds, render_run
    from ..maps.values import UnknownValueError
    from ..maps.volume import MaskShapeError

    kinds = [k.strip() for k in args.kind.split(",") if k.strip()]
    known = map_kinds()
    bad = [k for k in kinds if k not in known]
    if bad or not kinds:
        raise UsageError(f"--kind {args.kind!r}: unknown kind(s) {bad}; choose among "
                         f"{','.join(known)}")
    try:
        written = render_run(args.run, args.out, kinds, value=args.value,
                             feature_set=args.feature_set, dpi=args.dpi)
    except RunDirError as exc:
        raise UsageError(f"cannot read run {args.run}: {exc}") from None
    except (UnknownValueError, TargetsError, MaskShapeError, FileNotFoundError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    for kind, paths in written.items():
        for path in paths:
            print(f"{kind:8s} {path}")
    return 0
