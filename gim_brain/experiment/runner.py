"""``run_experiment``: an :class:`Experiment` in, a run directory out.

It owns what every entry point used to do on its own: the train/test split and the targets
(from :meth:`Dataset.split` / :meth:`Dataset.targets`), response preprocessing, the loop over
subjects x SPECs, resume, the run directory, ``summary.json`` and ``report.html``.

Layout: one subject -> ``OUT/summary.json``, ``OUT/targets.json``, ``OUT/results/<slug>/``,
``OUT/report.html``. Several subjects -> the same per subject under ``OUT/<subject>/``, plus
``OUT/summary.json`` (the cross-subject table) and ``OUT/report.html``. ``OUT/.gim-brain.lock``
keeps a second run from writing into the same folder at the same time.
"""

from __future__ import annotations

import errno
import json
import os
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from .. import __version__
from .._cache import atomic_write_bytes, content_key
from .config import Experiment, ExperimentError
from .data import data_fingerprint, open_dataset, resolve_subjects
from .params import RoutedSpec, check_delays, route_params

if TYPE_CHECKING:
    from .tasks import FitTask

__all__ = ["run_experiment", "ExperimentRun", "RunLockedError", "run_lock", "LOCK_NAME",
           "subject_table", "cross_subject_table"]

LOCK_NAME = ".gim-brain.lock"


class RunLockedError(ExperimentError):
    """Another process is writing into the same run directory."""


@dataclass
class ExperimentRun:
    """What :func:`run_experiment` did.

    Attributes
    ----------
    out : Path
        The run directory.
    subjects : list of str
    run_dirs : dict subject -> Path
        Each subject's run directory (``out`` itself for a single subject).
    results : dict subject -> {SPEC: EncodingResult}
    summary : dict
        ``out/summary.json``.
    reused : list of (subject, SPEC)
        Results taken from an earlier run (``resume``).
    """

    out: Path
    subjects: list[str]
    run_dirs: dict[str, Path]
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    reused: list[tuple[str, str]] = field(default_factory=list)


@contextmanager
def run_lock(out: Path) -> Iterator[Path]:
    """Hold ``out/.gim-brain.lock`` (an exclusive, non-blocking ``flock``) while writing ``out``.

    Raises :class:`RunLockedError` when another process holds it.
    """
    import fcntl

    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise RunLockedError(f"outputs.out (--out) {out} is being written by {holder} (lock "
                                 f"{path}); wait for it to finish or choose another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"gim-brain pid {os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing releases the lock


def subject_table(subject: str, results: dict[str, Any]) -> list[dict]:
    """Rows ``{subject, feature_set, mean_r, median_r, top10_mean_r, n_significant, n_targets}``."""
    rows = []
    for spec, res in results.items():
        r = np.asarray(res.scores["r"], dtype=np.float64)
        rows.append({"subject": subject, "feature_set": spec, "mean_r": res.mean_r(),
                     "median_r": float(np.nanmedian(r)) if np.isfinite(r).any() else None,
                     "top10_mean_r": res.top10_mean_r(), "n_significant": res.n_significant(),
                     "n_targets": res.n_targets})
    return rows


def cross_subject_table(rows: list[dict]) -> dict[str, dict]:
    """Per feature set: the mean and SD over subjects of mean / median / top-10% r."""
    out: dict[str, dict] = {}
    for spec in dict.fromkeys(r["feature_set"] for r in rows):
        mine = [r for r in rows if r["feature_set"] == spec]
        entry: dict[str, Any] = {"n_subjects": len(mine), "subjects": [r["subject"] for r in mine]}
        for key in ("mean_r", "median_r", "top10_mean_r"):
            vals = np.array([np.nan if r[key] is None else r[key] for r in mine], np.float64)
            entry[key] = float(np.nanmean(vals)) if np.isfinite(vals).any() else None
            entry[f"{key}_sd"] = float(np.nanstd(vals)) if np.isfinite(vals).sum() > 1 else None
        out[spec] = entry
    return out


@dataclass
class _Plan:
    subject: str
    split: Any
    targets: dict
    out: Path


def _check_out(exp: Experiment) -> Path:
    out = Path(exp.outputs.out).expanduser()
    if out.exists() and not out.is_dir():
        raise ExperimentError(f"outputs.out (--out) {out} is a file, not a folder: name a run "
                              f"directory")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ExperimentError(f"outputs.out (--out) {out}: {parent} is a file")
            break
    return out


def _plan(exp: Experiment, ds, out: Path) -> list[_Plan]:
    from ..data.check import ensure_usable
    from ..data.dataset import SplitError

    subjects = resolve_subjects(ds, exp.subjects)
    # refuse what `gim-brain datasets check` calls unusable (timing, tables, file shapes)
    ensure_usable(ds, subjects=subjects, shapes_only=True)
    train = list(exp.dataset.train_stories) if exp.dataset.train_stories is not None else None
    plans = []
    for subject in subjects:
        try:
            split = ds.split(subject, train)
        except SplitError as exc:
            raise ExperimentError(str(exc).replace("train_stories:", "dataset.train_stories "
                                                   "(--train-stories):")) from None
        if exp.encoding.n_folds > len(split.train):
            raise ExperimentError(
                f"encoding.n_folds (--n-folds) {exp.encoding.n_folds} is more than the "
                f"{len(split.train)} training stories of subject {subject}; story-grouped "
                f"cross-validation needs at most one fold per story: use --n-folds "
                f"{len(split.train)} or fewer")
        shortest = min(ds.grid(s).n_rows for s in split.stories)
        check_delays(exp.features.delays, n_rows=shortest)
        sub_out = out if len(subjects) == 1 else out / subject
        plans.append(_Plan(subject, split, ds.targets(subject), sub_out))
    return plans


#: EncodingSpec fields that are not fit_encoding arguments (the run applies them itself).
_NOT_FIT_OPTIONS = ("blas_threads", "scheduler", "workers")


def _fit_options(exp: Experiment) -> dict[str, Any]:
    """The keyword arguments of :func:`~gim_brain.encoding.fit_encoding`: every field of
    :class:`EncodingSpec` (a new option there reaches the fit with no other edit)."""
    import dataclasses

    opts = {f.name: getattr(exp.encoding, f.name) for f in dataclasses.fields(exp.encoding)
            if f.name not in _NOT_FIT_OPTIONS}
    opts["alphas"] = list(opts["alphas"])
    opts["progress"] = exp.outputs.progress
    return opts


def _previous(out: Path) -> dict:
    path = out / "summary.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text()).get("feature_sets", {})
    except (OSError, ValueError):
        return {}


def _named_files(params: Any) -> list:
    """``[path, sha256]`` of every existing file a parameter value names (e.g.
    ``fuzzy_checkpoint``), so that a file rewritten in place changes the resume key."""
    from .._cache import known_file_digest

    found: list = []
    if isinstance(params, dict):
        for v in params.values():
            found += _named_files(v)
    elif isinstance(params, (list, tuple)):
        for v in params:
            found += _named_files(v)
    elif isinstance(params, str) and params and len(params) < 4096:
        try:
            path = Path(params).expanduser()
            if path.is_file():
                found.append([str(path.resolve()), known_file_digest(path)])
        except (OSError, ValueError):
            pass
    return found


def _budget(exp: Experiment, client=None) -> int:
    """Bytes one fit task may use: ``--memory-budget``, else a share of the free memory.

    On Dask the default is 60 % of the smallest worker's memory limit (workers run tasks at
    once, each within its own limit), not of this machine's free memory.
    """
    from ..encoding.chunking import default_memory_budget, parse_bytes

    if exp.encoding.memory_budget:
        return parse_bytes(exp.encoding.memory_budget)
    if client is not None:
        limits = [w.get("memory_limit") or 0
                  for w in client.scheduler_info().get("workers", {}).values()]
        limits = [int(x) for x in limits if x]
        if limits:
            return int(0.6 * min(limits))
    return default_memory_budget()


def _chunks(exp: Experiment, ds, plan: _Plan, design, n_targets: int,
            budget: int) -> list[tuple[int, int] | None]:
    """Target chunks of one SPEC: ``[None]`` when every target fits the budget at once."""
    from ..encoding.chunking import MemoryBudgetError, chunk_size, fit_memory, target_chunks

    split = plan.split
    model = fit_memory(sum(ds.grid(s).n_rows for s in split.train),
                       sum(ds.grid(s).n_rows for s in split.test), design.n_features,
                       len(exp.encoding.alphas), min(exp.encoding.n_folds, len(split.train)),
                       keep_weights=exp.encoding.keep_weights)
    try:
        size = chunk_size(model, n_targets, budget)
    except MemoryBudgetError as exc:
        raise ExperimentError(f"subject {plan.subject}, {design.n_features} features: "
                              f"{exc}") from None
    if size >= n_targets:
        return [None]
    return [(c.start, c.stop) for c in target_chunks(n_targets, size)]


class _Subject:
    """One subject's run state: its parameters, resume keys, fitted results and pending jobs."""

    def __init__(self, exp: Experiment, ds, plan: _Plan, routed: dict[str, RoutedSpec]):
        from ..features import SpaceContext

        self.exp, self.ds, self.plan, self.routed = exp, ds, plan, routed
        split = plan.split
        self.fingerprint = data_fingerprint(ds, plan.subject, split.stories)
        self.ctx = SpaceContext(ds, subject=plan.subject, progress=exp.outputs.progress,
                                lm_model=exp.features.model, device=exp.features.device,
                                train_stories=list(split.train))
        self.parameters = dict(exp.fit_parameters(), subject=plan.subject,
                               train_stories=list(split.train), test_stories=list(split.test),
                               test_stories_without_data=list(split.test_without_data))
        self.extra = {
            "experiment": exp.to_dict(),
            "response_preprocessing": {"method": exp.responses.preprocess, "per_story": True,
                                       "when": "before fitting, on every story of the split"},
            "data_fingerprint": self.fingerprint,
            "n_folds": {"requested": exp.encoding.n_folds,
                        "used": min(exp.encoding.n_folds, len(split.train))},
            "feature_params": {spec: r.per_space for spec, r in routed.items()},
        }
        # a result depends on its own SPEC and parameters, not on the other SPECs of the run,
        # nor on where it was computed, nor on where the data lie (the fingerprint keys the
        # data by content: the manifest and every file read)
        shared = json.loads(json.dumps(self.parameters, default=str))
        shared["features"] = {k: v for k, v in shared["features"].items()
                              if k not in ("sets", "params")}
        for key in ("scheduler", "workers"):
            shared["encoding"].pop(key, None)
        for key in ("manifest", "data_root"):
            shared["dataset"].pop(key, None)
        self.shared = shared
        self.previous = _previous(plan.out) if exp.outputs.resume else {}
        self.results: dict[str, Any] = {}
        self.entries: dict[str, dict] = {}
        self.chunks: dict[str, list] = {}
        self.worker_rss: list[int] = []
        self._Y: dict[str, np.ndarray] | None = None

    def task(self, spec: str, chunk, options) -> "FitTask":
        from .tasks import FitTask

        split, r = self.plan.split, self.routed[spec]
        return FitTask(exp=self.exp, subject=self.plan.subject, spec=spec,
                       build_spec=r.build_spec, params=dict(r.params),
                       stories=tuple(split.stories), train=tuple(split.train),
                       test=tuple(split.test), chunk=chunk, options=dict(options))

    def responses(self) -> dict[str, np.ndarray]:
        """Every target's preprocessed responses, read story by story once per subject."""
        from .tasks import load_responses

        if self._Y is None:
            self._Y = load_responses(self.ds, self.plan.subject, self.plan.split.stories,
                                     self.exp.responses.preprocess)
        return self._Y

    def n_targets(self) -> int:
        from .tasks import count_targets

        if self._Y is not None:
            return next(iter(self._Y.values())).shape[1]
        return count_targets(self.ds, self.plan.subject, self.plan.split.test[0])

    def design(self, spec: str):
        from ..features import build_design

        r = self.routed[spec]
        design = build_design(self.ctx, r.build_spec, list(self.plan.split.stories),
                              params=dict(r.params), delays=self.exp.features.delays)
        # the response-derived spaces (induction, ar-control) keep every story's full responses
        # in the context (10 GB float32 for a 95k-voxel subject): drop them before the fit; the
        # fitted response PCA stays memoised, and a later SPEC reads stories again as needed
        for k in [k for k in self.ctx.memo if isinstance(k, tuple) and k[:1] == ("responses",)]:
            del self.ctx.memo[k]
        return design

    def key(self, spec: str) -> tuple[str, bool]:
        """The resume key of ``spec`` and whether a finished result with it is in ``out``."""
        r = self.routed[spec]
        key = content_key("gim_brain.experiment.fit", self.shared, spec, r.build_spec,
                          r.per_space, self.fingerprint, _named_files(r.per_space))
        self.entries[spec] = {"fit_key": key, "build_spec": r.build_spec}
        old = self.previous.get(spec, {})
        done = (old.get("fit_key") == key
                and (self.plan.out / old.get("result", "-") / "result.json").is_file())
        return key, done

    def reuse(self, spec: str, run: "ExperimentRun", log: Callable[[str], None]) -> None:
        """Take ``spec``'s finished result (same resume key) from the run directory."""
        from ..encoding import EncodingResult

        where = self.plan.out / self.previous[spec]["result"]
        self.results[spec] = EncodingResult.load(where)
        run.reused.append((self.plan.subject, spec))
        log(f"{self.plan.subject} {spec}: reused from {where}")

    def done_note(self) -> str:
        return (f"; SPECs fitted so far are in {self.plan.out / 'summary.json'}"
                if self.results else "")

    def spec_error(self, spec: str, exc: BaseException) -> ExperimentError:
        return ExperimentError(f"SPEC {spec!r} (subject {self.plan.subject}): {exc}{self.done_note()}")

    def write(self, save: list[str], budget: int, scheduler: str) -> None:
        from ..encoding import write_run
        from ..encoding.chunking import peak_rss_bytes

        rows = subject_table(self.plan.subject, self.results)
        peak = peak_rss_bytes()
        resources = {"scheduler": scheduler, "memory_budget_bytes": budget,
                     "memory_budget": self.exp.encoding.memory_budget,
                     "peak_rss_bytes": peak, "peak_rss_gb": peak / 1e9,
                     "chunks": {s: [c if c is None else list(c) for c in v]
                                for s, v in self.chunks.items()}}
        if self.worker_rss:
            resources["worker_peak_rss_bytes"] = max(self.worker_rss)
        write_run(self.plan.out, self.results, subject=self.plan.subject,
                  test_stories=self.plan.split.test, targets=self.plan.targets,
                  parameters=self.parameters, save=save, entries=self.entries,
                  extra=dict(self.extra, per_subject=rows, cross_subject=cross_subject_table(rows),
                             resources=resources))


#: Errors of one SPEC that stop the run with a message naming the SPEC.
def _spec_errors():
    from ..features.registry import FeatureParameterError, UnknownFeatureSpaceError
    from ..lm import LanguageModelNotFoundError

    return (FeatureParameterError, UnknownFeatureSpaceError, LanguageModelNotFoundError,
            ValueError)


def _log_result(log, subject: str, spec: str, res, seconds: float) -> None:
    n_chunks = len(res.provenance.get("chunks", [None]))
    chunks = f", {n_chunks} voxel chunks" if n_chunks > 1 else ""
    log(f"{subject} {spec}: mean r {res.mean_r():.4f}, top-10% {res.top10_mean_r():.4f} "
        f"({res.provenance['n_features']} features{chunks}, {seconds:.0f} s)")


class _Merger:
    """The chunk results of one SPEC, merged as they arrive: with more than one chunk their
    weights / predictions go straight into ``RUN/results/<slug>/*.npy`` (never all in memory);
    a failure inside ``with`` leaves no partial file."""

    def __init__(self, plan: _Plan, spec: str, chunks: list, n_targets: int):
        from ..encoding import slugify
        from ..encoding.chunking import ChunksOnDisk

        self.parts: list = []
        self.on_disk = (ChunksOnDisk(plan.out / "results" / slugify(spec), n_targets)
                        if len(chunks) > 1 else None)

    def add(self, part, chunk) -> None:
        self.parts.append(part if self.on_disk is None else self.on_disk.add(part, chunk[0]))

    def merge(self, fdr_alpha: float):
        from ..encoding.chunking import merge_results

        if self.on_disk is None:
            return merge_results(self.parts, fdr_alpha)
        return self.on_disk.merge(self.parts, fdr_alpha)

    def __enter__(self) -> _Merger:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and self.on_disk is not None:
            self.on_disk.abort()


def _fit_subject_serial(state: _Subject, run: ExperimentRun, log: Callable[[str], None],
                        budget: int) -> list[dict]:
    from .tasks import load_responses, run_fit_task

    exp, plan = state.exp, state.plan
    options = _fit_options(exp)
    for spec in exp.features.sets:
        key, done = state.key(spec)
        if done:
            state.reuse(spec, run, log)
            save = []
        else:
            t0 = time.time()
            try:
                design = state.design(spec)
                n_targets = state.n_targets()
                chunks = _chunks(exp, state.ds, plan, design, n_targets, budget)
                state.chunks[spec] = chunks
                merger = _Merger(plan, spec, chunks, n_targets)
                with merger:
                    for chunk in chunks:
                        if chunk is None:
                            Y = state.responses()
                        else:
                            state._Y = None  # the chunks read only their own columns
                            Y = load_responses(state.ds, plan.subject, plan.split.stories,
                                               exp.responses.preprocess, chunk)
                        merger.add(run_fit_task(state.task(spec, chunk, options), ds=state.ds,
                                                responses=Y, design=design), chunk)
                        del Y
                    del design
                    res = merger.merge(exp.encoding.fdr_alpha)
            except ExperimentError:
                raise
            except _spec_errors() as exc:  # bad model/device, a story without words, ...
                raise state.spec_error(spec, exc) from None
            state.results[spec] = res
            _log_result(log, plan.subject, spec, res, time.time() - t0)
            save = [spec]
        state.write(save, budget, exp.encoding.scheduler)
    run.results[plan.subject] = state.results
    return subject_table(plan.subject, state.results)


def _fit_distributed(client, states: list[_Subject], run: ExperimentRun,
                     log: Callable[[str], None], budget: int) -> list[dict]:
    """Every subject x SPEC x chunk submitted at once; results written per subject, in order."""
    from .distributed import TASK_RETRIES
    from .tasks import run_fit_task

    exp = states[0].exp
    options = dict(_fit_options(exp), progress=False)
    jobs: list[tuple[_Subject, str, list]] = []
    for state in states:
        for spec in exp.features.sets:
            key, done = state.key(spec)
            if done:
                jobs.append((state, spec, []))
                continue
            try:
                design = state.design(spec)  # features land in the cache the workers share
                chunks = _chunks(exp, state.ds, state.plan, design, state.n_targets(), budget)
            except ExperimentError:
                raise
            except _spec_errors() as exc:
                raise state.spec_error(spec, exc) from None
            # a design read from the subject's responses (induction spaces, ar-control) is in
            # no cache: ship it once, instead of every chunk task refitting the response PCA
            # on every voxel of every story
            shipped = ({"design": client.scatter(design, broadcast=True)}
                       if any(sp.get("uses_responses") for sp in design.spaces) else {})
            del design
            state.chunks[spec] = chunks
            futures = [client.submit(run_fit_task, state.task(spec, c, options),
                                     retries=TASK_RETRIES, pure=False,
                                     key=f"gim-brain-fit-{state.plan.subject}-{spec}-"
                                         f"{c[0] if c else 'all'}-{key[:12]}", **shipped)
                       for c in chunks]
            del shipped
            jobs.append((state, spec, futures))
    n_tasks = sum(len(f) for _, _, f in jobs)
    n_workers = len(client.scheduler_info().get("workers", {}))
    log(f"submitted {n_tasks} fit task(s) to {client.scheduler.address} "
        f"({n_workers} worker(s))")
    bar = None
    if exp.outputs.progress and n_tasks:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_tasks, desc="dask fits", unit="task")
        for _, _, futures in jobs:
            for f in futures:
                f.add_done_callback(lambda _f: bar.update(1))
    t0 = time.time()
    try:
        for state, spec, futures in jobs:
            plan = state.plan
            if not futures:
                state.reuse(spec, run, log)
                save = []
            else:
                try:
                    with _Merger(plan, spec, state.chunks[spec], state.n_targets()) as merger:
                        for future, chunk in zip(futures, state.chunks[spec]):
                            merger.add(future.result(), chunk)
                            future.release()  # the worker may drop its copy of the chunk
                        res = merger.merge(exp.encoding.fdr_alpha)
                except _spec_errors() as exc:
                    raise state.spec_error(spec, exc) from None
                except Exception as exc:  # KilledWorker, CancelledError, a lost scheduler, ...
                    if type(exc).__module__.split(".")[0] not in ("distributed", "concurrent",
                                                                  "asyncio"):
                        raise
                    raise ExperimentError(
                        f"SPEC {spec!r} (subject {plan.subject}): the Dask cluster did not "
                        f"finish its fit tasks ({type(exc).__name__}: {exc}); workers that run "
                        f"out of memory are killed: give a smaller --memory-budget (now "
                        f"{budget} bytes per task){state.done_note()}") from None
                state.worker_rss += [p.provenance.get("peak_rss_bytes", 0)
                                     for p in merger.parts]
                state.results[spec] = res
                _log_result(log, plan.subject, spec, res, time.time() - t0)
                save = [spec]
            state.write(save, budget, exp.encoding.scheduler)
    finally:
        if bar is not None:
            bar.close()
    rows: list[dict] = []
    for state in states:
        run.results[state.plan.subject] = state.results
        rows += subject_table(state.plan.subject, state.results)
    return rows


def _write_top(exp: Experiment, run: ExperimentRun, rows: list[dict]) -> dict:
    summary = {
        "experiment": exp.to_dict(),
        "subjects": run.subjects,
        "runs": {s: str(p.relative_to(run.out)) for s, p in run.run_dirs.items()},
        "feature_set_names": list(exp.features.sets),
        "per_subject": rows,
        "cross_subject": cross_subject_table(rows),
        "response_preprocessing": {"method": exp.responses.preprocess, "per_story": True},
        "gim_brain": __version__,
        "created_unix": time.time(),
    }
    atomic_write_bytes(run.out / "summary.json",
                       json.dumps(summary, indent=2, default=str).encode())
    return summary


def run_experiment(exp: Experiment, log: Callable[[str], None] | None = print) -> ExperimentRun:
    """Run ``exp``: every subject x SPEC, into the run directory ``exp.outputs.out``.

    Every check that needs no fitting runs first (the values, the SPECs and their parameters,
    the backend, the dataset, subjects, the split, folds and delays), so bad input fails before
    anything is built or written.

    Parameters
    ----------
    exp : Experiment
    log : callable or None
        Receives one line per fitted (or reused) SPEC; None: silent.

    Returns
    -------
    ExperimentRun

    Raises
    ------
    ExperimentError
        Bad values, an unknown subject, no usable split, too many folds, a delay as long as a
        story, ``out`` naming a file, another run holding ``out``'s lock, or a SPEC that fails to
        build (the message names the SPEC; SPECs fitted before it stay in ``summary.json``).
    """
    from ..encoding import resolve_backend

    log = log or (lambda line: None)
    exp.validate()
    if "://" in exp.encoding.scheduler:
        from .distributed import check_reachable

        check_reachable(exp.encoding.scheduler)
    out = _check_out(exp)
    routed = route_params(exp.features.sets, exp.features.params)
    try:
        resolve_backend(exp.encoding.backend)
    except ValueError as exc:
        raise ExperimentError(f"encoding.backend (--backend): {exc}") from None
    ds = open_dataset(exp)
    plans = _plan(exp, ds, out)
    run = ExperimentRun(out=out, subjects=[p.subject for p in plans],
                        run_dirs={p.subject: p.out for p in plans})
    limit = nullcontext()
    if exp.encoding.blas_threads:
        from threadpoolctl import threadpool_limits

        limit = threadpool_limits(limits=exp.encoding.blas_threads)
    cluster = nullcontext()
    if exp.encoding.scheduler != "serial":  # an unreachable scheduler fails before any work
        from .distributed import dask_client

        cluster = dask_client(exp.encoding.scheduler, exp.encoding.workers)
    rows: list[dict] = []
    with cluster as client, run_lock(out), limit:
        budget = _budget(exp, client)
        states = [_Subject(exp, ds, plan, routed) for plan in plans]
        if exp.encoding.scheduler == "serial":
            for state in states:
                rows += _fit_subject_serial(state, run, log, budget)
        else:
            rows = _fit_distributed(client, states, run, log, budget)
        if len(plans) > 1:
            run.summary = _write_top(exp, run, rows)
        if exp.outputs.report:
            from ..report import write_report

            for plan in plans:
                if plan.out != out:
                    write_report(plan.out)
            write_report(out)
        if len(plans) == 1:
            run.summary = json.loads((out / "summary.json").read_text())
    return run
