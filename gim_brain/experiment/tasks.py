"""The unit of work of a run: one subject x one SPEC x one voxel chunk, fitted anywhere.

A :class:`FitTask` carries everything a fit needs (the experiment, the split, the SPEC and its
routed parameters, the target chunk), so the same :func:`run_fit_task` runs in the run's own
process (serial) or on a Dask worker: the serial and distributed results are the same numbers.
A worker opens the dataset itself and reads only its chunk's columns, story by story, into
float32; features come from the shared cache (built once per story).
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from .config import Experiment
from .data import open_dataset, preprocess_responses

__all__ = ["FitTask", "run_fit_task", "load_responses", "count_targets"]


@dataclass(frozen=True)
class FitTask:
    """One subject x SPEC x target chunk.

    Attributes
    ----------
    exp : Experiment
    subject, spec, build_spec : str
        ``spec`` names the result; ``build_spec`` is what the feature registry builds.
    params : dict
        The SPEC's routed feature parameters.
    stories, train, test : tuple of str
        Every story of the split, its training and its test stories.
    chunk : (start, stop) or None
        Target columns ``start:stop`` (None: every target).
    options : dict
        Keyword arguments of :func:`gim_brain.encoding.fit_encoding`.
    """

    exp: Experiment
    subject: str
    spec: str
    build_spec: str
    params: Mapping[str, Any]
    stories: tuple[str, ...]
    train: tuple[str, ...]
    test: tuple[str, ...]
    chunk: tuple[int, int] | None
    options: Mapping[str, Any]

    @property
    def label(self) -> str:
        where = "" if self.chunk is None else f" targets {self.chunk[0]}:{self.chunk[1]}"
        return f"{self.subject} {self.spec}{where}"


def count_targets(ds, subject: str, story: str) -> int:
    """Number of targets (columns) of one story's responses."""
    return int(ds.load_responses(subject, story).shape[1])


def load_responses(ds, subject: str, stories, method: str,
                   chunk: tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """Preprocessed float32 responses of ``stories``, read story by story, only ``chunk``'s
    columns kept (each story's full array is dropped before the next is read)."""
    out = {}
    for story in stories:
        y = ds.load_responses(subject, story)
        if chunk is not None:
            y = np.ascontiguousarray(y[:, chunk[0]:chunk[1]])
        out[story] = preprocess_responses({story: y}, method)[story]
        del y
    return out


def _context(task: FitTask, ds):
    from ..features import SpaceContext

    exp = task.exp
    return SpaceContext(ds, subject=task.subject, progress=False, lm_model=exp.features.model,
                        device=exp.features.device, train_stories=list(task.train))


def build_task_design(task: FitTask, ds):
    """The design matrices of the task's SPEC (features from the shared cache)."""
    from ..features import build_design

    return build_design(_context(task, ds), task.build_spec, list(task.stories),
                        params=dict(task.params), delays=task.exp.features.delays)


def run_fit_task(task: FitTask, *, ds=None, responses: Mapping[str, np.ndarray] | None = None,
                 design=None):
    """Fit one task; returns its :class:`~gim_brain.encoding.EncodingResult`.

    ``ds``, ``responses`` (already the chunk's preprocessed columns) and ``design`` may be given
    by a caller that has them (the serial run); a Dask worker gets none and loads them.
    The result's provenance records the chunk and this process's peak RSS.
    """
    from ..encoding.chunking import peak_rss_bytes
    from .fit import fit_design

    t0 = time.perf_counter()
    ds = open_dataset(task.exp) if ds is None else ds
    limit = nullcontext()
    if task.exp.encoding.blas_threads:
        from threadpoolctl import threadpool_limits

        limit = threadpool_limits(limits=task.exp.encoding.blas_threads)
    with limit:
        if responses is None:
            responses = load_responses(ds, task.subject, task.stories,
                                       task.exp.responses.preprocess, task.chunk)
        if design is None:
            design = build_task_design(task, ds)
        result = fit_design(design, responses, list(task.test), feature_set=task.spec, t0=t0,
                            **dict(task.options))
    result.provenance = dict(result.provenance, chunk=list(task.chunk) if task.chunk else None,
                             peak_rss_bytes=peak_rss_bytes())
    return result
