"""Running a run's fits on a Dask (``dask.distributed``) cluster.

``encoding.scheduler`` (``--scheduler``):

- ``"serial"`` (default): every fit in this process; Dask is not imported.
- ``"local"``: a :class:`distributed.LocalCluster` of ``encoding.workers`` (default 2) worker
  processes, one thread each, on 127.0.0.1, started and stopped by the run.
- ``"tcp://HOST:PORT"`` (any Dask address): a running cluster (``dask scheduler`` +
  ``dask worker``, or ``dask-jobqueue`` on SLURM/PBS). The workers must import this gim-brain
  and reach the data root (and, to share features, the same cache folder).

Each subject x SPEC x voxel chunk is one task (:func:`gim_brain.experiment.tasks.run_fit_task`),
submitted with ``retries=`` so that a task failing with an exception is run again; a task whose
worker dies is rescheduled by Dask itself (``distributed.scheduler.allowed-failures``).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from .config import ExperimentError

__all__ = ["dask_client", "check_reachable", "TASK_RETRIES", "CONNECT_TIMEOUT_S", "DEFAULT_LOCAL_WORKERS"]

#: ``retries=`` of every submitted fit.
TASK_RETRIES = 2
#: Seconds to wait for a scheduler to answer before giving up.
CONNECT_TIMEOUT_S = 5
#: Worker processes of ``--scheduler local`` without ``--workers``.
DEFAULT_LOCAL_WORKERS = 2


def _unreachable(scheduler: str, timeout_s: float, why: str) -> ExperimentError:
    return ExperimentError(
        f"encoding.scheduler (--scheduler) {scheduler}: no Dask scheduler answered within "
        f"{timeout_s:g} s ({why}); start one (`dask scheduler`, then `dask worker {scheduler}`) "
        f"or use --scheduler local")


def check_reachable(scheduler: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """A plain TCP connect to a ``tcp://`` / ``tls://`` scheduler address (no Dask import), so
    that a wrong address fails in seconds, before any data is read.

    Raises :class:`ExperimentError` when nothing accepts the connection within ``timeout_s``.
    """
    import socket
    from urllib.parse import urlsplit

    if scheduler in ("serial", "local"):
        return
    parts = urlsplit(scheduler)
    if parts.scheme not in ("tcp", "tls") or not parts.hostname:
        return  # other transports (ucx, inproc): left to Dask
    try:
        port = parts.port or 8786
    except ValueError:
        raise ExperimentError(f"encoding.scheduler (--scheduler) {scheduler}: the port is not "
                              f"a number; write tcp://HOST:PORT") from None
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout_s):
            pass
    except OSError as exc:
        raise _unreachable(scheduler, timeout_s, f"{type(exc).__name__}: {exc}") from None


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise ExperimentError(
            "encoding.scheduler (--scheduler) needs Dask, which is not installed: "
            "pip install 'gim-brain[dask]' (or dask distributed), or use --scheduler serial"
        ) from None
    return distributed


@contextmanager
def dask_client(scheduler: str, workers: int | None = None,
                timeout_s: float = CONNECT_TIMEOUT_S) -> Iterator[object]:
    """A connected :class:`distributed.Client` for ``scheduler`` (``local`` or an address).

    Raises
    ------
    ExperimentError
        Dask is not installed, or no scheduler answered at the address within ``timeout_s``.
    """
    distributed = _import_distributed()
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": f"{timeout_s}s",
                          "distributed.worker.daemon": False}):
        if scheduler == "local":
            cluster = distributed.LocalCluster(
                n_workers=workers or DEFAULT_LOCAL_WORKERS, threads_per_worker=1,
                processes=True, host="127.0.0.1", dashboard_address=None)
            try:
                with distributed.Client(cluster) as client:
                    yield client
            finally:
                cluster.close()
            return
        try:
            client = distributed.Client(scheduler, timeout=f"{timeout_s}s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise _unreachable(scheduler, timeout_s,
                               f"{type(exc).__name__}: {str(exc)[:200]}") from None
    try:
        n = len(client.scheduler_info().get("workers", {}))
        if n == 0:
            client.wait_for_workers(1, timeout=30)
        yield client
    except TimeoutError:
        raise ExperimentError(f"encoding.scheduler (--scheduler) {scheduler}: the scheduler "
                              f"has no workers (waited 30 s); start `dask worker {scheduler}`"
                              ) from None
    finally:
        client.close()
