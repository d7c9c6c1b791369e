"""``gim-brain fit``: dataset -> feature SPECs -> encoding models -> a run directory."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from .features import add_common_arguments, check_specs, open_dataset, parse_delays, parse_kv
from .main import UsageError

EPILOG = """example:
  gim-brain fit --manifest lebel2023_pca --data-root ../shared/data/lebel2023 --subject UTS03 \\
      --features wordrate --features 'embedding+ar-control' --features 'llm,gim-induction' \\
      --out runs/uts03

SPEC: a space, 'a+b' (concatenated, plain ridge) or 'a,b' (bands, banded ridge); see
`gim-brain features --list`. Test stories are the manifest's (those with words and responses);
every other story with words and responses trains. Writes RUN/summary.json (mean r, top-10% mean r,
significant targets per SPEC), RUN/targets.json and RUN/results/<slug>/. The summary is rewritten
after each SPEC, and --resume reuses SPECs already fitted with the same parameters.
"""


def _targets(ds, subject: str) -> dict:
    db = ds.root / "derivative" / "pycortex-db"
    if (db / subject).is_dir():
        return {"kind": "pycortex_db", "db": str(db), "subject": subject}
    mask = ds.manifest["responses"].get("mask")
    if mask:
        return {"kind": "volume", "mask": str(ds._mask_path(subject)), "subject": subject}
    return {"kind": "components", "reason": "response PCs", "subject": subject}


def _spec_params(spec: str, params: dict) -> dict:
    from ..features import get_space, parse_spec

    names = set()
    for band in parse_spec(spec):
        for ref in band:
            names.update(get_space(ref.name).param_names())
    return {k: v for k, v in params.items() if k in names}


def run(args) -> int:
    from ..encoding import EncodingResult, resolve_backend, write_run
    from ..experiment import fit_feature_set
    from ..features import SpaceContext
    from ..features.registry import FeatureParameterError, UnknownFeatureSpaceError
    from ..lm import LanguageModelNotFoundError

    if args.config:
        from ..runconfig import RunConfigError, apply_run_config

        try:
            args = apply_run_config(args, _parser(), args.config)
        except (RunConfigError, FileNotFoundError) as exc:
            raise UsageError(str(exc)) from None
    if not args.subject or not args.features or not args.out:
        raise UsageError("--subject, --features and --out are required (as flags or in a run "
                         "config: gim-brain fit CONFIG.toml)")
    # cheap checks of every option before opening the dataset or building anything
    if args.n_folds < 2:
        raise UsageError(f"--n-folds must be >= 2 (story-grouped cross-validation), got {args.n_folds}")
    if args.n_permutations < 0:
        raise UsageError(f"--n-permutations must be >= 0 (0: no p-values), got {args.n_permutations}")
    try:
        resolve_backend(args.backend)
    except ValueError as exc:
        raise UsageError(f"--backend: {exc}") from None
    params = parse_kv(args.param)
    parse_delays(args.delays)  # syntax and the 1000-TR bound
    check_specs(list(args.features), params)
    ds = open_dataset(args)
    if args.subject not in ds.subjects():
        raise UsageError(f"unknown subject {args.subject!r}; dataset {ds.name!r} has: "
                         f"{', '.join(ds.subjects())}")
    stories = ds.stories_with_responses(args.subject, require_words=True)
    test = [s for s in ds.test_stories if s in set(stories)]
    dropped = [s for s in ds.test_stories if s not in set(stories)]
    if not test:
        raise UsageError(f"none of the test stories {ds.test_stories} has both words and responses "
                         f"of {args.subject}")
    if args.train_stories:
        bad = [s for s in args.train_stories if s not in set(stories) or s in set(test)]
        if bad:
            raise UsageError(f"--train-stories: {', '.join(bad)} are test stories or lack words or "
                             f"responses of {args.subject}")
        stories = list(dict.fromkeys(list(args.train_stories) + test))
    train = [s for s in stories if s not in set(test)]
    if len(train) < 2:
        raise UsageError(f"need at least 2 training stories with words and responses of "
                         f"{args.subject} (got {len(train)}: {', '.join(train) or 'none'}; "
                         f"--train-stories or the dataset)")
    ctx = SpaceContext(ds, subject=args.subject, progress=not args.no_progress,
                       lm_model=args.model, device=args.device, train_stories=train)
    delays = parse_delays(args.delays, n_rows=min(ctx.story(s).grid.n_rows for s in stories))

    out = Path(args.out)
    parameters = {"manifest": str(args.manifest), "data_root": str(args.data_root),
                  "backend": args.backend, "delays": list(delays), "params": params,
                  "model": args.model, "n_folds": args.n_folds,
                  "n_permutations": args.n_permutations,
                  "train_stories": train,
                  "test_stories_without_data": dropped}
    previous = {}
    if args.resume and (out / "summary.json").is_file():
        old = json.loads((out / "summary.json").read_text())
        if old.get("parameters") == json.loads(json.dumps(parameters)):
            previous = old.get("feature_sets", {})
    Y = {s: ds.load_responses(args.subject, s) for s in stories}
    results = {}
    for spec in args.features:
        if spec in previous:
            results[spec] = EncodingResult.load(out / previous[spec]["result"])
            print(f"{spec}: reused from {out / previous[spec]['result']}")
            continue
        t0 = time.time()
        try:
            result = fit_feature_set(ctx, spec, stories, Y, test, params=_spec_params(spec, params),
                                     delays=delays, backend=args.backend, n_folds=args.n_folds,
                                     n_permutations=args.n_permutations,
                                     progress=not args.no_progress)
        except (FeatureParameterError, UnknownFeatureSpaceError, LanguageModelNotFoundError,
                ValueError) as exc:  # bad --model/--device, a story without words, ...
            done = f"; SPECs fitted so far are in {out / 'summary.json'}" if results else ""
            raise UsageError(f"SPEC {spec!r}: {exc}{done}") from None
        results[spec] = result
        write_run(out, results, subject=args.subject, test_stories=test,  # summary after each SPEC
                  targets=_targets(ds, args.subject), parameters=parameters, save=[spec])
        print(f"{spec}: mean r {result.mean_r():.4f}, top-10% {result.top10_mean_r():.4f} "
              f"({result.provenance['n_features']} features, {time.time() - t0:.0f} s)")
    from ..report import write_report

    print(f"wrote {out / 'summary.json'} and {write_report(out)}")
    return 0


def _parser() -> argparse.ArgumentParser:
    """A fresh ``gim-brain fit`` parser (its defaults tell which flags were given)."""
    sub = argparse.ArgumentParser(prog="gim-brain").add_subparsers()
    register(sub)
    return sub.choices["fit"]


def register(subparsers) -> None:
    p = subparsers.add_parser("fit", help="fit encoding models for feature SPECs",
                              description=__doc__, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", nargs="?", metavar="CONFIG.toml",
                   help="run config (TOML); flags given on the command line override it")
    add_common_arguments(p)
    p.add_argument("--subject", help="subject whose responses are modelled")
    p.add_argument("--features", action="append", metavar="SPEC",
                   help="feature SPEC (repeatable): a space, 'a+b' or 'a,b'")
    p.add_argument("--backend", default="auto", help="himalaya backend: auto, numpy, torch, torch_cuda")
    p.add_argument("--n-folds", type=int, default=5, help="story-grouped CV folds (default 5)")
    p.add_argument("--n-permutations", type=int, default=1000,
                   help="block permutations for p-values (0: none)")
    p.add_argument("--train-stories", nargs="+", metavar="STORY", default=None,
                   help="train on these stories only (default: every non-test story with words "
                        "and responses)")
    p.add_argument("--resume", action="store_true",
                   help="reuse SPECs already in OUT/summary.json fitted with the same parameters")
    p.add_argument("--out", help="run directory")
    p.set_defaults(func=run)
