"""Voxel (target) chunks sized from a memory budget, and results of chunks put back together.

A ridge fit's memory is a fixed part (the design, its float64 copy while the ``p x p`` Gram
matrices are decomposed, one eigenbasis and one validation factor per fold) plus a part per
target: the responses held (train and test rows), the outputs (test predictions, weights when
kept, the score table) and the working set of one target batch of the fast path. A chunk is as
many targets as fit in the budget; targets are independent, so the fit of every chunk gives the
numbers of the fit of all targets at once (only the Benjamini–Hochberg q-values, which depend on
every p-value, are recomputed after merging). :class:`ChunksOnDisk` merges chunks with their
weights and predictions written straight into the result folder's ``.npy`` files, so a subject's
weights are never all in memory.
"""

from __future__ import annotations

import math
import re
import resource
import sys
from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = ["MemoryBudgetError", "MemoryModel", "parse_bytes", "format_bytes",
           "default_memory_budget", "fit_memory", "chunk_size", "target_chunks",
           "merge_results", "ChunksOnDisk", "peak_rss_bytes"]

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3,
          "gb": 1000**3, "t": 1000**4, "tb": 1000**4, "kib": 1024, "mib": 1024**2,
          "gib": 1024**3, "tib": 1024**4}


class MemoryBudgetError(ValueError):
    """The memory budget cannot hold even one target's fit; the message names the budget."""


def parse_bytes(value: str | int | float) -> int:
    """``"8GB"``, ``"512MiB"``, ``"1.5 GB"`` or a number of bytes -> bytes (int).

    Decimal units (kB, MB, GB, TB: powers of 1000) and binary ones (KiB, MiB, GiB, TiB).

    Raises
    ------
    ValueError
        Unparseable text, or a budget that is not positive.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        n = float(value)
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][0-9]+)?)\s*([A-Za-z]*)\s*", str(value))
        if not m or m.group(2).lower() not in _UNITS:
            raise ValueError(f"memory budget {value!r} is not a size such as 8GB, 512MB or "
                             f"16GiB")
        n = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if not math.isfinite(n) or n < 1:
        raise ValueError(f"memory budget {value!r} must be a positive size such as 8GB")
    return int(n)


def format_bytes(n: float) -> str:
    """``8e9`` -> ``"8.00 GB"`` (decimal units, as ``--memory-budget`` reads them)."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{int(n)} B"


def default_memory_budget(fraction: float = 0.6) -> int:
    """``fraction`` of the memory available now (``MemAvailable`` of ``/proc/meminfo``)."""
    from .backend import free_memory_bytes

    return max(int(free_memory_bytes("numpy") * fraction), 1)


@dataclass(frozen=True)
class MemoryModel:
    """Bytes a ridge fit needs: ``fixed + n_chunk * held_per_target + n_batch * work_per_target``.

    Attributes
    ----------
    fixed : int
        Independent of the targets (design matrices, decompositions), bytes.
    held_per_target : int
        Kept for every target of a chunk while it is fitted (responses, outputs), bytes.
    work_per_target : int
        Working memory per target of one fast-path batch, bytes.
    """

    fixed: int
    held_per_target: int
    work_per_target: int

    def batch_size(self, n_targets: int, budget: int) -> int:
        """Targets per fast-path batch when all ``n_targets`` responses are already held.

        Raises :class:`MemoryBudgetError` when not one target's batch fits.
        """
        room = budget - self.fixed - n_targets * self.held_per_target
        size = room // max(self.work_per_target, 1)
        if size < 1:
            need = self.fixed + n_targets * self.held_per_target + self.work_per_target
            raise MemoryBudgetError(
                f"memory budget {format_bytes(budget)} (--memory-budget / encoding.memory_budget) "
                f"is too small to fit {n_targets} targets: that needs at least "
                f"{format_bytes(need)}; raise the budget or fit fewer targets per chunk")
        return int(min(size, n_targets))


def fit_memory(n_rows: int, n_test_rows: int, n_features: int, n_alphas: int, n_folds: int,
               *, keep_weights: bool = False, max_val_rows: int | None = None) -> MemoryModel:
    """The :class:`MemoryModel` of a plain ridge fit (float32 arrays, float64 decompositions).

    Parameters
    ----------
    n_rows, n_test_rows : int
        Training and test rows (TRs).
    n_features : int
        Columns of the (delayed) design.
    n_alphas, n_folds : int
    keep_weights : bool
        Refit weights are kept (``n_features`` floats per target).
    max_val_rows : int or None
        Rows of the largest validation fold (default ``ceil(n_rows / n_folds)`` plus a margin).
    """
    p = int(n_features)
    if max_val_rows is None:
        max_val_rows = int(math.ceil(1.5 * n_rows / max(n_folds, 1)))
    factor_rows = min(max_val_rows, p)
    fixed = (4 * n_rows * p + 8 * n_rows * p      # X (float32) and its float64 copy
             + 4 * n_test_rows * p                # X_test
             + 3 * 8 * p * p                      # Gram matrices / eigenvectors (float64)
             + (n_folds + 1) * 4 * (p * p + factor_rows * p + p))  # per fold V, F, L
    held = (4 * (n_rows + n_test_rows)            # responses (float32)
            + 4 * n_test_rows                     # test predictions
            + 2 * 8 * n_test_rows                 # permutation test: z-scored copies (float64)
            + (4 * p if keep_weights else 0)
            + 8 * n_alphas + 64)                  # score table, per-target scalars
    work = 4 * (2 * n_rows + max_val_rows + n_test_rows + (3 * n_alphas + n_folds + 6) * p
                + 4 * n_alphas * n_folds)
    return MemoryModel(int(fixed), int(held), int(work))


def chunk_size(model: MemoryModel, n_targets: int, budget: int) -> int:
    """Targets per chunk so that ``fixed + c * (held + work)`` stays within ``budget``.

    Raises
    ------
    MemoryBudgetError
        The budget does not hold the fixed part and one target (the message names the budget
        and the least that would do).
    """
    per = model.held_per_target + model.work_per_target
    size = (budget - model.fixed) // max(per, 1)
    if size < 1:
        raise MemoryBudgetError(
            f"memory budget {format_bytes(budget)} (--memory-budget / encoding.memory_budget) is "
            f"too small for one voxel chunk: the design and its decompositions need "
            f"{format_bytes(model.fixed)} and each target {format_bytes(per)}; use at least "
            f"--memory-budget {format_bytes(model.fixed + 64 * per).replace(' ', '')}")
    return int(min(size, n_targets))


def target_chunks(n_targets: int, size: int) -> list[slice]:
    """Consecutive target slices of at most ``size`` targets covering ``range(n_targets)``."""
    size = max(int(size), 1)
    return [slice(a, min(a + size, n_targets)) for a in range(0, n_targets, size)]


def _cat(parts: Sequence, axis: int = 0):
    if any(p is None for p in parts):
        return None
    return np.concatenate([np.asarray(p) for p in parts], axis=axis)


def _cat_dict(dicts: Sequence[dict], axis: int = 0) -> dict:
    keys = list(dicts[0]) if dicts else []
    return {k: np.concatenate([np.asarray(d[k]) for d in dicts], axis=axis) for k in keys}


def merge_results(parts: Sequence, fdr_alpha: float | None = None):
    """One :class:`~gim_brain.encoding.EncodingResult` from the results of consecutive target
    chunks (same SPEC, split and parameters), in chunk order.

    Per-target arrays are concatenated (weights, predictions and deltas along their target
    axis); q-values are recomputed from all p-values at ``fdr_alpha`` (default: the fit's).
    Timings are summed; ``provenance["chunks"]`` records the chunk sizes.
    """
    from .result import EncodingResult
    from .significance import fdr_bh

    parts = list(parts)
    if not parts:
        raise ValueError("merge_results needs at least one chunk result")
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    if any(p.feature_set != first.feature_set for p in parts):
        raise ValueError(f"chunks of different feature sets: {[p.feature_set for p in parts]}")
    pvalues = _cat([p.pvalues for p in parts])
    qvalues = None
    if pvalues is not None:
        if fdr_alpha is None:
            fdr_alpha = float(first.provenance.get("parameters", {}).get("fdr_alpha", 0.05))
        _, qvalues = fdr_bh(pvalues, fdr_alpha)
    prov = dict(first.provenance or {})
    timings: dict[str, float] = {}
    for p in parts:
        for k, v in (p.provenance or {}).get("timings", {}).items():
            timings[k] = timings.get(k, 0.0) + float(v)
    prov["timings"] = timings
    shapes = dict(prov.get("shapes", {}))
    shapes["n_targets"] = int(sum(p.n_targets for p in parts))
    prov["shapes"] = shapes
    prov["chunks"] = [p.n_targets for p in parts]
    prov.pop("chunk", None)
    rss = [p.provenance.get("peak_rss_bytes") for p in parts if p.provenance]
    if rss and all(r is not None for r in rss):
        prov["peak_rss_bytes"] = max(rss)
    nc = _cat_dict([p.noise_ceiling for p in parts]) if first.noise_ceiling else {}
    return EncodingResult(
        feature_set=first.feature_set, spaces=list(first.spaces),
        scores=_cat_dict([p.scores for p in parts]),
        alphas=_cat([p.alphas for p in parts]), pvalues=pvalues, qvalues=qvalues,
        cv_scores=_cat([p.cv_scores for p in parts]),
        split_scores=_cat_dict([p.split_scores for p in parts]) if first.split_scores else {},
        unique_variance=(_cat_dict([p.unique_variance for p in parts])
                         if first.unique_variance else {}),
        shared_variance=_cat([p.shared_variance for p in parts]),
        deltas=_cat([p.deltas for p in parts], axis=1),
        noise_ceiling=nc, weights=_cat([p.weights for p in parts], axis=1),
        predictions=_cat([p.predictions for p in parts], axis=1),
        splits=dict(first.splits), provenance=prov)


class ChunksOnDisk:
    """Chunk results of one SPEC merged with their weights / predictions assembled on disk.

    Each chunk's columns go into ``folder/weights.npy`` and ``folder/predictions.npy``
    (preallocated, see :class:`~gim_brain.encoding.ondisk.ColumnsOnDisk`) as the chunk arrives,
    and leave memory; :meth:`merge` returns the merged result whose ``weights`` and
    ``predictions`` are read-only memmaps of those files. :meth:`EncodingResult.save` into
    ``folder`` then leaves them as they are.

    Parameters
    ----------
    folder : path
        The result folder the run saves this SPEC into (``RUN/results/<slug>``).
    n_targets : int
        Targets of all chunks together.
    """

    def __init__(self, folder, n_targets: int):
        from pathlib import Path

        self.folder = Path(folder)
        self.n_targets = int(n_targets)
        self._writers: dict = {}
        self._names: tuple[str, ...] | None = None

    def add(self, part, start: int):
        """Write ``part``'s weights / predictions at target column ``start``; return ``part``
        without them (its other arrays are small: one value or row per target)."""
        from .ondisk import ColumnsOnDisk
        from .result import FILE_ARRAYS

        names = tuple(n for n in FILE_ARRAYS if getattr(part, n) is not None)
        if self._names is None:
            self._names = names
            for n in names:
                rows = np.shape(getattr(part, n))[0]
                self._writers[n] = ColumnsOnDisk(self.folder / f"{n}.npy",
                                                 (rows, self.n_targets))
        elif names != self._names:
            self.abort()
            raise ValueError(f"chunk at target {start} has {list(names)}, the first chunk had "
                             f"{list(self._names)}")
        try:
            for n in names:
                self._writers[n].write(int(start), getattr(part, n))
                setattr(part, n, None)
        except BaseException:
            self.abort()
            raise
        return part

    def merge(self, parts: Sequence, fdr_alpha: float | None = None):
        """:func:`merge_results` of the parts given to :meth:`add`, with the on-disk arrays."""
        try:
            merged = merge_results(parts, fdr_alpha)
            for n, writer in self._writers.items():
                setattr(merged, n, writer.finish())
        except BaseException:
            self.abort()
            raise
        self._writers = {}
        return merged

    def abort(self) -> None:
        """Remove the unfinished files (a failed fit leaves no partial weights behind)."""
        for writer in self._writers.values():
            writer.abort()
        self._writers = {}


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far (``ru_maxrss``), bytes."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)
