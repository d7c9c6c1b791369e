"""Voxel chunks sized from a memory budget give the numbers of the unchunked fit; a budget too
small for one chunk is a clear error naming the budget; peak memory lands in summary.json."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gim_brain.encoding import fit_encoding
from gim_brain.encoding.backend import use_backend
from gim_brain.encoding.chunking import (MemoryBudgetError, chunk_size, fit_memory,
                                         merge_results, parse_bytes, target_chunks)
from gim_brain.encoding.cv import story_folds
from gim_brain.encoding.fastpath import ridge_cv_fastpath

from _encoding_helpers import _one_blas_thread, synthetic_stories  # noqa: F401
from _experiment_helpers import fit_cmd, run_cli, small_demo

ALPHAS = np.logspace(0, 6, 7)


def test_parse_bytes_units_and_errors():
    assert parse_bytes("8GB") == 8 * 10**9
    assert parse_bytes("1.5 GiB") == int(1.5 * 2**30)
    assert parse_bytes("512MB") == 512 * 10**6
    assert parse_bytes(1000) == 1000
    for bad in ("8 gigs", "", "-1GB", "0"):
        with pytest.raises(ValueError, match="memory budget"):
            parse_bytes(bad)


def test_fastpath_batches_from_a_budget_share_the_decomposition_and_the_numbers():
    X, Y, _ = synthetic_stories(6, 15, 90, seed=3)
    rows = {s: x.shape[0] for s, x in X.items()}
    Xc, Yc = np.concatenate(list(X.values())), np.concatenate(list(Y.values()))
    folds = story_folds(rows, 3)
    model = fit_memory(Xc.shape[0], 0, 15, len(ALPHAS), 3, keep_weights=True,
                       max_val_rows=max(len(f.val) for f in folds))
    budget = model.fixed + 90 * model.held_per_target + 20 * model.work_per_target
    with use_backend("numpy"):
        whole = ridge_cv_fastpath(Xc, Yc, folds, ALPHAS, n_targets_batch=90)
        small = ridge_cv_fastpath(Xc, Yc, folds, ALPHAS, memory_budget=budget)
    assert small.n_targets_batch == 20  # 5 batches, one decomposition per fold for all
    np.testing.assert_array_equal(small.best_alphas, whole.best_alphas)
    np.testing.assert_allclose(small.cv_scores, whole.cv_scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(small.weights, whole.weights, rtol=1e-5, atol=1e-6)
    with use_backend("numpy"), pytest.raises(MemoryBudgetError, match=r"memory budget 1\.00 kB"):
        ridge_cv_fastpath(Xc, Yc, folds, ALPHAS, memory_budget=1000)


def test_chunked_fit_encoding_equals_the_unchunked_fit():
    X, Y, _ = synthetic_stories(6, 12, 50, seed=4)
    test = ["story05"]
    kw = dict(alphas=ALPHAS, n_folds=3, backend="numpy", n_permutations=50, progress=False,
              keep_weights=True)
    whole = fit_encoding(X, Y, test, **kw)
    chunks = target_chunks(50, 17)
    assert [c.stop - c.start for c in chunks] == [17, 17, 16]
    parts = [fit_encoding(X, {s: y[:, c] for s, y in Y.items()}, test, **kw) for c in chunks]
    merged = merge_results(parts)
    assert merged.n_targets == 50 and merged.provenance["chunks"] == [17, 17, 16]
    np.testing.assert_array_equal(merged.alphas, whole.alphas)
    for key in ("r", "r2"):
        np.testing.assert_allclose(merged.scores[key], whole.scores[key], rtol=1e-5, atol=1e-6)
    # same permutations for every target: identical p-values; q-values from all of them
    np.testing.assert_allclose(merged.pvalues, whole.pvalues, atol=1e-12)
    np.testing.assert_allclose(merged.qvalues, whole.qvalues, atol=1e-12)
    # float32 products over other column sets: equal to float32 rounding of the values' scale
    for a, b in ((merged.weights, whole.weights), (merged.predictions, whole.predictions)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * np.abs(b).max())


def test_chunk_size_and_a_budget_too_small_for_one_chunk():
    model = fit_memory(10_000, 300, 1000, 13, 5)
    per = model.held_per_target + model.work_per_target
    assert chunk_size(model, 95_556, model.fixed + 1000 * per) == 1000
    assert chunk_size(model, 500, 10**12) == 500
    with pytest.raises(MemoryBudgetError, match=r"memory budget 1\.00 MB .*too small for one "
                                                r"voxel chunk.*--memory-budget"):
        chunk_size(model, 95_556, 10**6)


# ---- through the experiment layer and the CLI ------------------------------------------------

@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return small_demo(tmp_path_factory.mktemp("chunkdemo"))


def test_experiment_chunked_by_budget_equals_unchunked(demo, tmp_path):
    from gim_brain.encoding import EncodingResult

    p = run_cli(fit_cmd(demo, tmp_path / "whole", "--keep-weights"), demo)
    assert p.returncode == 0, p.stderr
    summary = json.loads((tmp_path / "whole" / "summary.json").read_text())
    res = summary["resources"]
    assert res["peak_rss_bytes"] > 10**7 and res["chunks"] == {"wordrate": [None]}
    whole = EncodingResult.load(tmp_path / "whole" / summary["feature_sets"]["wordrate"]["result"])
    shapes = whole.provenance["shapes"]
    model = fit_memory(shapes["n_train_rows"], shapes["n_test_rows"], shapes["n_features"][0],
                       7, 2, keep_weights=True)
    n = whole.n_targets
    size = max(n // 3, 1)
    budget = model.fixed + size * (model.held_per_target + model.work_per_target)
    p = run_cli(fit_cmd(demo, tmp_path / "chunked", "--memory-budget", str(budget),
                        "--keep-weights"), demo)
    assert p.returncode == 0, p.stderr
    assert "voxel chunks" in p.stdout
    summary = json.loads((tmp_path / "chunked" / "summary.json").read_text())
    chunks = summary["resources"]["chunks"]["wordrate"]
    assert len(chunks) >= 3 and chunks[0] == [0, size] and chunks[-1][1] == n
    assert summary["resources"]["memory_budget_bytes"] == budget
    chunked = EncodingResult.load(tmp_path / "chunked" /
                                  summary["feature_sets"]["wordrate"]["result"])
    np.testing.assert_array_equal(chunked.alphas, whole.alphas)
    np.testing.assert_allclose(chunked.scores["r"], whole.scores["r"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(chunked.pvalues, whole.pvalues, atol=1e-12)
    np.testing.assert_allclose(chunked.qvalues, whole.qvalues, atol=1e-12)
    # weights and predictions: the chunks' columns written into one preallocated .npy each;
    # the same files (names, headers, shapes) as the unchunked run's, read back as memmaps
    folder = {k: tmp_path / k / "results" / "wordrate" for k in ("whole", "chunked")}
    for name in ("weights", "predictions"):
        a, b = (folder[k] / f"{name}.npy" for k in ("whole", "chunked"))
        assert a.stat().st_size == b.stat().st_size
        assert a.read_bytes()[:128] == b.read_bytes()[:128]  # the .npy header
        got, want = getattr(chunked, name), getattr(whole, name)
        assert isinstance(got, np.memmap) and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * np.abs(want).max())
    assert sorted(p.name for p in folder["chunked"].iterdir()) == sorted(
        p.name for p in folder["whole"].iterdir())


def test_cli_budget_too_small_or_malformed_is_a_usage_error(demo, tmp_path):
    p = run_cli(fit_cmd(demo, tmp_path / "tiny", "--memory-budget", "10kB"), demo)
    assert p.returncode == 2, p.stderr
    assert "memory budget 10.00 kB" in p.stderr and "too small for one voxel chunk" in p.stderr
    assert "Traceback" not in p.stderr
    p = run_cli(fit_cmd(demo, tmp_path / "bad", "--memory-budget", "lots"), demo)
    assert p.returncode == 2 and "encoding.memory_budget (--memory-budget)" in p.stderr
    assert "Traceback" not in p.stderr
    assert not (tmp_path / "bad").exists()
