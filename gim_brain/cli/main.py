"""Entry point of the ``gim-brain`` command.

Each subcommand lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (called with the parsed
namespace, returning an exit code). Add a module's name to ``COMMANDS`` to wire it in.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__

COMMANDS: tuple[str, ...] = (
    "datasets",
    "features",
    "fit",
    "map",
    "compare",
    "demo",
    "lm_eval",
    "train_fuzzy",
)


class UsageError(Exception):
    """Bad user input detected by a subcommand: printed without a traceback, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gim-brain",
        description="Voxelwise encoding models of natural language with the Generalized "
                    "Induction-Head Model (GIM).",
    )
    parser.add_argument("--version", action="version", version=f"gim-brain {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__package__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"gim-brain {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
