"""Content-keyed on-disk cache with atomic writes.

Everything expensive in gim-brain (LM features, GIM statistics, converted model weights) is
stored under a key derived from its inputs, its parameters and the code version, so an
interrupted run resumes and a changed parameter never reuses stale data.

The cache folder is ``$GIM_BRAIN_CACHE`` if set, else ``~/.cache/gim-brain``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import __version__

__all__ = ["cache_dir", "content_key", "atomic_write_bytes", "atomic_save_npz", "NpzCache"]


def cache_dir(sub: str = "") -> Path:
    """Root of the user cache (created on demand), or one of its sub-folders."""
    root = Path(os.environ.get("GIM_BRAIN_CACHE", Path.home() / ".cache" / "gim-brain"))
    path = root / sub if sub else root
    path.mkdir(parents=True, exist_ok=True)
    return path


def _feed(h: "hashlib._Hash", obj: Any) -> None:
    """Feed a JSON-like object, numpy arrays included, into a hash deterministically."""
    if isinstance(obj, np.ndarray):
        h.update(b"nd" + str(obj.dtype).encode() + str(obj.shape).encode())
        h.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, dict):
        h.update(b"{")
        for k in sorted(obj, key=str):
            _feed(h, str(k))
            _feed(h, obj[k])
        h.update(b"}")
    elif isinstance(obj, (list, tuple)):
        h.update(b"[")
        for item in obj:
            _feed(h, item)
        h.update(b"]")
    elif isinstance(obj, (str, int, float, bool)) or obj is None:
        h.update(json.dumps(obj).encode())
    elif isinstance(obj, Path):
        _feed(h, str(obj))
    elif isinstance(obj, (np.integer, np.floating)):
        _feed(h, obj.item())
    else:
        raise TypeError(f"cannot build a cache key from an object of type {type(obj).__name__}")


def content_key(*parts: Any, version: str = __version__) -> str:
    """Hex digest identifying ``parts`` (JSON-like values and numpy arrays) and the code version."""
    h = hashlib.sha256()
    _feed(h, version)
    for part in parts:
        _feed(h, part)
    return h.hexdigest()[:32]


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    """``np.savez`` to ``path`` atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp.npz")
    os.close(fd)
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


class NpzCache:
    """A folder of ``<key>.npz`` files; ``get_or_compute`` computes only what is missing.

    Parameters
    ----------
    folder : path or None
        Where entries live; ``None`` uses ``cache_dir(namespace)``.
    namespace : str
        Sub-folder of the user cache when ``folder`` is None.
    enabled : bool
        When False nothing is read or written (computations always run).
    """

    def __init__(self, folder: str | os.PathLike | None = None, namespace: str = "arrays",
                 enabled: bool = True):
        self.folder = Path(folder) if folder is not None else None
        self.namespace = namespace
        self.enabled = enabled

    def _path(self, key: str) -> Path:
        folder = self.folder if self.folder is not None else cache_dir(self.namespace)
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{key}.npz"

    def load(self, key: str) -> dict[str, np.ndarray] | None:
        """The arrays stored under ``key``, or None (also for an unreadable, corrupt entry)."""
        if not self.enabled:
            return None
        path = self._path(key)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except Exception:  # corrupt entry: recompute rather than crash
            return None

    def save(self, key: str, arrays: dict[str, np.ndarray]) -> None:
        if self.enabled:
            atomic_save_npz(self._path(key), **arrays)

    def get_or_compute(self, key: str, compute: Callable[[], dict[str, np.ndarray]]
                       ) -> dict[str, np.ndarray]:
        found = self.load(key)
        if found is not None:
            return found
        arrays = compute()
        self.save(key, arrays)
        return arrays
