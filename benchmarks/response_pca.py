"""Response PCA at scale: :class:`gim_brain.data.response_pca.ResponsePCA` (randomized, story by
story) vs scikit-learn's full PCA of the stacked responses (what ``ResponseInduction`` did before).

Synthetic float32 responses: ``rank`` strong directions (standard deviations 10 .. 3) plus unit
noise, cut into ~370-row "stories" (the length of a ds003020 story) held as separate arrays, the
way a feature build holds them. Each method runs in a fresh subprocess, which builds the
stories row block by row block (so building leaves no peak above the stories themselves), then
records its resident memory, fits, and reports seconds and ``peak_mb`` = peak RSS
(``ru_maxrss``) minus the RSS once the stories were built: the memory the fit itself added,
BLAS/LAPACK work included. ``full`` stacks the stories (``np.concatenate``) and runs
``PCA(svd_solver="full")``, as the old code path did.

Stated bound (randomized): the fit adds at most two float32 row blocks (2 x 64 MB) plus
``8 x (n_rows + n_voxels) x (K + oversamples)`` float64 values, whatever the data size (at the
default 5,000 x 20,000, K = 100: 128 + 192 = 320 MB, below the 400 MB of the data itself).
The benchmark prints whether the measured peak is under it.

Agreement: largest principal angle (degrees) between the two methods' top-``rank`` subspaces, and
the largest relative difference of their explained variances there.

    python benchmarks/response_pca.py                         # 5,000 x 20,000, both methods
    python benchmarks/response_pca.py --voxels 95556 --rows 27000 --methods randomized
                                      # voxel scale: ~10.3 GB of stories; does it fit in 24 GB?

Last line: ``RESULT rows=... voxels=... seconds_randomized=... seconds_full=...
peak_mb_randomized=... peak_mb_full=... bound_mb=... under_bound=... max_angle_deg=...
max_ev_rel_err=...`` (``nan`` for a method not run).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

STORY_ROWS = 370
BLOCK_BYTES = 64 * 1000**2
OVERSAMPLES = 20


def rss_bytes() -> int:
    """Resident memory of this process now (VmRSS), bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def peak_rss_bytes() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def make_stories(n_rows: int, n_voxels: int, rank: int, seed: int = 0) -> list[np.ndarray]:
    """float32 stories of ~STORY_ROWS rows: ``(U * s) @ V + noise``, built 64 rows at a time."""
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((rank, n_voxels), dtype=np.float32) / np.sqrt(n_voxels / 100)
    scale = np.linspace(10.0, 3.0, rank, dtype=np.float32)
    stories = []
    for a in range(0, n_rows, STORY_ROWS):
        n = min(STORY_ROWS, n_rows - a)
        y = np.empty((n, n_voxels), np.float32)
        for b in range(0, n, 64):
            e = min(b + 64, n)
            y[b:e] = (rng.standard_normal((e - b, rank), dtype=np.float32) * scale) @ basis
            y[b:e] += rng.standard_normal((e - b, n_voxels), dtype=np.float32)
        stories.append(y)
    return stories


def worker(method: str, n_rows: int, n_voxels: int, rank: int, k: int, out: Path) -> None:
    """Build the stories, fit ``method``, write seconds / peak memory / components to ``out``."""
    from sklearn.decomposition import PCA

    from gim_brain.data.response_pca import ResponsePCA

    stories = make_stories(n_rows, n_voxels, rank)
    base = max(rss_bytes(), 0)
    peak_before = peak_rss_bytes()
    t0 = time.perf_counter()
    if method == "randomized":
        pca = ResponsePCA(k, solver="randomized", n_oversamples=OVERSAMPLES).fit(stories)
        comps, ev = pca.components_, pca.explained_variance_
    else:
        stacked = np.concatenate(stories)
        pca = PCA(n_components=k, svd_solver="full").fit(stacked)
        comps, ev = pca.components_, pca.explained_variance_
    seconds = time.perf_counter() - t0
    np.savez(out.with_suffix(".npz"), components=np.asarray(comps[:rank], np.float64),
             ev=np.asarray(ev[:rank], np.float64))
    out.write_text(json.dumps({
        "seconds": seconds, "peak_mb": (peak_rss_bytes() - base) / 1e6,
        "build_overshoot_mb": (peak_before - base) / 1e6, "data_mb": n_rows * n_voxels * 4 / 1e6,
        "total_peak_gb": peak_rss_bytes() / 1e9}))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--voxels", type=int, default=20000)
    ap.add_argument("--rank", type=int, default=40, help="planted strong directions")
    ap.add_argument("--components", type=int, default=100, help="K")
    ap.add_argument("--methods", default="randomized,full",
                    help="comma-separated: randomized, full")
    ap.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--_out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._worker:
        worker(args._worker, args.rows, args.voxels, args.rank, args.components, Path(args._out))
        return 0
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = set(methods) - {"randomized", "full"}
    if bad or not methods:
        raise SystemExit(f"response_pca: --methods must name randomized and/or full, got "
                         f"{args.methods!r}")
    width = min(args.components + OVERSAMPLES, args.rows, args.voxels)
    bound_mb = (2 * BLOCK_BYTES + 8 * (args.rows + args.voxels) * width * 8) / 1e6
    print(f"response PCA: {args.rows} rows x {args.voxels} voxels float32 "
          f"({args.rows * args.voxels * 4 / 1e9:.2f} GB in {-(-args.rows // STORY_ROWS)} stories), "
          f"K={args.components}, planted rank {args.rank}; threads "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    got: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for method in methods:
            out = Path(tmp) / f"{method}.json"
            cmd = [sys.executable, __file__, "--_worker", method, "--_out", str(out),
                   "--rows", str(args.rows), "--voxels", str(args.voxels),
                   "--rank", str(args.rank), "--components", str(args.components)]
            p = subprocess.run(cmd, check=False, capture_output=True, text=True)
            if p.returncode != 0:
                print(f"{method}: failed (exit {p.returncode}): {p.stderr.strip()[-600:]}")
                continue
            got[method] = json.loads(out.read_text())
            with np.load(out.with_suffix(".npz")) as z:
                got[method].update(components=z["components"], ev=z["ev"])
            r = got[method]
            print(f"  {method:10s} {r['seconds']:8.1f} s   fit added {r['peak_mb']:8.0f} MB "
                  f"(data {r['data_mb']:.0f} MB; process peak {r['total_peak_gb']:.2f} GB)")
    angle = ev_err = float("nan")
    if {"randomized", "full"} <= set(got):
        from scipy.linalg import subspace_angles

        a, b = got["randomized"], got["full"]
        angle = float(np.degrees(subspace_angles(a["components"].T, b["components"].T)).max())
        ev_err = float(np.max(np.abs(a["ev"] / b["ev"] - 1)))
        print(f"  agreement on the top {args.rank} components: largest principal angle "
              f"{angle:.4f} deg, explained variance within {ev_err:.2e} (relative)")
    under = None
    if "randomized" in got:
        under = got["randomized"]["peak_mb"] <= bound_mb
        print(f"  stated bound for randomized: {bound_mb:.0f} MB -> "
              f"{'under' if under else 'OVER'} the bound")
    if "full" not in got and "full" in methods:
        print("  full: did not finish (see above)")

    def val(method, key, fmt):
        return format(got[method][key], fmt) if method in got else "nan"

    print(f"RESULT rows={args.rows} voxels={args.voxels} components={args.components} "
          f"seconds_randomized={val('randomized', 'seconds', '.1f')} "
          f"seconds_full={val('full', 'seconds', '.1f')} "
          f"peak_mb_randomized={val('randomized', 'peak_mb', '.0f')} "
          f"peak_mb_full={val('full', 'peak_mb', '.0f')} bound_mb={bound_mb:.0f} "
          f"under_bound={'nan' if under is None else int(under)} "
          f"max_angle_deg={angle:.4f} max_ev_rel_err={ev_err:.2e}")
    return 0 if (under is None or under) else 1


if __name__ == "__main__":
    sys.exit(main())
