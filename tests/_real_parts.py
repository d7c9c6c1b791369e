"""Programs and packages that some tests need (``from _real_parts import require_program``)."""

from __future__ import annotations

import importlib
import os
import shutil

import pytest


def require_program(*names: str, why: str) -> str:
    """Path of the first of ``names`` on PATH; skips with ``why`` where none is installed.

    CI (``.ci/run``) installs these programs and sets ``GIM_BRAIN_REQUIRE_REAL_PARTS=1``, so
    there a missing program fails the test instead of skipping it.
    """
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    message = f"{why}: none of {', '.join(names)} is on PATH"
    if os.environ.get("GIM_BRAIN_REQUIRE_REAL_PARTS"):
        pytest.fail(message + " (GIM_BRAIN_REQUIRE_REAL_PARTS is set: .ci/run should have installed it)")
    pytest.skip(message)


def require_module(name: str, why: str):
    """``import name``; skips with ``why`` where it is not installed, fails in CI.

    The test extra installs these packages, so under ``GIM_BRAIN_REQUIRE_REAL_PARTS`` (``.ci/run``)
    a missing one is a broken install, not a reason to skip.
    """
    if os.environ.get("GIM_BRAIN_REQUIRE_REAL_PARTS"):
        try:
            return importlib.import_module(name)
        except ImportError as exc:
            pytest.fail(f"{why}: {exc} (GIM_BRAIN_REQUIRE_REAL_PARTS is set: the test extra installs it)")
    return pytest.importorskip(name, reason=why)
