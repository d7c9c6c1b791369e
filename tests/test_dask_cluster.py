"""A run on a real Dask cluster (``dask scheduler`` + two ``dask worker`` processes on 127.0.0.1)
gives the serial run's numbers; an unreachable scheduler is a clear error within seconds."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from _experiment_helpers import fit_cmd, run_cli, small_demo

pytest.importorskip("distributed", reason="Dask is an optional extra: pip install '.[dask]'")

DASK = Path(sys.executable).parent / "dask"
# ar-control is built from the responses (a response PCA): its design is shipped to the workers
SPECS = ("wordrate", "wordrate+letterrate", "ar-control")
PARAMS = ("--param", "ar-control.n_components=4")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return small_demo(tmp_path_factory.mktemp("daskdemo"))


def _results(out: Path) -> dict:
    from gim_brain.encoding import EncodingResult

    summary = json.loads((out / "summary.json").read_text())
    return {spec: EncodingResult.load(out / e["result"])
            for spec, e in summary["feature_sets"].items()}, summary


def _assert_identical(a: dict, b: dict) -> None:
    assert list(a) == list(b) == list(SPECS)
    for spec in SPECS:
        np.testing.assert_array_equal(a[spec].alphas, b[spec].alphas)
        np.testing.assert_array_equal(a[spec].scores["r"], b[spec].scores["r"])
        np.testing.assert_array_equal(a[spec].scores["r2"], b[spec].scores["r2"])
        np.testing.assert_array_equal(a[spec].pvalues, b[spec].pvalues)
        np.testing.assert_array_equal(a[spec].qvalues, b[spec].qvalues)


@pytest.fixture(scope="module")
def serial(demo, tmp_path_factory):
    out = tmp_path_factory.mktemp("serial") / "run"
    # a budget small enough for several voxel chunks per SPEC: the tasks are subject x SPEC x chunk
    p = run_cli(fit_cmd(demo, out, "--memory-budget", "5MB", *PARAMS, features=SPECS), demo)
    assert p.returncode == 0, p.stderr
    results, summary = _results(out)
    assert all(len(c) >= 2 for c in summary["resources"]["chunks"].values())
    return results


@contextmanager
def loopback_cluster(demo, logs: Path, nanny: bool = True):
    """A ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1 (free port);
    yields ``(address, worker_processes)``; everything is stopped on exit."""
    if not DASK.is_file():
        pytest.skip(f"no dask command at {DASK}")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = dict(os.environ, GIM_BRAIN_CACHE=str(demo / "cache"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(Path(__file__).parents[1]),
                                                        os.environ.get("PYTHONPATH")])))
    logs.mkdir(exist_ok=True)
    procs: list[subprocess.Popen] = []

    def start(name, *args):
        log = open(logs / f"{name}.log", "w")
        procs.append(subprocess.Popen([str(DASK), *args], stdout=log, stderr=subprocess.STDOUT,
                                      env=env, cwd=logs))

    try:
        start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", str(port),
              "--no-dashboard")
        for i in range(2):
            start(f"worker{i}", "worker", address, "--host", "127.0.0.1", "--nthreads", "1",
                  "--no-dashboard", "--name", f"w{i}", *([] if nanny else ["--no-nanny"]))
        from distributed import Client

        deadline = time.time() + 120
        while True:  # the scheduler takes a few seconds to listen on a loaded machine
            try:
                with Client(address, timeout="5s") as client:
                    client.wait_for_workers(2, timeout=max(deadline - time.time(), 1))
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(1)
        yield address, procs[1:]
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_scheduler_and_two_workers_on_loopback_match_the_serial_run(demo, serial, tmp_path):
    with loopback_cluster(demo, tmp_path / "logs") as (address, _):
        out = tmp_path / "run"
        p = run_cli(fit_cmd(demo, out, "--memory-budget", "5MB", "--scheduler", address,
                            *PARAMS, features=SPECS), demo)
        assert p.returncode == 0, p.stderr
        assert f"to {address} (2 worker(s))" in p.stdout
        results, summary = _results(out)
        assert summary["resources"]["scheduler"] == address
        assert summary["resources"]["worker_peak_rss_bytes"] > 10**7
        _assert_identical(results, serial)


def test_a_worker_killed_during_the_run_does_not_change_the_results(demo, serial, tmp_path):
    logs = tmp_path / "logs"
    with loopback_cluster(demo, logs, nanny=False) as (address, workers):
        out = tmp_path / "run"
        env = dict(os.environ, GIM_BRAIN_CACHE=str(demo / "cache"))
        run = subprocess.Popen(fit_cmd(demo, out, "--memory-budget", "5MB", "--scheduler",
                                       address, *PARAMS, features=SPECS), env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            for line in run.stdout:  # the tasks are on the cluster: kill one worker (SIGKILL)
                if line.startswith("submitted"):
                    workers[0].kill()
                    break
            stdout, stderr = run.communicate(timeout=300)
        finally:
            if run.poll() is None:
                run.kill()
        assert run.returncode == 0, stderr
        assert workers[0].wait(timeout=10) != 0
        # the scheduler lost the worker and ran its tasks on the other one: same numbers
        assert "Remove worker" in (logs / "scheduler.log").read_text()
        _assert_identical(_results(out)[0], serial)


def test_local_cluster_matches_the_serial_run(demo, serial, tmp_path):
    out = tmp_path / "run"
    p = run_cli(fit_cmd(demo, out, "--memory-budget", "5MB", "--scheduler", "local",
                        "--workers", "2", *PARAMS, features=SPECS), demo)
    assert p.returncode == 0, p.stderr
    assert "(2 worker(s))" in p.stdout
    _assert_identical(_results(out)[0], serial)


def test_unreachable_address_fails_in_seconds_before_any_data_is_read():
    from gim_brain.experiment.config import ExperimentError
    from gim_brain.experiment.distributed import check_reachable

    address = f"tcp://127.0.0.1:{_free_port()}"
    t0 = time.time()
    with pytest.raises(ExperimentError, match="no Dask scheduler answered within 5 s"):
        check_reachable(address)
    assert time.time() - t0 < 6
    with pytest.raises(ExperimentError, match="port is not a number"):
        check_reachable("tcp://127.0.0.1:http")


def test_unreachable_scheduler_is_a_clear_error_within_seconds(demo, tmp_path):
    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    t0 = time.time()
    p = run_cli(fit_cmd(demo, tmp_path / "run", "--scheduler", address), demo, timeout=120)
    took = time.time() - t0
    assert p.returncode == 2, p.stderr
    assert f"encoding.scheduler (--scheduler) {address}: no Dask scheduler answered" in p.stderr
    assert "Traceback" not in p.stderr
    # the connect timeout is 5 s; the rest is starting Python and importing the stack
    assert took < 60, took
