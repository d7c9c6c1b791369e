"""Voxel scale: seconds and peak RSS of one subject's encoding fit at growing voxel counts.

Synthetic data in the ds003020 layout: one ``<story>.hf5`` per story with dataset ``data``
(n_TRs x n_voxels), row counts taken from the real story lengths in
``../shared/data/lebel2023/stories.csv`` (column ``uts03_rows``; 5-TR trimming already applied,
as the preprocessed ds003020 responses are). Responses are a planted linear map of random
features plus noise, so the fit has signal to find.

Each voxel count is fitted in a fresh subprocess (so ``ru_maxrss`` is that size's peak): the
responses are read story by story into float32 (``h5py``, only the first N columns), then
:func:`gim_brain.encoding.fit_encoding` runs the CPU fast path (``backend=torch``) under a memory
budget; with CUDA present, ``torch_cuda`` is also timed at the largest size.

Default problem (sized for a loaded 2-core machine): 30 stories, 256 features, 13 alphas,
5 folds, no permutations; 5k, 20k, 50k voxels. ``--full`` adds 95,556 voxels;
``--stories 0 --features 3072`` is the full UTS03-size problem (~27,800 TRs x 3,072 features).

Last line: ``RESULT voxels=... seconds=... peak_rss_gb=... s_per_1k_voxels=...
growth_exponent=...`` (the largest CPU size; the exponent is the log-log slope of seconds over
voxels across sizes: 1.0 is linear).

    python benchmarks/voxel_scale.py                  # 5k, 20k, 50k
    python benchmarks/voxel_scale.py --full           # ... and 95,556
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
STORIES_CSV = HERE.parent / ".." / "shared" / "data" / "lebel2023" / "stories.csv"
FULL_VOXELS = 95_556


def story_rows(n_stories: int, path: Path = STORIES_CSV) -> dict[str, int]:
    """Real ds003020 story lengths (TRs after trimming), the first ``n_stories`` (0: all)."""
    if not path.is_file():
        raise SystemExit(f"voxel_scale: {path} not found (the real stories table gives the story "
                         f"lengths; see /work/shared/README.md)")
    rows = {}
    with open(path) as f:
        for rec in csv.DictReader(f):
            if rec.get("uts03_rows"):
                rows[rec["story"]] = int(float(rec["uts03_rows"]))
    names = sorted(rows)
    if n_stories:
        names = names[:n_stories]
    return {s: rows[s] for s in names}


def write_dataset(root: Path, rows: dict[str, int], n_voxels: int, n_features: int,
                  dtype: str, seed: int = 0) -> None:
    """``root/<story>.hf5`` (dataset ``data``) and ``root/features.npz``: Y = X W + noise."""
    import h5py

    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((n_features, n_voxels)) * 0.05).astype(np.float32)
    feats = {}
    for story, n in rows.items():
        x = rng.standard_normal((n, n_features)).astype(np.float32)
        feats[story] = x
        with h5py.File(root / f"{story}.hf5", "w") as f:
            d = f.create_dataset("data", shape=(n, n_voxels), dtype=dtype)
            for a in range(0, n_voxels, 8192):  # written in column blocks: bounded memory
                b = min(a + 8192, n_voxels)
                d[:, a:b] = x @ w[:, a:b] + rng.standard_normal((n, b - a), dtype=np.float32)
    np.savez(root / "features.npz", **feats)


def fit_one(root: Path, n_voxels: int, backend: str, budget: str, n_permutations: int,
            threads: int) -> dict:
    """Fit the first ``n_voxels`` voxels (in this process); seconds and peak RSS."""
    import h5py
    import torch

    from gim_brain.encoding import fit_encoding
    from gim_brain.encoding.chunking import peak_rss_bytes

    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(limits=threads)
    t0 = time.perf_counter()
    feats = dict(np.load(root / "features.npz"))
    Y = {}
    for story in feats:  # story by story, straight into float32, only the columns fitted
        with h5py.File(root / f"{story}.hf5", "r") as f:
            Y[story] = np.asarray(f["data"][:, :n_voxels], dtype=np.float32)
    t_read = time.perf_counter() - t0
    test = [sorted(feats)[0]]
    res = fit_encoding(feats, Y, test, alphas=np.logspace(0, 6, 13), n_folds=5, backend=backend,
                       solver="fastpath", n_permutations=n_permutations, progress=False,
                       keep_predictions=False, memory_budget=budget)
    seconds = time.perf_counter() - t0
    return {"voxels": n_voxels, "backend": res.provenance["backend_used"],
            "seconds": seconds, "read_s": t_read, "fit_s": res.provenance["timings"]["fit_s"],
            "peak_rss_gb": peak_rss_bytes() / 1e9, "mean_r": res.mean_r(),
            "n_rows": sum(v.shape[0] for v in Y.values()),
            "n_features": int(next(iter(feats.values())).shape[1])}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="5000,20000,50000", help="voxel counts (comma-separated)")
    ap.add_argument("--full", action="store_true", help=f"also {FULL_VOXELS:,} voxels")
    ap.add_argument("--stories", type=int, default=30, help="stories (0: all with rows)")
    ap.add_argument("--features", type=int, default=256, help="features (delays included)")
    ap.add_argument("--memory-budget", default="8GB")
    ap.add_argument("--n-permutations", type=int, default=0)
    ap.add_argument("--disk-dtype", default="float32", choices=("float32", "float64"),
                    help="dtype of the .hf5 data (ds003020 itself is float64)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch/BLAS threads of a fit (default 1: on a shared, loaded machine more "
                         "threads than free cores make the fit many times slower)")
    ap.add_argument("--dir", default=None, help="where to write the data (default: a temp dir)")
    ap.add_argument("--_worker", nargs=2, metavar=("VOXELS", "BACKEND"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._worker:
        out = fit_one(Path(args.dir), int(args._worker[0]), args._worker[1], args.memory_budget,
                      args.n_permutations, args.threads)
        print("JSON " + json.dumps(out))
        return 0

    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.full and FULL_VOXELS not in sizes:
        sizes.append(FULL_VOXELS)
    rows = story_rows(args.stories)
    tmp = tempfile.TemporaryDirectory(prefix="voxel_scale_") if args.dir is None else None
    root = Path(args.dir or tmp.name)
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    write_dataset(root, rows, max(sizes), args.features, args.disk_dtype)
    print(f"wrote {len(rows)} stories x {sum(rows.values())} TRs x {max(sizes):,} voxels "
          f"({args.disk_dtype} .hf5, dataset 'data') and {args.features} features in "
          f"{time.perf_counter() - t0:.0f} s under {root}", flush=True)

    import torch

    runs = [(n, "torch") for n in sizes]
    if torch.cuda.is_available():
        runs.append((max(sizes), "torch_cuda"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")])))
    results = []
    print(f"\n{'voxels':>8s} {'backend':>10s} {'seconds':>8s} {'fit s':>7s} {'read s':>7s} "
          f"{'peak RSS GB':>11s} {'mean r':>7s}")
    for n, backend in runs:
        cmd = [sys.executable, __file__, "--dir", str(root), "--memory-budget",
               args.memory_budget, "--n-permutations", str(args.n_permutations),
               "--threads", str(args.threads),
               "--_worker", str(n), backend]
        p = subprocess.run(cmd, capture_output=True, text=True, env=env)
        line = next((ln for ln in p.stdout.splitlines() if ln.startswith("JSON ")), None)
        if p.returncode != 0 or line is None:
            print(f"{n:8d} {backend:>10s} failed (rc {p.returncode}): {p.stderr[-500:]}")
            continue
        r = json.loads(line[5:])
        results.append(r)
        print(f"{n:8d} {r['backend']:>10s} {r['seconds']:8.1f} {r['fit_s']:7.1f} "
              f"{r['read_s']:7.1f} {r['peak_rss_gb']:11.2f} {r['mean_r']:7.3f}", flush=True)
    if tmp is not None:
        tmp.cleanup()
    cpu = [r for r in results if r["backend"] != "torch_cuda"]
    if not cpu:
        print("RESULT failed=1")
        return 1
    big = cpu[-1]
    slope = float("nan")
    if len(cpu) >= 2:
        slope = float(np.polyfit(np.log([r["voxels"] for r in cpu]),
                                 np.log([r["seconds"] for r in cpu]), 1)[0])
    gpu = [r for r in results if r["backend"] == "torch_cuda"]
    gpu_text = f" cuda_seconds={gpu[0]['seconds']:.2f}" if gpu else " cuda=absent"
    print(f"RESULT voxels={big['voxels']} rows={big['n_rows']} features={big['n_features']} "
          f"seconds={big['seconds']:.1f} peak_rss_gb={big['peak_rss_gb']:.2f} "
          f"s_per_1k_voxels={big['seconds'] / big['voxels'] * 1000:.3f} "
          f"growth_exponent={slope:.2f}{gpu_text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
