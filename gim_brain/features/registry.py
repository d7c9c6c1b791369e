"""Named, parameterised feature spaces that a user can list, build and combine.

A feature space turns the stories of a dataset into row-level matrices ``(n_rows, n_features)``
on each story's response grid. Spaces register themselves with :func:`register_space`; the
built-in ones live in ``wordrate``, ``phonemes``, ``word_vectors``, ``lm_spaces``, ``gim_spaces`` and
``induction_spaces``.

>>> from gim_brain.features import list_spaces, get_space
>>> sorted(list_spaces())[:2]
['ar-control', 'embedding']
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["Param", "FeatureSpace", "UnknownFeatureSpaceError", "FeatureParameterError",
           "register_space", "get_space", "list_spaces", "resolve_params"]

_BUILTIN_MODULES = ("wordrate", "phonemes", "word_vectors", "lm_spaces", "gim_spaces", "induction_spaces",
                    "gim_copy_spaces")
_REGISTRY: dict[str, "FeatureSpace"] = {}


class UnknownFeatureSpaceError(KeyError, ValueError):
    """A feature-space name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class FeatureParameterError(ValueError):
    """A feature-space parameter that does not exist or has the wrong type/value."""


@dataclass(frozen=True)
class Param:
    """One parameter of a feature space.

    ``type`` is ``int``, ``float``, ``str``, ``bool``, ``"str?"`` or ``"int?"`` (or None);
    ``choices`` restricts the allowed values; ``minimum`` (if not None) is the smallest allowed
    value (None values of ``"int?"`` parameters are always allowed).
    """

    name: str
    type: Any
    default: Any
    help: str = ""
    choices: tuple | None = None
    minimum: Any = None


@dataclass(frozen=True)
class FeatureSpace:
    """A registered feature space.

    Attributes
    ----------
    name, description : str
    params : tuple of Param
    build : callable ``(ctx: SpaceContext, params: dict, story: str) -> (n_rows, n_features)``
        Raw row-level features of one story (before z-scoring and delays).
    delayed : bool
        Apply the FIR delays (text-driven spaces). Response-derived spaces already live in
        response time and are not delayed.
    zscore : bool
        Z-score per story after building (response-derived spaces are standardised with
        training-story statistics instead, inside their builder).
    uses_responses : bool
        Needs the subject's responses (and the list of training stories).
    version : str
        Bumped when the builder's output changes (part of the cache key).
    check : callable or None
        ``check(resolved_params)`` raises :class:`FeatureParameterError` for values that are
        wrong together (e.g. ``horizon < gap``); called by :func:`resolve_params`.
    report : callable or None
        ``report(ctx, resolved_params, stories) -> dict`` after building: what the build met
        (e.g. out-of-vocabulary words), recorded as ``report`` in the space's description
        (``features.json``, a run's provenance).
    """

    name: str
    description: str
    build: Callable[..., Any]
    params: tuple[Param, ...] = field(default_factory=tuple)
    delayed: bool = True
    zscore: bool = True
    uses_responses: bool = False
    version: str = "1"
    check: Callable[[dict], None] | None = None
    report: Callable[..., dict] | None = None

    def param_names(self) -> list[str]:
        return [p.name for p in self.params]

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}


def register_space(name: str, description: str, params: tuple[Param, ...] = (), **options):
    """Decorator registering ``build(ctx, params, story)`` as feature space ``name``."""

    def wrap(build):
        _REGISTRY[name] = FeatureSpace(name=name, description=description, build=build,
                                       params=tuple(params), **options)
        return build

    return wrap


def _load_builtins() -> None:
    for mod in _BUILTIN_MODULES:
        importlib.import_module(f"{__package__}.{mod}")


def list_spaces() -> dict[str, FeatureSpace]:
    """All registered feature spaces, by name."""
    _load_builtins()
    return dict(sorted(_REGISTRY.items()))


def get_space(name: str) -> FeatureSpace:
    """The feature space called ``name``; :class:`UnknownFeatureSpaceError` lists the known ones."""
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise UnknownFeatureSpaceError(
            f"unknown feature space {name!r}; known spaces: {known} "
            f"(`gim-brain features --list` describes them)") from None


def _tname(p: Param) -> str:
    return p.type.__name__ if isinstance(p.type, type) else {"str?": "str or none",
                                                             "int?": "int or none"}[p.type]


def _convert(space: str, p: Param, value: Any) -> Any:
    where = f"parameter {p.name!r} of feature space {space!r}"
    if isinstance(value, str) and p.type is not str:
        text = value.strip()
        try:
            if p.type is bool:
                low = text.lower()
                if low not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                value = low in ("true", "1", "yes")
            elif p.type == "str?":
                value = None if text.lower() in ("none", "") else text
            elif p.type == "int?":
                value = None if text.lower() in ("none", "") else int(text)
            else:
                value = p.type(text)
        except ValueError:
            raise FeatureParameterError(f"{where} must be of type {_tname(p)}, got {value!r}") from None
    else:
        ok = {
            int: lambda v: isinstance(v, int) and not isinstance(v, bool),
            float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
            bool: lambda v: isinstance(v, bool),
            str: lambda v: isinstance(v, str),
            "str?": lambda v: v is None or isinstance(v, str),
            "int?": lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool)),
        }[p.type](value)
        if not ok:
            raise FeatureParameterError(
                f"{where} must be of type {_tname(p)}, got {value!r} ({type(value).__name__})")
        if p.type is float:
            value = float(value)
    if p.choices is not None and value not in p.choices:
        raise FeatureParameterError(f"{where} must be one of {list(p.choices)}, got {value!r}")
    if p.minimum is not None and value is not None and value < p.minimum:
        raise FeatureParameterError(f"{where} must be >= {p.minimum}, got {value!r}")
    return value


def resolve_params(space: FeatureSpace | str, given: dict[str, Any] | None = None) -> dict[str, Any]:
    """Defaults of ``space`` updated by ``given`` (strings from the command line are converted).

    Raises :class:`FeatureParameterError` for an unknown parameter, a value of the wrong type,
    one outside its choices or below its minimum, or values the space's ``check`` rejects.
    """
    if isinstance(space, str):
        space = get_space(space)
    out = space.defaults()
    byname = {p.name: p for p in space.params}
    for key, value in (given or {}).items():
        if key not in byname:
            known = ", ".join(byname) or "none"
            raise FeatureParameterError(
                f"feature space {space.name!r} has no parameter {key!r}; its parameters: {known}")
        out[key] = _convert(space.name, byname[key], value)
    if space.check is not None:
        space.check(out)
    return out
