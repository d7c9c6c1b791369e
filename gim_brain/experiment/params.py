"""Feature-space parameters of a run: which space each ``--param`` goes to, and delay checks.

A parameter ``K = V`` goes to the one space of the run that has a parameter ``K``; when several
spaces of the run's SPECs have it, it must be addressed to one as ``SPACE.K = V``
(``llm.layer = 10``): it is never silently handed to every space. Parameters written in a SPEC's
brackets (``llm[layer=10]``) win over both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .config import MAX_DELAY_TRS, ExperimentError

__all__ = ["RoutedSpec", "route_params", "parse_delays", "check_delays", "parse_kv", "parse_alphas"]


@dataclass(frozen=True)
class RoutedSpec:
    """How one SPEC of a run is built.

    Attributes
    ----------
    spec : str
        The SPEC as the user wrote it (the result's name).
    build_spec : str
        The SPEC handed to :func:`gim_brain.features.build_design`: ``spec`` itself, or with a
        parameter written into one space's brackets where another space of the SPEC has a
        parameter of the same name.
    params : dict
        Parameters for :func:`~gim_brain.features.build_design` (each reaches exactly the spaces
        of ``build_spec`` it is meant for).
    per_space : dict space -> dict
        The resolved parameters of every space of the SPEC (defaults filled in), for the record.
    """

    spec: str
    build_spec: str
    params: dict
    per_space: dict


def parse_kv(items: Sequence[str] | None, flag: str = "--param") -> dict[str, str]:
    """``["k=v", "llm.layer=3"]`` -> dict (values stay strings; each space converts its own)."""
    out: dict[str, str] = {}
    for item in items or []:
        if "=" not in item:
            raise ExperimentError(f"{flag} {item!r} must be written K=V (or SPACE.K=V)")
        k, v = item.split("=", 1)
        if not k.strip():
            raise ExperimentError(f"{flag} {item!r} has no name before '='")
        out[k.strip()] = v.strip()
    return out


def parse_alphas(text: str) -> tuple[float, ...]:
    """``"1,10,100"`` or ``"logspace:LO:HI:N"`` (N values, exponents LO..HI of 10) -> floats.

    ``logspace:0:8:17`` is the default grid of :func:`gim_brain.encoding.fit_encoding`, value
    for value.
    """
    import numpy as np

    try:
        if text.strip().startswith("logspace:"):
            lo, hi, n = text.strip().split(":")[1:]
            return tuple(float(a) for a in np.logspace(float(lo), float(hi), int(n)))
        return tuple(float(a) for a in text.split(","))
    except ValueError:
        raise ExperimentError(f"--alphas must be comma-separated numbers or logspace:LO:HI:N, "
                              f"got {text!r}") from None


def parse_delays(text: str) -> tuple[int, ...]:
    """``"1,2,3,4"`` -> ``(1, 2, 3, 4)`` FIR delays in TRs (``"none"`` -> ``(0,)``)."""
    if text.strip().lower() in ("none", "0", ""):
        return (0,)
    try:
        delays = tuple(int(d) for d in text.split(","))
    except ValueError:
        raise ExperimentError(f"--delays must be comma-separated whole TRs like 1,2,3,4, got "
                              f"{text!r}") from None
    check_delays(delays)
    return delays


def check_delays(delays: Sequence[int], n_rows: int | None = None) -> tuple[int, ...]:
    """Each ``|delay|`` must be below ``MAX_DELAY_TRS`` and the shortest story's ``n_rows``.

    Raises :class:`ExperimentError` naming the delays (a delay as long as a story leaves only
    zeros); delays are in TRs, not seconds.
    """
    limit = MAX_DELAY_TRS if n_rows is None else min(MAX_DELAY_TRS, n_rows)
    bad = [d for d in delays if abs(d) >= limit]
    if bad:
        why = (f"the shortest story has {n_rows} rows" if n_rows is not None and n_rows <= MAX_DELAY_TRS
               else f"delays are limited to {MAX_DELAY_TRS} TRs")
        raise ExperimentError(f"--delays {', '.join(map(str, bad))}: each delay must be shorter "
                              f"than {limit} TRs in absolute value ({why}); delays are in TRs, "
                              f"not seconds (features.delays)")
    return tuple(int(d) for d in delays)


def route_params(specs: Sequence[str], params: Mapping[str, Any]) -> dict[str, RoutedSpec]:
    """Send every parameter to its space and check every space's values (no building).

    Parameters
    ----------
    specs : list of str
        The run's feature SPECs.
    params : dict
        ``{"K": V}`` for the one space of the run that has ``K``, ``{"SPACE.K": V}`` for one
        space.

    Returns
    -------
    dict SPEC -> RoutedSpec

    Raises
    ------
    ExperimentError
        An unreadable SPEC, an unknown space or parameter, a value of the wrong type or range, a
        parameter that several spaces of the run have (not addressed), or one that no space has.
    """
    from ..features import get_space, parse_spec, resolve_params
    from ..features.design import SpaceRef

    try:
        parsed = {spec: parse_spec(spec) for spec in specs}
        spaces = {ref.name: get_space(ref.name) for bands in parsed.values()
                  for band in bands for ref in band}
    except ValueError as exc:  # parse errors, UnknownFeatureSpaceError, FeatureParameterError
        raise ExperimentError(str(exc)) from None
    names = ", ".join(specs)
    targeted: dict[str, dict[str, Any]] = {name: {} for name in spaces}
    for key, value in params.items():
        if "." in key:
            space, name = key.split(".", 1)
            if space not in spaces:
                raise ExperimentError(f"--param {key}: no SPEC of the run ({names}) uses a space "
                                      f"{space!r}; spaces: {', '.join(spaces)}")
            if name not in spaces[space].param_names():
                raise ExperimentError(f"--param {key}: feature space {space!r} has no parameter "
                                      f"{name!r}; its parameters: "
                                      f"{', '.join(spaces[space].param_names()) or 'none'}")
            targeted[space][name] = value
            continue
        having = [s for s, sp in spaces.items() if key in sp.param_names()]
        if not having:
            raise ExperimentError(f"--param {key!r}: no feature space of {names} has a "
                                  f"parameter {key!r}")
        if len(having) > 1:
            raise ExperimentError(
                f"--param {key}={value}: spaces {', '.join(having)} of this run all have a "
                f"parameter {key!r}; address one, e.g. --param {having[0]}.{key}={value} "
                f"(in TOML: [features.params.{having[0]}] {key} = ...), or write it in a SPEC: "
                f"\"{having[0]}[{key}={value}]\"")
        targeted[having[0]].setdefault(key, value)
    for space, given in targeted.items():  # an addressed value wins over a plain one
        for key in list(given):
            if f"{space}.{key}" in params:
                given[key] = params[f"{space}.{key}"]

    out: dict[str, RoutedSpec] = {}
    for spec, bands in parsed.items():
        in_spec = [ref.name for band in bands for ref in band]
        flat: dict[str, Any] = {}
        inject: dict[str, dict[str, Any]] = {}
        for name in dict.fromkeys(in_spec):
            for key, value in targeted[name].items():
                others = [o for o in dict.fromkeys(in_spec)
                          if o != name and key in spaces[o].param_names()]
                if others or (key in flat and flat[key] != value):
                    inject.setdefault(name, {})[key] = value
                else:
                    flat[key] = value
        per_space: dict[str, Any] = {}
        new_bands = []
        for band in bands:
            refs = []
            for ref in band:
                given = dict(ref.given)
                extra = {k: v for k, v in inject.get(ref.name, {}).items() if k not in given}
                refs.append(SpaceRef(ref.name, ref.given + tuple(extra.items())))
                p = {k: v for k, v in flat.items() if k in spaces[ref.name].param_names()}
                p.update(extra)
                p.update(given)
                try:
                    per_space[ref.label()] = resolve_params(spaces[ref.name], p)
                except ValueError as exc:
                    raise ExperimentError(f"SPEC {spec!r}: {exc}") from None
            new_bands.append(refs)
        build_spec = spec if not inject else ",".join(
            "+".join(r.label() for r in band) for band in new_bands)
        out[spec] = RoutedSpec(spec, build_spec, flat, per_space)
    return out
