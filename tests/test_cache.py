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
