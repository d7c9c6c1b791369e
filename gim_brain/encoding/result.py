"""``EncodingResult``: what one fitted encoding model records, saved atomically as npz + JSON.

A saved result is a folder with ``arrays.npz`` (the per-target scores, alphas, p-values, ...),
``weights.npy`` and ``predictions.npy`` when the result has them (the large arrays, each its own
file, read back as memmaps; see :mod:`gim_brain.encoding.ondisk`), and ``result.json`` (names,
splits, provenance, and the list of arrays and files). The arrays are written first and the JSON
last, each through a temporary file and a rename, so a folder with a ``result.json`` is always
complete. Format 1 (weights and predictions inside ``arrays.npz``) is still read.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._cache import atomic_save_npz, atomic_write_bytes
from .ondisk import load_npy, save_npy

__all__ = ["EncodingResult", "FORMAT_VERSION", "top_fraction_mean"]

FORMAT_VERSION = 2
_READABLE_VERSIONS = (1, 2)
_JSON = "result.json"
_NPZ = "arrays.npz"
#: Arrays saved as their own ``<name>.npy`` (the ones that grow with features x targets or
#: test rows x targets), read back as memmaps.
FILE_ARRAYS = ("weights", "predictions")


def top_fraction_mean(values: np.ndarray, fraction: float = 0.1) -> float:
    """Mean of the largest ``fraction`` of ``values`` (at least one value); NaN for none."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan")
    k = max(1, int(np.ceil(fraction * v.size)))
    return float(np.sort(v)[-k:].mean())


@dataclass
class EncodingResult:
    """One fitted encoding model (one feature set, one subject).

    Attributes
    ----------
    feature_set : str
        The SPEC string (a space, ``a+b`` concatenated, or ``a,b`` banded).
    spaces : list of str
        Feature-space names (one for a plain fit, one per band for a banded fit).
    scores : dict
        ``"r"`` and ``"r2"`` -> float32 (n_targets,): held-out correlation and R² on the test
        stories (concatenated).
    alphas : float32 (n_targets,)
        Chosen ridge alpha per target (banded: the overall alpha, ``1 / sum(exp(deltas))``).
    pvalues : float64 (n_targets,) or None
        Block-permutation p-values (None when permutations were disabled).
    qvalues : float64 (n_targets,) or None
        Benjamini–Hochberg adjusted p-values.
    cv_scores : float32 (n_targets,) or None
        Mean validation score at the chosen alpha.
    split_scores : dict space -> float32 (n_targets,)
        Banded fits: each space's share of the joint R² (product measure; sums to ``r2``).
    unique_variance : dict space -> float32 (n_targets,)
        Banded fits: joint R² minus R² of the model without that space.
    shared_variance : float32 (n_targets,) or None
        Banded fits: joint R² minus the sum of unique variances.
    deltas : float32 (n_spaces, n_targets) or None
        Banded fits: log space weights from himalaya (``exp(delta_s) = gamma_s / alpha``).
    noise_ceiling : dict name -> float32 (n_targets,)
        Where test repeats were given: ``explainable_variance``, ``cc_max``, ``r_normalized``.
    weights : float32 (n_features, n_targets) or None
        In memory, or a read-only memmap of ``weights.npy`` (a loaded or disk-assembled result).
    predictions : float32 (n_test_rows, n_targets) or None
        Held-out predictions on the test stories (concatenated in ``splits["test_stories"]``
        order; row counts in ``splits["test_rows"]``); in memory or a memmap like ``weights``.
    splits : dict
        ``train_stories``, ``test_stories``, ``test_rows``, ``folds`` (list of validation-story
        lists).
    provenance : dict
        Versions, parameters, backend, solver and timings (seconds).
    """

    feature_set: str
    spaces: list[str]
    scores: dict[str, np.ndarray]
    alphas: np.ndarray
    pvalues: np.ndarray | None = None
    qvalues: np.ndarray | None = None
    cv_scores: np.ndarray | None = None
    split_scores: dict[str, np.ndarray] = field(default_factory=dict)
    unique_variance: dict[str, np.ndarray] = field(default_factory=dict)
    shared_variance: np.ndarray | None = None
    deltas: np.ndarray | None = None
    noise_ceiling: dict[str, np.ndarray] = field(default_factory=dict)
    weights: np.ndarray | None = None
    predictions: np.ndarray | None = None
    splits: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    # ---- summaries ------------------------------------------------------------------------
    @property
    def n_targets(self) -> int:
        return int(np.asarray(self.scores["r"]).shape[0])

    def mean_r(self) -> float:
        return float(np.nanmean(np.asarray(self.scores["r"], dtype=np.float64)))

    def top10_mean_r(self) -> float:
        """Mean held-out r over the best 10% of targets."""
        return top_fraction_mean(self.scores["r"], 0.1)

    def n_significant(self, fdr_alpha: float | None = None) -> int | None:
        """Targets with BH q-value <= ``fdr_alpha`` (default: the fit's level); None without p-values."""
        if self.qvalues is None:
            return None
        if fdr_alpha is None:
            fdr_alpha = float(self.provenance.get("parameters", {}).get("fdr_alpha", 0.05))
        return int(np.sum(np.asarray(self.qvalues) <= fdr_alpha))

    def summary(self) -> dict[str, Any]:
        """The per-feature-set entry of ``summary.json``."""
        return {
            "mean_r": self.mean_r(),
            "top10_mean_r": self.top10_mean_r(),
            "n_targets": self.n_targets,
            "n_significant": self.n_significant(),
            "spaces": list(self.spaces),
        }

    # ---- persistence ----------------------------------------------------------------------
    def _arrays(self) -> dict[str, np.ndarray]:
        arrays: dict[str, np.ndarray] = {"alphas": np.asarray(self.alphas)}
        for name, value in self.scores.items():
            arrays[f"scores/{name}"] = np.asarray(value)
        for name in ("pvalues", "qvalues", "cv_scores", "shared_variance", "deltas"):
            value = getattr(self, name)
            if value is not None:
                arrays[name] = np.asarray(value)
        for group in ("split_scores", "unique_variance", "noise_ceiling"):
            for name, value in getattr(self, group).items():
                arrays[f"{group}/{name}"] = np.asarray(value)
        return arrays

    def save(self, folder: str | Path) -> Path:
        """Write ``folder/arrays.npz``, ``weights.npy`` / ``predictions.npy`` (when present; a
        memmap of that very file is left as it is), then ``folder/result.json``, each
        atomically; return folder."""
        folder = Path(folder)
        arrays = self._arrays()
        keys = sorted(arrays)
        npz_arrays = {f"a{i}": arrays[k] for i, k in enumerate(keys)}
        atomic_save_npz(folder / _NPZ, **npz_arrays)
        files = {}
        for name in FILE_ARRAYS:
            value = getattr(self, name)
            if value is not None:
                save_npy(folder / f"{name}.npy", value)
                files[name] = f"{name}.npy"
        meta = {
            "format_version": FORMAT_VERSION,
            "feature_set": self.feature_set,
            "spaces": list(self.spaces),
            "arrays": {k: f"a{i}" for i, k in enumerate(keys)},
            "files": files,
            "splits": _jsonable(self.splits),
            "provenance": _jsonable(self.provenance),
            "summary": _jsonable(self.summary()),
        }
        atomic_write_bytes(folder / _JSON, json.dumps(meta, indent=2, allow_nan=False).encode())
        for name in set(FILE_ARRAYS) - set(files):  # left by an earlier result in this folder
            (folder / f"{name}.npy").unlink(missing_ok=True)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "EncodingResult":
        """Read a result written by :meth:`save`.

        Raises
        ------
        FileNotFoundError
            ``folder`` lacks ``result.json`` or ``arrays.npz``.
        ValueError
            The files are not a saved EncodingResult (or of an unknown format version).
        """
        folder = Path(folder)
        meta_path, npz_path = folder / _JSON, folder / _NPZ
        for path in (meta_path, npz_path):
            if not path.is_file():
                raise FileNotFoundError(f"{path} is missing: {folder} is not a saved EncodingResult")
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{meta_path} is not valid JSON: {exc}") from None
        if meta.get("format_version") not in _READABLE_VERSIONS or "arrays" not in meta:
            raise ValueError(f"{meta_path}: unknown EncodingResult format "
                             f"{meta.get('format_version')!r} (expected {FORMAT_VERSION})")
        try:
            with np.load(npz_path, allow_pickle=False) as data:
                arrays = {name: data[key] for name, key in meta["arrays"].items()}
        except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise ValueError(f"{npz_path}: cannot read the saved arrays (truncated or damaged?): "
                             f"{type(exc).__name__}: {first}") from None
        files = meta.get("files") or {}
        if not isinstance(files, dict) or not set(files) <= set(FILE_ARRAYS):
            raise ValueError(f"{meta_path}: 'files' must map some of {list(FILE_ARRAYS)} to "
                             f"file names, got {files!r}")
        for name, file in files.items():
            path = folder / str(file)
            if path.parent != folder:
                raise ValueError(f"{meta_path}: file {file!r} of {name!r} is outside {folder}")
            arrays[name] = load_npy(path)
        try:
            groups: dict[str, dict[str, np.ndarray]] = {"scores": {}, "split_scores": {},
                                                        "unique_variance": {}, "noise_ceiling": {}}
            plain: dict[str, np.ndarray] = {}
            for name, value in arrays.items():
                if "/" in name:
                    group, key = name.split("/", 1)
                    groups[group][key] = value
                else:
                    plain[name] = value
            return cls(
                feature_set=meta["feature_set"],
                spaces=list(meta["spaces"]),
                scores=groups["scores"],
                alphas=plain.pop("alphas"),
                split_scores=groups["split_scores"],
                unique_variance=groups["unique_variance"],
                noise_ceiling=groups["noise_ceiling"],
                splits=meta.get("splits", {}),
                provenance=meta.get("provenance", {}),
                **{k: plain.get(k) for k in ("pvalues", "qvalues", "cv_scores", "shared_variance",
                                             "deltas", "weights", "predictions")},
            )
        except KeyError as exc:
            raise ValueError(f"{meta_path} (with {npz_path.name}): saved result lacks {exc}; the run "
                             f"directory is damaged or from another version") from None


def _jsonable(obj: Any) -> Any:
    """Plain JSON types from numpy scalars/arrays, tuples and paths."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj
