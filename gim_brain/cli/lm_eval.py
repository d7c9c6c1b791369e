"""``gim-brain lm-eval``: next-token accuracy of GIM, its components and the LM on text files."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from .main import UsageError, read_text_file

EPILOG = """examples:
  gim-brain lm-eval --text story1.txt story2.txt --reference-corpus kjv.txt --json res.json
  gim-brain lm-eval --preset paper-gpt2 --text play.txt --reference-corpus kjv.txt
  gim-brain lm-eval --text story.txt --tau 4,6,8,10 --max-windows 200 --json tau.json   # + tau.png
  gim-brain lm-eval --text story.txt --fuzzy distilled,lm-hidden,lm-distribution --json fz.json
  gim-brain lm-eval --protocol every-token --text story1.txt --fuzzy lm-hidden --layer 4

--protocol paper (default): one target per window of --context (L) tokens, the token after a
full L-token context; windows at stride L/2 in every document of at least L + 1 tokens;
--max-windows N draws N of them at random (--seed). Metrics: strict top-1 (ties to the smallest
token id), equal top-1 (the target shares the maximal probability) and recall@5; by GIM branch
and by exact-match length. --protocol every-token: every token after the first, from contexts
of L tokens at stride L/2 (strict and lenient top-1). A comma-separated list for one of --tau,
--temperature, --window or --fuzzy sweeps it (paper protocol; JSON + a PNG plot, work shared
across points). --preset sets protocol, L, W, T, tau and tokenizer; explicit flags override it.
Text is tokenised with the LM's tokenizer (SmolLM2) unless --tokenizer names another; the fuzzy
model and the LM read SmolLM2 tokens, so with another tokenizer only exact, reference and GIM
without fuzzy run, unless --fuzzy-checkpoint is a distilled model trained on that tokenizer
(train-fuzzy --student-tokenizer): then GIM runs with it (the LM row still needs SmolLM2).
The reference index is built once per (corpus files, tokenizer) and cached.
"""

FUZZY_BACKENDS = ("distilled", "lm-hidden", "lm-distribution", "none")
DEFAULTS = {"protocol": "paper", "context": 1024, "tau": "8", "temperature": "0.1",
            "window": None, "tokenizer": None}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "lm-eval", help="next-token accuracy of GIM vs exact/fuzzy/reference-only and the LM",
        description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", nargs="+", required=True, metavar="FILE", help="documents to evaluate")
    p.add_argument("--protocol", default=None, metavar="NAME",
                   help="paper (default) or every-token")
    p.add_argument("--preset", default=None, metavar="NAME",
                   help="named settings: paper-gpt2, paper-llama2, smollm2-tuned")
    p.add_argument("--model", default=None, metavar="ID_OR_PATH",
                   help="LM (hub id, folder or .gguf); default: the offline SmolLM2-135M")
    p.add_argument("--tokenizer", default=None, metavar="NAME",
                   help="gpt2, smollm2 or a Hugging Face tokenizer folder (default: the LM's)")
    p.add_argument("--reference-corpus", nargs="+", default=(), metavar="FILE",
                   help="text files of the reference corpus (Infini-gram baseline)")
    p.add_argument("--engine", choices=("suffix-array", "infini-gram"), default="suffix-array",
                   help="reference engine (default suffix-array; infini-gram: the PyPI engine)")
    p.add_argument("--context", type=int, default=None, help="L, tokens per context (default 1024)")
    p.add_argument("--max-windows", type=int, default=None, metavar="N",
                   help="paper protocol: evaluate N windows drawn at random (default all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the --max-windows draw (0)")
    p.add_argument("--json", type=Path, default=None, metavar="OUT", help="write results here")
    p.add_argument("--plot", type=Path, default=None, metavar="PNG",
                   help="sweep plot (default: the --json path with .png)")
    p.add_argument("--tau", default=None, metavar="N[,N...]",
                   help="exact-match threshold in tokens (default 8); a list sweeps it")
    p.add_argument("--temperature", default=None, metavar="T[,T...]",
                   help="fuzzy temperature T (default 0.1); a list sweeps it")
    p.add_argument("--fuzzy", default="distilled", metavar="NAME[,NAME...]",
                   help="fuzzy backend: distilled (default, the shipped distilled model), lm-hidden, "
                        "lm-distribution (symmetrised KL) or none; a list compares them")
    p.add_argument("--fuzzy-checkpoint", type=Path, default=None, metavar="PATH",
                   help="checkpoint for --fuzzy distilled (train-fuzzy's best.pt or the authors' "
                        "layout); default: the one shipped in gim_brain/gim")
    p.add_argument("--layer", type=int, default=4, help="LM layer for lm-hidden (default 4)")
    p.add_argument("--window", default=None, metavar="W[,W...]",
                   help="fuzzy window W in tokens (default 32; distilled: the checkpoint's W); "
                        "a list sweeps it (lm-hidden / lm-distribution)")
    p.add_argument("--methods", default=None,
                   help="comma-separated subset of gim,exact,fuzzy,reference,lm (default all)")
    p.add_argument("--max-tokens", type=int, default=None,
                   help="evaluate only the first N tokens of each file")
    p.add_argument("--device", default="auto", help="torch device for the LM (default auto)")
    p.add_argument("--batch-size", type=int, default=64, help="windows per LM pass (default 64)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=run)


def tokenizer_name(lm) -> str:
    """Identity of the LM's tokenizer: its name plus a digest of its vocabulary."""
    from .._cache import content_key

    vocab = lm.tokenizer.get_vocab()
    base = Path(str(getattr(lm.tokenizer, "name_or_path", "") or lm.name)).name or "tokenizer"
    return f"{base}-{content_key(sorted(vocab.items()))[:12]}"


def reference_index_for(files, lm, tokenizer=None, engine: str = "suffix-array"):
    """Open (or build once, cached) the reference index of text ``files`` with ``engine``.

    Tokenised by ``tokenizer`` (a :class:`gim_brain.gim.tokenizers.Tokenizer`), else by ``lm``'s.
    """
    from ..gim.reference import ReferenceIndexError
    from ..gim.reference_engines import cached_reference
    from ..gim.tokenizers import Tokenizer

    for f in files:
        read_text_file(Path(f), "reference corpus file")
    tok = tokenizer if tokenizer is not None else Tokenizer.from_hf(lm.tokenizer)
    try:
        return cached_reference(engine, [str(f) for f in files], tok)
    except (ReferenceIndexError, ValueError) as exc:
        raise UsageError(f"--reference-corpus (--engine {engine}): {exc}") from exc


def _parse_list(flag: str, text, kind, positive: bool = True) -> list:
    if text is None:
        return [None]
    out = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            value = kind(part)
        except ValueError:
            raise UsageError(f"{flag}: {part!r} is not a {kind.__name__}") from None
        if positive and not value > 0:
            raise UsageError(f"{flag} must be {'>= 1' if kind is int else '> 0'}, got {part}")
        out.append(value)
    if not out:
        raise UsageError(f"{flag}: no value given")
    return out


def _settings(args) -> dict:
    """Preset, defaults and explicit flags merged (explicit wins); lists parsed; checked."""
    from ..gim.presets import PresetError, preset_values

    try:
        preset = preset_values(args.preset)
    except PresetError as exc:
        raise UsageError(f"--preset: {exc}") from exc
    pick = lambda name: (getattr(args, name) if getattr(args, name) is not None
                         else preset.get(name, DEFAULTS[name]))
    s = {name: pick(name) for name in DEFAULTS}
    if args.preset == "paper-llama2" and s["tokenizer"] is None:
        raise UsageError("--preset paper-llama2 needs --tokenizer <the LLaMA-2 Hugging Face "
                         "tokenizer folder> (LLaMA-2's tokenizer is not shipped offline)")
    if s["protocol"] not in ("paper", "every-token"):
        raise UsageError(f"--protocol: unknown protocol {s['protocol']!r}; choose paper or every-token")
    if s["context"] < 2:
        raise UsageError(f"--context must be >= 2 tokens, got {s['context']}")
    s["tau"] = _parse_list("--tau", s["tau"], int)
    s["temperature"] = _parse_list("--temperature", s["temperature"], float)
    s["window"] = _parse_list("--window", s["window"], int)
    s["fuzzy"] = [f.strip() for f in args.fuzzy.split(",") if f.strip()]
    bad = [f for f in s["fuzzy"] if f not in FUZZY_BACKENDS]
    if bad or not s["fuzzy"]:
        raise UsageError(f"--fuzzy: unknown backend(s) {bad}; choose from {', '.join(FUZZY_BACKENDS)}")
    if "none" in s["fuzzy"] and len(s["fuzzy"]) > 1:
        raise UsageError("--fuzzy none cannot be part of a backend comparison")
    swept = [n for n in ("tau", "temperature", "window", "fuzzy") if len(s[n]) > 1]
    if len(swept) > 1:
        raise UsageError(f"sweep one parameter at a time (got lists for {', '.join(swept)})")
    s["sweep"] = swept[0] if swept else None
    if s["sweep"] and s["protocol"] != "paper":
        raise UsageError(f"a --{s['sweep']} sweep needs --protocol paper")
    if s["sweep"] == "window" and "distilled" in s["fuzzy"]:
        raise UsageError("--window sweep: the distilled model has the fixed W of its checkpoint; "
                         "sweep W with --fuzzy lm-hidden or lm-distribution")
    return s


def _embedders(args, s, lm, window_from_preset: bool, tokenizer=None):
    """``[(label, embedder)]`` for every fuzzy backend x W of the run.

    ``tokenizer``: the ``--tokenizer`` that is not the LM's (then ``lm`` is None and only a
    distilled checkpoint trained on that tokenizer can run).
    """
    from ..gim import make_embedder

    out = []
    for fz in s["fuzzy"]:
        if fz == "none":
            continue
        for W in s["window"]:
            if fz == "distilled":
                from ..gim import CheckpointError, DistilledEmbedder
                try:
                    emb = DistilledEmbedder(lm, checkpoint=args.fuzzy_checkpoint,
                                            batch_size=args.batch_size, tokenizer=tokenizer)
                except CheckpointError as exc:
                    raise UsageError(f"--fuzzy-checkpoint: {exc}") from exc
                if W is not None and W != emb.window:
                    if not window_from_preset:
                        raise UsageError(f"--window {W}: the distilled checkpoint {emb.checkpoint} "
                                         f"was trained with W={emb.window}; omit --window or "
                                         f"train a checkpoint with that W")
                    print(f"note: --preset {args.preset} has W={W}, but the distilled checkpoint "
                          f"was trained with W={emb.window}: using W={emb.window}")
            else:
                W = 32 if W is None else W
                try:
                    if fz == "lm-hidden":
                        lm.check_layer(args.layer)
                        emb = make_embedder("lm-hidden", lm, layer=args.layer, window=W,
                                            batch_size=args.batch_size)
                    else:
                        emb = make_embedder("lm-distribution", lm, window=W,
                                            batch_size=args.batch_size)
                except ValueError as exc:
                    raise UsageError(f"--fuzzy {fz} --layer {args.layer} --window {W}: {exc}") from exc
            if s["context"] < emb.window:
                raise UsageError(f"--context ({s['context']} tokens) is shorter than the fuzzy "
                                 f"window W={emb.window} of --fuzzy {fz}")
            out.append((f"{fz} W={emb.window}", emb))
    return out


def run(args) -> int:
    from ..gim.evaluate import METHODS

    s = _settings(args)
    methods = ([m.strip() for m in args.methods.split(",") if m.strip()] if args.methods
               else list(METHODS))
    bad = sorted(set(methods) - set(METHODS))
    if bad:
        raise UsageError(f"--methods: unknown method(s) {bad}; choose from {', '.join(METHODS)}")
    for flag, value in (("--batch-size", args.batch_size), ("--max-tokens", args.max_tokens),
                        ("--max-windows", args.max_windows)):
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be >= 1, got {value}")
    if args.max_windows is not None and s["protocol"] != "paper":
        raise UsageError("--max-windows is for --protocol paper")
    if args.fuzzy_checkpoint is not None and "distilled" not in s["fuzzy"]:
        raise UsageError(f"--fuzzy-checkpoint is for --fuzzy distilled, not --fuzzy {args.fuzzy}")
    if s["fuzzy"] != ["none"] and s["window"] != [None] and s["context"] < min(s["window"]):
        raise UsageError(f"--context ({s['context']} tokens) is shorter than the fuzzy window "
                         f"--window ({min(s['window'])})")
    texts = [read_text_file(Path(f), "--text file") for f in args.text]
    foreign = _foreign_tokenizer(s["tokenizer"])
    # a distilled checkpoint trained with train-fuzzy --student-tokenizer reads --tokenizer ids
    own_fuzzy = (foreign is not None and "distilled" in s["fuzzy"]
                 and args.fuzzy_checkpoint is not None)
    if foreign is not None:
        drop = ("lm",) if own_fuzzy else ("fuzzy", "lm")
        dropped = [m for m in methods if m in drop]
        if dropped and args.methods:
            raise UsageError(f"--methods {','.join(dropped)}: the "
                             f"{'LM reads' if own_fuzzy else 'fuzzy model and the LM read'} "
                             f"SmolLM2 tokens, not --tokenizer {s['tokenizer']} ones"
                             + ("" if own_fuzzy else " (a distilled --fuzzy-checkpoint trained "
                                "with train-fuzzy --student-tokenizer reads them)"))
        methods = [m for m in methods if m not in drop]
        if own_fuzzy:
            others = [f for f in s["fuzzy"] if f != "distilled"]
            if others:
                raise UsageError(f"--fuzzy {','.join(others)}: these backends read the LM's "
                                 f"(SmolLM2) tokens, not --tokenizer {s['tokenizer']} ones; "
                                 f"only --fuzzy distilled with --fuzzy-checkpoint runs here")
            print(f"tokenizer {foreign.name}: the LM needs SmolLM2 tokens; evaluating "
                  f"{', '.join(methods)} with the distilled checkpoint {args.fuzzy_checkpoint}")
        else:
            s["fuzzy"] = ["none"]
            print(f"tokenizer {foreign.name}: fuzzy and LM need SmolLM2 tokens; evaluating "
                  f"{', '.join(methods)} (GIM without fuzzy)")
        lm, encode, vocab = None, foreign.encode, foreign.vocab_size
    else:
        from ..lm import load_lm
        try:
            lm = load_lm(args.model, device=args.device)
        except (FileNotFoundError, ValueError) as exc:  # missing model path, unusable --device
            raise UsageError(f"--model {args.model or '(offline default)'} --device {args.device}: "
                             f"{exc}") from exc
        encode, vocab = lm.encode, lm.vocab_size
    embedders = (_embedders(args, s, lm, window_from_preset=args.window is None, tokenizer=foreign)
                 if lm is not None or own_fuzzy else [])
    docs = []
    for f, text in zip(args.text, texts):
        ids = encode(text)
        if args.max_tokens is not None:
            ids = ids[:args.max_tokens]
        if len(ids) < 2:
            raise UsageError(f"--text file {f} has {len(ids)} token(s); need at least 2")
        docs.append(ids)
    if s["protocol"] == "paper" and max(len(d) for d in docs) < s["context"] + 1:
        longest = max(range(len(docs)), key=lambda i: len(docs[i]))
        raise UsageError(f"--protocol paper needs a document of at least L + 1 = "
                         f"{s['context'] + 1} tokens (L = --context {s['context']}); the longest, "
                         f"{args.text[longest]}, has {len(docs[longest])} tokens: lower --context "
                         f"or use --protocol every-token")
    t0 = time.perf_counter()
    reference = (reference_index_for(args.reference_corpus, lm, tokenizer=foreign,
                                     engine=args.engine) if args.reference_corpus else None)
    ref_s = time.perf_counter() - t0
    config = {"protocol": s["protocol"], "preset": args.preset,
              "texts": [str(f) for f in args.text], "n_tokens": [len(d) for d in docs],
              "model": lm.name if lm is not None else None,
              "tokenizer": (tokenizer_name(lm) if foreign is None
                            else f"{foreign.name}-{str(foreign.fingerprint)[:12]}"),
              "context": s["context"], "tau": s["tau"], "temperature": s["temperature"],
              "fuzzy": [label for label, _ in embedders] or ["none"], "layer": args.layer,
              "fuzzy_checkpoint": next((str(e.checkpoint) for _, e in embedders
                                        if e.name == "distilled"), None),
              "fuzzy_weights": next((e.digest for _, e in embedders if e.name == "distilled"), None),
              "max_tokens": args.max_tokens, "sweep": s["sweep"],
              "reference_corpus": [str(f) for f in args.reference_corpus],
              "reference_engine": args.engine if args.reference_corpus else None,
              "reference_tokens": reference.n_tokens if reference is not None else 0,
              "reference_index_seconds": ref_s}
    if s["protocol"] == "every-token":
        result = _every_token(args, s, docs, lm, embedders, reference, methods, vocab)
    else:
        result = _paper(args, s, docs, lm, embedders, reference, methods, vocab)
    result["config"] = config
    if args.json is not None:
        from .._cache import atomic_write_bytes
        atomic_write_bytes(args.json, json.dumps(result, indent=1).encode())
        print(f"wrote {args.json}")
    if s["sweep"]:
        from ..gim.sweep_plot import plot_sweep
        png = args.plot or (args.json.with_suffix(".png") if args.json is not None else None)
        if png is not None:
            print(f"wrote {plot_sweep(result, s['sweep'], png)}")
    return 0


def _foreign_tokenizer(spec):
    """A tokenizer other than the LM's (``None`` for the LM's own / ``smollm2``)."""
    if spec is None or spec == "smollm2":
        return None
    from ..gim.tokenizers import load_tokenizer
    try:
        return load_tokenizer(spec)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--tokenizer {spec}: {exc}") from exc


def _every_token(args, s, docs, lm, embedders, reference, methods, vocab) -> dict:
    from .._cache import NpzCache
    from ..gim import GIM
    from ..gim.evaluate import evaluate_documents

    emb = embedders[0][1] if embedders else None
    gim = GIM(embedder=emb, reference=reference, tau=s["tau"][0],
              temperature=s["temperature"][0], vocab_size=vocab,
              decode=lm.decode if lm is not None else None, cache=NpzCache(namespace="gim-fuzzy"))
    try:
        result = evaluate_documents(docs, gim, lm=lm if "lm" in methods else None,
                                    context=s["context"], methods=methods,
                                    names=[str(f) for f in args.text],
                                    progress=not args.no_progress)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    result["protocol"] = "every-token"
    print(f"protocol every-token (every token after the first; contexts of {s['context']} "
          f"tokens at stride {s['context'] // 2})")
    print(f"{'method':<10} {'top1':>7} {'lenient':>8} {'tokens/s':>10}")
    for m, r in result["methods"].items():
        print(f"{m:<10} {r['top1']:7.4f} {r['top1_lenient']:8.4f} {r['tokens_per_s']:10.1f}")
    if "gim" in result["methods"]:
        usage = result["methods"]["gim"].get("branch_usage", {})
        print("gim branches: " + ", ".join(f"{b} {v:.1%}" for b, v in usage.items()))
    print(f"n_predictions {result['n_predictions']} in {result['n_documents']} document(s)")
    return result


def _paper(args, s, docs, lm, embedders, reference, methods, vocab) -> dict:
    from .._cache import NpzCache
    from ..gim.paper_eval import ProtocolError, evaluate_paper

    try:
        result = evaluate_paper(docs, s["context"], s["tau"], s["temperature"], embedders,
                                reference=reference, lm=lm if "lm" in methods else None,
                                methods=methods, max_windows=args.max_windows, seed=args.seed,
                                names=[str(f) for f in args.text],
                                cache=NpzCache(namespace="gim-fuzzy"), vocab_size=vocab,
                                progress=not args.no_progress)
    except ProtocolError as exc:
        raise UsageError(str(exc)) from exc
    sweep = s["sweep"]
    for p in result["points"]:
        p["sweep_value"] = {"tau": p["tau"], "temperature": p["temperature"],
                            "fuzzy": (p["fuzzy"] or "none").split(" W=")[0],
                            "window": int(p["fuzzy"].split("W=")[1]) if p["fuzzy"] else None,
                            None: None}[sweep]
    if len(result["points"]) == 1:
        result["methods"] = result["points"][0]["methods"]
    print(f"protocol paper: {result['n_windows']} of {result['n_windows_total']} windows "
          f"(L = {s['context']}, stride {s['context'] // 2}, seed {args.seed}) in "
          f"{result['n_documents_with_windows']} of {result['n_documents']} document(s)")
    for p in result["points"]:
        print(f"\n[tau {p['tau']}, T {p['temperature']}, fuzzy {p['fuzzy'] or 'none'}]")
        print(f"{'method':<10} {'top1':>7} {'equal@1':>8} {'recall@5':>9} {'n':>6}")
        for m, r in p["methods"].items():
            print(f"{m:<10} {r['top1']:7.4f} {r['top1_equal']:8.4f} {r['recall5']:9.4f} {r['n']:6d}")
        if "gim" in p["methods"]:
            print("gim branches: " + ", ".join(
                f"{b} {v:.1%} (top1 {p['by_branch'][b]['gim']['top1']:.3f})"
                for b, v in p["branch_usage"].items()))
            print("gim top1 by exact-match length: " + ", ".join(
                f"{b}: {r['gim']['top1']:.3f} (n={r['gim']['n']})"
                for b, r in p["by_match_length"].items()))
    print("predictions/s: " + ", ".join(f"{m} {v:.3g}" for m, v in result["tokens_per_s"].items()))
    return result
