"""``gim-brain datasets fetch``: get the parts of ds003020 a study needs, through DataLad."""

from __future__ import annotations

import argparse
import sys

from .main import UsageError

EPILOG = """examples:
  gim-brain datasets fetch lebel2023 --root /data/ds003020 --subjects UTS03 --dry-run
  gim-brain datasets fetch lebel2023 --root /data/ds003020 --subjects UTS03
  gim-brain datasets fetch lebel2023 --root /data/ds003020 --subjects UTS01,UTS03 --what responses,textgrids,pycortex-db

Clones the DataLad dataset (file tree and sizes only), then gets only the chosen parts:
  textgrids    derivative/TextGrids/ and derivative/respdict.json
  responses    derivative/preprocessed_data/<subject>/
  pycortex-db  derivative/pycortex-db/<subject>/  (surfaces and transforms for native maps)
Run the same command again to resume an interrupted fetch. When responses and TextGrids are
there, it ends with `gim-brain datasets check --manifest lebel2023 --shapes-only`.
Needs DataLad (pip install datalad) and git-annex (apt-get install git-annex).
"""


def register(sub) -> None:
    """Add the ``fetch`` action to the ``datasets`` sub-parsers."""
    from ..data.fetch import LEBEL2023_SOURCE, PARTS

    p = sub.add_parser(
        "fetch", help="download chosen parts of ds003020 (LeBel 2023) with DataLad",
        description="Download only the parts of OpenNeuro ds003020 you need, with progress; "
                    "resumable.", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", help="dataset to fetch: lebel2023")
    p.add_argument("--root", required=True, help="folder of the DataLad clone (created if new)")
    p.add_argument("--subjects", default="", help="comma-separated subjects, e.g. UTS03")
    p.add_argument("--what", default="responses,textgrids",
                   help=f"comma-separated parts among {','.join(PARTS)} (default: responses,textgrids)")
    p.add_argument("--source", default=LEBEL2023_SOURCE,
                   help=f"DataLad dataset to clone (URL or path; default {LEBEL2023_SOURCE})")
    p.add_argument("--dry-run", action="store_true",
                   help="print what would be fetched and its size (clones the file tree only)")
    p.add_argument("--jobs", type=int, default=1, help="parallel downloads (default: 1)")
    p.add_argument("--no-check", action="store_true", help="skip the final `datasets check`")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..data.fetch import FetchError, ensure_clone, plan_fetch, run_fetch

    if args.name != "lebel2023":
        raise UsageError(f"datasets fetch {args.name!r}: only 'lebel2023' (OpenNeuro ds003020) "
                         "can be fetched")
    what = [w.strip() for w in args.what.split(",") if w.strip()]
    subjects = [s.strip() for s in args.subjects.split(",") if s.strip()]
    if args.jobs < 1:
        raise UsageError(f"--jobs {args.jobs}: must be at least 1")

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        from ..data.fetch import plan_paths

        plan_paths(what, subjects)  # usage errors before any cloning
    except FetchError as exc:
        raise UsageError(str(exc)) from None
    try:
        root = ensure_clone(args.source, args.root, log)
        plan = plan_fetch(root, what, subjects)
        print(f"{'would fetch' if args.dry_run else 'fetching'} into {root}:")
        print(plan.describe())
        if args.dry_run:
            return 0
        got = run_fetch(plan, jobs=args.jobs, log=log)
        print(f"fetched {got} file(s); {plan.n_missing - got} left to get" if got < plan.n_missing
              else f"fetched {got} file(s)")
    except FetchError as exc:
        print(f"gim-brain datasets fetch: {exc}", file=sys.stderr)
        return 1
    if args.no_check or not {"responses", "textgrids"} <= set(what):
        if not args.no_check:
            print("not checking: `datasets check` needs both responses and textgrids")
        return 0
    from .datasets import _check

    print(f"checking: gim-brain datasets check --manifest lebel2023 --data-root {root} "
          f"--shapes-only {' '.join('--subject ' + s for s in subjects)}")
    return _check(argparse.Namespace(manifest="lebel2023", data_root=str(root), json=None,
                                     subject=subjects or None, shapes_only=True, quiet=True))
