"""The data side of a run: opening the dataset, the subjects, response preprocessing and a
fingerprint of the files actually used (so ``--resume`` never reuses results of other data)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .. import __version__
from .._cache import file_digest, known_file_digest
from .config import DATA_ROOT_ENV, Experiment, ExperimentError

__all__ = ["open_dataset", "resolve_subjects", "preprocess_responses", "data_fingerprint"]


def open_dataset(exp: Experiment):
    """The experiment's :class:`gim_brain.data.Dataset` (an empty data root: ``$GIM_BRAIN_DATA_ROOT``).

    Raises :class:`ExperimentError` naming the manifest or data root at fault.
    """
    from ..data import load_dataset

    root = exp.dataset.data_root or os.environ.get(DATA_ROOT_ENV, "")
    if not root:
        raise ExperimentError(f"dataset.data_root (--data-root) is not set: name the folder that "
                              f"holds the dataset's files, or set ${DATA_ROOT_ENV}")
    if not Path(root).expanduser().is_dir():
        source = "dataset.data_root (--data-root)" if exp.dataset.data_root else f"${DATA_ROOT_ENV}"
        raise ExperimentError(f"{source} = {root!r}: folder {Path(root).expanduser().resolve()} "
                              f"does not exist; point it at the folder holding the dataset's files")
    try:
        return load_dataset(exp.dataset.manifest, root)
    except (FileNotFoundError, ValueError) as exc:
        raise ExperimentError(f"dataset.manifest (--manifest) {exp.dataset.manifest!r}: {exc}") from None


def resolve_subjects(ds, subjects: Sequence[str]) -> list[str]:
    """``["all"]`` -> every subject of ``ds``; unknown subjects raise :class:`ExperimentError`."""
    known = ds.subjects()
    if list(subjects) == ["all"]:
        if not known:
            raise ExperimentError(f"dataset {ds.name!r} has no subjects")
        return known
    bad = [s for s in subjects if s not in known]
    if bad:
        raise ExperimentError(f"unknown subject {bad[0]!r} (dataset.subjects / --subject); "
                              f"dataset {ds.name!r} has: {', '.join(known)} (or use 'all')")
    return list(subjects)


def preprocess_responses(Y_by_story: Mapping[str, np.ndarray], method: str) -> dict[str, np.ndarray]:
    """Per-story response preprocessing: ``center`` (remove each story's mean per target),
    ``zscore`` (and divide by its standard deviation; constant targets stay 0) or ``none``.

    Returns float32 arrays ``(n_rows, n_targets)`` per story.
    """
    out = {}
    for story, y in Y_by_story.items():
        y = np.asarray(y, dtype=np.float32)
        if method == "none":
            out[story] = y
            continue
        y64 = y.astype(np.float64)
        y64 = y64 - y64.mean(axis=0)
        if method == "zscore":
            sd = y64.std(axis=0)
            y64 = np.divide(y64, sd, out=np.zeros_like(y64), where=sd > 0)
        elif method != "center":
            raise ExperimentError(f"responses.preprocess must be center, zscore or none, got "
                                  f"{method!r}")
        out[story] = y64.astype(np.float32)
    return out


def data_fingerprint(ds, subject: str, stories: Sequence[str]) -> dict:
    """What the fitted numbers of ``subject`` depend on besides the parameters.

    The manifest's content; the content digest (:func:`~gim_brain._cache.known_file_digest`) of
    every words and responses file of ``stories``, of the TR-count table, the test-story file and
    the mask; the gim-brain version. A file with other bytes gives another ``digest``; the same
    data copied or moved elsewhere (new paths and modification times, e.g. a fresh ``datalad
    get``) gives the same one, so ``--resume`` still reuses its fits.

    Returns
    -------
    dict with ``digest`` (sha256 hex), ``n_files`` and ``gim_brain``.
    """
    files: list[tuple[str, Path]] = []
    for story in stories:
        files += [(f"words {story}", ds.words_path(story)),
                  (f"responses {story}", ds.responses_path(subject, story))]
    timing = ds.manifest["timing"]
    if isinstance(timing.get("n_trs"), str):
        files.append(("n_trs", ds.root / timing["n_trs"]))
    if ds.manifest["stories"].get("test_file"):
        files.append(("test_file", ds.root / ds.manifest["stories"]["test_file"]))
    mask = ds._mask_path(subject)
    if mask is not None:
        files.append(("mask", mask))
    h = hashlib.sha256()
    h.update(f"gim-brain {__version__}\n".encode())
    if ds.manifest_path is not None and Path(ds.manifest_path).is_file():
        h.update(f"manifest {file_digest(Path(ds.manifest_path))}\n".encode())
    h.update(repr(sorted(ds.manifest.items(), key=str)).encode())
    n = 0
    for role, path in files:
        try:
            h.update(f"{role} {known_file_digest(path)}\n".encode())
            n += 1
        except FileNotFoundError:
            h.update(f"{role} absent\n".encode())
    return {"digest": h.hexdigest(), "n_files": n, "gim_brain": __version__,
            "what": "manifest content; content digests of the words, responses, TR-count, "
                    "test-story and mask files"}
