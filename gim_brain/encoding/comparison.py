"""Per-target comparison of two fits: paired statistics across targets.

A sign-flip permutation test of the mean per-target difference and a Wilcoxon signed-rank test.
Both treat targets as exchangeable units; neighbouring voxels are correlated, so read the
p-values as optimistic for voxels (they are apt for response components).
"""

from __future__ import annotations

import numpy as np

__all__ = ["paired_difference_test", "compare_scores"]


def paired_difference_test(diff: np.ndarray, n_permutations: int = 10000, seed: int = 0) -> dict:
    """Tests that the mean of per-target differences is zero.

    Parameters
    ----------
    diff : (n_targets,) float
        Per-target differences (NaN entries are dropped).
    n_permutations : int
        Random sign flips (two-sided; p = (1 + #|mean*| >= |mean|) / (1 + n)).
    seed : int

    Returns
    -------
    dict with ``n``, ``mean``, ``median``, ``frac_positive``, ``p_permutation``, ``p_wilcoxon``.
    """
    from scipy.stats import wilcoxon

    d = np.asarray(diff, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size < 2:
        raise ValueError(f"need at least 2 finite per-target differences, got {d.size}")
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be >= 1, got {n_permutations}")
    rng = np.random.default_rng(seed)
    observed = abs(d.mean())
    count = 0
    for start in range(0, n_permutations, 1000):
        k = min(1000, n_permutations - start)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(k, d.size))
        count += int(np.sum(np.abs(signs @ d) / d.size >= observed - 1e-15))
    nonzero = d[d != 0]
    p_w = float(wilcoxon(nonzero).pvalue) if nonzero.size >= 2 else 1.0
    return {"n": int(d.size), "mean": float(d.mean()), "median": float(np.median(d)),
            "frac_positive": float(np.mean(d > 0)),
            "p_permutation": (1 + count) / (1 + n_permutations), "p_wilcoxon": p_w,
            "n_permutations": int(n_permutations)}


def compare_scores(res_a, res_b, metric: str = "r", n_permutations: int = 10000,
                   seed: int = 0, only_significant: bool = False) -> dict:
    """Statistics of ``res_a.scores[metric] - res_b.scores[metric]`` (EncodingResults).

    Parameters
    ----------
    res_a, res_b : EncodingResult
    metric : {"r", "r2"}
    n_permutations, seed : see :func:`paired_difference_test`
    only_significant : bool
        Restrict the test to targets FDR-significant in either result.

    Raises
    ------
    ValueError
        If the two results have different numbers of targets, lack ``metric``, or lack p-values
        when ``only_significant``.
    """
    for res in (res_a, res_b):
        if metric not in res.scores:
            raise ValueError(f"result {res.feature_set!r} has no {metric!r} scores "
                             f"(has {sorted(res.scores)})")
    a = np.asarray(res_a.scores[metric], dtype=np.float64)
    b = np.asarray(res_b.scores[metric], dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"{res_a.feature_set!r} has {a.size} targets but {res_b.feature_set!r} "
                         f"has {b.size}: only fits of the same targets can be compared")
    keep = np.ones(a.shape, dtype=bool)
    if only_significant:
        if res_a.qvalues is None or res_b.qvalues is None:
            raise ValueError("--only-significant needs p-values in both fits (fit with "
                             "--n-permutations > 0)")
        level = [float(r.provenance.get("parameters", {}).get("fdr_alpha", 0.05)) for r in (res_a, res_b)]
        keep = (np.asarray(res_a.qvalues) <= level[0]) | (np.asarray(res_b.qvalues) <= level[1])
        if keep.sum() < 2:
            raise ValueError(f"only {int(keep.sum())} target(s) are significant in either fit")
    out = paired_difference_test((a - b)[keep], n_permutations, seed)
    out.update(metric=metric, mean_a=float(np.nanmean(a[keep])), mean_b=float(np.nanmean(b[keep])),
               targets="significant in either" if only_significant else "all")
    for side, res in (("a", res_a), ("b", res_b)):
        out[f"n_significant_{side}"] = res.n_significant()
    order = np.argsort(a - b)
    out["most_improved_targets"] = [int(i) for i in order[::-1][:5]]
    out["most_worsened_targets"] = [int(i) for i in order[:5]]
    return out
