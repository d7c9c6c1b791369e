"""Fast path vs himalaya ``RidgeCV``: same alpha grid, same story-grouped folds, correlation score.

Parts, all in one run:

1. CPU, synthetic stories with known weights (a size that runs in ~1-2 minutes on 2 cores):
   time both, compare the chosen alphas and the mean CV scores.
2. Real data, when ``../shared/data/lebel2023`` is present: UTS03 responses (200 PCs) of
   ``--real-stories`` training stories against a real design built from each row's ``tr_text``
   (word count, letter count, long-word count, mean word length, distinct words; delays 1-4 TRs,
   z-scored per story); alpha agreement and score difference.
3. GPU, when PyTorch sees CUDA: the full ds003020 size (27,800 x 3,072 x 95,556 random data,
   5 folds, 17 alphas) with the fast path on ``torch_cuda``; with ``--gpu-reference`` also
   himalaya RidgeCV at that size.

Last line: ``RESULT cpu_speedup=<x> alpha_agreement=<fraction> max_score_diff=<d>
real_alpha_agreement=<fraction> real_max_score_diff=<d>`` (plus ``gpu_s=<s>`` on a GPU).

Run: ``.venv/bin/python benchmarks/ridge_speed.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from gim_brain.encoding.backend import use_backend
from gim_brain.encoding.cv import story_folds
from gim_brain.encoding.fastpath import ridge_cv_fastpath
from gim_brain.encoding.ridge import fit_ridge

ALPHAS = np.logspace(0, 8, 17)
REPO = Path(__file__).resolve().parents[1]
LEBEL = REPO.parent / "shared" / "data" / "lebel2023"


def compare(X, Y, folds, label: str, backend: str = "torch", reference: bool = True):
    """Time fast path and RidgeCV on the same problem; return (t_fast, t_ref, agreement, max diff)."""
    with use_backend(backend):
        ridge_cv_fastpath(X[:200], Y[:200, :8], story_folds({"a": 100, "b": 100}, 2), ALPHAS)
        t0 = time.perf_counter()
        fast = ridge_cv_fastpath(X, Y, folds, ALPHAS, return_weights=True)
        t_fast = time.perf_counter() - t0
        if not reference:
            return t_fast, None, None, None
        t0 = time.perf_counter()
        ref = fit_ridge(X, Y, folds, ALPHAS, solver="ridge", n_targets_batch=Y.shape[1])
        t_ref = time.perf_counter() - t0
    agree = float(np.mean(np.isclose(fast.best_alphas, ref.best_alphas, rtol=1e-4)))
    diff = float(np.max(np.abs(fast.cv_scores - ref.cv_scores)))
    print(f"{label}: X {X.shape}, Y {Y.shape}, {len(folds)} folds, {len(ALPHAS)} alphas | "
          f"fast path {t_fast:.2f} s, himalaya RidgeCV {t_ref:.2f} s, x{t_ref / t_fast:.1f} | "
          f"same alpha {agree:.4f}, max |CV score diff| {diff:.2e}", flush=True)
    return t_fast, t_ref, agree, diff


def synthetic(n_stories, rows, n_features, n_targets, seed=0):
    rng = np.random.default_rng(seed)
    story_rows = {f"s{i:03d}": rows for i in range(n_stories)}
    n = n_stories * rows
    X = rng.standard_normal((n, n_features)).astype(np.float32)
    scales = np.logspace(-3, -0.5, n_targets) / np.sqrt(n_features)
    W = (rng.standard_normal((n_features, n_targets)) * scales).astype(np.float32)
    Y = X @ W + rng.standard_normal((n, n_targets)).astype(np.float32)
    return X, Y.astype(np.float32), story_folds(story_rows, 5)


def lexical_design(tr_text, delays=(1, 2, 3, 4)):
    """Per-row counts from the words heard in each TR, delayed and z-scored: (n_rows, 5 * n_delays)."""
    feats = []
    for text in tr_text:
        words = str(text).split()
        lengths = [len(w) for w in words]
        feats.append([len(words), sum(lengths), sum(n > 6 for n in lengths),
                      np.mean(lengths) if words else 0.0, len(set(words))])
    F = np.asarray(feats, dtype=np.float64)
    F = (F - F.mean(0)) / np.where(F.std(0) > 0, F.std(0), 1)
    out = []
    for d in delays:
        shifted = np.zeros_like(F)
        shifted[d:] = F[:-d]
        out.append(shifted)
    D = np.concatenate(out, axis=1)
    return ((D - D.mean(0)) / np.where(D.std(0) > 0, D.std(0), 1)).astype(np.float32)


def real_data(n_stories: int):
    folder = LEBEL / "responses" / "UTS03"
    test = {"wheretheressmoke", "onapproachtopluto", "fromboyhoodtofatherhood"}
    Xs, Ys, rows = [], [], {}
    for path in sorted(folder.glob("*.npz")):
        if path.stem in test:
            continue
        with np.load(path, allow_pickle=False) as d:
            text, resp = d["tr_text"], d["responses"].astype(np.float32)
        if sum(len(str(t).split()) for t in text) == 0:
            continue  # a story without words
        Xs.append(lexical_design(text))
        Ys.append(resp)
        rows[path.stem] = resp.shape[0]
        if len(rows) == n_stories:
            break
    return np.concatenate(Xs), np.concatenate(Ys), story_folds(rows, 5)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stories", type=int, default=30)
    p.add_argument("--rows", type=int, default=200, help="rows (TRs) per synthetic story")
    p.add_argument("--features", type=int, default=400)
    p.add_argument("--targets", type=int, default=1000)
    p.add_argument("--real-stories", type=int, default=20)
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS/torch threads for the CPU parts (1 is steadiest on a shared machine)")
    p.add_argument("--gpu-reference", action="store_true",
                   help="also time himalaya RidgeCV at full size on the GPU (slow)")
    args = p.parse_args(argv)

    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    with threadpool_limits(limits=args.threads):
        X, Y, folds = synthetic(args.stories, args.rows, args.features, args.targets)
        t_fast, t_ref, agree, diff = compare(X, Y, folds, "CPU synthetic")
        real_agree, real_diff = float("nan"), float("nan")
        if LEBEL.is_dir():
            Xr, Yr, folds_r = real_data(args.real_stories)
            _, _, real_agree, real_diff = compare(Xr, Yr, folds_r, "CPU real UTS03 lexical")
        else:
            print(f"real data: {LEBEL} absent, skipped")
    result = (f"RESULT cpu_speedup={t_ref / t_fast:.2f} alpha_agreement={agree:.4f} "
              f"max_score_diff={diff:.2e} real_alpha_agreement={real_agree:.4f} "
              f"real_max_score_diff={real_diff:.2e}")

    if torch.cuda.is_available():
        gen = torch.Generator(device="cuda").manual_seed(0)
        n, p_feat, t = 27_800, 3_072, 95_556
        rows = {f"s{i:02d}": n // 83 + (1 if i < n % 83 else 0) for i in range(83)}
        Xg = torch.randn(n, p_feat, generator=gen, device="cuda")
        Yg = torch.randn(n, t, generator=gen, device="cuda")
        folds_g = story_folds(rows, 5)
        with use_backend("torch_cuda"):
            ridge_cv_fastpath(Xg[:500], Yg[:500, :16], story_folds({"a": 250, "b": 250}, 2), ALPHAS)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            fast = ridge_cv_fastpath(Xg, Yg, folds_g, ALPHAS, return_weights=False)
            torch.cuda.synchronize()
            gpu_s = time.perf_counter() - t0
            print(f"GPU full size: X {tuple(Xg.shape)}, Y {tuple(Yg.shape)}: fast path {gpu_s:.2f} s "
                  f"(batch {fast.n_targets_batch} targets)", flush=True)
            if args.gpu_reference:
                from himalaya.ridge import RidgeCV
                from himalaya.scoring import correlation_score

                t0 = time.perf_counter()
                ref = RidgeCV(alphas=ALPHAS.astype(np.float32), cv=[f.as_pair() for f in folds_g],
                              solver_params=dict(score_func=correlation_score,
                                                 n_targets_batch=10_000))
                ref.fit(Xg, Yg)
                torch.cuda.synchronize()
                ref_s = time.perf_counter() - t0
                ha = ref.best_alphas_.cpu().numpy()
                print(f"GPU himalaya RidgeCV {ref_s:.2f} s; same alpha "
                      f"{np.mean(np.isclose(ha, fast.best_alphas, rtol=1e-4)):.4f}")
        result += f" gpu_s={gpu_s:.2f}"
    else:
        print("GPU: PyTorch sees no CUDA device; the full-size GPU benchmark was not run")
    print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
