"""``gim-brain features``: build a feature SPEC's per-story design matrices and describe them."""

from __future__ import annotations

import argparse

from .main import UsageError

EPILOG = """example:
  gim-brain features --manifest lebel2023_pca --data-root ../shared/data/lebel2023 \\
      --space wordrate --out features/wordrate
  gim-brain features --list
  gim-brain features --manifest lebel2023_pca --data-root ../shared/data/lebel2023 \\
      --subject UTS03 --space 'embedding+ar-control' --param n_components=50 --out features/x

SPEC: a space, 'a+b' (concatenated) or 'a,b' (bands); a space may carry its own parameters,
'llm[layer=10;context=128]'. Output: OUT/<story>.npy (float32, n_rows x n_features, z-scored
per story and FIR-delayed like `gim-brain fit` uses them) and OUT/features.json.
Every expensive step is cached by content key: an interrupted run resumes where it stopped.
"""


def _usage(func, *args, **kwargs):
    from ..experiment import ExperimentError

    try:
        return func(*args, **kwargs)
    except ExperimentError as exc:
        raise UsageError(str(exc)) from None


def parse_kv(items: list[str] | None) -> dict[str, str]:
    """``["k=v", "space.k=v"]`` -> dict (:func:`gim_brain.experiment.parse_kv`; UsageError)."""
    from ..experiment import parse_kv as parse

    return _usage(parse, items)


def parse_delays(text: str, n_rows: int | None = None) -> tuple[int, ...]:
    """``"1,2,3,4"`` -> FIR delays in TRs, checked against ``n_rows`` (UsageError); see
    :func:`gim_brain.experiment.parse_delays` and :func:`~gim_brain.experiment.check_delays`."""
    from ..experiment import check_delays
    from ..experiment import parse_delays as parse

    delays = _usage(parse, text)
    return _usage(check_delays, delays, n_rows) if n_rows is not None else delays


def check_specs(specs: list[str], params: dict) -> dict:
    """Route ``params`` to the spaces of ``specs`` and check every value (no building).

    :func:`gim_brain.experiment.route_params`, with its errors as :class:`UsageError`.
    """
    from ..experiment import route_params

    return _usage(route_params, specs, params)


def add_common_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--manifest", help="dataset manifest name or TOML path")
    p.add_argument("--data-root", help="folder the manifest's paths are relative to")
    p.add_argument("--param", action="append", metavar="K=V",
                   help="feature-space parameter (repeatable): K=V for the one space that has K, "
                        "SPACE.K=V for one space")
    p.add_argument("--delays", default="1,2,3,4",
                   help="FIR delays in TRs (default 1,2,3,4; 'none'). Negative delays are allowed "
                        "(row t then sees the stimulus |d| TRs later; write --delays=-1,0,1). "
                        "|delay| must be below the shortest story's rows and below 1000")
    p.add_argument("--model", default=None,
                   help="LM for LM-based spaces (hub id, folder or .gguf; default offline SmolLM2-135M)")
    p.add_argument("--device", default="auto", help="LM device (auto, cpu, cuda)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def open_dataset(args):
    from ..data import load_dataset

    if not args.manifest or not args.data_root:
        raise UsageError("--manifest and --data-root are required")
    try:
        return load_dataset(args.manifest, args.data_root)
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(str(exc)) from None


def list_spaces_text() -> str:
    from ..features import list_spaces

    lines = []
    for name, space in list_spaces().items():
        lines.append(f"{name:22s} {space.description}")
        for p in space.params:
            tname = p.type.__name__ if isinstance(p.type, type) else "str|none"
            choices = f" {list(p.choices)}" if p.choices else ""
            lines.append(f"    {p.name}={p.default!r} ({tname}{choices}) {p.help}")
    return "\n".join(lines)


def run(args) -> int:
    from ..experiment.export import export_features

    if args.list:
        print(list_spaces_text())
        return 0
    if not args.space or not args.out:
        raise UsageError("--space and --out are required (or --list)")
    params = parse_kv(args.param)
    delays = parse_delays(args.delays)  # syntax and the 1000-TR bound before opening anything
    check_specs([args.space], params)
    ds = open_dataset(args)
    desc = _usage(export_features, ds, args.space, args.out, params=params, delays=delays,
                  subject=args.subject, stories=args.stories, model=args.model,
                  device=args.device, progress=not args.no_progress)
    print(f"wrote {len(desc['stories'])} stories x {desc['n_features']} features of "
          f"{args.space!r} to {args.out}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("features", help="build feature matrices for a dataset",
                              description=__doc__, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(p)
    p.add_argument("--space", metavar="SPEC", help="feature space, 'a+b' or 'a,b'")
    p.add_argument("--subject", default=None, help="subject (response-derived spaces need one)")
    p.add_argument("--stories", nargs="+", default=None, help="only these stories (default all with words)")
    p.add_argument("--out", help="output folder")
    p.add_argument("--list", action="store_true", help="list the feature spaces and their parameters")
    p.set_defaults(func=run)
