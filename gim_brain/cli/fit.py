"""``gim-brain fit``: build an :class:`~gim_brain.experiment.Experiment` from a TOML run config
and/or flags, and run it with :func:`~gim_brain.experiment.run_experiment`."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from .main import UsageError

EPILOG = """examples:
  gim-brain fit --manifest lebel2023_pca --data-root ../shared/data/lebel2023 --subject UTS03 \\
      --features wordrate --features 'embedding+ar-control' --features 'llm,gim-induction' \\
      --out runs/uts03
  gim-brain fit runs/demo/demo.toml --out runs/demo_refit      # a run config; flags override it
  gim-brain fit exp.toml --subject all --n-folds 3 --alphas logspace:0:6:13

SPEC: a space, 'a+b' (concatenated, plain ridge) or 'a,b' (bands, banded ridge); see
`gim-brain features --list`. --param K=V goes to the one space of the run that has K; when
several have it, address one: --param llm.layer=10. Test stories are the manifest's (those with
words and responses); every other story with words and responses trains. One subject writes
OUT/summary.json, OUT/targets.json, OUT/results/<slug>/ and OUT/report.html; several subjects
(--subject repeated, or --subject all) write that under OUT/<subject>/ plus a cross-subject
OUT/summary.json and OUT/report.html. --resume reuses results fitted with the same parameters
on the same data files. Every flag given overrides the run config, whatever its value.

a run config (every key is optional except manifest, subjects, sets and out; each key has the
flag of the same name, e.g. encoding.n_folds = --n-folds):
  [dataset]
  manifest = "lebel2023_pca"
  data_root = "../shared/data/lebel2023"     # relative to the file
  subjects = ["UTS01", "UTS02", "UTS03"]     # or ["all"]
  [features]
  sets = ["wordrate", "llm", "wordrate,llm"]
  [features.params.llm]                      # --param llm.layer=10
  layer = 10
  [responses]
  preprocess = "center"
  [encoding]
  alphas = [1.0, 10.0, 100.0, 1000.0]
  n_folds = 5
  score = "correlation"
  [outputs]
  out = "runs/three"
"""

#: Experiment key -> how its flag parses (besides str); booleans are --x / --no-x.
_INT = {"encoding.n_folds", "encoding.n_iter", "encoding.n_permutations", "encoding.block_size",
        "encoding.seed", "encoding.n_targets_batch", "encoding.blas_threads",
        "encoding.workers"}
_FLOAT = {"encoding.fdr_alpha"}
_CHOICES = {"responses.preprocess": ("center", "zscore", "none"),
            "encoding.score": ("correlation", "r2")}
_APPEND = {"features.sets", "features.params"}


def _fields():
    """(dotted key, field) of every Experiment key that has a flag."""
    from ..experiment.config import SECTIONS

    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            if f.metadata.get("flag"):
                yield f"{section}.{f.name}", f


def _default_text(f) -> str:
    if f.default is dataclasses.MISSING or f.default in (None, "") or "default" in f.metadata["help"]:
        return ""
    if isinstance(f.default, bool):
        return f" (default: {'on' if f.default else 'off'})"
    if isinstance(f.default, tuple):
        return ""
    return f" (default: {f.default})"


def register(subparsers) -> None:
    p = subparsers.add_parser("fit", help="fit encoding models for feature SPECs",
                              description=__doc__, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter,
                              argument_default=argparse.SUPPRESS)
    p.add_argument("config", nargs="?", metavar="CONFIG.toml",
                   help="run config (TOML); every flag given on the command line overrides it")
    p.add_argument("--subject", action="append", dest="dataset.subjects", metavar="SUBJECT",
                   help="subject whose responses are modelled (repeatable; 'all': every subject)")
    for dotted, f in _fields():
        flag = f.metadata["flag"]
        help_ = (f.metadata["help"] + _default_text(f)).replace("%", "%%")  # argparse %-formats help
        kw: dict = {"dest": dotted, "help": help_}
        if f.type != "bool" and dotted not in _CHOICES:
            kw["metavar"] = f.metadata.get("metavar") or f.name.upper()
        if f.type == "bool":
            kw["action"] = argparse.BooleanOptionalAction
        elif dotted in _APPEND:
            kw["action"] = "append"
        elif dotted == "dataset.train_stories":
            kw["nargs"] = "+"
        elif dotted in _INT:
            kw["type"] = int
        elif dotted in _FLOAT:
            kw["type"] = float
        if dotted in _CHOICES:
            kw["choices"] = _CHOICES[dotted]
        p.add_argument(flag, **kw)
    p.set_defaults(func=run)


def build_experiment(args: argparse.Namespace):
    """The Experiment of a parsed ``gim-brain fit`` command line (flags override the config).

    Only the flags actually given are in ``args`` (the parser's defaults are suppressed), so a
    flag given with the default's value still overrides the config.
    """
    from ..experiment import Experiment, ExperimentError, parse_alphas, parse_delays, parse_kv

    given = {k: v for k, v in vars(args).items() if "." in k}
    try:
        if "features.params" in given:
            given["features.params"] = parse_kv(given["features.params"])
        if "encoding.alphas" in given:
            given["encoding.alphas"] = parse_alphas(given["encoding.alphas"])
        if "features.delays" in given:
            given["features.delays"] = parse_delays(given["features.delays"])
        config = getattr(args, "config", None)
        if config:
            exp = Experiment.read(config)
            if "features.params" in given:  # key by key: the config's other parameters stay
                given["features.params"] = {**exp.features.params, **given["features.params"]}
            return exp.replace(**given)
        missing = [flag for key, flag in (("dataset.manifest", "--manifest"),
                                          ("dataset.subjects", "--subject"),
                                          ("features.sets", "--features"), ("outputs.out", "--out"))
                   if key not in given]
        if missing:
            raise UsageError(f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
                             f"required (as flags or in a run config: gim-brain fit CONFIG.toml)")
        data: dict = {}
        for key, value in given.items():
            section, name = key.split(".", 1)
            data.setdefault(section, {})[name] = value
        return Experiment.from_dict(data, source="command line")
    except (ExperimentError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None


def run(args) -> int:
    from ..data.manifest import ManifestError
    from ..data.responses import ResponseError
    from ..experiment import ExperimentError, run_experiment

    exp = build_experiment(args)
    try:
        run_ = run_experiment(exp, log=print)
    except ExperimentError as exc:
        raise UsageError(str(exc)) from None
    except (ResponseError, ManifestError, FileNotFoundError) as exc:
        print(f"gim-brain fit: data error: {exc}", file=sys.stderr)
        return 1
    out = run_.out
    if len(run_.subjects) > 1:
        print(f"\n{'feature set':36s} {'subjects':>8s} {'mean r':>8s} {'median r':>9s} {'top-10% r':>10s}")
        for spec, v in run_.summary["cross_subject"].items():
            cells = [v[k] for k in ("mean_r", "median_r", "top10_mean_r")]
            print(f"{spec:36s} {v['n_subjects']:8d} "
                  + " ".join(f"{c:9.4f}" if c is not None else f"{'-':>9s}" for c in cells))
    report = " and " + str(out / "report.html") if exp.outputs.report else ""
    print(f"wrote {out / 'summary.json'}{report}")
    return 0
