import numpy as np
import pytest

from gim_brain._cache import NpzCache, atomic_save_npz, content_key


def test_content_key_changes_with_any_input():
    a = np.arange(5, dtype=np.float32)
    base = content_key("space", {"layer": 3}, a)
    assert base == content_key("space", {"layer": 3}, a.copy())
    assert base != content_key("space", {"layer": 4}, a)
    assert base != content_key("space", {"layer": 3}, a.astype(np.float64))
    assert base != content_key("space", {"layer": 3}, a, version="other")
    with pytest.raises(TypeError, match="object"):
        content_key(object())


def test_cache_computes_once_and_survives_corrupt_entry(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"x": np.ones(3)}

    cache = NpzCache(tmp_path)
    np.testing.assert_array_equal(cache.get_or_compute("k", compute)["x"], np.ones(3))
    cache.get_or_compute("k", compute)
    assert len(calls) == 1
    (tmp_path / "k.npz").write_bytes(b"not a zip")
    cache.get_or_compute("k", compute)
    assert len(calls) == 2
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp.npz")]


def test_atomic_save_leaves_no_partial_file(tmp_path):
    target = tmp_path / "a.npz"
    with pytest.raises(Exception):
        atomic_save_npz(target, x=np.ones(2), y=lambda: 0)  # a lambda cannot be pickled
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_writes_follow_the_umask(tmp_path):
    """Files written through a temporary file get the user's umask, not mkstemp's 0600."""
    import os

    from gim_brain._cache import atomic_save_npz, atomic_write_bytes

    old = os.umask(0o022)
    try:
        a = atomic_write_bytes(tmp_path / "a.json", b"{}")
        b = atomic_save_npz(tmp_path / "b.npz", x=np.zeros(3))
        os.umask(0o077)
        c = atomic_write_bytes(tmp_path / "c.json", b"{}")
    finally:
        os.umask(old)
    assert (a.stat().st_mode & 0o777) == 0o644
    assert (b.stat().st_mode & 0o777) == 0o644
    assert (c.stat().st_mode & 0o777) == 0o600
