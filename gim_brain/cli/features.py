"""``gim-brain features``: build a feature SPEC's per-story design matrices and describe them."""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import numpy as np

from .. import __version__
from .._cache import atomic_write_bytes
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


def parse_kv(items: list[str] | None) -> dict[str, str]:
    """``["k=v", ...]`` -> dict (values stay strings; each space converts and checks its types)."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise UsageError(f"--param {item!r} must be written k=v")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def parse_delays(text: str) -> tuple[int, ...]:
    if text.strip().lower() in ("none", "0", ""):
        return (0,)
    try:
        delays = tuple(int(d) for d in text.split(","))
    except ValueError:
        raise UsageError(f"--delays must be comma-separated whole TRs like 1,2,3,4, got {text!r}") from None
    return delays


def add_common_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--manifest", help="dataset manifest name or TOML path")
    p.add_argument("--data-root", help="folder the manifest's paths are relative to")
    p.add_argument("--param", action="append", metavar="K=V",
                   help="feature-space parameter (repeatable); applies to every space that has it")
    p.add_argument("--delays", default="1,2,3,4", help="FIR delays in TRs (default 1,2,3,4; 'none')")
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


def _save_npy(path: Path, x: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, x)
    atomic_write_bytes(path, buf.getvalue())


def run(args) -> int:
    from ..features import SpaceContext, build_design
    from ..features.registry import FeatureParameterError, UnknownFeatureSpaceError

    if args.list:
        print(list_spaces_text())
        return 0
    if not args.space or not args.out:
        raise UsageError("--space and --out are required (or --list)")
    ds = open_dataset(args)
    stories = args.stories or ds.stories()
    unknown = [s for s in stories if s not in set(ds.stories())]
    if unknown:
        raise UsageError(f"unknown stories or stories without words: {', '.join(unknown)}")
    ctx = SpaceContext(ds, subject=args.subject, progress=not args.no_progress,
                       lm_model=args.model, device=args.device)
    t0 = time.time()
    try:
        design = build_design(ctx, args.space, stories, params=parse_kv(args.param),
                              delays=parse_delays(args.delays))
    except (UnknownFeatureSpaceError, FeatureParameterError) as exc:
        raise UsageError(str(exc)) from None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for story, x in design.X.items():
        _save_npy(out / f"{story}.npy", x)
    desc = design.describe()
    desc.update(dataset=ds.name, manifest=str(args.manifest), data_root=str(args.data_root),
                subject=args.subject, gim_brain_version=__version__,
                seconds=round(time.time() - t0, 2), files="<story>.npy float32 (n_rows, n_features)")
    atomic_write_bytes(out / "features.json", json.dumps(desc, indent=1, default=str).encode())
    print(f"wrote {len(design.X)} stories x {design.n_features} features of {args.space!r} to {out}")
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
