"""Fetch the parts of LeBel et al. 2023 (OpenNeuro ds003020) that a study needs, with DataLad.

ds003020 is a DataLad dataset (~127 GB of annexed files). Cloning it gives the file tree
and each annexed file's size without its content; ``datalad get`` then downloads only the
chosen paths. Both steps can be repeated: files already present are skipped and an
interrupted download resumes (git-annex keeps partial transfers).

Parts (paths relative to the dataset root)::

    textgrids    derivative/TextGrids/  derivative/respdict.json
    responses    derivative/preprocessed_data/{subject}/
    pycortex-db  derivative/pycortex-db/{subject}/

Needs DataLad (``pip install datalad``, the ``fetch`` extra) and git-annex (Debian's
``git-annex``).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

__all__ = ["FetchError", "LEBEL2023_SOURCE", "PARTS", "FetchPlan", "plan_paths",
           "ensure_clone", "plan_fetch", "run_fetch", "format_bytes"]

#: the DataLad dataset of ds003020 published by OpenNeuro
LEBEL2023_SOURCE = "https://github.com/OpenNeuroDatasets/ds003020.git"

#: part -> paths (``{subject}`` is filled per subject)
PARTS: dict[str, tuple[str, ...]] = {
    "textgrids": ("derivative/TextGrids", "derivative/respdict.json"),
    "responses": ("derivative/preprocessed_data/{subject}",),
    "pycortex-db": ("derivative/pycortex-db/{subject}",),
}
_SUBJECT_DIRS = {"responses": "derivative/preprocessed_data",
                 "pycortex-db": "derivative/pycortex-db"}


class FetchError(RuntimeError):
    """The dataset cannot be cloned or fetched (source, tools, paths); the message says why."""


def format_bytes(n: int | None) -> str:
    """``1536`` -> ``"1.5 KB"`` (powers of 1000, as git-annex reports)."""
    if n is None:
        return "unknown size"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000.0
    return f"{size:.1f} TB"


def _require_tools():
    try:
        import datalad.api as dl  # noqa: F401
    except ImportError:
        raise FetchError("fetching needs DataLad: pip install datalad (or gim-brain[fetch])") \
            from None
    if shutil.which("git-annex") is None:
        raise FetchError("fetching needs git-annex: apt-get install git-annex "
                         "(or see https://git-annex.branchable.com/install/)")
    import datalad.api as dl

    return dl


def plan_paths(what: Sequence[str], subjects: Sequence[str]) -> dict[str, list[str]]:
    """Paths to get, per part, for ``what`` (parts) and ``subjects``.

    Raises
    ------
    FetchError
        An unknown part, or a subject-wise part without subjects.
    """
    unknown = [w for w in what if w not in PARTS]
    if unknown or not what:
        raise FetchError(f"--what {','.join(what)}: unknown part(s) {unknown}; choose among "
                         f"{','.join(PARTS)}")
    out: dict[str, list[str]] = {}
    for part in what:
        paths = []
        for template in PARTS[part]:
            if "{subject}" in template:
                if not subjects:
                    raise FetchError(f"part {part!r} needs --subjects (e.g. UTS03)")
                paths += [template.format(subject=s) for s in subjects]
            else:
                paths.append(template)
        out[part] = paths
    return out


def _is_dataset(root: Path) -> bool:
    return (root / ".datalad").is_dir() and (root / ".git").exists()


def ensure_clone(source: str, root: str | Path, log: Callable[[str], None] = print) -> Path:
    """Clone ``source`` into ``root`` (file tree only), or reuse an earlier clone there.

    Raises
    ------
    FetchError
        ``root`` holds something else, or the source cannot be cloned (unreachable, not a
        DataLad/git dataset).
    """
    dl = _require_tools()
    root = Path(root)
    if _is_dataset(root):
        log(f"using the existing clone at {root} (resuming)")
        return root
    if root.exists() and any(root.iterdir()):
        raise FetchError(f"--root {root} exists and is not empty, and is not a DataLad clone "
                         "of the dataset; choose an empty or new folder")
    log(f"cloning {source} into {root} (file tree and sizes only; no file content yet)")
    try:
        dl.clone(source=str(source), path=str(root), result_renderer="disabled")
    except Exception as exc:  # datalad raises IncompleteResultsError / CommandError
        if root.exists() and not any(root.iterdir()):
            root.rmdir()
        raise FetchError(f"cannot clone the dataset from {source}: "
                         f"{_short_error(exc)}") from None
    return root


def _message(msg) -> str:
    """DataLad result messages may be ``(format, *args)`` tuples."""
    if isinstance(msg, (tuple, list)) and msg and isinstance(msg[0], str):
        try:
            return msg[0] % tuple(msg[1:])
        except TypeError:
            return " ".join(str(m) for m in msg)
    return str(msg)


def _short_error(exc: Exception) -> str:
    failed = getattr(exc, "failed", None)
    if failed:
        messages = [_message(r.get("message", "")) for r in failed if isinstance(r, dict)]
        text = "; ".join(m for m in messages if m)
    else:
        text = " | ".join(ln.strip() for ln in str(exc).splitlines() if ln.strip())
    return (text or type(exc).__name__)[:600]


@dataclass
class FetchPlan:
    """What a fetch gets: per part, the files missing here and those already present."""

    root: Path
    paths: dict[str, list[str]]
    missing: dict[str, list[tuple[str, int | None]]] = field(default_factory=dict)
    present: dict[str, list[tuple[str, int | None]]] = field(default_factory=dict)

    @property
    def missing_bytes(self) -> int:
        return sum(s or 0 for files in self.missing.values() for _, s in files)

    @property
    def n_missing(self) -> int:
        return sum(len(f) for f in self.missing.values())

    def describe(self) -> str:
        """One line per part and a total, sizes of the files still to download."""
        lines = []
        for part, paths in self.paths.items():
            miss, have = self.missing.get(part, []), self.present.get(part, [])
            size = sum(s or 0 for _, s in miss)
            lines.append(f"  {part:12s} {len(miss):5d} file(s) to get, {format_bytes(size):>9s}"
                         f"; {len(have)} already here   ({', '.join(paths)})")
        lines.append(f"  total        {self.n_missing:5d} file(s), {format_bytes(self.missing_bytes)}")
        return "\n".join(lines)


def _annex_files(root: Path, paths: list[str], present: bool) -> list[tuple[str, int | None]]:
    """Annexed files under ``paths`` with (``present``) or without content here, with sizes."""
    cmd = ["git", "-C", str(root), "annex", "find", "--in=here" if present else "--not",
           *([] if present else ["--in=here"]), "--format=${bytesize}\\t${file}\\n", "--", *paths]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise FetchError(f"git annex find failed in {root}: {proc.stderr.strip()[:400]}")
    out = []
    for line in proc.stdout.splitlines():
        size, _, name = line.partition("\t")
        out.append((name, int(size) if size.strip().isdigit() else None))
    return out


def plan_fetch(root: Path, what: Sequence[str], subjects: Sequence[str]) -> FetchPlan:
    """Sizes of the chosen parts in a clone: files to download and files already present.

    Raises
    ------
    FetchError
        A chosen path is not in the dataset (e.g. an unknown subject; the message lists the
        subjects the dataset has).
    """
    plan = FetchPlan(Path(root).resolve(), plan_paths(what, subjects))
    for part, paths in plan.paths.items():
        for path in paths:
            if not (plan.root / path).exists() and not (plan.root / path).is_symlink():
                parent = _SUBJECT_DIRS.get(part)
                known = sorted(p.name for p in (plan.root / parent).iterdir()) \
                    if parent and (plan.root / parent).is_dir() else []
                hint = f" (subjects there: {', '.join(known)})" if known else ""
                raise FetchError(f"{path} is not in the dataset at {plan.root}{hint}")
        plan.missing[part] = _annex_files(plan.root, paths, present=False)
        plan.present[part] = _annex_files(plan.root, paths, present=True)
    return plan


def run_fetch(plan: FetchPlan, jobs: int = 1, log: Callable[[str], None] = print) -> int:
    """Download the plan's missing files, printing one progress line per file.

    Returns
    -------
    int
        Number of files downloaded now.

    Raises
    ------
    FetchError
        Some file could not be got (named, with DataLad's message); files got so far stay,
        so running the fetch again resumes.
    """
    dl = _require_tools()
    total, total_bytes = plan.n_missing, plan.missing_bytes
    done = done_bytes = 0
    failures = []
    sizes = {name: size for files in plan.missing.values() for name, size in files}
    for part, paths in plan.paths.items():
        if not plan.missing.get(part):
            log(f"{part}: all {len(plan.present.get(part, []))} file(s) already here")
            continue
        log(f"{part}: getting {len(plan.missing[part])} file(s), "
            f"{format_bytes(sum(s or 0 for _, s in plan.missing[part]))}")
        results = dl.get(path=[str(plan.root / p) for p in paths], dataset=str(plan.root),
                         jobs=jobs, on_failure="ignore", result_renderer="disabled",
                         return_type="generator")
        for res in results:
            if res.get("type") != "file" or res.get("action") != "get":
                continue  # folder-level summaries repeat the files' own results
            rel = str(Path(res["path"]).relative_to(plan.root.resolve())) \
                if Path(res["path"]).is_absolute() else res["path"]
            if res.get("status") == "ok":
                done += 1
                done_bytes += sizes.get(rel, 0) or 0
                log(f"  [{done}/{total}] {rel} ({format_bytes(sizes.get(rel))}; "
                    f"{format_bytes(done_bytes)} of {format_bytes(total_bytes)})")
            elif res.get("status") in ("error", "impossible"):
                failures.append(f"{rel}: {_message(res.get('message'))}")
    if failures:
        raise FetchError(f"{len(failures)} file(s) could not be fetched (run the same command "
                         f"again to resume): " + "; ".join(str(f) for f in failures[:5]))
    return done
