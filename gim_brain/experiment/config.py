"""``Experiment``: one typed, validated description of a run, read from and written to TOML.

An experiment names the dataset (manifest and data root), the subjects, the feature SPECs with
their parameters, the response preprocessing, every option of
:func:`gim_brain.encoding.fit_encoding` and the outputs::

    # uts03.toml
    name = "uts03"
    [dataset]
    manifest = "lebel2023_pca"              # built-in manifest name, or a path to a manifest .toml
    data_root = "../shared/data/lebel2023"  # relative to this file; ~ and $VARS are expanded
    subjects = ["UTS03"]                    # or ["all"]
    # train_stories = ["a", "b"]            # default: every non-test story with data

    [features]
    sets = ["wordrate", "llm[layer=15]", "wordrate,llm[layer=15]"]   # SPECs, as for --features
    delays = [1, 2, 3, 4]                   # FIR delays in TRs ("none": no delays)
    # model = "gpt2"                        # LM of LM-based spaces; default: offline SmolLM2
    device = "auto"

    [features.params]                       # --param K=V: the one space of the run that has K
    context = 32
    [features.params.llm]                   # --param llm.layer=10: one space only
    layer = 10

    [responses]
    preprocess = "center"                   # per story: "center", "zscore" or "none"

    [encoding]                              # every option of gim_brain.encoding.fit_encoding
    alphas = [1.0, 10.0, 100.0]
    n_folds = 5
    ...

    [outputs]
    out = "runs/uts03"                      # relative to this file
    resume = false

Every section and key is checked: an unknown key (with a close-match hint), a value of the wrong
type or out of range raises :class:`ExperimentError` naming the file, the key and the matching
``gim-brain fit`` flag. ``Experiment.from_toml(e.to_toml()) == e`` for every valid experiment.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import numpy as np

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib

from . import _toml

__all__ = ["Experiment", "DatasetSpec", "FeatureSpec", "ResponseSpec", "EncodingSpec",
           "OutputSpec", "ExperimentError", "DATA_ROOT_ENV", "SECTIONS", "flag_of",
           "RESPONSE_PREPROCESSING", "MAX_DELAY_TRS"]

#: Environment variable consulted when ``dataset.data_root`` is empty.
DATA_ROOT_ENV = "GIM_BRAIN_DATA_ROOT"
#: Per-story response preprocessing steps.
RESPONSE_PREPROCESSING = ("center", "zscore", "none")
#: No FIR delay may reach this many TRs (and none may reach a story's length).
MAX_DELAY_TRS = 1000
_BACKENDS = ("auto", "numpy", "torch", "torch_cuda")
_SOLVERS = ("auto", "fastpath", "ridge", "kernel", "banded_ridge", "multiple_kernel")
_SCORES = ("correlation", "r2")


class ExperimentError(ValueError):
    """An experiment is malformed; the message names the file, the key (and flag) and the fix."""


class _Spec:
    """Values normalised and type-checked on construction (lists -> tuples, ints -> floats)."""

    def __post_init__(self):
        section = _SECTION_OF.get(type(self).__name__, "")
        for f in fields(self):
            value = _convert("<experiment>", f"{section}.{f.name}", getattr(self, f.name), f.type)
            object.__setattr__(self, f.name, value)


def _opt(flag: str | None = None, help: str = "", metavar: str | None = None) -> dict:
    """Field metadata: the ``gim-brain fit`` flag of a key and its help."""
    return {"flag": flag, "help": help, "metavar": metavar}


@dataclass(frozen=True)
class DatasetSpec(_Spec):
    """Which data: a manifest (name or .toml path) and the folder its paths are relative to."""

    manifest: str = field(metadata=_opt("--manifest", "dataset manifest name or TOML path"))
    data_root: str = field(default="", metadata=_opt(
        "--data-root", f"folder the manifest's paths are relative to (empty: ${DATA_ROOT_ENV})"))
    train_stories: tuple[str, ...] | None = field(default=None, metadata=_opt(
        "--train-stories", "train on these stories only (default: every non-test story with "
                           "words and responses)", "STORY"))


@dataclass(frozen=True)
class FeatureSpec(_Spec):
    """Feature SPECs and how their design matrices are built."""

    sets: tuple[str, ...] = field(metadata=_opt(
        "--features", "feature SPEC (repeatable): a space, 'a+b' (concatenated) or 'a,b' "
                      "(bands, banded ridge)", "SPEC"))
    params: dict[str, Any] = field(default_factory=dict, metadata=_opt(
        "--param", "feature-space parameter (repeatable): K=V for the one space of the run that "
                   "has K, SPACE.K=V for one space", "K=V"))
    delays: tuple[int, ...] = field(default=(1, 2, 3, 4), metadata=_opt(
        "--delays", "FIR delays in TRs (default 1,2,3,4; 'none'); negative delays are allowed "
                    "(write --delays=-1,0,1); |delay| must be below the shortest story's rows"))
    model: str | None = field(default=None, metadata=_opt(
        "--model", "LM for LM-based spaces (hub id, folder or .gguf; default offline SmolLM2-135M)"))
    device: str = field(default="auto", metadata=_opt("--device", "LM device (auto, cpu, cuda)"))


@dataclass(frozen=True)
class ResponseSpec(_Spec):
    """Preprocessing of each story's responses before fitting."""

    preprocess: str = field(default="center", metadata=_opt(
        "--response-preprocess", "per-story response preprocessing: center (default: remove "
                                 "each story's mean), zscore or none"))


@dataclass(frozen=True)
class EncodingSpec(_Spec):
    """Every option of :func:`gim_brain.encoding.fit_encoding` (see its docstring)."""

    alphas: tuple[float, ...] = field(
        default=tuple(float(a) for a in np.logspace(0, 8, 17)),
        metadata=_opt("--alphas", "ridge grid: comma-separated values or logspace:LO:HI:N "
                                  "(exponents of 10; default logspace:0:8:17)"))
    n_folds: int = field(default=5, metadata=_opt(
        "--n-folds", "story-grouped CV folds (default 5; at most the number of training stories)"))
    backend: str = field(default="auto", metadata=_opt(
        "--backend", "himalaya backend: auto, numpy, torch, torch_cuda"))
    solver: str = field(default="auto", metadata=_opt(
        "--solver", "auto, fastpath, ridge, kernel (plain); auto, fastpath, banded_ridge, "
                    "multiple_kernel (banded)"))
    score: str = field(default="correlation", metadata=_opt(
        "--score", "validation score choosing alphas: correlation or r2"))
    n_iter: int = field(default=20, metadata=_opt(
        "--n-iter", "banded fits: random-search draws of band weights (default 20)"))
    variance_partitioning: bool = field(default=True, metadata=_opt(
        "--variance-partitioning", "banded fits: also fit leave-one-band-out models"))
    n_permutations: int = field(default=1000, metadata=_opt(
        "--n-permutations", "block permutations for p-values (default 1000; 0: none)"))
    block_size: int = field(default=10, metadata=_opt(
        "--block-size", "TRs per permuted block (default 10)"))
    fdr_alpha: float = field(default=0.05, metadata=_opt(
        "--fdr-alpha", "Benjamini-Hochberg level of the significant-target count (default 0.05)"))
    seed: int = field(default=0, metadata=_opt(
        "--seed", "seed of the permutations and the banded random search"))
    keep_weights: bool = field(default=False, metadata=_opt(
        "--keep-weights", "save the refit weights of every result"))
    keep_predictions: bool = field(default=True, metadata=_opt(
        "--keep-predictions", "save the held-out predictions of every result"))
    n_targets_batch: int | None = field(default=None, metadata=_opt(
        "--n-targets-batch", "targets per batch (default: sized from free memory)"))
    memory_budget: str | None = field(default=None, metadata=_opt(
        "--memory-budget", "memory one fit may use, e.g. 8GB or 16GiB: voxels are fitted in "
                           "chunks sized from it (default: 60% of the memory available at the "
                           "start)", "SIZE"))
    scheduler: str = field(default="serial", metadata=_opt(
        "--scheduler", "where the subject x SPEC x voxel-chunk fits run: serial (default, "
                       "no Dask), local (a Dask LocalCluster of --workers processes) or the "
                       "address of a running Dask scheduler, tcp://HOST:PORT", "WHERE"))
    workers: int | None = field(default=None, metadata=_opt(
        "--workers", "--scheduler local: worker processes (default 2)", "N"))
    blas_threads: int | None = field(default=None, metadata=_opt(
        "--blas-threads", "BLAS threads during the fits (default: leave as is); results can "
                          "differ in the last bits between thread counts"))


@dataclass(frozen=True)
class OutputSpec(_Spec):
    """Where and how a run is written."""

    out: str = field(metadata=_opt("--out", "run directory"))
    resume: bool = field(default=False, metadata=_opt(
        "--resume", "reuse results already in OUT fitted with the same parameters on the same data"))
    progress: bool = field(default=True, metadata=_opt("--progress", "show progress bars"))
    report: bool = field(default=True, metadata=_opt("--report", "write OUT/report.html"))


#: TOML section -> (Experiment attribute, dataclass).
SECTIONS = {"dataset": DatasetSpec, "features": FeatureSpec, "responses": ResponseSpec,
            "encoding": EncodingSpec, "outputs": OutputSpec}


_SECTION_OF = {cls.__name__: name for name, cls in SECTIONS.items()}


def flag_of(dotted: str) -> str | None:
    """The ``gim-brain fit`` flag of a config key (``"encoding.n_folds"`` -> ``"--n-folds"``)."""
    if dotted == "dataset.subjects":
        return "--subject"
    section, _, name = dotted.partition(".")
    cls = SECTIONS.get(section)
    if cls is None:
        return None
    for f in fields(cls):
        if f.name == name:
            return f.metadata.get("flag")
    return None


def _label(dotted: str) -> str:
    flag = flag_of(dotted)
    return f"{dotted} ({flag})" if flag else dotted


@dataclass(frozen=True)
class Experiment:
    """A whole run: dataset, subjects, feature SPECs, preprocessing, encoding options, outputs.

    Build one in Python, from TOML (:meth:`from_toml`, :meth:`read`) or from ``gim-brain fit``
    flags; :func:`gim_brain.experiment.run_experiment` runs it. Paths are kept as written;
    relative ones are relative to the working directory when run (:meth:`read` resolves those of
    a file against the file's folder).

    Attributes
    ----------
    dataset : DatasetSpec
    subjects : tuple of str
        Subjects to fit (``("all",)``: every subject of the dataset).
    features : FeatureSpec
    responses : ResponseSpec
    encoding : EncodingSpec
    outputs : OutputSpec
    name, description : str
    """

    dataset: DatasetSpec
    subjects: tuple[str, ...]
    features: FeatureSpec
    outputs: OutputSpec
    responses: ResponseSpec = field(default_factory=lambda: ResponseSpec())
    encoding: EncodingSpec = field(default_factory=lambda: EncodingSpec())
    name: str = ""
    description: str = ""
    source: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        subjects = (self.subjects,) if isinstance(self.subjects, str) else self.subjects
        object.__setattr__(self, "subjects", _convert(self.source or "<experiment>",
                                                      "dataset.subjects", subjects,
                                                      "tuple[str, ...]"))
        self.validate()

    # ---- validation ---------------------------------------------------------------------------
    def _fail(self, dotted: str, message: str) -> None:
        where = f"{self.source}: " if self.source else ""
        raise ExperimentError(f"{where}{_label(dotted)} {message}")

    def validate(self) -> None:
        """Check every value (cheap: no file is read). Raises :class:`ExperimentError`."""
        ds, ft, enc, out = self.dataset, self.features, self.encoding, self.outputs
        if not isinstance(ds.manifest, str) or not ds.manifest.strip():
            self._fail("dataset.manifest", "is required: a built-in manifest name "
                       "(`gim-brain datasets list`) or the path of a manifest .toml")
        if not self.subjects or not all(isinstance(s, str) and s.strip() for s in self.subjects):
            self._fail("dataset.subjects", f"must be a non-empty list of subject names (or "
                       f"[\"all\"]), got {list(self.subjects)!r}")
        if len(set(self.subjects)) != len(self.subjects):
            self._fail("dataset.subjects", f"lists a subject twice: {list(self.subjects)!r}")
        if ds.train_stories is not None and not ds.train_stories:
            self._fail("dataset.train_stories", "is empty; leave it out to train on every "
                       "non-test story")
        if not ft.sets or not all(isinstance(s, str) and s.strip() for s in ft.sets):
            self._fail("features.sets", f"must be a non-empty list of feature SPECs such as "
                       f"\"llm\" or \"wordrate,llm\", got {list(ft.sets)!r}")
        if len(set(ft.sets)) != len(ft.sets):
            self._fail("features.sets", f"lists a SPEC twice: {list(ft.sets)!r}")
        for key, value in ft.params.items():
            if not isinstance(key, str) or not re.match(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_]+)?$", key):
                self._fail("features.params", f"key {key!r} must be NAME or SPACE.NAME")
            if isinstance(value, (dict, list, tuple)) or value is None or (
                    isinstance(value, float) and not math.isfinite(value)):
                self._fail("features.params", f"{key} must be a number, string or boolean, got "
                           f"{value!r}; for one space write SPACE.{key.split('.')[-1]} or put "
                           f"it in the SPEC: \"llm[{key.split('.')[-1]}=...]\"")
        spaces = {k.split(".", 1)[0] for k in ft.params if "." in k}
        clash = sorted(spaces & {k for k in ft.params if "." not in k})
        if clash:
            self._fail("features.params", f"{clash[0]!r} is both a parameter and a space name "
                       f"({clash[0]}.K); rename one")
        if not ft.delays:
            self._fail("features.delays", "is empty; write [0] (or \"none\") for no delays")
        bad = [d for d in ft.delays if abs(d) >= MAX_DELAY_TRS]
        if bad:
            self._fail("features.delays", f"{', '.join(map(str, bad))}: each delay must be "
                       f"shorter than {MAX_DELAY_TRS} TRs in absolute value; delays are in TRs, "
                       f"not seconds")
        if self.responses.preprocess not in RESPONSE_PREPROCESSING:
            self._fail("responses.preprocess", f"must be one of {list(RESPONSE_PREPROCESSING)}, "
                       f"got {self.responses.preprocess!r}")
        if not enc.alphas or not all(math.isfinite(a) and a > 0 for a in enc.alphas):
            self._fail("encoding.alphas", f"must be a non-empty list of finite values > 0, got "
                       f"{list(enc.alphas)!r}")
        if enc.n_folds < 2:
            self._fail("encoding.n_folds", f"must be >= 2 (story-grouped cross-validation), "
                       f"got {enc.n_folds}")
        if enc.backend not in _BACKENDS:
            self._fail("encoding.backend", f"must be one of {', '.join(_BACKENDS)}, got "
                       f"{enc.backend!r}")
        if enc.solver not in _SOLVERS:
            self._fail("encoding.solver", f"must be one of {', '.join(_SOLVERS)}, got {enc.solver!r}")
        if enc.score not in _SCORES:
            self._fail("encoding.score", f"must be one of {', '.join(_SCORES)}, got {enc.score!r}")
        for name, low in (("n_iter", 1), ("n_permutations", 0), ("block_size", 1), ("seed", 0)):
            if getattr(enc, name) < low:
                self._fail(f"encoding.{name}", f"must be >= {low}, got {getattr(enc, name)}")
        if not 0 < enc.fdr_alpha < 1:
            self._fail("encoding.fdr_alpha", f"must be between 0 and 1, got {enc.fdr_alpha}")
        if enc.memory_budget is not None:
            from ..encoding.chunking import parse_bytes

            try:
                parse_bytes(enc.memory_budget)
            except ValueError as exc:
                self._fail("encoding.memory_budget", f"{exc}")
        if enc.scheduler not in ("serial", "local") and "://" not in enc.scheduler:
            self._fail("encoding.scheduler", f"must be serial, local or a Dask scheduler "
                       f"address such as tcp://127.0.0.1:8786, got {enc.scheduler!r}")
        if enc.workers is not None and "://" in enc.scheduler:
            self._fail("encoding.workers", f"applies to --scheduler local only (a running "
                       f"cluster has its own workers); scheduler is {enc.scheduler!r}")
        for name in ("n_targets_batch", "blas_threads", "workers"):
            v = getattr(enc, name)
            if v is not None and v < 1:
                self._fail(f"encoding.{name}", f"must be >= 1 (or left out), got {v}")
        if not isinstance(out.out, str) or not out.out.strip():
            self._fail("outputs.out", "is required: the run directory to write")

    # ---- dict / TOML --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The experiment as TOML-shaped plain data (None values left out)."""
        top: dict[str, Any] = {}
        if self.name:
            top["name"] = self.name
        if self.description:
            top["description"] = self.description
        for section, cls in SECTIONS.items():
            spec = getattr(self, section)
            table: dict[str, Any] = {}
            if section == "dataset":
                table["manifest"] = spec.manifest
                table["data_root"] = spec.data_root
                table["subjects"] = list(self.subjects)
                if spec.train_stories is not None:
                    table["train_stories"] = list(spec.train_stories)
            else:
                for f in fields(cls):
                    v = getattr(spec, f.name)
                    if v is None:
                        continue
                    if f.name == "params":
                        plain = {k: x for k, x in v.items() if "." not in k}
                        for k, x in v.items():
                            if "." in k:
                                space, name = k.split(".", 1)
                                plain.setdefault(space, {})[name] = x
                        v = plain
                    elif isinstance(v, tuple):
                        v = list(v)
                    table[f.name] = v
            top[section] = table
        return top

    def to_toml(self, header: str = "") -> str:
        """TOML text that :meth:`from_toml` reads back to an equal experiment."""
        data = self.to_dict()
        tables = [("", {k: v for k, v in data.items() if not isinstance(v, dict)})]
        tables += [(k, v) for k, v in data.items() if isinstance(v, dict)]
        return _toml.dumps(tables, header=header)

    def write(self, path: str | os.PathLike, header: str = "") -> Path:
        """Write :meth:`to_toml` to ``path`` atomically."""
        from .._cache import atomic_write_bytes

        return atomic_write_bytes(Path(path), self.to_toml(header).encode("utf-8"))

    @classmethod
    def from_toml(cls, text: str | os.PathLike, source: str | None = None) -> "Experiment":
        """An experiment from TOML text (or, given a :class:`pathlib.Path`, from that file).

        Paths in the text are kept as written. Raises :class:`ExperimentError` for invalid TOML
        or content (naming ``source`` and the key).
        """
        if isinstance(text, Path):
            return cls.read(text)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ExperimentError(f"{source or '<experiment TOML>'}: invalid TOML: {exc}") from None
        return cls.from_dict(data, source=source)

    @classmethod
    def read(cls, path: str | os.PathLike) -> "Experiment":
        """Read a TOML file; relative paths (and ``~``, ``$VARS``) are resolved against its folder.

        Raises
        ------
        FileNotFoundError
            The file does not exist.
        ExperimentError
            Invalid TOML or content; the message names the file and the key.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"run config {path} does not exist")
        exp = cls.from_toml(path.read_text(encoding="utf-8"), source=str(path))
        return exp.resolve_paths(path.resolve().parent)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str | None = None) -> "Experiment":
        """An experiment from TOML-shaped data (see the module docstring); validated."""
        where = source or "<experiment>"
        if not isinstance(data, Mapping):
            raise ExperimentError(f"{where}: an experiment must be a table, got {data!r}")
        top = {k: v for k, v in data.items() if not isinstance(v, Mapping)}
        sections = {k: v for k, v in data.items() if isinstance(v, Mapping)}
        for name in sections:
            if name not in SECTIONS:
                hint = difflib.get_close_matches(name, list(SECTIONS), n=1)
                raise ExperimentError(
                    f"{where}: unknown section [{name}]"
                    + (f" (did you mean [{hint[0]}]?)" if hint else "")
                    + f"; sections: {', '.join('[' + s + ']' for s in SECTIONS)}. "
                      "Rename or remove it.")
        _check_keys(where, "", top, {"name", "description"})
        for key in ("name", "description"):
            if key in top and not isinstance(top[key], str):
                raise ExperimentError(f"{where}: key {key!r} must be a string, got {top[key]!r}")
        for name in ("dataset", "features", "outputs"):
            if name not in sections:
                raise ExperimentError(f"{where}: missing section [{name}]; see "
                                      "`gim-brain fit --help` for an example config")
        kwargs: dict[str, Any] = {}
        subjects = None
        for name, cls_ in SECTIONS.items():
            table = dict(sections.get(name, {}))
            allowed = {f.name for f in fields(cls_)} | ({"subjects"} if name == "dataset" else set())
            _check_keys(where, name, table, allowed)
            if name == "dataset":
                if "subjects" not in table:
                    raise ExperimentError(f"{where}: missing required key 'dataset.subjects'; "
                                          "add `subjects = [\"...\"]` under [dataset]")
                subjects = _convert(where, "dataset.subjects", table.pop("subjects"),
                                    tuple[str, ...])
            if name == "features" and "params" in table:
                table["params"] = _flatten_params(where, table["params"])
            values = {}
            for f in fields(cls_):
                if f.name in table:
                    values[f.name] = _convert(where, f"{name}.{f.name}", table[f.name], f.type)
                elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise ExperimentError(f"{where}: missing required key '{name}.{f.name}'; add "
                                          f"`{f.name} = ...` under [{name}]")
            kwargs[name] = cls_(**values)
        return cls(subjects=subjects, name=top.get("name", ""),
                   description=top.get("description", ""), source=source, **kwargs)

    # ---- changes ------------------------------------------------------------------------------
    def replace(self, **changes: Any) -> "Experiment":
        """A copy with ``section.key`` (or top-level) values changed: ``replace(**{"encoding.n_folds": 3})``.

        Values are converted like TOML values (strings of flags are not parsed here).
        """
        where = self.source or "<experiment>"
        sections: dict[str, dict[str, Any]] = {}
        top: dict[str, Any] = {}
        for dotted, value in changes.items():
            section, _, name = dotted.partition(".")
            if not name:
                top[section] = value
                continue
            if section not in SECTIONS:
                raise ExperimentError(f"{where}: unknown section {section!r} in {dotted!r}")
            allowed = {f.name for f in fields(SECTIONS[section])}
            if section == "dataset" and name == "subjects":
                top["subjects"] = _convert(where, dotted, value, tuple[str, ...])
                continue
            if name not in allowed:
                _check_keys(where, section, {name: value}, allowed)
            ftype = next(f.type for f in fields(SECTIONS[section]) if f.name == name)
            sections.setdefault(section, {})[name] = _convert(where, dotted, value, ftype)
        new = {s: dataclasses.replace(getattr(self, s), **v) for s, v in sections.items()}
        return dataclasses.replace(self, **new, **top)

    def resolve_paths(self, base: str | os.PathLike) -> "Experiment":
        """``~``/``$VARS`` expanded and relative manifest / data root / out paths made absolute
        against ``base`` (a built-in manifest name is left as it is)."""
        base = Path(base)
        where = self.source or "<experiment>"

        def resolve(text: str, key: str) -> str:
            expanded = os.path.expanduser(os.path.expandvars(text))
            unset = re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", expanded)
            if unset:
                raise ExperimentError(f"{where}: {_label(key)} = {text!r} uses the environment "
                                      f"variable(s) {', '.join(unset)}, which are not set; set "
                                      f"them or write the path out")
            p = Path(expanded)
            return str(p if p.is_absolute() else (base / p).resolve())

        manifest = self.dataset.manifest
        if manifest.endswith(".toml") or "/" in manifest or os.sep in manifest or "$" in manifest:
            manifest = resolve(manifest, "dataset.manifest")
        root = resolve(self.dataset.data_root, "dataset.data_root") if self.dataset.data_root else ""
        ds = dataclasses.replace(self.dataset, manifest=manifest, data_root=root)
        outputs = dataclasses.replace(self.outputs, out=resolve(self.outputs.out, "outputs.out"))
        return dataclasses.replace(self, dataset=ds, outputs=outputs)

    def fit_parameters(self) -> dict[str, Any]:
        """What the fitted numbers depend on (everything but names, outputs and progress)."""
        data = self.to_dict()
        for key in ("name", "description", "outputs"):
            data.pop(key, None)
        data["dataset"].pop("subjects", None)
        return data


def _check_keys(where: str, section: str, table: Mapping, allowed: set[str]) -> None:
    label = f"[{section}]" if section else "the top level"
    for key in table:
        if key not in allowed:
            dotted = f"{section}.{key}" if section else key
            hint = difflib.get_close_matches(key, sorted(allowed), n=1)
            raise ExperimentError(
                f"{where}: unknown key {dotted!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                + f"; allowed in {label}: {', '.join(sorted(allowed))}. Rename or remove it.")


def _flatten_params(where: str, params: Any) -> dict[str, Any]:
    """``{"context": 32, "llm": {"layer": 10}}`` -> ``{"context": 32, "llm.layer": 10}``."""
    if not isinstance(params, Mapping):
        raise ExperimentError(f"{where}: features.params must be a table of K = V, got {params!r}")
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, Mapping):
            for k2, v2 in value.items():
                if isinstance(v2, (Mapping, list)):
                    raise ExperimentError(f"{where}: features.params.{key}.{k2} must be a number, "
                                          f"string or boolean, got {v2!r}")
                out[f"{key}.{k2}"] = v2
        elif isinstance(value, list):
            raise ExperimentError(
                f"{where}: features.params.{key} must be a number, string or boolean (a "
                f"parameter of the one space of the run that has it, like --param {key}=VALUE); "
                f"for one space only, write [features.params.SPACE] or put it in the SPEC: "
                f"\"llm[{key}=...]\"")
        else:
            out[key] = value
    return out


def _type_name(t: Any) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "a boolean"}.get(t, str(t))


def _convert(where: str, dotted: str, value: Any, ftype: Any) -> Any:
    """Check a TOML value against a field type (as written in the dataclass) and normalise it."""
    t = str(ftype).strip()
    optional = t.endswith("| None")
    t = t.removesuffix("| None").strip()
    if value is None and optional:
        return None

    def bad(expected: str) -> ExperimentError:
        return ExperimentError(f"{where}: key {_label(dotted)!s} must be {expected}, got {value!r}")

    if t == "tuple[str, ...]":
        if isinstance(value, str) and dotted == "features.sets":
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise bad("a list of strings")
        return tuple(value)
    if t == "tuple[int, ...]":
        if isinstance(value, str):
            if value.strip().lower() in ("none", "0", ""):
                return (0,)
            raise bad("a list of whole TRs such as [1, 2, 3, 4] (or \"none\")")
        if not isinstance(value, (list, tuple)) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise bad("a list of whole TRs such as [1, 2, 3, 4] (or \"none\")")
        return tuple(int(v) for v in value)
    if t == "tuple[float, ...]":
        if not isinstance(value, (list, tuple)) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            raise bad("a list of numbers")
        return tuple(float(v) for v in value)
    if t == "dict[str, Any]":
        if not isinstance(value, Mapping):
            raise bad("a table")
        return dict(value)
    if t == "bool":
        if not isinstance(value, bool):
            raise bad("a boolean (true or false)")
        return value
    if t == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        return value
    if t == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        return float(value)
    if t == "str":
        if not isinstance(value, str):
            raise bad("a string")
        return value
    raise TypeError(f"no conversion for {dotted} of type {ftype!r}")  # pragma: no cover

