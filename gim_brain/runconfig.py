"""TOML run configs: one file that describes an experiment, read by ``gim-brain fit CONFIG.toml``.

A run config names the dataset (manifest and data root), the subjects, the feature sets to compare
with their parameters, the encoding options and the output folder::

    # uts03.toml
    [dataset]
    manifest = "lebel2023_pca"            # built-in manifest name, or a path to a manifest .toml
    data_root = "../shared/data/lebel2023"  # relative to this file; ~ and $VARS are expanded
    subjects = ["UTS03"]

    [features]
    sets = ["wordrate", "llm", "wordrate,llm"]  # SPEC as for --features: a, a+b (concatenated), a,b (banded)

    [features.params.llm]                 # parameters of one feature space (as --param SPACE.KEY=VALUE)
    layer = 15
    context = 32

    [encoding]
    backend = "auto"

    [outputs]
    out = "runs/uts03"                    # relative to this file

Everything is validated when loaded: an unknown key or section, a value of the wrong type, a
missing required key or a data root that does not exist raises :class:`RunConfigError` naming the
file, the key and how to fix it. :func:`fit_argv` turns a config into the command-line flags of
``gim-brain fit`` (one list per subject), so a config and the equivalent flags run the same fit;
:func:`merge_with_flags` lets flags given on the command line override the config.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "RunConfigError",
    "RunConfig",
    "SCHEMA",
    "ENCODING_FLAGS",
    "load_run_config",
    "parse_run_config",
    "fit_argv",
    "merge_with_flags",
    "DATA_ROOT_ENV",
]

#: Environment variable consulted when a config leaves ``dataset.data_root`` empty.
DATA_ROOT_ENV = "GIM_BRAIN_DATA_ROOT"


class RunConfigError(ValueError):
    """A run config is malformed; the message names the file, the key and the fix."""


_REQUIRED = object()

#: Allowed keys: section -> {key: (types, default)}; ``_REQUIRED`` marks required keys.
SCHEMA: dict[str, dict[str, tuple[tuple[type, ...], Any]]] = {
    "": {"name": ((str,), ""), "description": ((str,), "")},
    "dataset": {
        "manifest": ((str,), _REQUIRED),
        "data_root": ((str,), ""),
        "subjects": ((list,), _REQUIRED),
    },
    "features": {
        "sets": ((list,), _REQUIRED),
        "params": ((dict,), {}),
    },
    "encoding": {
        "backend": ((str,), "auto"),
        "n_folds": ((int,), None),
        "alphas": ((list,), None),
        "delays": ((list,), None),
        "n_permutations": ((int,), None),
        "seed": ((int,), None),
    },
    "outputs": {
        "out": ((str,), _REQUIRED),
        "save_predictions": ((bool,), None),
        "save_weights": ((bool,), None),
    },
}

#: ``[encoding]``/``[outputs]`` key -> ``gim-brain fit`` flag. A key whose value is None (unset)
#: adds no flag, so the fit command's own default applies.
ENCODING_FLAGS: dict[str, str] = {
    "backend": "--backend",
    "n_folds": "--n-folds",
    "alphas": "--alphas",
    "delays": "--delays",
    "n_permutations": "--n-permutations",
    "seed": "--seed",
    "save_predictions": "--save-predictions",
    "save_weights": "--save-weights",
}

_SPACE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass
class RunConfig:
    """A validated run config with paths resolved against the config file's folder.

    Attributes
    ----------
    path : Path or None
        The TOML file (None for a config built from a dict).
    manifest : str
        Manifest name, or an absolute path when the config gave a path.
    data_root : Path
        Existing folder with the dataset's files.
    subjects : list of str
    feature_sets : list of str
        SPEC strings (``a``, ``a+b``, ``a,b``).
    params : dict space -> dict key -> value
        Parameters of individual feature spaces.
    encoding : dict
        Encoding options (see :data:`SCHEMA`); None means the fit command's default.
    out : Path
        Output run folder.
    outputs : dict
        Other output options.
    """

    path: Path | None
    manifest: str
    data_root: Path
    subjects: list[str]
    feature_sets: list[str]
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    encoding: dict[str, Any] = field(default_factory=dict)
    out: Path = Path("run")
    outputs: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    description: str = ""


def _where(path: Path | None) -> str:
    return str(path) if path is not None else "<run config>"


def _check_table(section: str, table: dict, path: Path | None) -> dict:
    schema = SCHEMA[section]
    label = f"[{section}]" if section else "the top level"
    out: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{section}.{key}" if section else key
        if key not in schema:
            hint = difflib.get_close_matches(key, list(schema), n=1)
            raise RunConfigError(
                f"{_where(path)}: unknown key {dotted!r}"
                + (f" (did you mean {hint[0]!r}?)" if hint else "")
                + f"; allowed in {label}: {', '.join(sorted(schema))}. Rename or remove it.")
        types, _ = schema[key]
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            names = " or ".join("table" if t is dict else t.__name__ for t in types)
            raise RunConfigError(f"{_where(path)}: key {dotted!r} must be a {names}, got {value!r}")
        out[key] = value
    for key, (_, default) in schema.items():
        if key not in out:
            if default is _REQUIRED:
                dotted = f"{section}.{key}" if section else key
                raise RunConfigError(f"{_where(path)}: missing required key {dotted!r}; add "
                                     f"`{key} = ...` under {label}")
            out[key] = default
    return out


def _expand(value: str, key: str, path: Path | None) -> str:
    expanded = os.path.expanduser(os.path.expandvars(value))
    unset = re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", expanded)
    if unset:
        raise RunConfigError(f"{_where(path)}: key {key!r} = {value!r} uses the environment "
                             f"variable(s) {', '.join(unset)}, which are not set; set them or write "
                             f"the path out")
    return expanded


def _resolve(value: str, base: Path) -> Path:
    p = Path(value)
    return (p if p.is_absolute() else base / p).resolve()


def parse_run_config(data: dict, path: str | os.PathLike | None = None,
                     check_paths: bool = True) -> RunConfig:
    """Validate a run-config dict (as read from TOML) and resolve its paths.

    Parameters
    ----------
    data : dict
    path : path or None
        The file it came from: relative paths are resolved against its folder (else the
        current directory), and messages name it.
    check_paths : bool
        When True, a data root that does not exist raises :class:`RunConfigError`.

    Raises
    ------
    RunConfigError
    """
    path = Path(path) if path is not None else None
    base = path.resolve().parent if path is not None else Path.cwd()
    sections = [s for s in SCHEMA if s]
    top = {k: v for k, v in data.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    for name in tables:
        if name not in sections:
            hint = difflib.get_close_matches(name, sections, n=1)
            raise RunConfigError(
                f"{_where(path)}: unknown section [{name}]"
                + (f" (did you mean [{hint[0]}]?)" if hint else "")
                + f"; sections: {', '.join('[' + s + ']' for s in sections)}. Rename or remove it.")
    cfg = {"": _check_table("", top, path)}
    for name in sections:
        if name not in tables and any(d is _REQUIRED for _, d in SCHEMA[name].values()):
            raise RunConfigError(f"{_where(path)}: missing section [{name}]; see "
                                 f"`gim-brain fit --help` for an example config")
        cfg[name] = _check_table(name, tables.get(name, {}), path)

    ds = cfg["dataset"]
    subjects = ds["subjects"]
    if not subjects or not all(isinstance(s, str) and s for s in subjects):
        raise RunConfigError(f"{_where(path)}: dataset.subjects must be a non-empty list of "
                             f"subject names, got {subjects!r}")
    manifest = _expand(ds["manifest"], "dataset.manifest", path)
    if manifest.endswith(".toml") or "/" in manifest or os.sep in manifest:
        manifest_path = _resolve(manifest, base)
        if check_paths and not manifest_path.is_file():
            raise RunConfigError(f"{_where(path)}: dataset.manifest = {ds['manifest']!r}: file "
                                 f"{manifest_path} does not exist; give a built-in manifest name "
                                 f"(`gim-brain datasets list`) or the path of a manifest .toml "
                                 f"(relative paths are relative to the config file)")
        manifest = str(manifest_path)
    root_text = ds["data_root"] or os.environ.get(DATA_ROOT_ENV, "")
    if not root_text:
        raise RunConfigError(f"{_where(path)}: no data root: set dataset.data_root to the folder "
                             f"that holds the dataset's files, or set ${DATA_ROOT_ENV}")
    data_root = _resolve(_expand(root_text, "dataset.data_root", path), base)
    if check_paths and not data_root.is_dir():
        source = "dataset.data_root" if ds["data_root"] else f"${DATA_ROOT_ENV}"
        raise RunConfigError(f"{_where(path)}: {source} = {root_text!r}: folder {data_root} does "
                             f"not exist; point {source} at the folder holding the dataset's files "
                             f"(relative paths are relative to the config file), or pass "
                             f"--data-root DIR")

    feats = cfg["features"]
    sets = feats["sets"]
    if not sets or not all(isinstance(s, str) and s.strip() for s in sets):
        raise RunConfigError(f"{_where(path)}: features.sets must be a non-empty list of feature "
                             f"set SPEC strings such as \"llm\" or \"wordrate,llm\", got {sets!r}")
    params: dict[str, dict[str, Any]] = {}
    for space, table in feats["params"].items():
        if not isinstance(table, dict):
            raise RunConfigError(f"{_where(path)}: features.params.{space} must be a table of "
                                 f"parameters ([features.params.{space}]), got {table!r}")
        if not _SPACE_NAME.match(space):
            raise RunConfigError(f"{_where(path)}: features.params.{space}: not a feature space name")
        used = {p for s in sets for p in re.split(r"[+,]", s)}
        if space not in used:
            raise RunConfigError(f"{_where(path)}: [features.params.{space}] sets parameters of "
                                 f"space {space!r}, which no entry of features.sets uses "
                                 f"({', '.join(sorted(used))}); remove it or add the space")
        for key, value in table.items():
            if isinstance(value, dict):
                raise RunConfigError(f"{_where(path)}: features.params.{space}.{key} must be a "
                                     f"number, string, boolean or list, got a table")
        params[space] = dict(table)

    outputs = dict(cfg["outputs"])
    out = _resolve(_expand(outputs.pop("out"), "outputs.out", path), base)
    return RunConfig(path=path, manifest=manifest, data_root=data_root, subjects=list(subjects),
                     feature_sets=[s.strip() for s in sets], params=params,
                     encoding=dict(cfg["encoding"]), out=out, outputs=outputs,
                     name=cfg[""]["name"], description=cfg[""]["description"])


def load_run_config(path: str | os.PathLike, check_paths: bool = True) -> RunConfig:
    """Read and validate a run-config TOML file (see the module docstring for the format).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    RunConfigError
        For invalid TOML or invalid content; the message names the file and key.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"run config {path} does not exist")
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise RunConfigError(f"{path}: invalid TOML: {exc}") from None
    return parse_run_config(data, path, check_paths=check_paths)


def _flag_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(_flag_value(v) for v in value)
    return str(value)


def fit_argv(config: RunConfig, subject: str | None = None) -> list[str]:
    """The ``gim-brain fit`` flags equivalent to ``config``, for one subject.

    Parameters
    ----------
    config : RunConfig
    subject : str or None
        Which of ``config.subjects``; None is allowed only when the config has one subject.

    Returns
    -------
    list of str
        E.g. ``["--manifest", "lebel2023_pca", "--data-root", "/data", "--subject", "UTS03",
        "--features", "llm", "--param", "llm.layer=15", "--backend", "auto", "--out", "runs/x"]``.
        With several subjects each gets its own run folder ``OUT/<subject>``.
    """
    if subject is None:
        if len(config.subjects) != 1:
            raise RunConfigError(f"{_where(config.path)}: the config lists subjects "
                                 f"{config.subjects}; choose one")
        subject = config.subjects[0]
    elif subject not in config.subjects:
        raise RunConfigError(f"{_where(config.path)}: subject {subject!r} is not in "
                             f"dataset.subjects {config.subjects}")
    out = config.out if len(config.subjects) == 1 else config.out / subject
    argv = ["--manifest", config.manifest, "--data-root", str(config.data_root),
            "--subject", subject]
    for spec in config.feature_sets:
        argv += ["--features", spec]
    for space in sorted(config.params):
        for key, value in config.params[space].items():
            argv += ["--param", f"{space}.{key}={_flag_value(value)}"]
    for key, value in list(config.encoding.items()) + list(config.outputs.items()):
        if value is None:
            continue
        flag = ENCODING_FLAGS[key]
        if isinstance(value, bool):
            if value:
                argv.append(flag)
        else:
            argv += [flag, _flag_value(value)]
    argv += ["--out", str(out)]
    return argv


def merge_with_flags(parser: argparse.ArgumentParser, config_argv: list[str],
                     flag_argv: list[str]) -> argparse.Namespace:
    """Parse ``config_argv`` with ``parser``, then let flags in ``flag_argv`` replace its values.

    A flag given on the command line replaces the config's value for that option entirely (for
    repeatable options such as ``--features`` too, rather than appending to it).

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The ``gim-brain fit`` parser.
    config_argv : list of str
        From :func:`fit_argv`.
    flag_argv : list of str
        The user's flags (without the config path).
    """
    base = parser.parse_args(config_argv)
    saved = [(a, a.default, a.required) for a in parser._actions]
    try:
        for action, _, _ in saved:
            action.default = argparse.SUPPRESS
            action.required = False
        explicit = parser.parse_args(flag_argv, namespace=argparse.Namespace())
    finally:
        for action, default, required in saved:
            action.default = default
            action.required = required
    for key, value in vars(explicit).items():
        setattr(base, key, value)
    return base
