"""Per-story design matrices for a feature SPEC.

SPEC grammar: ``a+b`` concatenates spaces into one band, ``a,b`` makes separate bands (for banded
ridge); each item is a space name with optional parameters in brackets, e.g.
``llm[layer=10;context=128]+gim-induction,wordrate``. Parameters given separately (``params``,
the CLI's ``--param k=v``) apply to every space of the SPEC that has that parameter.

Every space's raw rows are z-scored per story (text spaces) and FIR-delayed within each story
(default 1-4 TRs); response-derived spaces (``gim-induction`` and its controls) already live in
response time and are standardised with training-story statistics instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from tqdm.auto import tqdm

from .context import SpaceContext
from .preprocess import DEFAULT_DELAYS, make_delayed, zscore
from .registry import FeatureParameterError, get_space, resolve_params

__all__ = ["SpaceRef", "parse_spec", "Design", "build_design", "build_space", "describe_timing"]

_ITEM = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*(?:\[(.*)\])?\s*$")


@dataclass(frozen=True)
class SpaceRef:
    """One space of a SPEC with its explicitly given parameters (strings or values)."""

    name: str
    given: tuple[tuple[str, Any], ...] = ()

    def label(self) -> str:
        if not self.given:
            return self.name
        return self.name + "[" + ";".join(f"{k}={v}" for k, v in self.given) + "]"


def _split_top(text: str, sep: str) -> list[str]:
    out, depth, cur = [], 0, []
    for ch in text:
        depth += ch == "["
        depth -= ch == "]"
        if ch == sep and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


def parse_spec(spec: str) -> list[list[SpaceRef]]:
    """``"a+b,c[k=v]"`` -> ``[[a, b], [c(k=v)]]`` (bands of concatenated spaces)."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"empty feature SPEC {spec!r}")
    bands = []
    for band in _split_top(spec, ","):
        refs = []
        for item in _split_top(band, "+"):
            m = _ITEM.match(item)
            if not m:
                raise ValueError(f"cannot read {item!r} in feature SPEC {spec!r}: expected NAME or "
                                 "NAME[k=v;k=v], joined by '+' (concatenate) or ',' (bands)")
            given = []
            for kv in filter(None, (m.group(2) or "").split(";")):
                if "=" not in kv:
                    raise FeatureParameterError(f"parameter {kv!r} of {m.group(1)!r} in SPEC {spec!r} "
                                                "must be written k=v")
                k, v = kv.split("=", 1)
                given.append((k.strip(), v.strip()))
            refs.append(SpaceRef(m.group(1), tuple(given)))
        bands.append(refs)
    return bands


@dataclass
class Design:
    """Design matrices of one SPEC.

    Attributes
    ----------
    spec : str
    X : dict story -> (n_rows, n_features) float32
    bands : list of str
        Band labels (one per ``,``-separated part of the SPEC).
    band_slices : dict band -> slice of columns
    spaces : list of dict
        Per space: name, resolved params, band, columns (slice bounds), raw width, delayed.
    delays : tuple of int
    timing : dict
        The dataset's timing convention and word filter the rows were built under (see
        :meth:`gim_brain.data.timing.TRGrid.describe`).
    """

    spec: str
    X: dict[str, np.ndarray]
    bands: list[str]
    band_slices: dict[str, slice]
    spaces: list[dict] = field(default_factory=list)
    delays: tuple[int, ...] = DEFAULT_DELAYS
    timing: dict = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return next(iter(self.X.values())).shape[1]

    def describe(self) -> dict:
        """JSON-ready description (no arrays)."""
        return {
            "spec": self.spec,
            "n_features": self.n_features,
            "delays": list(self.delays),
            "bands": {b: [s.start, s.stop] for b, s in self.band_slices.items()},
            "spaces": self.spaces,
            "stories": {s: list(x.shape) for s, x in self.X.items()},
            "timing": self.timing,
        }


def describe_timing(ctx: SpaceContext, story: str) -> dict:
    """Timing convention, TR, first row's word window and kernel centre (s) and word filter of
    ``story``'s rows, as recorded with every design (and in ``summary.json``)."""
    st = ctx.story(story)
    out = st.grid.describe()
    cleaner = getattr(ctx.dataset, "cleaner", None)
    out["word_filter"] = getattr(cleaner, "filter", None)
    return out


def build_space(ctx: SpaceContext, name: str, params: dict, stories: Sequence[str],
                delays: Sequence[int] = DEFAULT_DELAYS, progress: bool | None = None
                ) -> tuple[dict[str, np.ndarray], dict]:
    """Final (z-scored / delayed) rows of one space for each story, and its description."""
    space = get_space(name)
    resolved = resolve_params(space, params)
    show = ctx.progress if progress is None else progress
    out, raw_width = {}, None
    for story in tqdm(list(stories), desc=f"features {name}", disable=not show, leave=False):
        x = np.asarray(space.build(ctx, resolved, story), dtype=np.float32)
        n_rows = ctx.story(story).grid.n_rows
        if x.ndim != 2 or x.shape[0] != n_rows:
            raise RuntimeError(f"feature space {name!r} built shape {x.shape} for story {story!r}, "
                               f"expected ({n_rows}, n_features)")
        raw_width = x.shape[1]
        if space.zscore:
            x = zscore(x)
        if space.delayed:
            x = make_delayed(x, delays)
        out[story] = x
    desc = {"name": name, "params": resolved, "raw_features": raw_width, "delayed": space.delayed,
            "zscored_per_story": space.zscore, "uses_responses": space.uses_responses,
            "description": space.description, "version": space.version}
    if space.report is not None:
        desc["report"] = space.report(ctx, resolved, list(stories))
    return out, desc


def build_design(ctx: SpaceContext, spec: str, stories: Sequence[str] | None = None,
                 params: dict[str, Any] | None = None,
                 delays: Sequence[int] = DEFAULT_DELAYS) -> Design:
    """Build the design matrices of ``spec`` for ``stories`` (default: all stories with words).

    ``params`` (e.g. from ``--param k=v``) apply to every space of the SPEC that has them; a key
    that no space of the SPEC knows is an error. Parameters in the SPEC's brackets win.
    """
    bands_refs = parse_spec(spec)
    stories = list(ctx.dataset.stories() if stories is None else stories)
    if not stories:
        raise ValueError("no stories to build features for")
    params = dict(params or {})
    all_spaces = [get_space(r.name) for band in bands_refs for r in band]  # unknown names fail here
    for key in params:
        if not any(key in s.param_names() for s in all_spaces):
            names = ", ".join(sorted({s.name for s in all_spaces}))
            raise FeatureParameterError(f"no feature space of SPEC {spec!r} ({names}) has a "
                                        f"parameter {key!r}")
    X = {s: [] for s in stories}
    band_slices, band_names, spaces_desc = {}, [], []
    col = 0
    for refs in bands_refs:
        band = "+".join(r.label() for r in refs)
        start = col
        for ref, space in zip(refs, [get_space(r.name) for r in refs]):
            p = {k: v for k, v in params.items() if k in space.param_names()}
            p.update(dict(ref.given))
            rows, desc = build_space(ctx, ref.name, p, stories, delays)
            width = next(iter(rows.values())).shape[1]
            desc.update(band=band, columns=[col, col + width])
            spaces_desc.append(desc)
            for s in stories:
                X[s].append(rows[s])
            col += width
        band_slices[band] = slice(start, col)
        band_names.append(band)
    X = {s: np.concatenate(parts, axis=1).astype(np.float32, copy=False) for s, parts in X.items()}
    return Design(spec=spec, X=X, bands=band_names, band_slices=band_slices, spaces=spaces_desc,
                  delays=tuple(int(d) for d in delays), timing=describe_timing(ctx, stories[0]))
