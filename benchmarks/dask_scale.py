"""One experiment serial, on a 2-worker Dask ``LocalCluster``, and on a ``dask scheduler`` plus
two ``dask worker`` processes started separately on 127.0.0.1: identical results, and times.

The data are the demo generator's (text-rate regions, so no LM is needed), two SPECs, a memory
budget that splits the voxels into chunks (tasks = SPEC x chunk). Loopback only.

    python benchmarks/dask_scale.py [--resolution-mm 8] [--memory-budget 20MB]

Last line: ``RESULT serial_s=... local_s=... tcp_s=... tasks=... identical=1``.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SPECS = ("wordrate", "wordrate+letterrate")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _experiment(root: Path, out: Path, scheduler: str, workers, budget: str):
    from gim_brain.experiment import Experiment
    from gim_brain.experiment.config import (DatasetSpec, EncodingSpec, FeatureSpec,
                                             OutputSpec)

    return Experiment(
        dataset=DatasetSpec(str(root / "data" / "manifest.toml"), str(root / "data")),
        subjects=("sim01",), features=FeatureSpec(sets=SPECS),
        encoding=EncodingSpec(alphas=tuple(np.logspace(0, 6, 7)), n_folds=3, backend="numpy",
                              n_permutations=100, blas_threads=1, memory_budget=budget,
                              scheduler=scheduler, workers=workers),
        outputs=OutputSpec(str(out), progress=False, report=False))


def _timed(exp):
    from gim_brain.experiment import run_experiment

    t0 = time.perf_counter()
    run = run_experiment(exp, log=None)
    return time.perf_counter() - t0, run.results["sim01"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--resolution-mm", type=int, default=8)
    ap.add_argument("--memory-budget", default="20MB")
    args = ap.parse_args(argv)

    from gim_brain.demo.brain import DEFAULT_REGIONS, PlantedRegion
    from gim_brain.demo.dataset import DemoParams, build_demo_dataset

    tmp = tempfile.TemporaryDirectory(prefix="dask_scale_")
    root = Path(tmp.name)
    os.environ["GIM_BRAIN_CACHE"] = str(root / "cache")
    regions = tuple(PlantedRegion(space, r.centers_mm, r.radius_mm, r.label)
                    for space, r in zip(("wordrate", "letterrate", "wordrate"), DEFAULT_REGIONS))
    build_demo_dataset(root / "data", DemoParams(resolution_mm=args.resolution_mm,
                                                 regions=regions, space_params={}),
                       progress=False)
    times, results = {}, {}
    times["serial"], results["serial"] = _timed(
        _experiment(root, root / "serial", "serial", None, args.memory_budget))
    times["local"], results["local"] = _timed(
        _experiment(root, root / "local", "local", 2, args.memory_budget))

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = Path(sys.executable).parent / "dask"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")])))
    procs = []
    try:
        procs.append(subprocess.Popen([str(dask), "scheduler", "--host", "127.0.0.1", "--port",
                                       str(port), "--no-dashboard"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for i in range(2):
            procs.append(subprocess.Popen(
                [str(dask), "worker", address, "--host", "127.0.0.1", "--nthreads", "1",
                 "--no-dashboard"], env=env, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL))
        from distributed import Client

        deadline = time.time() + 120
        while True:
            try:
                with Client(address, timeout="5s") as c:
                    c.wait_for_workers(2, timeout=120)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(1)
        times["tcp"], results["tcp"] = _timed(
            _experiment(root, root / "tcp", address, None, args.memory_budget))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)

    identical = all(
        np.array_equal(results[k][s].scores["r"], results["serial"][s].scores["r"])
        and np.array_equal(results[k][s].alphas, results["serial"][s].alphas)
        and np.array_equal(results[k][s].pvalues, results["serial"][s].pvalues)
        for k in ("local", "tcp") for s in SPECS)
    first = results["serial"][SPECS[0]]
    n_tasks = sum(len(results["serial"][s].provenance.get("chunks", [0])) for s in SPECS)
    print(f"{first.n_targets} voxels x {len(SPECS)} SPECs, {n_tasks} tasks "
          f"(budget {args.memory_budget}), 100 permutations, 1 BLAS thread per fit")
    print(f"{'where':32s} {'seconds':>8s}")
    for k, label in (("serial", "serial (this process)"), ("local", "LocalCluster, 2 workers"),
                     ("tcp", "scheduler + 2 workers (tcp)")):
        print(f"{label:32s} {times[k]:8.1f}")
    print(f"RESULT serial_s={times['serial']:.1f} local_s={times['local']:.1f} "
          f"tcp_s={times['tcp']:.1f} tasks={n_tasks} identical={int(identical)}")
    tmp.cleanup()
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
