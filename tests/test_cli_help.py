"""Every command's --help prints its usage and exits 0 (argparse %-formats help strings, so a
stray '%' in one option's help turns --help into a traceback)."""

import contextlib
import io

import pytest

from gim_brain.cli.main import build_parser


def _commands():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sorted(sub.choices)


@pytest.mark.parametrize("command", _commands())
def test_help_of_every_command_exits_0(command):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exc:
        build_parser().parse_args([command, "--help"])
    assert exc.value.code == 0
    assert f"usage: gim-brain {command}" in out.getvalue()
