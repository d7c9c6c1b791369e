"""TOML run configs: one file that describes an experiment, read by ``gim-brain fit CONFIG.toml``.

A run config names the dataset (manifest and data root), the subjects, the feature sets to compare
with their parameters, the encoding options and the output folder::

    # uts03.toml
    [dataset]
    manifest = "lebel2023_pca"            # built-in manifest name, or a path to a manifest .toml
    data_root = "../shared/data/lebel2023"  # relative to this file; ~ and $VARS are expanded
    subjects = ["UTS03"]

    [features]
    # SPEC as for --features: a, a+b (concatenated), a,b (banded); a[k=v] sets one space's parameter
    sets = ["wordrate", "llm[layer=15]", "wordrate,llm[layer=15]"]
    delays = [1, 2, 3, 4]                 # FIR delays in TRs (--delays)
    model = "gpt2"                        # LM of LM-based spaces (--model); default: offline SmolLM2

    [features.params]                     # --param K=V: every space that has K takes it
    context = 32

    [encoding]
    backend = "auto"                      # --backend
    n_folds = 5                           # --n-folds
    n_permutations = 1000                 # --n-permutations

    [outputs]
    out = "runs/uts03"                    # --out, relative to this file
    resume = true                         # --resume

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
    "apply_run_config",
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
        "delays": ((list, str), None),
        "model": ((str,), None),
        "device": ((str,), None),
    },
    "encoding": {
        "backend": ((str,), None),
        "n_folds": ((int,), None),
        "n_permutations": ((int,), None),
    },
    "outputs": {
        "out": ((str,), _REQUIRED),
        "resume": ((bool,), None),
        "progress": ((bool,), None),
    },
}

#: Config key -> ``gim-brain fit`` flag. A key left unset (None) adds no flag, so the fit
#: command's own default applies. Booleans: ``resume = true`` -> ``--resume``,
#: ``progress = false`` -> ``--no-progress``.
ENCODING_FLAGS: dict[str, str] = {
    "delays": "--delays",
    "model": "--model",
    "device": "--device",
    "backend": "--backend",
    "n_folds": "--n-folds",
    "n_permutations": "--n-permutations",
    "resume": "--resume",
    "progress": "--no-progress",
}

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
    params : dict key -> value
        Feature-space parameters (``--param key=value``: every space that has ``key`` takes it).
    encoding : dict
        Feature pipeline and encoding options (``delays``, ``model``, ``device``, ``backend``,
        ``n_folds``, ``n_permutations``); None means the fit command's default.
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
    params: dict[str, Any] = field(default_factory=dict)
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
    params: dict[str, Any] = {}
    for key, value in feats["params"].items():
        if isinstance(value, (dict, list)):
            raise RunConfigError(
                f"{_where(path)}: features.params.{key} must be a number, string or boolean "
                f"(parameters apply to every space that has them, like --param {key}=VALUE); "
                f"for one space only, write it in the SPEC: \"llm[{key}=...]\"")
        params[key] = value
    delays = feats["delays"]
    if isinstance(delays, list) and not all(isinstance(d, int) and not isinstance(d, bool)
                                            for d in delays):
        raise RunConfigError(f"{_where(path)}: features.delays must be a list of whole TRs such as "
                             f"[1, 2, 3, 4] (or \"none\"), got {delays!r}")
    encoding = {k: feats[k] for k in ("delays", "model", "device")}
    encoding.update(cfg["encoding"])

    outputs = dict(cfg["outputs"])
    out = _resolve(_expand(outputs.pop("out"), "outputs.out", path), base)
    return RunConfig(path=path, manifest=manifest, data_root=data_root, subjects=list(subjects),
                     feature_sets=[s.strip() for s in sets], params=params,
                     encoding=encoding, out=out, outputs=outputs,
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
        "--features", "llm", "--param", "layer=15", "--backend", "auto", "--out", "runs/x"]``.
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
    for key, value in config.params.items():
        argv += ["--param", f"{key}={_flag_value(value)}"]
    for key, value in list(config.encoding.items()) + list(config.outputs.items()):
        if value is None:
            continue
        flag = ENCODING_FLAGS[key]
        if key == "progress":
            if not value:
                argv.append(flag)
        elif isinstance(value, bool):
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


def apply_run_config(args: argparse.Namespace, parser: argparse.ArgumentParser,
                     config_path: str | os.PathLike, subject: str | None = None
                     ) -> argparse.Namespace:
    """``args`` (already parsed by ``parser``) completed from a run config.

    For wiring ``gim-brain fit CONFIG.toml [flags]`` after the command line has been parsed:
    every option whose value differs from the parser's default counts as given on the command
    line and wins; all others come from the config. (An option given explicitly with its default
    value cannot be told apart and takes the config's value.)

    Parameters
    ----------
    args : Namespace
        Parsed command line (may contain extra attributes such as the config path).
    parser : ArgumentParser
        The ``gim-brain fit`` parser.
    config_path : path
    subject : str or None
        Which of the config's subjects (default: ``args.subject`` if set, else the only one).

    Raises
    ------
    RunConfigError, FileNotFoundError
    """
    config = load_run_config(config_path)
    subject = subject or getattr(args, "subject", None)
    if subject is not None and subject not in config.subjects:
        config.subjects.append(subject)  # a --subject flag overrides the config's list
    merged = parser.parse_args(fit_argv(config, subject))
    for action in parser._actions:
        dest = action.dest
        if dest in (argparse.SUPPRESS, "help") or not hasattr(args, dest):
            continue
        value = getattr(args, dest)
        if value != action.default:
            setattr(merged, dest, value)
    for key, value in vars(args).items():
        if not hasattr(merged, key):
            setattr(merged, key, value)
    return merged
