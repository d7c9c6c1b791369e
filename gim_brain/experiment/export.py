"""``gim-brain features``' work: one SPEC's design matrices of a dataset, written to a folder.

``OUT/<story>.npy`` (float32, n_rows x n_features, z-scored per story and FIR-delayed exactly as
:func:`run_experiment` uses them) and ``OUT/features.json`` (the design's description).
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .. import __version__
from .._cache import atomic_write_bytes
from .config import ExperimentError
from .params import check_delays, route_params

__all__ = ["export_features"]


def _save_npy(path: Path, x: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, x)
    atomic_write_bytes(path, buf.getvalue())


def export_features(ds, spec: str, out: str | Path, *, params: Mapping[str, Any] | None = None,
                    delays: Sequence[int] = (1, 2, 3, 4), subject: str | None = None,
                    stories: Sequence[str] | None = None, model: str | None = None,
                    device: str = "auto", progress: bool = True) -> dict:
    """Build ``spec`` for ``stories`` of ``ds`` and write the matrices and ``features.json``.

    Every check runs before anything is built or written. Returns the ``features.json`` dict.

    Raises
    ------
    ExperimentError
        A bad SPEC or parameter, a response-derived space without ``subject``, an unknown
        subject or story, a delay as long as a story, or a SPEC that fails to build.
    """
    from ..data import ManifestError, ResponseError, TimingError, TranscriptError
    from ..features import SpaceContext, build_design, get_space, parse_spec
    from ..features.registry import FeatureParameterError, UnknownFeatureSpaceError
    from ..lm import LanguageModelNotFoundError

    routed = route_params([spec], dict(params or {}))[spec]
    needs_subject = sorted({r.name for band in parse_spec(spec) for r in band
                            if get_space(r.name).uses_responses})
    if needs_subject and not subject:
        raise ExperimentError(f"feature space {', '.join(needs_subject)} is built from "
                              f"responses: name a subject with --subject (dataset {ds.name!r} "
                              f"has: {', '.join(ds.subjects())})")
    if subject is not None and subject not in ds.subjects():
        raise ExperimentError(f"--subject: unknown subject {subject!r}; dataset {ds.name!r} has: "
                              f"{', '.join(ds.subjects())}")
    stories = list(stories or ds.stories())
    from ..data.manifest import unsafe_name

    escaping = [s for s in stories if unsafe_name(s) is not None]
    if escaping:  # OUT/<story>.npy must stay inside --out
        raise ExperimentError(f"story name(s) {', '.join(map(repr, escaping))} are not plain "
                              f"names: OUT/<story>.npy would leave --out")
    unknown = [s for s in stories if s not in set(ds.stories())]
    if unknown:
        raise ExperimentError(f"unknown stories or stories without words: {', '.join(unknown)}")
    delays = check_delays(delays, n_rows=min(ds.grid(s).n_rows for s in stories))
    ctx = SpaceContext(ds, subject=subject, progress=progress, lm_model=model, device=device)
    t0 = time.time()
    try:
        design = build_design(ctx, routed.build_spec, stories, params=routed.params, delays=delays)
    except (ManifestError, ResponseError, TimingError, TranscriptError):
        raise  # damaged data: exit 1 with the reader's message (names the file)
    except (UnknownFeatureSpaceError, FeatureParameterError, LanguageModelNotFoundError,
            ValueError) as exc:
        raise ExperimentError(f"SPEC {spec!r}: {exc}") from None
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for story, x in design.X.items():
        _save_npy(out / f"{story}.npy", x)
    desc = design.describe()
    desc.update(spec=spec, dataset=ds.name,
                manifest=str(ds.manifest_path) if ds.manifest_path else ds.name,
                data_root=str(ds.root), subject=subject, gim_brain_version=__version__,
                seconds=round(time.time() - t0, 2), files="<story>.npy float32 (n_rows, n_features)")
    atomic_write_bytes(out / "features.json", json.dumps(desc, indent=1, default=str).encode())
    return desc
