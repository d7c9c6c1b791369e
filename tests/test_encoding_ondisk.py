"""Weights and predictions on disk: chunk results assembled into preallocated ``.npy`` files
give the same files as the merge in memory, a saved result reads them back as memmaps, older
results (arrays inside the npz) still load, and a damaged file is an error naming it."""

from __future__ import annotations

import copy
import json
import tracemalloc

import numpy as np
import pytest

from gim_brain.encoding import EncodingResult, fit_encoding, merge_results
from gim_brain.encoding.chunking import ChunksOnDisk, target_chunks
from gim_brain.encoding.ondisk import ColumnsOnDisk, save_npy

from _encoding_helpers import _one_blas_thread, synthetic_stories  # noqa: F401

ALPHAS = np.logspace(0, 6, 7)


@pytest.fixture(scope="module")
def chunk_parts():
    X, Y, _ = synthetic_stories(5, 12, 40, seed=7)
    kw = dict(alphas=ALPHAS, n_folds=2, backend="numpy", n_permutations=20, progress=False,
              keep_weights=True)
    chunks = target_chunks(40, 15)
    return chunks, [fit_encoding(X, {s: y[:, c] for s, y in Y.items()}, ["story04"], **kw)
                    for c in chunks]


def _temp_files(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_chunks_on_disk_give_the_files_of_the_merge_in_memory(chunk_parts, tmp_path):
    chunks, parts = chunk_parts
    in_memory = merge_results(copy.deepcopy(parts))
    in_memory.save(tmp_path / "memory")

    on_disk = ChunksOnDisk(tmp_path / "disk", 40)
    stripped = [on_disk.add(copy.deepcopy(p), c.start) for p, c in zip(parts, chunks)]
    assert all(p.weights is None and p.predictions is None for p in stripped)
    merged = on_disk.merge(stripped)
    assert isinstance(merged.weights, np.memmap) and not merged.weights.flags.writeable
    assert merged.weights.shape == (in_memory.weights.shape[0], 40)
    merged.save(tmp_path / "disk")  # the memmaps are its own files: left as they are
    for name in ("weights.npy", "predictions.npy"):
        assert (tmp_path / "disk" / name).read_bytes() == (tmp_path / "memory" / name).read_bytes()
    assert _temp_files(tmp_path / "disk") == []
    back = EncodingResult.load(tmp_path / "disk")
    assert isinstance(back.predictions, np.memmap)
    np.testing.assert_array_equal(back.weights, in_memory.weights)
    np.testing.assert_array_equal(back.qvalues, in_memory.qvalues)


def test_assembling_never_holds_every_chunks_weights(tmp_path):
    n_features, n_targets, size = 300, 4000, 500
    rng = np.random.default_rng(0)
    block = rng.standard_normal((n_features, size)).astype(np.float32)
    out = ColumnsOnDisk(tmp_path / "weights.npy", (n_features, n_targets))
    tracemalloc.start()
    for a in range(0, n_targets, size):
        out.write(a, block)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 0.1 * n_features * n_targets * 4  # 4.8 MB of weights, none held in memory
    back = out.finish()
    np.testing.assert_array_equal(back[:, 3500:], block)


def test_a_failed_assembly_leaves_no_file(chunk_parts, tmp_path):
    parts = chunk_parts[1]
    on_disk = ChunksOnDisk(tmp_path, 40)
    on_disk.add(copy.deepcopy(parts[0]), 0)
    with pytest.raises(ValueError, match="15 of 40 columns written"):
        on_disk.merge([parts[0]])
    assert list(tmp_path.iterdir()) == []
    on_disk = ChunksOnDisk(tmp_path, 40)
    on_disk.add(copy.deepcopy(parts[0]), 0)
    odd = copy.deepcopy(parts[1])
    odd.weights = None
    with pytest.raises(ValueError, match="the first chunk had"):
        on_disk.add(odd, 15)
    assert list(tmp_path.iterdir()) == []


def test_format_1_results_still_load(chunk_parts, tmp_path):
    res = chunk_parts[1][0]
    res.save(tmp_path / "r")
    folder = tmp_path / "r"
    meta = json.loads((folder / "result.json").read_text())
    assert meta["format_version"] == 2 and meta["files"] == {"weights": "weights.npy",
                                                             "predictions": "predictions.npy"}
    # rewrite as format 1: every array inside arrays.npz
    with np.load(folder / "arrays.npz") as z:
        arrays = dict(z)
    arrays["w"], arrays["p"] = np.load(folder / "weights.npy"), np.load(folder / "predictions.npy")
    np.savez(folder / "arrays.npz", **arrays)
    meta["arrays"].update(weights="w", predictions="p")
    meta["format_version"] = 1
    del meta["files"]
    (folder / "result.json").write_text(json.dumps(meta))
    for name in ("weights.npy", "predictions.npy"):
        (folder / name).unlink()
    back = EncodingResult.load(folder)
    np.testing.assert_array_equal(back.weights, res.weights)
    np.testing.assert_array_equal(back.predictions, res.predictions)


def test_a_damaged_weights_file_is_an_error_naming_it(chunk_parts, tmp_path):
    res = chunk_parts[1][0]
    res.save(tmp_path / "r")
    path = tmp_path / "r" / "weights.npy"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"weights\.npy: cannot read the saved array"):
        EncodingResult.load(tmp_path / "r")
    path.unlink()
    with pytest.raises(FileNotFoundError, match=r"weights\.npy is missing"):
        EncodingResult.load(tmp_path / "r")


def test_saving_without_weights_removes_an_earlier_weights_file(chunk_parts, tmp_path):
    res = copy.deepcopy(chunk_parts[1][0])
    res.save(tmp_path / "r")
    res.weights = None
    res.save(tmp_path / "r")
    assert not (tmp_path / "r" / "weights.npy").exists()
    assert EncodingResult.load(tmp_path / "r").weights is None
    with pytest.raises(ValueError, match="2-D"):
        save_npy(tmp_path / "x.npy", np.zeros(3))
