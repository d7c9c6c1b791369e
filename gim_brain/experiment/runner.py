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
from typing import Any, Callable, Iterator

import numpy as np

from .. import __version__
from .._cache import atomic_write_bytes, content_key
from .config import Experiment, ExperimentError
from .data import data_fingerprint, open_dataset, preprocess_responses, resolve_subjects
from .params import RoutedSpec, check_delays, route_params

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
_NOT_FIT_OPTIONS = ("blas_threads",)


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


def _fit_subject(exp: Experiment, ds, plan: _Plan, routed: dict[str, RoutedSpec],
                 run: ExperimentRun, log: Callable[[str], None]) -> list[dict]:
    from ..encoding import EncodingResult, write_run
    from ..features import SpaceContext
    from ..features.registry import FeatureParameterError, UnknownFeatureSpaceError
    from ..lm import LanguageModelNotFoundError
    from .fit import fit_feature_set

    split, subject = plan.split, plan.subject
    stories = split.stories
    fingerprint = data_fingerprint(ds, subject, stories)
    Y = preprocess_responses({s: ds.load_responses(subject, s) for s in stories},
                             exp.responses.preprocess)
    ctx = SpaceContext(ds, subject=subject, progress=exp.outputs.progress,
                       lm_model=exp.features.model, device=exp.features.device,
                       train_stories=list(split.train))
    parameters = dict(exp.fit_parameters(), subject=subject, train_stories=list(split.train),
                      test_stories=list(split.test),
                      test_stories_without_data=list(split.test_without_data))
    extra = {
        "experiment": exp.to_dict(),
        "response_preprocessing": {"method": exp.responses.preprocess, "per_story": True,
                                   "when": "before fitting, on every story of the split"},
        "data_fingerprint": fingerprint,
        "n_folds": {"requested": exp.encoding.n_folds,
                    "used": min(exp.encoding.n_folds, len(split.train))},
        "feature_params": {spec: r.per_space for spec, r in routed.items()},
    }
    # a result depends on its own SPEC and parameters, not on the other SPECs of the run
    shared = json.loads(json.dumps(parameters, default=str))
    shared["features"] = {k: v for k, v in shared["features"].items() if k not in ("sets", "params")}
    previous = _previous(plan.out) if exp.outputs.resume else {}
    results: dict[str, Any] = {}
    entries: dict[str, dict] = {}
    options = _fit_options(exp)
    for spec in exp.features.sets:
        r = routed[spec]
        key = content_key("gim_brain.experiment.fit", shared, spec, r.build_spec, r.per_space,
                          fingerprint)
        entries[spec] = {"fit_key": key, "build_spec": r.build_spec}
        old = previous.get(spec, {})
        if old.get("fit_key") == key and (plan.out / old.get("result", "-") / "result.json").is_file():
            results[spec] = EncodingResult.load(plan.out / old["result"])
            run.reused.append((subject, spec))
            log(f"{subject} {spec}: reused from {plan.out / old['result']}")
            save = []
        else:
            t0 = time.time()
            try:
                results[spec] = fit_feature_set(ctx, r.build_spec, stories, Y, list(split.test),
                                                params=r.params, delays=exp.features.delays,
                                                feature_set=spec, **options)
            except (FeatureParameterError, UnknownFeatureSpaceError, LanguageModelNotFoundError,
                    ValueError) as exc:  # bad model/device, a story without words, ...
                done = (f"; SPECs fitted so far are in {plan.out / 'summary.json'}"
                        if results else "")
                raise ExperimentError(f"SPEC {spec!r} (subject {subject}): {exc}{done}") from None
            res = results[spec]
            log(f"{subject} {spec}: mean r {res.mean_r():.4f}, top-10% {res.top10_mean_r():.4f} "
                f"({res.provenance['n_features']} features, {time.time() - t0:.0f} s)")
            save = [spec]
        rows = subject_table(subject, results)
        write_run(plan.out, results, subject=subject, test_stories=split.test,
                  targets=plan.targets, parameters=parameters, save=save, entries=entries,
                  extra=dict(extra, per_subject=rows, cross_subject=cross_subject_table(rows)))
    run.results[subject] = results
    return subject_table(subject, results)


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
    rows: list[dict] = []
    with run_lock(out), limit:
        for plan in plans:
            rows += _fit_subject(exp, ds, plan, routed, run, log)
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
