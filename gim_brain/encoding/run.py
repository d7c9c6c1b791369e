"""A run directory: ``RUN/summary.json``, ``RUN/results/<slug>/`` per feature set, ``RUN/targets.json``.

``summary.json``::

    {"subject": "UTS03", "test_stories": [...],
     "feature_sets": {SPEC: {"mean_r": .., "median_r": .., "top10_mean_r": .., "n_targets": ..,
                             "n_significant": .., "spaces": [...], "result": "results/<slug>"}},
     "parameters": {...}, "versions": {...}, "timings": {...}, "targets": {...}}
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from .._cache import atomic_write_bytes
from .result import EncodingResult, _jsonable

__all__ = ["write_run", "read_summary", "read_targets", "load_results", "RunDirError", "slugify",
           "TARGET_KINDS"]

#: What ``targets.json`` may describe, and the keys each kind needs.
TARGET_KINDS = {"volume": ("mask",), "pycortex_db": ("db", "subject"), "components": ("reason",)}


def slugify(spec: str) -> str:
    """A folder name for a feature-set SPEC: ``a+b`` -> ``a_plus_b``, ``a,b`` -> ``a__b``."""
    slug = spec.strip().replace("+", "_plus_").replace(",", "__")
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", slug).strip("-.")
    if not slug:
        raise ValueError(f"feature set {spec!r} gives an empty folder name")
    return slug


def _check_targets(targets: Mapping[str, Any]) -> dict:
    kind = targets.get("kind") if isinstance(targets, Mapping) else None
    if kind not in TARGET_KINDS:
        raise ValueError(f"targets must be a dict with 'kind' in {sorted(TARGET_KINDS)}, got "
                         f"{targets!r}")
    missing = [k for k in TARGET_KINDS[kind] if k not in targets]
    if missing:
        raise ValueError(f"targets of kind {kind!r} need keys {missing}")
    return dict(targets)


def write_run(run_dir: str | Path, results: Mapping[str, EncodingResult], *, subject: str,
              test_stories, targets: Mapping[str, Any], parameters: Mapping[str, Any],
              save: Iterable[str] | None = None,
              entries: Mapping[str, Mapping[str, Any]] | None = None,
              extra: Mapping[str, Any] | None = None) -> Path:
    """Save each result under ``run_dir/results/<slug>/`` and write targets.json and summary.json.

    Parameters
    ----------
    run_dir : path
    results : dict SPEC -> EncodingResult
    subject : str
    test_stories : list of str
    targets : dict
        ``{"kind": "volume", "mask": ...}``, ``{"kind": "pycortex_db", "db": ..., "subject": ...}``
        or ``{"kind": "components", "reason": ...}``.
    parameters : dict
        Run parameters (manifest, data root, backend, ...) recorded in the summary.
    save : iterable of SPEC, optional
        Only (re)save these results (default: all). A run that grows one feature set at a
        time saves each result once instead of rewriting every earlier one (weights and
        predictions of a full subject are hundreds of MB each).
    entries : dict SPEC -> dict, optional
        More keys for a feature set's entry in ``summary.json`` (e.g. its resume key).
    extra : dict, optional
        More top-level keys of ``summary.json`` (e.g. the experiment, a data fingerprint).

    Returns
    -------
    Path of ``summary.json`` (written last, atomically).
    """
    run_dir = Path(run_dir)
    targets = _check_targets(targets)
    if not results:
        raise ValueError("write_run needs at least one EncodingResult")
    slugs: dict[str, str] = {}
    for spec in results:
        slug = slugify(spec)
        if slug in slugs.values():
            raise ValueError(f"feature sets {spec!r} and "
                             f"{[k for k, v in slugs.items() if v == slug][0]!r} map to the "
                             f"same folder {slug!r}")
        slugs[spec] = slug
    to_save = set(results) if save is None else set(save)
    unknown = to_save - set(results)
    if unknown:
        raise ValueError(f"save names feature sets that are not in results: {sorted(unknown)}")
    feature_sets, timings, versions = {}, {}, {}
    for spec, result in results.items():
        if spec in to_save:
            result.save(run_dir / "results" / slugs[spec])
        entry = result.summary()
        entry["result"] = f"results/{slugs[spec]}"
        r = np.asarray(result.scores["r"], dtype=np.float64)
        entry["median_r"] = float(np.nanmedian(r)) if np.isfinite(r).any() else float("nan")
        entry["alpha_median"] = float(np.median(result.alphas))
        prov = result.provenance or {}
        entry["backend"] = prov.get("backend_used")
        entry["solver"] = prov.get("solver_used")
        entry["timing"] = (prov.get("features") or {}).get("timing")  # convention the rows follow
        entry.update((entries or {}).get(spec, {}))
        feature_sets[spec] = entry
        timings[spec] = prov.get("timings", {})
        versions = versions or prov.get("versions", {})
    atomic_write_bytes(run_dir / "targets.json",
                       json.dumps(_jsonable(targets), indent=2).encode())
    summary = {
        "subject": subject,
        "test_stories": list(test_stories),
        "feature_sets": feature_sets,
        "parameters": dict(parameters),
        "targets": targets,
        "versions": versions,
        "timings": timings,
        "created_unix": time.time(),
    }
    for key, value in (extra or {}).items():
        summary.setdefault(key, value)
    path = run_dir / "summary.json"
    atomic_write_bytes(path, json.dumps(_jsonable(summary), indent=2, allow_nan=False).encode())
    return path


class RunDirError(FileNotFoundError):
    """A folder is not a run directory (or lacks the file asked for); names the path."""


def _read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise RunDirError(f"{path} not found: {path.parent} is not a {what} (write one with "
                          "`gim-brain fit ... --out RUN` or `gim-brain demo --out RUN`)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None


def read_summary(run_dir: str | Path) -> dict:
    """``run_dir/summary.json`` as a dict (RunDirError naming the path when absent)."""
    return _read_json(Path(run_dir) / "summary.json", "finished run directory")


def read_targets(run_dir: str | Path) -> dict:
    """``run_dir/targets.json``: what the targets are (volume mask, pycortex db, components)."""
    return _read_json(Path(run_dir) / "targets.json", "run directory")


def load_results(run_dir: str | Path) -> dict[str, EncodingResult]:
    """The run's saved EncodingResults, keyed by feature-set SPEC.

    Where ``summary.json`` exists, only the results it lists are read (in its order): a
    ``results/<slug>/`` folder left by an earlier fit into the same directory under other
    parameters is never picked up. A listed result whose folder is missing is an error.
    """
    run_dir = Path(run_dir)
    folder = run_dir / "results"
    if not folder.is_dir():
        raise RunDirError(f"{folder} not found: {run_dir} has no saved results")
    out = {}
    if (run_dir / "summary.json").is_file():
        listed = read_summary(run_dir).get("feature_sets", {})
        if not isinstance(listed, Mapping) or not all(isinstance(e, Mapping) for e in listed.values()):
            raise RunDirError(f"{run_dir / 'summary.json'}: 'feature_sets' must map each SPEC to "
                              f"its entry (a table), got {type(listed).__name__}")
        for spec, entry in listed.items():
            sub = run_dir / str(entry.get("result", f"results/{slugify(spec)}"))
            if not sub.resolve().is_relative_to(run_dir.resolve()):
                raise RunDirError(f"{run_dir / 'summary.json'} puts feature set {spec!r} at {sub}, "
                                  f"outside the run directory")
            if not (sub / "result.json").is_file():
                raise RunDirError(f"{run_dir / 'summary.json'} lists feature set {spec!r} at {sub}, "
                                  f"which holds no result.json")
            out[spec] = EncodingResult.load(sub)
    else:
        for sub in sorted(p for p in folder.iterdir() if (p / "result.json").is_file()):
            res = EncodingResult.load(sub)
            out[res.feature_set] = res
    if not out:
        raise RunDirError(f"{folder} holds no saved EncodingResult (no */result.json)")
    return out
