"""Shared fixtures: where the real data lives, and an offline-safe nilearn data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real LeBel 2023 and Brennan 2016 files); skips where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (only developers' machines and CI have it)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def lebel_root(shared_data) -> Path:
    return shared_data / "lebel2023"


@pytest.fixture(autouse=True, scope="session")
def _offline_env(tmp_path_factory):
    """Keep nilearn and the hub offline and out of the user's folders during tests."""
    os.environ.setdefault("NILEARN_DATA", str(tmp_path_factory.mktemp("nilearn_data")))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("MPLBACKEND", "Agg")
    yield
