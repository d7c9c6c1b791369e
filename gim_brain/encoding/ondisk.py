"""Large per-target result arrays (weights, predictions) as ``.npy`` files beside a result.

A subject's refit weights are ``n_features x n_voxels`` float32 (3,072 x 95,556: 1.2 GB), so they
are never merged in memory: :class:`ColumnsOnDisk` preallocates the final array on disk
(:func:`numpy.lib.format.open_memmap`, a temporary name in the result folder) and each voxel
chunk writes its own columns; :meth:`ColumnsOnDisk.finish` renames it into place and hands back
a read-only memmap. :func:`save_npy` writes an in-memory array through the same code (so a
chunked and an unchunked fit give the same file), and :func:`load_npy` reads one back as a
memmap.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from numpy.lib.format import open_memmap

from .._cache import _finish_atomic, _temp_prefix, clean_stale_temp

__all__ = ["ColumnsOnDisk", "is_file_of", "load_npy", "save_npy"]

#: Bytes copied per step when an array is written to disk (bounded extra memory).
_STEP_BYTES = 64 * 1000**2


def _temp_npy(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temp(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path), suffix=".tmp")
    os.close(fd)
    return tmp


def is_file_of(array, path: str | os.PathLike) -> bool:
    """True when ``array`` is a memmap of the whole file ``path`` (nothing to write)."""
    filename = getattr(array, "filename", None)
    if filename is None or not Path(path).exists():
        return False
    try:
        if not os.path.samefile(filename, path):
            return False
        whole = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return False
    return (array.shape == whole.shape and array.dtype == whole.dtype
            and array.flags.c_contiguous and getattr(array, "offset", None) == whole.offset)


class ColumnsOnDisk:
    """A ``(n_rows, n_columns)`` ``.npy`` at ``path``, filled column block by block.

    Parameters
    ----------
    path : path
        The final file (written under a temporary name until :meth:`finish`).
    shape : (n_rows, n_columns)
    dtype : numpy dtype (default float32)
    """

    def __init__(self, path: str | os.PathLike, shape: tuple[int, int], dtype=np.float32):
        self.path = Path(path)
        self.shape = (int(shape[0]), int(shape[1]))
        self._tmp = _temp_npy(self.path)
        self._array = open_memmap(self._tmp, mode="w+", dtype=np.dtype(dtype), shape=self.shape)
        self._filled = 0

    def write(self, start: int, block: np.ndarray) -> None:
        """Columns ``start : start + block.shape[1]`` (rows must match)."""
        block = np.asarray(block)
        if block.ndim != 2 or block.shape[0] != self.shape[0]:
            raise ValueError(f"{self.path.name}: a block of shape {block.shape} does not fit "
                             f"columns of {self.shape[0]} rows")
        stop = start + block.shape[1]
        if start < 0 or stop > self.shape[1]:
            raise ValueError(f"{self.path.name}: columns {start}:{stop} outside 0:{self.shape[1]}")
        self._array[:, start:stop] = block
        self._filled += block.shape[1]

    def finish(self) -> np.memmap:
        """Flush, rename into place, and return the file as a read-only memmap."""
        if self._filled != self.shape[1]:
            self.abort()
            raise ValueError(f"{self.path.name}: {self._filled} of {self.shape[1]} columns "
                             f"written; the chunks do not cover every target")
        self._array.flush()
        del self._array
        _finish_atomic(self._tmp, self.path)
        return load_npy(self.path)

    def abort(self) -> None:
        """Drop the temporary file (a failed fit leaves nothing behind)."""
        self._array = None
        if os.path.exists(self._tmp):
            os.unlink(self._tmp)


def save_npy(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write a 2-D ``array`` (in memory or a memmap) to ``path`` as ``.npy`` (its dtype, C order),
    atomically and in row steps of ~64 MB; nothing is written when ``array`` already is that
    file."""
    path = Path(path)
    if is_file_of(array, path):
        return path
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"{path.name}: expected a 2-D array, got shape {array.shape}")
    out = ColumnsOnDisk(path, array.shape, array.dtype)
    try:
        step = max(1, _STEP_BYTES // max(array.dtype.itemsize * array.shape[1], 1))
        for a in range(0, array.shape[0], step):
            out._array[a:a + step] = array[a:a + step]
        out._filled = array.shape[1]
        out.finish()
    except BaseException:
        out.abort()
        raise
    return path


def load_npy(path: str | os.PathLike) -> np.memmap:
    """A saved ``.npy`` as a read-only memmap.

    Raises
    ------
    ValueError
        The file is truncated or not a ``.npy`` file (the message names it).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the saved result is incomplete")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, EOFError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ValueError(f"{path}: cannot read the saved array (truncated or damaged?): "
                         f"{type(exc).__name__}: {first}") from None
