"""Entry point of the ``gim-brain`` command.

Each subcommand lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (called with the parsed
namespace, returning an exit code). Add a module's name to ``COMMANDS`` to wire it in.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

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
    "reference_index",
)


class UsageError(Exception):
    """Bad user input detected by a subcommand: printed without a traceback, exit code 2."""


def read_text_file(path: Path, what: str) -> str:
    """The UTF-8 text of a file named on the command line (``what`` names the flag in errors)."""
    if not path.is_file():
        raise UsageError(f"{what} {path} does not exist")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{what} {path} is not UTF-8 text ({exc})") from exc


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``gim-brain`` parser; with ``command`` (e.g. ``"lm-eval"``), only that subcommand's
    module is imported and registered, so one command does not pay for every other command's
    imports (help texts of some pull in torch or matplotlib). Without it: every command."""
    module = None if command is None else command.replace("-", "_")
    names = (module,) if module in COMMANDS else COMMANDS
    parser = argparse.ArgumentParser(
        prog="gim-brain",
        description="Voxelwise encoding models of natural language with the Generalized "
                    "Induction-Head Model (GIM).",
    )
    parser.add_argument("--version", action="version", version=f"gim-brain {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in names:
        importlib.import_module(f"{__package__}.{name}").register(sub)
    return parser


def data_error_types() -> tuple[type[BaseException], ...]:
    """Exceptions that mean bad or damaged input data (exit 1 with one message, no traceback).

    The data layer's errors (manifest, transcript, TextGrid, responses, timing, story not found,
    dataset unusable) and ``OSError`` (missing, unreadable or unwritable files: the message
    names the file).
    """
    from ..data import ManifestError, ResponseError, TimingError, TranscriptError
    from ..data.check import DatasetUnusableError

    return (ManifestError, ResponseError, TimingError, TranscriptError, DatasetUnusableError, OSError)


def _message(exc: BaseException) -> str:
    return str(exc).strip() or type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    """Run one ``gim-brain`` command; returns its exit code.

    0 success; 1 bad or damaged data (:func:`data_error_types`) or a command's own "no"
    (``datasets check`` on an unusable dataset); 2 usage errors (:class:`UsageError`, argparse);
    130 interrupted with Ctrl-C. Expected faults print one line on stderr, never a traceback.
    """
    given = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in given if not a.startswith("-")), "?")  # for an early Ctrl-C
    try:
        parser = build_parser(command)
        args = parser.parse_args(argv)
        command = args.command or "?"
        if getattr(args, "func", None) is None:
            parser.print_help()
            return 2
        try:
            return int(args.func(args) or 0)
        except UsageError as exc:
            print(f"gim-brain {args.command}: error: {exc}", file=sys.stderr)
            return 2
        except Exception as exc:
            if isinstance(exc, data_error_types()):
                print(f"gim-brain {args.command}: error: {_message(exc)}", file=sys.stderr)
                return 1
            raise
    except KeyboardInterrupt:
        print(f"\ngim-brain {command}: interrupted (Ctrl-C)", file=sys.stderr)
        return 130


if __name__ == "__main__":  # python -m gim_brain.cli.main: use the importable module's classes,
    from gim_brain.cli.main import main as _main  # so UsageError raised by subcommands is caught

    sys.exit(_main())
