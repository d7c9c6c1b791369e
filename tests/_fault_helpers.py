"""A `tiny` copy of the real LeBel 2023 data and a runner of the real `gim-brain` command.

The tiny root holds 5 stories of ``../shared/data/lebel2023`` (4 training stories and the test
story ``wheretheressmoke``: words TSV, UTS03 response PCs, their rows of ``stories.csv``) and a
copy of ``data_manifests/lebel2023_pca.toml`` renamed ``tiny``. Tests damage their own copy.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LEBEL = REPO.parent / "shared" / "data" / "lebel2023"
TINY_STORIES = ("againstthewind", "myfathershands", "sweetaspie", "thetiniestbouquet", "wheretheressmoke")
TEST_STORY = "wheretheressmoke"


def lebel_available() -> bool:
    return (LEBEL / "stories.csv").is_file()


@dataclass
class Tiny:
    """A tiny data root in ``base``: ``root`` (data), ``manifest`` (TOML), ``cache``, ``out``."""

    base: Path

    @property
    def root(self) -> Path:
        return self.base / "data"

    @property
    def manifest(self) -> Path:
        return self.base / "tiny.toml"

    @property
    def cache(self) -> Path:
        return self.base / "cache"

    @property
    def out(self) -> Path:
        return self.base / "out"

    def words(self, story: str) -> Path:
        return self.root / "words" / f"{story}.tsv"

    def responses(self, story: str, subject: str = "UTS03") -> Path:
        return self.root / "responses" / subject / f"{story}.npz"

    def edit_manifest(self, old: str, new: str) -> None:
        text = self.manifest.read_text()
        assert old in text, f"{old!r} not in the tiny manifest"
        self.manifest.write_text(text.replace(old, new, 1))

    def args(self, *extra: str) -> list[str]:
        return ["--manifest", str(self.manifest), "--data-root", str(self.root), *extra]


def make_tiny(base: Path) -> Tiny:
    """Copy the 5 tiny stories and an adjusted ``lebel2023_pca`` manifest into ``base``."""
    tiny = Tiny(Path(base))
    (tiny.root / "words").mkdir(parents=True)
    (tiny.root / "responses" / "UTS03").mkdir(parents=True)
    for story in TINY_STORIES:
        shutil.copyfile(LEBEL / "words" / f"{story}.tsv", tiny.words(story))
        shutil.copyfile(LEBEL / "responses" / "UTS03" / f"{story}.npz", tiny.responses(story))
    with open(LEBEL / "stories.csv", newline="") as f:
        rows = list(csv.reader(f))
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([rows[0]] + [r for r in rows[1:] if r[0] in TINY_STORIES])
    (tiny.root / "stories.csv").write_text(buf.getvalue())
    (tiny.root / "splits.json").write_text('{"test": ["%s"]}\n' % TEST_STORY)
    text = (REPO / "data_manifests" / "lebel2023_pca.toml").read_text()
    tiny.manifest.write_text(text.replace('name = "lebel2023_pca"', 'name = "tiny"', 1))
    return tiny


@dataclass
class Result:
    rc: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def cli_env(cache: Path, **extra: str) -> dict:
    env = dict(os.environ)
    env.update(PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""), GIM_BRAIN_CACHE=str(cache),
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
    env.pop("GIM_BRAIN_TEST_KILL_IN_WRITE", None)
    env.update(extra)
    return env


def gim_brain_command() -> list[str]:
    """The installed ``gim-brain`` console script next to this Python (the worktree's code is
    imported through PYTHONPATH), else ``python -m gim_brain.cli.main``."""
    script = Path(sys.executable).parent / "gim-brain"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "gim_brain.cli.main"]


def gim_brain(args: list[str], cache: Path, cwd: Path, timeout: float = 300, **env: str) -> Result:
    """Run the real ``gim-brain`` command in a subprocess; returns exit code, stdout, stderr."""
    proc = subprocess.run([*gim_brain_command(), *map(str, args)], cwd=cwd,
                          env=cli_env(cache, **env), capture_output=True, text=True, timeout=timeout)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def snapshot(folder: Path, skip: tuple[Path, ...] = ()) -> dict[str, tuple[int, int]]:
    """``relative path -> (size, mtime_ns)`` of every file under ``folder`` outside ``skip``."""
    skip = tuple(Path(s).resolve() for s in skip)
    out = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        d = Path(dirpath).resolve()
        if any(d == s or s in d.parents for s in skip):
            dirnames[:] = []
            continue
        for name in filenames:
            p = d / name
            st = p.lstat()
            out[str(p.relative_to(Path(folder).resolve()))] = (st.st_size, st.st_mtime_ns)
    return out
