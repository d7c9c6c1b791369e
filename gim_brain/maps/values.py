"""Which per-voxel value of which encoding result to map: the ``--value`` grammar.

=================  =============================================================
``r``              held-out correlation (``scores["r"]``)
``r2``             held-out R² (``scores["r2"]``)
``alpha``          log10 of the chosen ridge alpha
``pvalue``         -log10 of the permutation p-value
``unique:SPACE``   unique variance of SPACE (banded fit)
``split:SPACE``    SPACE's share of the joint R² (banded fit)
``diff:A-B``       r of result A minus r of result B (two feature sets of one run), or,
                   within one banded result, split variance of space A minus space B
=================  =============================================================

Results are passed as a mapping ``name -> result``; a name is the result's folder name
(slug) and its ``feature_set`` SPEC also matches. Results only need the attributes of
``gim_brain.encoding.EncodingResult`` used here (``feature_set``, ``scores``, ``alphas``,
``pvalues``, ``unique_variance``, ``split_scores``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from .compare import difference, unique_variance

__all__ = ["UnknownValueError", "SelectedValues", "parse_value", "select_values", "VALUE_HELP"]

VALUE_HELP = "r | r2 | alpha | pvalue | unique:SPACE | split:SPACE | diff:A-B"
_SIMPLE = ("r", "r2", "alpha", "pvalue")


class UnknownValueError(ValueError):
    """A value name that the ``--value`` grammar does not know, or that a result lacks."""


@dataclass(frozen=True)
class SelectedValues:
    """Values chosen for a map.

    Attributes
    ----------
    values : float64 (n_targets,)
    kind : str
        Style kind (see :mod:`gim_brain.maps.style`).
    label : str
        Human-readable description for titles, e.g. ``"r — gim"``.
    slug : str
        File-name-safe name, e.g. ``"r_gim"``.
    """

    values: np.ndarray
    kind: str
    label: str
    slug: str


def parse_value(spec: str) -> tuple[str, str | None]:
    """Split ``spec`` into ``(name, argument)``; raise :class:`UnknownValueError` if unknown."""
    spec = spec.strip()
    name, sep, arg = spec.partition(":")
    if not sep and name in _SIMPLE:
        return name, None
    if sep and name in ("unique", "split", "diff") and arg:
        return name, arg
    raise UnknownValueError(f"unknown value {spec!r}; expected {VALUE_HELP}")


def _find(results: Mapping[str, Any], name: str) -> tuple[str, Any] | None:
    if name in results:
        return name, results[name]
    for key, result in results.items():
        if getattr(result, "feature_set", None) == name:
            return key, result
    return None


def _pick(results: Mapping[str, Any], feature_set: str | None) -> tuple[str, Any]:
    if not results:
        raise UnknownValueError("no results to map")
    if feature_set is None:
        if len(results) == 1:
            return next(iter(results.items()))
        raise UnknownValueError(
            f"the run has {len(results)} feature sets; choose one with --feature-set "
            f"({', '.join(sorted(results))})")
    found = _find(results, feature_set)
    if found is None:
        raise UnknownValueError(f"feature set {feature_set!r} not in the run "
                                f"({', '.join(sorted(results))})")
    return found


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def select_values(spec: str, results: Mapping[str, Any],
                  feature_set: str | None = None) -> SelectedValues:
    """Compute the values named by ``spec`` from the results of a run.

    Parameters
    ----------
    spec : str
        See the module docstring.
    results : mapping name -> EncodingResult
    feature_set : str, optional
        Which result (name or SPEC) for the single-result values; needed when the run
        has several.

    Raises
    ------
    UnknownValueError
        Unknown spec, unknown feature set or space, or a value the result lacks.
    """
    name, arg = parse_value(spec)
    if name == "diff":
        return _select_diff(arg, results, feature_set)
    key, result = _pick(results, feature_set)
    if name == "r" or name == "r2":
        if name not in result.scores:
            raise UnknownValueError(f"result {key!r} has no {name!r} scores")
        return SelectedValues(np.asarray(result.scores[name], float), name,
                              f"{name} — {key}", f"{name}_{_safe(key)}")
    if name == "alpha":
        alphas = np.asarray(result.alphas, float)
        with np.errstate(divide="ignore", invalid="ignore"):
            return SelectedValues(np.log10(alphas), "alpha", f"log10 alpha — {key}",
                                  f"alpha_{_safe(key)}")
    if name == "pvalue":
        if result.pvalues is None:
            raise UnknownValueError(f"result {key!r} has no p-values (fit with permutations)")
        p = np.clip(np.asarray(result.pvalues, float), 1e-300, 1.0)
        return SelectedValues(-np.log10(p), "pvalue", f"-log10 p — {key}", f"pvalue_{_safe(key)}")
    if name == "unique":
        try:
            values = unique_variance(result.unique_variance, arg, key)
        except KeyError as exc:
            raise UnknownValueError(exc.args[0]) from None
        return SelectedValues(values, "unique", f"unique variance of {arg} — {key}",
                              f"unique_{_safe(arg)}_{_safe(key)}")
    split = result.split_scores or {}
    if arg not in split:
        raise UnknownValueError(f"result {key!r} has no split variance for space {arg!r}; "
                                f"spaces: {sorted(split)}")
    return SelectedValues(np.asarray(split[arg], float), "split",
                          f"split variance of {arg} — {key}", f"split_{_safe(arg)}_{_safe(key)}")


def _select_diff(arg: str, results: Mapping[str, Any], feature_set: str | None) -> SelectedValues:
    # 1) two results of the run, "A-B" split at the hyphen that names two known results
    cuts = [i for i, c in enumerate(arg) if c == "-"]
    pairs = [(arg[:i], arg[i + 1:]) for i in cuts]
    matches = [(a, b) for a, b in pairs if _find(results, a) and _find(results, b)]
    if len(matches) > 1:
        raise UnknownValueError(f"diff:{arg} is ambiguous between {matches}")
    if matches:
        (ka, ra), (kb, rb) = _find(results, matches[0][0]), _find(results, matches[0][1])
        try:
            values = difference(ra.scores["r"], rb.scores["r"], ka, kb)
        except ValueError as exc:
            raise UnknownValueError(f"diff:{arg}: {exc}") from None
        return SelectedValues(values, "diff", f"r({ka}) − r({kb})",
                              f"diff_{_safe(ka)}-{_safe(kb)}")
    # 2) two spaces of one banded result
    key, result = (None, None)
    try:
        key, result = _pick(results, feature_set)
    except UnknownValueError:
        pass
    split = (result.split_scores or {}) if result is not None else {}
    space_pairs = [(a, b) for a, b in pairs if a in split and b in split]
    if len(space_pairs) == 1:
        a, b = space_pairs[0]
        values = difference(split[a], split[b], a, b)
        return SelectedValues(values, "diff", f"split R²({a}) − split R²({b}) — {key}",
                              f"diff_{_safe(a)}-{_safe(b)}_{_safe(key)}")
    raise UnknownValueError(
        f"diff:{arg} names neither two feature sets of the run ({', '.join(sorted(results))}) "
        f"nor two spaces of one banded result; write diff:A-B")
