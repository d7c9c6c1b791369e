"""Significance of held-out correlations: block permutation within stories, Benjamini–Hochberg FDR.

Null distribution: the held-out predictions are kept, the observed responses of each test story are
cut into consecutive blocks of ``block_size`` rows (TRs) and the blocks are shuffled *within* the
story, which keeps the autocorrelation inside blocks and never mixes stories. The p-value of a target
is ``(1 + #{null r >= observed r}) / (1 + n_permutations)`` (one-sided, positive correlation).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from .backend import to_numpy

__all__ = ["block_permutations", "block_permutation_pvalues", "fdr_bh"]


def block_permutations(story_rows: Mapping[str, int] | Sequence[int], block_size: int,
                       n_permutations: int, seed: int = 0) -> np.ndarray:
    """Row orders that shuffle blocks of consecutive rows within each story.

    Parameters
    ----------
    story_rows : mapping story -> n_rows (or a sequence of row counts), in concatenation order
    block_size : int
        Rows (TRs) per block; the last block of a story may be shorter.
    n_permutations : int
    seed : int

    Returns
    -------
    int64 (n_permutations, n_rows_total)
        Each row is a permutation of ``arange(n_rows_total)`` that moves only whole blocks, and
        only inside their story.
    """
    if block_size < 1:
        raise ValueError(f"block_size={block_size}: needs at least 1 row per block")
    counts = list(story_rows.values()) if isinstance(story_rows, Mapping) else list(story_rows)
    rng = np.random.default_rng(seed)
    blocks_per_story = []
    start = 0
    for n in counts:
        edges = list(range(start, start + int(n), block_size)) + [start + int(n)]
        blocks_per_story.append([np.arange(a, b) for a, b in zip(edges[:-1], edges[1:])])
        start += int(n)
    perms = np.empty((n_permutations, start), dtype=np.int64)
    for i in range(n_permutations):
        parts = []
        for blocks in blocks_per_story:
            order = rng.permutation(len(blocks))
            parts.extend(blocks[j] for j in order)
        perms[i] = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
    return perms


def _zscore_columns(a: np.ndarray) -> np.ndarray:
    a = a - a.mean(0, keepdims=True)
    std = a.std(0, keepdims=True)
    std[std == 0] = 1
    return (a / std).astype(np.float32)


def block_permutation_pvalues(Y_true, Y_pred, story_rows: Mapping[str, int] | Sequence[int], *,
                              block_size: int = 10, n_permutations: int = 1000, seed: int = 0,
                              n_targets_batch: int = 4096, max_elements: int = 2**24,
                              progress=None) -> tuple[np.ndarray, np.ndarray]:
    """One-sided p-values of the held-out correlation of each target, by block permutation.

    Parameters
    ----------
    Y_true, Y_pred : float32 (n_test_rows, n_targets)
        Observed and predicted test responses, stories concatenated in ``story_rows`` order.
    story_rows : mapping story -> n_rows, or sequence of row counts
    block_size : int
        Rows (TRs) per shuffled block.
    n_permutations : int
    seed : int
    n_targets_batch : int
    max_elements : int
        Size (elements) of the gathered block of permuted responses per step (memory bound).
    progress : tqdm or None

    Returns
    -------
    pvalues : float64 (n_targets,)
    observed_r : float32 (n_targets,)
    """
    from himalaya.backend import get_backend

    B = get_backend()
    Y_true = np.asarray(Y_true, dtype=np.float32)
    Y_pred = np.asarray(Y_pred, dtype=np.float32)
    if Y_true.shape != Y_pred.shape:
        raise ValueError(f"Y_true {Y_true.shape} and Y_pred {Y_pred.shape} differ in shape")
    counts = list(story_rows.values()) if isinstance(story_rows, Mapping) else list(story_rows)
    if sum(int(n) for n in counts) != Y_true.shape[0]:
        raise ValueError(f"story_rows add up to {sum(counts)} rows but the responses have "
                         f"{Y_true.shape[0]}")
    if n_permutations < 1:
        raise ValueError(f"n_permutations={n_permutations}: needs at least 1")
    n_rows, n_targets = Y_true.shape
    perms = block_permutations(counts, block_size, n_permutations, seed)
    zt_all = _zscore_columns(Y_true)
    zp_all = _zscore_columns(Y_pred)
    observed = (zt_all * zp_all).mean(0)
    exceed = np.zeros(n_targets, dtype=np.int64)
    perms_d = B.asarray(perms)
    for start in range(0, n_targets, n_targets_batch):
        batch = slice(start, min(start + n_targets_batch, n_targets))
        zt = B.asarray(zt_all[:, batch])
        zp = B.asarray(zp_all[:, batch])
        obs = B.asarray(observed[batch])
        count = B.zeros_like(obs)
        # several permutations per step: a gathered (n_perm_step, n_rows, n_targets_batch) block
        step = max(1, int(max_elements // max(n_rows * zt.shape[1], 1)))
        for p0 in range(0, n_permutations, step):
            r = (zt[perms_d[p0:p0 + step]] * zp[None]).mean(1)  # (step, n_targets_batch)
            count = count + (r >= obs[None, :] - 1e-7).sum(0)
        exceed[batch] = to_numpy(count).astype(np.int64)
        if progress is not None:
            progress.update(batch.stop - batch.start)
    pvalues = (1.0 + exceed) / (1.0 + n_permutations)
    return pvalues, observed.astype(np.float32)


def fdr_bh(pvalues, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Benjamini–Hochberg false discovery rate control.

    Parameters
    ----------
    pvalues : (n,) array in [0, 1]
    alpha : float
        FDR level.

    Returns
    -------
    significant : bool (n,)
        Rejected null hypotheses at level ``alpha``.
    qvalues : float64 (n,)
        BH-adjusted p-values (``significant == qvalues <= alpha``).
    """
    p = np.asarray(pvalues, dtype=np.float64).ravel()
    if not 0 < alpha < 1:
        raise ValueError(f"fdr alpha={alpha} must be in (0, 1)")
    if p.size == 0:
        return np.zeros(0, dtype=bool), np.zeros(0)
    if np.any(np.isnan(p)) or np.any(p < 0) or np.any(p > 1):
        raise ValueError("p-values must lie in [0, 1] and not be NaN")
    n = p.size
    order = np.argsort(p, kind="stable")
    ranked = p[order] * n / np.arange(1, n + 1)
    q_sorted = np.minimum.accumulate(ranked[::-1])[::-1]
    q = np.empty(n)
    q[order] = np.minimum(q_sorted, 1.0)
    return q <= alpha, q
