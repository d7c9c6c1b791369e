"""Banded fast path vs himalaya ``BandedRidgeCV``: same candidates, folds, alphas, correlation score.

Synthetic stories, two bands (default 8,000 rows x 800 + 400 features, 100 targets, 3
story-grouped folds, 10 candidate band weightings, 17 alphas; a few minutes on a loaded 2-core
machine, nearly all of it himalaya). Both solvers run on the same backend with one BLAS thread.
The fast path is also timed with 1 candidate, which splits its time into a fixed part (Grams,
X^T Y, refit) and a per-candidate part (per-fold ``p x p`` eigendecompositions); scaled by
``n p^2`` and ``p^3`` they give an estimate for one UTS03-size banded fit (27,000 rows, 2,304 +
900 features, 200 targets, 3 folds, 20 candidates, without the leave-one-band-out plain fits).

Last line: ``RESULT banded_speedup=<x> identical=<fraction of targets with the same deltas>
max_cv_score_diff=<d> fast_s=<s> himalaya_s=<s> uts03_est_s=<s>``.

Run: ``nice .venv/bin/python benchmarks/banded_speed.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np

from gim_brain.encoding.backend import use_backend
from gim_brain.encoding.banded_fastpath import banded_ridge_cv_fastpath
from gim_brain.encoding.cv import story_folds

ALPHAS = np.logspace(0, 8, 17)
UTS03 = {"rows": 27_000, "features": 2_304 + 900, "n_iter": 20}


def synthetic(n_rows, widths, n_targets, n_stories=30, seed=0):
    """Bands of ``widths`` columns; each target depends on each band with its own weight scale."""
    rng = np.random.default_rng(seed)
    story_rows = {f"s{i:03d}": n_rows // n_stories for i in range(n_stories)}
    n = sum(story_rows.values())
    Xs = [rng.standard_normal((n, w)).astype(np.float32) for w in widths]
    Y = rng.standard_normal((n, n_targets)).astype(np.float32)
    for X, w in zip(Xs, widths):
        scales = 10 ** rng.uniform(-3, -0.5, size=n_targets) / np.sqrt(w)
        Y += X @ (rng.standard_normal((w, n_targets)) * scales).astype(np.float32)
    return Xs, Y, story_folds(story_rows, 3)


def himalaya_banded(Xs, Y, folds, n_iter, seed):
    from himalaya.ridge import BandedRidgeCV
    from himalaya.scoring import correlation_score

    params = {"alphas": ALPHAS.astype(np.float32), "n_iter": n_iter, "progress_bar": False,
              "score_func": correlation_score, "n_targets_batch": Y.shape[1]}
    model = BandedRidgeCV(groups="input", solver="random_search", solver_params=params,
                          cv=[f.as_pair() for f in folds], random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(Xs, Y)
    return model


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=8_000)
    p.add_argument("--widths", default="800,400", help="features per band, comma-separated")
    p.add_argument("--targets", type=int, default=100)
    p.add_argument("--n-iter", type=int, default=10)
    p.add_argument("--backend", default="torch", help="himalaya backend for both solvers")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    widths = [int(w) for w in args.widths.split(",")]

    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    with threadpool_limits(limits=args.threads), use_backend(args.backend):
        Xs, Y, folds = synthetic(args.rows, widths, args.targets)
        n, p_feat = Y.shape[0], sum(widths)
        banded_ridge_cv_fastpath([X[:300] for X in Xs], Y[:300, :4],
                                 story_folds({"a": 150, "b": 150}, 2), ALPHAS, n_iter=2)
        t0 = time.perf_counter()
        banded_ridge_cv_fastpath(Xs, Y, folds, ALPHAS, n_iter=1, random_state=0)
        t_one = time.perf_counter() - t0
        t0 = time.perf_counter()
        fast = banded_ridge_cv_fastpath(Xs, Y, folds, ALPHAS, n_iter=args.n_iter, random_state=0)
        t_fast = time.perf_counter() - t0
        print(f"fast path: X {n} x {widths}, Y {Y.shape}, {len(folds)} folds, {args.n_iter} "
              f"candidates, {len(ALPHAS)} alphas: {t_fast:.1f} s ({t_one:.1f} s with 1 candidate)",
              flush=True)
        t0 = time.perf_counter()
        ref = himalaya_banded(Xs, Y, folds, args.n_iter, 0)
        t_ref = time.perf_counter() - t0
    ref_deltas = np.asarray(ref.deltas_.cpu() if hasattr(ref.deltas_, "cpu") else ref.deltas_)
    ref_cv = np.asarray(ref.cv_scores_.cpu() if hasattr(ref.cv_scores_, "cpu") else ref.cv_scores_)
    same = np.all(np.isclose(ref_deltas, fast.deltas, atol=1e-5)
                  | (np.isneginf(ref_deltas) & np.isneginf(fast.deltas)), axis=0)
    diff = float(np.max(np.abs(ref_cv - fast.cv_scores_candidates)))
    print(f"himalaya BandedRidgeCV: {t_ref:.1f} s; x{t_ref / t_fast:.1f}; same deltas for "
          f"{same.mean():.4f} of targets; max |CV score diff| {diff:.2e}", flush=True)

    per_cand = max(t_fast - t_one, 0.0) / max(args.n_iter - 1, 1)
    fixed = max(t_one - per_cand, 0.0)
    est = (fixed * UTS03["rows"] * UTS03["features"] ** 2 / (n * p_feat ** 2)
           + per_cand * UTS03["n_iter"] * (UTS03["features"] / p_feat) ** 3)
    print(f"fast path split: fixed {fixed:.1f} s, {per_cand:.2f} s per candidate; estimated "
          f"UTS03-size banded fit (27,000 x 3,204, 20 candidates): {est:.0f} s", flush=True)
    print(f"RESULT banded_speedup={t_ref / t_fast:.1f} identical={same.mean():.4f} "
          f"max_cv_score_diff={diff:.2e} fast_s={t_fast:.1f} himalaya_s={t_ref:.1f} "
          f"uts03_est_s={est:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
