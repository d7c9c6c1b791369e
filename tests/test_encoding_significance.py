"""Block permutations stay within stories; p-values are calibrated; BH matches scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import false_discovery_control

from gim_brain.encoding.significance import block_permutation_pvalues, block_permutations, fdr_bh

from _encoding_helpers import _one_blas_thread  # noqa: F401


def test_permutations_move_whole_blocks_within_stories():
    rows = {"a": 23, "b": 15}
    perms = block_permutations(rows, block_size=5, n_permutations=20, seed=1)
    assert perms.shape == (20, 38)
    for p in perms:
        assert sorted(p) == list(range(38))
        assert set(p[:23]) == set(range(23)) and set(p[23:]) == set(range(23, 38))
        # inside each block of the output the source rows are consecutive
        starts = np.flatnonzero(np.diff(p) != 1) + 1
        pieces = np.split(p, starts)
        block_starts = {0, 5, 10, 15, 20, 23, 28, 33}
        for piece in pieces:  # a run of consecutive source rows is made of whole blocks
            assert piece[0] in block_starts and (piece[-1] + 1) in block_starts | {38}
    assert not all((p == np.arange(38)).all() for p in perms)


def test_pvalues_are_calibrated_under_the_null_and_small_for_signal():
    rng = np.random.default_rng(0)
    rows = {"s1": 150, "s2": 150}
    n, t = 300, 400
    Y = rng.standard_normal((n, t)).astype(np.float32)
    null_pred = rng.standard_normal((n, t)).astype(np.float32)
    p_null, _ = block_permutation_pvalues(Y, null_pred, rows, block_size=10, n_permutations=200)
    assert 0.02 < np.mean(p_null < 0.05) < 0.09
    good = (Y + 2 * rng.standard_normal((n, t))).astype(np.float32)
    p_sig, r = block_permutation_pvalues(Y, good, rows, block_size=10, n_permutations=200)
    assert np.all(p_sig <= 1 / 201 + 1e-12) and r.mean() > 0.3


def test_fdr_bh_matches_scipy():
    rng = np.random.default_rng(3)
    p = np.concatenate([rng.uniform(size=200), rng.uniform(0, 1e-3, size=50)])
    sig, q = fdr_bh(p, 0.05)
    np.testing.assert_allclose(q, false_discovery_control(p, method="bh"), rtol=1e-12)
    assert np.array_equal(sig, q <= 0.05) and 45 <= sig.sum() <= 60
    with pytest.raises(ValueError, match="p-values"):
        fdr_bh([0.1, 1.5])


def test_mismatched_rows_are_rejected():
    with pytest.raises(ValueError, match="add up to 10 rows"):
        block_permutation_pvalues(np.zeros((12, 2)), np.zeros((12, 2)), {"a": 10})
