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
import re
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import __version__

__all__ = ["cache_dir", "content_key", "atomic_write_bytes", "atomic_save_npz", "NpzCache",
           "clean_stale_temp", "cache_notice", "KILL_HOOK_ENV", "file_digest", "known_file_digest"]


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


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _stamp(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def known_file_digest(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file's bytes, remembered in the cache folder ``digests``.

    The digest is computed again only when the file's size, modification or change time, inode
    or device differ from when it was last hashed, so a run over the same 10 GB of responses
    hashes them once. It names the content, not the place: a copied, moved or touched file with
    the same bytes has the same digest. A read-only cache only costs the hashing.
    """
    path = Path(path).resolve()
    before = _stamp(path.stat())
    memo = cache_dir("digests") / (hashlib.sha256(str(path).encode()).hexdigest()[:32] + ".json")
    try:
        entry = json.loads(memo.read_text())
        if entry.get("path") == str(path) and entry.get("stamp") == before:
            return str(entry["sha256"])
    except (OSError, ValueError, KeyError, AttributeError):
        pass
    digest = file_digest(path)
    if _stamp(path.stat()) == before:  # not rewritten while it was read
        try:
            atomic_write_bytes(memo, json.dumps({"path": str(path), "stamp": before,
                                                 "sha256": digest}).encode())
        except OSError:
            pass
    return digest


def content_key(*parts: Any, version: str = __version__) -> str:
    """Hex digest identifying ``parts`` (JSON-like values and numpy arrays) and the code version."""
    h = hashlib.sha256()
    _feed(h, version)
    for part in parts:
        _feed(h, part)
    return h.hexdigest()[:32]


#: Test hook: when this environment variable is set, an atomic write whose target file name
#: contains its value (``*`` matches every file) kills the process with SIGKILL after the
#: temporary file is written and before the rename, as a power cut or ``kill -9`` would.
KILL_HOOK_ENV = "GIM_BRAIN_TEST_KILL_IN_WRITE"

#: A temporary file of an atomic write older than this (seconds) is stale whoever wrote it.
STALE_TEMP_SECONDS = 24 * 3600

_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
_TEMP_NAME = re.compile(r"^\..+\.(?P<host>[0-9a-f]{8})-(?P<pid>\d+)\.[^.]+\.tmp(\.npz)?$")
_cleaned: set[str] = set()


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.{_HOST}-{os.getpid()}."


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_stale_temp(folder: str | os.PathLike, force: bool = False) -> list[Path]:
    """Remove temporary files that killed atomic writes left in ``folder``; returns them.

    A temporary file is stale when the process that wrote it (same host) is gone, or when it is
    older than :data:`STALE_TEMP_SECONDS`. Each folder is scanned once per process unless
    ``force``. Temporary folders of model conversions (``.name.<host>-<pid>.xxxx.tmp``) count too.
    """
    folder = Path(folder)
    marker = str(folder.resolve()) if folder.exists() else str(folder)
    if (marker in _cleaned and not force) or not folder.is_dir():
        return []
    _cleaned.add(marker)
    removed = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for entry in entries:
        m = _TEMP_NAME.match(entry.name)
        if m is None:
            continue
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        pid = int(m.group("pid"))
        mine = m.group("host") == _HOST
        if (mine and pid != os.getpid() and not _pid_alive(pid)) or age > STALE_TEMP_SECONDS:
            try:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
                removed.append(Path(entry.path))
            except OSError:
                pass
    return removed


def _kill_hook(path: Path) -> None:
    wanted = os.environ.get(KILL_HOOK_ENV)
    if wanted and (wanted == "*" or wanted in path.name):
        os.kill(os.getpid(), signal.SIGKILL)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _finish_atomic(tmp: str, path: Path) -> None:
    # mkstemp creates 0600 files; give the result the mode a plain open() would (the user's umask)
    os.chmod(tmp, 0o666 & ~_umask())
    _kill_hook(path)
    os.replace(tmp, path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename: never a half-written file.

    Temporary files left in the folder by killed writes are removed (see :func:`clean_stale_temp`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temp(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        _finish_atomic(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    """``np.savez`` to ``path`` atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temp(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path), suffix=".tmp.npz")
    os.close(fd)
    try:
        np.savez(tmp, **arrays)
        _finish_atomic(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def cache_notice(message: str) -> None:
    """Print a one-line cache notice (a corrupt entry being recomputed) on stderr."""
    print(f"gim-brain: {message}", file=sys.stderr, flush=True)


#: Name of the array in every cache entry that records its key, version and array shapes.
META_ARRAY = "__gim_brain_entry__"


def _entry_meta(key: str, arrays: dict[str, np.ndarray]) -> dict:
    return {"key": key, "version": __version__,
            "arrays": {k: [str(np.asarray(v).dtype), list(np.shape(v))] for k, v in sorted(arrays.items())}}


class NpzCache:
    """A folder of ``<key>.npz`` files; ``get_or_compute`` computes only what is missing.

    Every entry also stores (array :data:`META_ARRAY`) its own key, the package version and the
    dtype and shape of each array; :meth:`load` reads every array (so zip CRCs are checked) and
    compares them with that record. An entry that is unreadable, truncated, or stored under
    another key is deleted with a one-line notice naming the file, and recomputed. Entries
    written before this record existed are accepted when they read back whole.

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
        clean_stale_temp(folder)
        return folder / f"{key}.npz"

    def _problem(self, key: str, path: Path) -> tuple[str | None, dict | None]:
        """``(None, arrays)`` for a sound entry, else ``(reason, None)``."""
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except Exception as exc:  # zipfile.BadZipFile, EOFError, ValueError, OSError, CRC errors
            return f"unreadable ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})", None
        meta_raw = arrays.pop(META_ARRAY, None)
        if meta_raw is None:
            return None, arrays  # entry from before entries recorded their key
        try:
            meta = json.loads(str(meta_raw))
            stored_key, stored_arrays = meta["key"], meta["arrays"]
        except (ValueError, KeyError, TypeError):
            return "its key record is unreadable", None
        if stored_key != key:
            return f"it holds the entry of key {stored_key!r}", None
        found = {k: [str(v.dtype), list(v.shape)] for k, v in sorted(arrays.items())}
        if found != stored_arrays:
            return f"its arrays {found} differ from the recorded {stored_arrays}", None
        return None, arrays

    def load(self, key: str) -> dict[str, np.ndarray] | None:
        """The arrays stored under ``key``, or None (missing, or corrupt: then deleted with a notice)."""
        if not self.enabled:
            return None
        path = self._path(key)
        if not path.exists():
            return None
        reason, arrays = self._problem(key, path)
        if reason is not None:
            cache_notice(f"cache entry {path} is corrupt or mismatched ({reason}); recomputing it")
            try:
                path.unlink()
            except OSError:
                pass
            return None
        return arrays

    def save(self, key: str, arrays: dict[str, np.ndarray]) -> None:
        if self.enabled:
            if META_ARRAY in arrays:
                raise ValueError(f"{META_ARRAY!r} is reserved for the entry record")
            meta = np.array(json.dumps(_entry_meta(key, arrays)))
            atomic_save_npz(self._path(key), **arrays, **{META_ARRAY: meta})

    def get_or_compute(self, key: str, compute: Callable[[], dict[str, np.ndarray]]
                       ) -> dict[str, np.ndarray]:
        found = self.load(key)
        if found is not None:
            return found
        arrays = compute()
        self.save(key, arrays)
        return arrays
