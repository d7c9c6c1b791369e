"""Choosing the himalaya backend, sizing target batches from free memory, recovering from OOM.

The backend is chosen once per fit: ``"auto"`` means ``torch_cuda`` when PyTorch sees a GPU,
else ``torch`` (CPU) when PyTorch is installed, else ``numpy``. Everything is float32.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from typing import Callable, Iterator

import numpy as np

__all__ = [
    "resolve_backend",
    "use_backend",
    "free_memory_bytes",
    "target_batch_size",
    "is_out_of_memory",
    "run_target_batches",
    "BACKENDS",
]

#: Names accepted by ``backend=`` (``auto`` is resolved by :func:`resolve_backend`).
BACKENDS = ("auto", "numpy", "torch", "torch_cuda")


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return bool(torch.cuda.is_available())


def resolve_backend(name: str = "auto") -> str:
    """The concrete himalaya backend name for ``name``.

    Parameters
    ----------
    name : {"auto", "numpy", "torch", "torch_cuda"}
        ``auto`` -> ``torch_cuda`` if a CUDA GPU is visible, else ``torch`` (CPU), else ``numpy``.

    Raises
    ------
    ValueError
        Unknown name, or ``torch_cuda`` asked for where no CUDA GPU is visible.
    """
    if name not in BACKENDS:
        raise ValueError(f"backend={name!r} is not one of {BACKENDS}")
    if name == "auto":
        if _cuda_available():
            return "torch_cuda"
        try:
            import torch  # noqa: F401
        except ImportError:  # pragma: no cover
            return "numpy"
        return "torch"
    if name == "torch_cuda" and not _cuda_available():
        raise ValueError("backend='torch_cuda' was asked for but PyTorch sees no CUDA GPU; "
                         "use backend='auto' or 'torch'")
    return name


@contextlib.contextmanager
def use_backend(name: str = "auto") -> Iterator[object]:
    """Set the himalaya backend for the duration of a ``with`` block, then restore the previous one.

    Yields the himalaya backend module.
    """
    from himalaya.backend import get_backend, set_backend

    previous = get_backend().name
    module = set_backend(resolve_backend(name))
    try:
        yield module
    finally:
        set_backend(previous)


def free_memory_bytes(backend_name: str) -> int:
    """Free memory where the backend computes: GPU memory for ``torch_cuda``, else available RAM."""
    if backend_name == "torch_cuda":
        import torch

        free, _total = torch.cuda.mem_get_info()
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover - non-Linux
        pass
    try:  # pragma: no cover - non-Linux fallback
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 4 * 1024**3


def target_batch_size(n_targets: int, bytes_per_target: int, free_bytes: int,
                      fraction: float = 0.4, minimum: int = 1) -> int:
    """How many targets to process at once so the per-target working set fits in memory.

    Parameters
    ----------
    n_targets : int
        Number of targets (voxels) in total.
    bytes_per_target : int
        Working memory one target needs (e.g. ``n_alphas * n_val_rows * 4`` for predictions).
    free_bytes : int
        Free memory (see :func:`free_memory_bytes`).
    fraction : float
        Share of the free memory the batch may use.
    """
    if n_targets <= 0:
        return max(minimum, 1)
    budget = max(int(free_bytes * fraction), 1)
    size = budget // max(int(bytes_per_target), 1)
    return int(min(n_targets, max(minimum, size)))


def is_out_of_memory(exc: BaseException) -> bool:
    """True for the errors PyTorch/NumPy raise when an allocation fails."""
    if isinstance(exc, MemoryError):
        return True
    try:
        import torch

        if isinstance(exc, torch.cuda.OutOfMemoryError):
            return True
    except (ImportError, AttributeError):  # pragma: no cover
        pass
    if isinstance(exc, RuntimeError):
        text = str(exc).lower()
        return "out of memory" in text or "cuda error: out of memory" in text
    return False


def _empty_gpu_cache() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover
        pass


def run_target_batches(compute: Callable[[slice], None], n_targets: int, batch_size: int,
                       *, min_batch_size: int = 1, progress=None) -> int:
    """Call ``compute(batch_slice)`` over consecutive target batches, shrinking them on OOM.

    ``compute`` must write its results for the targets of ``batch_slice`` itself (so a
    batch that failed half-way is simply computed again, smaller: the result is the same).

    Parameters
    ----------
    compute : callable(slice) -> None
    n_targets : int
    batch_size : int
        First batch size tried; halved after each out-of-memory error.
    min_batch_size : int
        Below this size an out-of-memory error is raised again.
    progress : tqdm or None
        Advanced by the number of targets of each finished batch.

    Returns
    -------
    int
        The batch size in use at the end (smaller than ``batch_size`` after a recovery).
    """
    batch_size = max(int(batch_size), 1)
    start = 0
    while start < n_targets:
        stop = min(start + batch_size, n_targets)
        try:
            compute(slice(start, stop))
        except BaseException as exc:  # noqa: BLE001 - re-raised unless it is an OOM
            if not is_out_of_memory(exc) or batch_size <= min_batch_size:
                raise
            _empty_gpu_cache()
            new_size = max(min_batch_size, batch_size // 2)
            warnings.warn(f"out of memory with {batch_size} targets per batch; retrying with "
                          f"{new_size}", RuntimeWarning, stacklevel=2)
            batch_size = new_size
            continue
        if progress is not None:
            progress.update(stop - start)
        start = stop
    return batch_size


def to_numpy(array) -> np.ndarray:
    """A backend array (torch tensor on any device, or numpy) as a numpy array."""
    if isinstance(array, np.ndarray):
        return array
    if hasattr(array, "detach"):
        return array.detach().cpu().numpy()
    return np.asarray(array)
