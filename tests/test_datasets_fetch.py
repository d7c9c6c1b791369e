"""``gim-brain datasets fetch`` against a local DataLad dataset built here in the ds003020
layout: clone from a local path, get one subject only, resume, dry-run sizes, bad sources."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from _data_helpers import write_ds003020_tree
from _maps_helpers import make_fake_pycortex_db
from _real_parts import require_program

datalad = pytest.importorskip("datalad.api", reason="DataLad is not installed (pip install datalad)")


@pytest.fixture(scope="module", autouse=True)
def _git_annex():
    """git-annex is a real part of this test: CI installs it (.ci/run) and fails without it."""
    require_program("git-annex", why="DataLad fetching needs git-annex (apt-get install git-annex)")

GIT_ENV = {"GIT_AUTHOR_NAME": "gim-brain test", "GIT_AUTHOR_EMAIL": "test@example.org",
           "GIT_COMMITTER_NAME": "gim-brain test", "GIT_COMMITTER_EMAIL": "test@example.org"}
STORIES = {"alpha": 60, "beta": 55, "wheretheressmoke": 50}
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A DataLad dataset with two subjects' responses, TextGrids and a pycortex-db subject."""
    path = tmp_path_factory.mktemp("ds003020-source") / "ds003020"
    with pytest.MonkeyPatch.context() as mp:
        for k, v in GIT_ENV.items():
            mp.setenv(k, v)
        ds = datalad.create(path=str(path), result_renderer="disabled")
        write_ds003020_tree(path, STORIES, ["UTS01", "UTS02"], n_voxels=50)
        make_fake_pycortex_db(path / "derivative" / "pycortex-db", subject="UTS01")
        make_fake_pycortex_db(path / "derivative" / "pycortex-db", subject="UTS02", seed=1)
        # annex everything (as ds003020 does), not only large files
        ds.save(message="ds003020 layout", result_renderer="disabled", to_git=False)
    return path


def _fetch(*args, cwd=None):
    env = {**os.environ, **GIT_ENV, "PYTHONPATH": str(ROOT)}
    code = "import sys; from gim_brain.cli.main import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, "datasets", "fetch",
                           "lebel2023", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)


def _present(root: Path, keys: bool = False):
    """Annexed files with content here (``{file: key}`` with ``keys``)."""
    out = subprocess.run(["git", "-C", str(root), "annex", "find", "--in=here",
                          "--format=${key} ${file}\\n"],
                         capture_output=True, text=True, check=True).stdout
    found = dict(reversed(line.split(" ", 1)) for line in out.splitlines() if line)
    return found if keys else set(found)


def test_fetch_gets_only_the_chosen_subject_and_resumes(source, tmp_path):
    root = tmp_path / "clone"
    proc = _fetch("--root", str(root), "--subjects", "UTS01", "--source", str(source),
                  "--what", "responses,textgrids,pycortex-db")
    assert proc.returncode == 0, proc.stderr
    present = _present(root, keys=True)
    assert "derivative/preprocessed_data/UTS01/alpha.hf5" in present
    assert "derivative/TextGrids/beta.TextGrid" in present
    assert "derivative/pycortex-db/UTS01/transforms/UTS01_auto/matrices.xfm" in present
    # the other subject stays pointers (git-annex stores a content once: UTS02 files identical
    # to a UTS01 file are there as a matter of course)
    uts01_keys = {k for f, k in present.items() if "UTS01" in f}
    assert not [f for f, k in present.items() if "UTS02" in f and k not in uts01_keys]
    assert not (root / "derivative/preprocessed_data/UTS02/alpha.hf5").resolve().exists()
    # progress lines, then the final `datasets check`
    assert "[1/" in proc.stderr and "usable: yes" in proc.stdout
    import h5py

    with h5py.File(root / "derivative/preprocessed_data/UTS01/alpha.hf5") as f:
        assert f["data"].shape == (40, 50)
    # again: nothing left to get, nothing downloaded
    again = _fetch("--root", str(root), "--subjects", "UTS01", "--source", str(source),
                   "--what", "responses,textgrids,pycortex-db")
    assert again.returncode == 0, again.stderr
    assert "resuming" in again.stderr and "fetched 0 file(s)" in again.stdout
    assert "already here" in again.stderr


def test_dry_run_prints_sizes_and_gets_nothing(source, tmp_path):
    root = tmp_path / "clone"
    proc = _fetch("--root", str(root), "--subjects", "UTS02", "--source", str(source), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "would fetch" in proc.stdout
    expected = sum(p.stat().st_size for p in (source / "derivative/preprocessed_data/UTS02")
                   .resolve().iterdir())
    line = next(ln for ln in proc.stdout.splitlines() if ln.strip().startswith("responses"))
    assert f"{len(STORIES)} file(s) to get" in line
    from gim_brain.data.fetch import format_bytes

    assert format_bytes(expected) in line
    assert _present(root) == set()  # only the file tree was cloned


def test_unreachable_source_is_a_clear_error(tmp_path):
    proc = _fetch("--root", str(tmp_path / "clone"), "--subjects", "UTS01",
                  "--source", str(tmp_path / "no-such-dataset"))
    assert proc.returncode == 1
    assert "cannot clone the dataset from" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "clone").exists()


def test_unknown_subject_or_part(source, tmp_path):
    proc = _fetch("--root", str(tmp_path / "c1"), "--subjects", "UTS09", "--source", str(source))
    assert proc.returncode == 1
    assert "UTS09" in proc.stderr and "UTS01, UTS02" in proc.stderr
    bad = _fetch("--root", str(tmp_path / "c2"), "--what", "stimuli", "--source", str(source))
    assert bad.returncode == 2 and "stimuli" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "c2").exists()


def test_root_holding_something_else_is_refused(source, tmp_path):
    root = tmp_path / "busy"
    root.mkdir()
    (root / "notes.txt").write_text("mine")
    proc = _fetch("--root", str(root), "--subjects", "UTS01", "--source", str(source))
    assert proc.returncode == 1 and "not a DataLad clone" in proc.stderr
    assert sorted(p.name for p in root.iterdir()) == ["notes.txt"]
