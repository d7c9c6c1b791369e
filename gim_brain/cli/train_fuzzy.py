"""``gim-brain train-fuzzy``: distil GIM's fuzzy matching model from a teacher LM."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .main import UsageError, read_text_file

EPILOG = """examples:
  # quick size (<= 10 min on 2 CPU cores), LeBel training stories only
  gim-brain train-fuzzy --manifest lebel2023_pca --data-root ../shared/data/lebel2023 \\
      --size quick --out runs/fuzzy_quick
  # the authors' full-width recipe (768 wide, 4 layers, 20k steps); runs unchanged on CUDA
  gim-brain train-fuzzy --corpus texts/*.txt --size full --device cuda --out runs/fuzzy_full

Windows: non-overlapping W-token windows of each document (at most --windows-per-doc). With
--manifest only the dataset's training stories are read, and every --corpus file is checked
against its test stories (a shared run of 20 words is an error). The teacher reads each window
once; its top-k next-token log-probabilities at every position are cached (content-keyed,
resumable). Killed runs resume from OUT/last.pt when rerun with the same command.

--student-tokenizer gpt2 (teacher SmolLM2): the student reads GPT-2 tokens; the teacher target of
student position i is SmolLM2's next-token distribution after SmolLM2-encoding the decoded text
of the window's student tokens 0..i (see gim_brain/gim/retokenise.py). The checkpoint records
the tokenizer; use it with lm-eval --tokenizer gpt2 --fuzzy-checkpoint OUT/best.pt.
"""


def register(subparsers) -> None:
    from ..gim.distill import SIZES, TrainConfig

    d = TrainConfig()
    p = subparsers.add_parser(
        "train-fuzzy", help="train the distilled fuzzy matching model (student of a teacher LM)",
        description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", nargs="+", default=(), type=Path, metavar="FILE",
                   help="UTF-8 text files, one document each")
    p.add_argument("--manifest", default=None, help="dataset manifest: read its TRAINING stories")
    p.add_argument("--data-root", type=Path, default=None, help="data folder of --manifest")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="checkpoints (best.pt, last.pt) and summary.json go here")
    p.add_argument("--model", default=None, metavar="ID_OR_PATH",
                   help="teacher LM (hub id, folder or .gguf); default: the offline SmolLM2-135M")
    p.add_argument("--student-tokenizer", default=None, metavar="NAME",
                   help="the student's tokenizer: gpt2, smollm2 or a Hugging Face tokenizer folder "
                        "(default: the teacher's). Another one than the teacher's: windows are cut "
                        "in its tokens, the teacher re-reads each position's text prefix in its "
                        "own tokens, and the student gets its own trainable token table")
    p.add_argument("--size", choices=sorted(SIZES), default="small",
                   help="preset: quick (<= 10 min on 2 CPU cores), small (the shipped default), "
                        "full (the authors' 768-wide recipe)")
    for name, kind, help_ in (
            ("width", int, "student width"), ("depth", int, "student blocks"),
            ("heads", int, "attention heads"), ("out-dim", int, "output size"),
            ("window", int, "W: tokens per window (default 32)"),
            ("steps", int, "optimiser steps"), ("windows-per-step", int, "windows per micro-batch"),
            ("accumulate", int, "micro-batches per optimiser step (gradient accumulation)"),
            ("queries", int, "query positions per micro-batch"),
            ("candidates", int, "candidate positions per micro-batch"),
            ("lr", float, "peak learning rate"), ("warmup", int, "warm-up steps"),
            ("eval-every", int, "validate (and save best.pt) every N steps"),
            ("save-every", int, "write last.pt every N steps")):
        p.add_argument(f"--{name}", type=kind, default=None, help=help_ + " (default: from --size)")
    p.add_argument("--min-lr", type=float, default=d.min_lr, help=f"cosine floor ({d.min_lr})")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay,
                   help=f"AdamW weight decay on >= 2-D tensors ({d.weight_decay})")
    p.add_argument("--clip", type=float, default=d.clip, help=f"gradient-norm clip ({d.clip})")
    p.add_argument("--temperature", type=float, default=d.temperature,
                   help=f"student logits = cosine / T ({d.temperature})")
    p.add_argument("--teacher-temperature", type=float, default=d.teacher_temperature,
                   help=f"teacher logits = -distance / T ({d.teacher_temperature})")
    p.add_argument("--ce-weight", type=float, default=d.ce_weight,
                   help=f"weight of CE toward the teacher's nearest candidate ({d.ce_weight})")
    p.add_argument("--rkl-weight", type=float, default=d.rkl_weight,
                   help=f"weight of reverse KL(student || teacher) ({d.rkl_weight})")
    p.add_argument("--fkl-weight", type=float, default=d.fkl_weight,
                   help=f"weight of forward KL(teacher || student) ({d.fkl_weight})")
    p.add_argument("--distance", choices=("skl", "jsd"), default=d.distance,
                   help="teacher distance: symmetrised KL (default) or Jensen-Shannon")
    p.add_argument("--top-k", type=int, default=d.top_k, help=f"teacher tokens kept ({d.top_k})")
    p.add_argument("--min-context", type=int, default=d.min_context,
                   help=f"positions used have read at least this many tokens ({d.min_context})")
    p.add_argument("--windows-per-doc", type=int, default=None,
                   help="at most this many windows per document (seeded subset; 0 = all; "
                        "default: from --size)")
    p.add_argument("--val-fraction", type=float, default=d.val_fraction,
                   help=f"held-out windows for validation ({d.val_fraction})")
    p.add_argument("--seed", type=int, default=d.seed, help=f"seed ({d.seed})")
    p.add_argument("--device", default="auto", help="torch device for teacher and student (auto)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--teacher-batch-size", type=int, default=16, help="windows per teacher pass")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=run)


def load_corpus(corpus, manifest=None, data_root=None) -> tuple[dict[str, str], dict]:
    """Texts to train on, ``{name: text}``, and a description of where they came from.

    ``--manifest``: the dataset's training stories (test stories are never read, and the names
    are checked). Every ``--corpus`` file is checked against the test stories' text (a shared
    run of 20 words is an error).
    """
    from ..gim.corpus import find_overlap

    texts: dict[str, str] = {}
    source: dict = {"files": [], "manifest": None, "stories": [], "test_stories": []}
    held_out: dict[str, str] = {}
    if manifest is not None:
        from ..data import load_dataset

        if data_root is None:
            raise UsageError("--manifest needs --data-root")
        try:
            ds = load_dataset(manifest, data_root)
            test = list(ds.test_stories)
            train = ds.train_stories()
        except (FileNotFoundError, ValueError) as exc:
            raise UsageError(f"--manifest {manifest} --data-root {data_root}: {exc}") from exc
        leaked = sorted(set(train) & set(test))
        if leaked:  # cannot happen through train_stories; checked because it must never happen
            raise UsageError(f"--manifest {manifest}: test stories {leaked} among the training stories")
        if not train:
            raise UsageError(f"--manifest {manifest} --data-root {data_root}: no training stories with words")
        for s in test:
            if ds.has_words(s):
                held_out[f"test story {s}"] = " ".join(ds.cleaner(ds.load_transcript(s))[0].words)
        for s in train:
            texts[f"story {s}"] = " ".join(ds.cleaner(ds.load_transcript(s))[0].words)
        source.update(manifest=str(manifest), data_root=str(data_root), stories=train,
                      test_stories=test)
    elif data_root is not None:
        raise UsageError("--data-root needs --manifest")
    for f in corpus:
        texts[f"file {f}"] = read_text_file(Path(f), "--corpus file")
        source["files"].append(str(f))
    if not texts:
        raise UsageError("give --corpus FILE... and/or --manifest M --data-root D")
    if held_out:
        overlap = find_overlap({k: v for k, v in texts.items() if k.startswith("file ")}, held_out)
        if overlap:
            where = "; ".join(f"{a} contains {b}" for a, b in overlap)
            raise UsageError(f"the training corpus contains a test story of --manifest {manifest} "
                             f"({where}): remove it from --corpus")
    source["checked_against_test_stories"] = sorted(held_out)
    return texts, source


def _arguments(args) -> dict:
    """The parsed command-line options, JSON-ready (recorded in summary.json)."""
    out = {}
    for k, v in sorted(vars(args).items()):
        if k == "func" or (k == "student_tokenizer" and v is None):   # default runs unchanged
            continue
        if isinstance(v, (list, tuple)):
            v = [str(x) for x in v]
        elif isinstance(v, Path):
            v = str(v)
        out[k] = v
    return {"command": "train-fuzzy", **out}


def _load_student_tokenizer(spec):
    """The ``--student-tokenizer`` (None when not given)."""
    if spec is None:
        return None
    from ..gim.tokenizers import load_tokenizer

    try:
        return load_tokenizer(spec)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--student-tokenizer {spec}: {exc}") from exc


def _foreign_to(tok, lm):
    """``tok`` when it is not the teacher's own tokenizer, else None (the default path)."""
    from ..gim.tokenizers import Tokenizer

    if tok is None or tok.fingerprint == Tokenizer.from_hf(lm.tokenizer).fingerprint:
        return None
    return tok


def run(args) -> int:
    import torch

    from .._cache import NpzCache
    from ..gim.corpus import WindowError
    from ..gim.distill import SIZES, TrainConfig, train
    from ..lm import load_lm
    from .lm_eval import tokenizer_name

    if args.threads is not None:
        if args.threads < 1:
            raise UsageError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    preset = dict(SIZES[args.size])
    for key in ("width", "depth", "heads", "out_dim", "window", "steps", "windows_per_step",
                "accumulate", "queries", "candidates", "lr", "warmup", "eval_every", "save_every"):
        value = getattr(args, key)
        if value is not None:
            preset[key] = value
    if args.windows_per_doc is not None:
        if args.windows_per_doc < 0:
            raise UsageError(f"--windows-per-doc must be >= 0 (0 = all), got {args.windows_per_doc}")
        preset["windows_per_doc"] = args.windows_per_doc or None
    try:
        cfg = TrainConfig(**preset, min_lr=args.min_lr, weight_decay=args.weight_decay,
                          clip=args.clip, temperature=args.temperature,
                          teacher_temperature=args.teacher_temperature, ce_weight=args.ce_weight,
                          rkl_weight=args.rkl_weight, fkl_weight=args.fkl_weight,
                          distance=args.distance, top_k=args.top_k, min_context=args.min_context,
                          val_fraction=args.val_fraction,
                          seed=args.seed, size=args.size)
        cfg.check()
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if args.teacher_batch_size < 1:
        raise UsageError(f"--teacher-batch-size must be >= 1, got {args.teacher_batch_size}")
    student = _load_student_tokenizer(args.student_tokenizer)
    texts, source = load_corpus(args.corpus, args.manifest, args.data_root)
    try:
        lm = load_lm(args.model, device=args.device)
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(f"--model {args.model or '(offline default)'} --device {args.device}: "
                         f"{exc}") from exc
    student = _foreign_to(student, lm)
    if student is not None:
        import dataclasses

        cfg = dataclasses.replace(cfg, embedding="table")   # the teacher's table does not fit
    names = list(texts)
    encode = student.encode if student is not None else lm.encode
    docs = [encode(texts[n]) for n in names]
    source["tokens"] = {n: len(d) for n, d in zip(names, docs)}
    try:
        summary = train(docs, lm, cfg, Path(args.out), names=names, source=source,
                        tokenizer=tokenizer_name(lm) if student is None else student.label,
                        teacher_cache=NpzCache(namespace="gim-teacher"),
                        teacher_batch_size=args.teacher_batch_size, progress=not args.no_progress,
                        argv=_arguments(args), student_tokenizer=student)
    except WindowError as exc:
        raise UsageError(f"--window {cfg.window}: {exc}") from exc
    except ValueError as exc:   # --out holds another run, or an unreadable last.pt
        raise UsageError(f"--out {args.out}: {exc}") from exc
    print(json.dumps({k: summary[k] for k in ("steps", "best_step", "best", "final")}, indent=1))
    print(f"wrote {Path(args.out) / 'best.pt'}, {Path(args.out) / 'last.pt'} and "
          f"{Path(args.out) / 'summary.json'}")
    return 0
