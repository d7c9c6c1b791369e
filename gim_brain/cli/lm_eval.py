"""``gim-brain lm-eval``: next-token accuracy of GIM, its components and the LM on text files."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from .main import UsageError, read_text_file

EPILOG = """example:
  gim-brain lm-eval --text story1.txt story2.txt --reference-corpus kjv.txt \\
      --context 1024 --tau 8 --json results.json                  # fuzzy: shipped distilled model
  gim-brain lm-eval --text story1.txt --fuzzy lm-hidden --layer 4 --window 32
  gim-brain lm-eval --text story1.txt --fuzzy distilled --fuzzy-checkpoint runs/fuzzy/best.pt

Each --text file is one document, tokenised with the LM's tokenizer. Contexts of --context
tokens at stride --context/2; strict top-1 breaks ties to the smallest token id, lenient top-1
accepts any tied maximum. The reference index is built once per (corpus files, tokenizer) and
cached under the gim-brain cache folder.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "lm-eval", help="next-token accuracy of GIM vs exact/fuzzy/reference-only and the LM",
        description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", nargs="+", required=True, metavar="FILE", help="documents to evaluate")
    p.add_argument("--model", default=None, metavar="ID_OR_PATH",
                   help="LM (hub id, folder or .gguf); default: the offline SmolLM2-135M")
    p.add_argument("--reference-corpus", nargs="+", default=(), metavar="FILE",
                   help="text files of the reference corpus (Infini-gram baseline)")
    p.add_argument("--context", type=int, default=1024, help="tokens per context (default 1024)")
    p.add_argument("--json", type=Path, default=None, metavar="OUT", help="write results here")
    p.add_argument("--tau", type=int, default=8, help="exact-match threshold in tokens (default 8)")
    p.add_argument("--temperature", type=float, default=0.1, help="fuzzy temperature T (0.1)")
    p.add_argument("--fuzzy", choices=("distilled", "lm-hidden", "lm-distribution", "none"),
                   default="distilled",
                   help="fuzzy similarity backend (default distilled: the shipped distilled model)")
    p.add_argument("--fuzzy-checkpoint", type=Path, default=None, metavar="PATH",
                   help="checkpoint for --fuzzy distilled (train-fuzzy's best.pt or the authors' "
                        "layout); default: the one shipped in gim_brain/gim")
    p.add_argument("--layer", type=int, default=4, help="LM layer for lm-hidden (default 4)")
    p.add_argument("--window", type=int, default=None,
                   help="fuzzy window W in tokens (default 32; distilled: the checkpoint's W)")
    p.add_argument("--methods", default="gim,exact,fuzzy,reference,lm",
                   help="comma-separated subset of gim,exact,fuzzy,reference,lm")
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


def reference_index_for(files, lm, progress: bool = True):
    """Build (or reuse from the cache) the suffix-array index of text ``files`` for ``lm``'s tokenizer."""
    import hashlib

    from .._cache import cache_dir, content_key
    from ..gim.reference import ReferenceIndex, ReferenceIndexError, build_reference_index

    tok = tokenizer_name(lm)
    digests = []
    for f in files:
        read_text_file(Path(f), "reference corpus file")
        digests.append(hashlib.sha256(Path(f).read_bytes()).hexdigest())
    folder = cache_dir("gim-reference") / content_key("reference-index", tok, digests)
    if (folder / "header.json").is_file():
        try:
            return ReferenceIndex(folder, tokenizer_name=tok, vocab_size=lm.vocab_size)
        except ReferenceIndexError as exc:
            print(f"rebuilding reference index ({exc})")
    docs = [lm.encode(Path(f).read_text(encoding="utf-8")) for f in files]
    return build_reference_index(docs, folder, tokenizer_name=tok, vocab_size=lm.vocab_size,
                                 sources=[str(Path(f).resolve()) for f in files])


def run(args) -> int:
    from .._cache import NpzCache
    from ..gim import GIM, make_embedder
    from ..gim.evaluate import METHODS, evaluate_documents
    from ..lm import load_lm

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = sorted(set(methods) - set(METHODS))
    if bad:
        raise UsageError(f"--methods: unknown method(s) {bad}; choose from {', '.join(METHODS)}")
    if args.context < 2:
        raise UsageError(f"--context must be >= 2 tokens, got {args.context}")
    for flag, value in (("--window", args.window), ("--batch-size", args.batch_size),
                        ("--max-tokens", args.max_tokens)):
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be >= 1, got {value}")
    if args.fuzzy_checkpoint is not None and args.fuzzy != "distilled":
        raise UsageError(f"--fuzzy-checkpoint is for --fuzzy distilled, not --fuzzy {args.fuzzy}")
    if args.fuzzy in ("lm-hidden", "lm-distribution") and args.window is None:
        args.window = 32
    if args.fuzzy != "none" and args.window is not None and args.context < args.window:
        raise UsageError(f"--context ({args.context} tokens) is shorter than the fuzzy window "
                         f"--window ({args.window})")
    if args.tau < 1:
        raise UsageError(f"--tau must be >= 1, got {args.tau}")
    if not args.temperature > 0:
        raise UsageError(f"--temperature must be > 0, got {args.temperature}")
    texts = [read_text_file(Path(f), "--text file") for f in args.text]
    try:
        lm = load_lm(args.model, device=args.device)
    except (FileNotFoundError, ValueError) as exc:  # missing model path, unusable --device
        raise UsageError(f"--model {args.model or '(offline default)'} --device {args.device}: "
                         f"{exc}") from exc
    docs = []
    for f, text in zip(args.text, texts):
        ids = lm.encode(text)
        if args.max_tokens is not None:
            ids = ids[:args.max_tokens]
        if len(ids) < 2:
            raise UsageError(f"--text file {f} has {len(ids)} token(s); need at least 2")
        docs.append(ids)
    t0 = time.perf_counter()
    reference = reference_index_for(args.reference_corpus, lm) if args.reference_corpus else None
    ref_s = time.perf_counter() - t0
    embedder = None
    try:
        if args.fuzzy == "distilled":
            from ..gim import CheckpointError, DistilledEmbedder
            try:
                embedder = DistilledEmbedder(lm, checkpoint=args.fuzzy_checkpoint,
                                             batch_size=args.batch_size)
            except CheckpointError as exc:
                raise UsageError(f"--fuzzy-checkpoint: {exc}") from exc
            if args.window is not None and args.window != embedder.window:
                raise UsageError(f"--window {args.window}: the distilled checkpoint "
                                 f"{embedder.checkpoint} was trained with W={embedder.window}; "
                                 f"omit --window or train a checkpoint with that W")
            args.window = embedder.window
            if args.context < args.window:
                raise UsageError(f"--context ({args.context} tokens) is shorter than the fuzzy "
                                 f"window W={args.window} of {embedder.checkpoint}")
        elif args.fuzzy == "lm-hidden":
            lm.check_layer(args.layer)  # a bad --layer fails here, not after the exact pass
            embedder = make_embedder("lm-hidden", lm, layer=args.layer, window=args.window,
                                     batch_size=args.batch_size)
        elif args.fuzzy == "lm-distribution":
            embedder = make_embedder("lm-distribution", lm, window=args.window,
                                     batch_size=args.batch_size)
    except ValueError as exc:
        raise UsageError(f"--fuzzy {args.fuzzy} --layer {args.layer}: {exc}") from exc
    gim = GIM(embedder=embedder, reference=reference, tau=args.tau, temperature=args.temperature,
              vocab_size=lm.vocab_size, decode=lm.decode, cache=NpzCache(namespace="gim-fuzzy"))
    try:
        result = evaluate_documents(docs, gim, lm=lm if "lm" in methods else None,
                                    context=args.context, methods=methods,
                                    names=[str(f) for f in args.text],
                                    progress=not args.no_progress)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    result["config"] = {
        "texts": [str(f) for f in args.text], "n_tokens": [int(len(d)) for d in docs],
        "model": lm.name, "tokenizer": tokenizer_name(lm), "tau": args.tau,
        "temperature": args.temperature, "fuzzy": args.fuzzy, "layer": args.layer,
        "fuzzy_checkpoint": (str(embedder.checkpoint) if args.fuzzy == "distilled" else None),
        "fuzzy_weights": (embedder.digest if args.fuzzy == "distilled" else None),
        "window": args.window, "max_tokens": args.max_tokens,
        "reference_corpus": [str(f) for f in args.reference_corpus],
        "reference_tokens": reference.n_tokens if reference is not None else 0,
        "reference_index_seconds": ref_s}
    print(f"{'method':<10} {'top1':>7} {'lenient':>8} {'tokens/s':>10}")
    for m, r in result["methods"].items():
        print(f"{m:<10} {r['top1']:7.4f} {r['top1_lenient']:8.4f} {r['tokens_per_s']:10.1f}")
    if "gim" in result["methods"]:
        usage = result["methods"]["gim"].get("branch_usage", {})
        print("gim branches: " + ", ".join(f"{b} {v:.1%}" for b, v in usage.items()))
    print(f"n_predictions {result['n_predictions']} in {result['n_documents']} document(s)")
    if args.json is not None:
        from .._cache import atomic_write_bytes
        atomic_write_bytes(args.json, json.dumps(result, indent=1).encode())
        print(f"wrote {args.json}")
    return 0
