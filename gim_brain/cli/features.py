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


MAX_DELAY_TRS = 1000


def parse_delays(text: str, n_rows: int | None = None) -> tuple[int, ...]:
    """``"1,2,3,4"`` -> ``(1, 2, 3, 4)`` FIR delays in TRs (``"none"`` -> ``(0,)``).

    Negative delays (features shifted into the past: row ``t`` sees the stimulus at ``t + |d|``)
    are allowed. A delay whose absolute value is ``>= n_rows`` (the shortest story's rows, when
    known) or ``>= MAX_DELAY_TRS`` would leave only zeros and is a :class:`UsageError`.
    """
    if text.strip().lower() in ("none", "0", ""):
        return (0,)
    try:
        delays = tuple(int(d) for d in text.split(","))
    except ValueError:
        raise UsageError(f"--delays must be comma-separated whole TRs like 1,2,3,4, got {text!r}") from None
    limit = MAX_DELAY_TRS if n_rows is None else min(MAX_DELAY_TRS, n_rows)
    bad = [d for d in delays if abs(d) >= limit]
    if bad:
        why = (f"the shortest story has {n_rows} rows" if n_rows is not None and n_rows <= MAX_DELAY_TRS
               else f"delays are limited to {MAX_DELAY_TRS} TRs")
        raise UsageError(f"--delays {', '.join(map(str, bad))}: each delay must be shorter than "
                         f"{limit} TRs in absolute value ({why}); delays are in TRs, not seconds")
    return delays


def check_specs(specs: list[str], params: dict) -> None:
    """Resolve every space of every SPEC with ``params`` + its bracket values (cheap, no building).

    Raises :class:`UsageError` naming the SPEC, space or parameter at fault: unreadable SPEC,
    unknown space, unknown parameter, wrong type or value; a ``--param`` key that no space of any
    SPEC has.
    """
    from ..features import get_space, parse_spec, resolve_params

    try:
        used = set()
        for spec in specs:
            for band in parse_spec(spec):
                for ref in band:
                    space = get_space(ref.name)
                    p = {k: v for k, v in params.items() if k in space.param_names()}
                    used.update(p)
                    p.update(dict(ref.given))
                    try:
                        resolve_params(space, p)
                    except ValueError as exc:
                        raise ValueError(f"SPEC {spec!r}: {exc}") from None
        unused = [k for k in params if k not in used]
        if unused:
            raise ValueError(f"--param {', '.join(map(repr, unused))}: no feature space of "
                             f"{', '.join(specs)} has a parameter {unused[0]!r}")
    except ValueError as exc:  # parse errors, UnknownFeatureSpaceError, FeatureParameterError
        raise UsageError(str(exc)) from None


def add_common_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--manifest", help="dataset manifest name or TOML path")
    p.add_argument("--data-root", help="folder the manifest's paths are relative to")
    p.add_argument("--param", action="append", metavar="K=V",
                   help="feature-space parameter (repeatable); applies to every space that has it")
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


def _save_npy(path: Path, x: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, x)
    atomic_write_bytes(path, buf.getvalue())


def run(args) -> int:
    from ..features import SpaceContext, build_design, get_space, parse_spec
    from ..features.registry import FeatureParameterError, UnknownFeatureSpaceError
    from ..lm import LanguageModelNotFoundError

    if args.list:
        print(list_spaces_text())
        return 0
    if not args.space or not args.out:
        raise UsageError("--space and --out are required (or --list)")
    params = parse_kv(args.param)
    parse_delays(args.delays)  # syntax and the 1000-TR bound before opening anything
    check_specs([args.space], params)
    ds = open_dataset(args)
    needs_subject = sorted({r.name for band in parse_spec(args.space) for r in band
                            if get_space(r.name).uses_responses})
    if needs_subject and not args.subject:
        raise UsageError(f"feature space {', '.join(needs_subject)} is built from responses: "
                         f"name a subject with --subject (dataset {ds.name!r} has: "
                         f"{', '.join(ds.subjects())})")
    if args.subject is not None and args.subject not in ds.subjects():
        raise UsageError(f"--subject: unknown subject {args.subject!r}; dataset {ds.name!r} has: "
                         f"{', '.join(ds.subjects())}")
    stories = args.stories or ds.stories()
    from ..data.manifest import unsafe_name

    escaping = [s for s in stories if unsafe_name(s) is not None]
    if escaping:  # OUT/<story>.npy must stay inside --out
        raise UsageError(f"story name(s) {', '.join(map(repr, escaping))} are not plain names: "
                         f"OUT/<story>.npy would leave --out")
    unknown = [s for s in stories if s not in set(ds.stories())]
    if unknown:
        raise UsageError(f"unknown stories or stories without words: {', '.join(unknown)}")
    ctx = SpaceContext(ds, subject=args.subject, progress=not args.no_progress,
                       lm_model=args.model, device=args.device)
    delays = parse_delays(args.delays, n_rows=min(ctx.story(s).grid.n_rows for s in stories))
    t0 = time.time()
    try:
        design = build_design(ctx, args.space, stories, params=params, delays=delays)
    except (UnknownFeatureSpaceError, FeatureParameterError, LanguageModelNotFoundError,
            ValueError) as exc:
        raise UsageError(f"SPEC {args.space!r}: {exc}") from None
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
