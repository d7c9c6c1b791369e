"""Distil the fuzzy matching model: a student whose cosine ranks positions like the teacher.

One optimiser step (``TrainConfig.accumulate`` micro-batches): draw ``windows_per_step``
training windows, embed every position with the student (all positions whose context holds at
least ``min_context`` tokens are usable), draw ``queries`` query and ``candidates`` candidate
positions (disjoint), and compare

- the teacher distance ``D`` (symmetrised KL or JSD of the teacher's next-token distributions,
  :mod:`gim_brain.gim.teacher`, by matrix products) and
- the student logits ``S = cos(e_q, e_c) / temperature``.

Loss = ``ce_weight * CE(S, argmin_c D)`` + ``rkl_weight * KL(softmax S ‖ softmax(-D/τ))`` +
``fkl_weight * KL(softmax(-D/τ) ‖ softmax S)`` with τ = ``teacher_temperature``. Optimiser: AdamW
β = (0.9, 0.95), weight decay on tensors with ≥ 2 dimensions, linear warm-up then cosine decay
to ``min_lr``, gradient-norm clip. Validation: fixed held-out query and candidate positions;
recall@1, recall@5 and MRR of the teacher's nearest candidate in the student's ranking.

Every draw is seeded by ``(seed, step, micro-batch)``, the learning rate is a function of the
step, and ``last.pt`` holds the model and optimiser state, so a killed run resumed from
``last.pt`` repeats exactly the steps it would have taken.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from .._cache import atomic_write_bytes, content_key
from .corpus import select_windows, split_windows
from .retokenise import retokenised_teacher_targets, transfer_embedding_table
from .student import (
    FuzzyStudent,
    embedding_digest,
    student_tokenizer_record,
    tokenizer_digest,
)
from .teacher import DISTANCES, TeacherTargets, teacher_distance, teacher_targets

__all__ = ["TrainConfig", "SIZES", "train", "ranking_metrics", "save_checkpoint",
           "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = "gim-brain-fuzzy-student/1"

#: Presets of ``--size``. ``quick``: <= 10 min on 2 CPU cores (teacher included);
#: ``small``: the shipped default; ``full``: the authors' recipe (768 wide, 20k steps).
SIZES = {
    "quick": dict(width=64, depth=2, heads=4, out_dim=64, window=32, steps=300,
                  windows_per_step=32, accumulate=1, queries=128, candidates=512, lr=2e-3,
                  warmup=30, eval_every=50, save_every=25, windows_per_doc=6),
    "small": dict(width=96, depth=4, heads=4, out_dim=128, window=32, steps=2000,
                  windows_per_step=48, accumulate=1, queries=128, candidates=512, lr=1e-3,
                  warmup=100, eval_every=200, save_every=50, windows_per_doc=64),
    "full": dict(width=768, depth=4, heads=12, out_dim=128, window=32, steps=20000,
                 windows_per_step=128, accumulate=4, queries=128, candidates=512, lr=1e-4,
                 warmup=1000, eval_every=500, save_every=250, windows_per_doc=None,
                 embedding="table"),
}


@dataclass
class TrainConfig:
    """Everything that defines a training run (recorded in checkpoints and summary.json)."""

    size: str = "small"
    width: int = 96
    depth: int = 4
    heads: int = 4
    out_dim: int = 128
    window: int = 32
    embedding: str = "projected"
    mlp_ratio: int = 4
    steps: int = 2000
    windows_per_step: int = 48
    accumulate: int = 1
    queries: int = 128
    candidates: int = 512
    lr: float = 1e-3
    min_lr: float = 1e-5
    warmup: int = 100
    weight_decay: float = 0.1
    clip: float = 1.0
    temperature: float = 0.1
    teacher_temperature: float = 1.0
    ce_weight: float = 1.0
    rkl_weight: float = 1.0
    fkl_weight: float = 0.0
    distance: str = "skl"
    top_k: int = 64
    min_context: int = 8
    windows_per_doc: int | None = 64
    val_fraction: float = 0.04
    val_queries: int = 256
    val_candidates: int = 1024
    eval_every: int = 200
    save_every: int = 50
    seed: int = 0

    def check(self) -> "TrainConfig":
        """Raise ValueError naming the first bad parameter."""
        ints = dict(width=1, depth=1, heads=1, out_dim=1, window=2, mlp_ratio=1, steps=1,
                    windows_per_step=1, accumulate=1, queries=1, candidates=2, warmup=0,
                    top_k=1, min_context=1, val_queries=1, val_candidates=2, eval_every=1,
                    save_every=1)
        for name, low in ints.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"--{name.replace('_', '-')} must be an int >= {low}, got {v!r}")
        if self.windows_per_doc is not None and self.windows_per_doc < 1:
            raise ValueError(f"--windows-per-doc must be >= 1, got {self.windows_per_doc}")
        if self.width % self.heads:
            raise ValueError(f"--width ({self.width}) must be divisible by --heads ({self.heads})")
        if self.min_context > self.window:
            raise ValueError(f"--min-context ({self.min_context}) exceeds --window ({self.window})")
        for name in ("lr", "temperature", "teacher_temperature", "clip"):
            if not getattr(self, name) > 0:
                raise ValueError(f"--{name.replace('_', '-')} must be > 0, got {getattr(self, name)!r}")
        for name in ("min_lr", "weight_decay", "ce_weight", "rkl_weight", "fkl_weight"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)!r}")
        if self.ce_weight + self.rkl_weight + self.fkl_weight == 0:
            raise ValueError("--ce-weight, --rkl-weight and --fkl-weight are all 0: nothing to train")
        if self.distance not in DISTANCES:
            raise ValueError(f"--distance must be one of {DISTANCES}, got {self.distance!r}")
        if self.embedding not in ("projected", "table"):
            raise ValueError(f"embedding must be 'projected' or 'table', got {self.embedding!r}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"--val-fraction must be in (0, 1), got {self.val_fraction}")
        return self

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Learning rate of optimiser step ``step`` (1-based): linear warm-up, cosine to ``min_lr``."""
    if cfg.warmup and step <= cfg.warmup:
        return cfg.lr * step / cfg.warmup
    span = max(1, cfg.steps - cfg.warmup)
    frac = min(1.0, (step - cfg.warmup) / span)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1.0 + math.cos(math.pi * frac))


def ranking_metrics(scores: torch.Tensor, target: torch.Tensor) -> dict:
    """recall@1, recall@5 and MRR of ``target`` (m,) in each row of ``scores`` (m, c), best = max."""
    chosen = scores.gather(1, target[:, None])
    rank = 1 + (scores > chosen).sum(1)          # ties counted in the target's favour
    rank = rank.float()
    return {"recall1": float((rank <= 1).float().mean()), "recall5": float((rank <= 5).float().mean()),
            "mrr": float((1.0 / rank).mean())}


def _usable(cfg: TrainConfig) -> np.ndarray:
    return np.arange(cfg.min_context - 1, cfg.window)         # positions with >= min_context tokens


def _draw_positions(rng, n_windows: int, cfg: TrainConfig, n_q: int, n_c: int):
    usable = _usable(cfg)
    total = n_windows * len(usable)
    n_q, n_c = min(n_q, total // 2), min(n_c, total - min(n_q, total // 2))
    flat = rng.choice(total, n_q + n_c, replace=False)
    win, pos = flat // len(usable), usable[flat % len(usable)]
    return (win[:n_q], pos[:n_q]), (win[n_q:], pos[n_q:])


def _loss(cfg, emb_q, emb_c, dist):
    s = emb_q @ emb_c.T / cfg.temperature
    target = dist.argmin(1)
    loss = torch.zeros((), device=s.device)
    parts = {}
    if cfg.ce_weight:
        parts["ce"] = F.cross_entropy(s, target)
        loss = loss + cfg.ce_weight * parts["ce"]
    log_s = F.log_softmax(s, 1)
    log_t = F.log_softmax(-dist / cfg.teacher_temperature, 1)
    if cfg.rkl_weight:
        parts["rkl"] = (log_s.exp() * (log_s - log_t)).sum(1).mean()
        loss = loss + cfg.rkl_weight * parts["rkl"]
    if cfg.fkl_weight:
        parts["fkl"] = (log_t.exp() * (log_t - log_s)).sum(1).mean()
        loss = loss + cfg.fkl_weight * parts["fkl"]
    return loss, {k: float(v.detach()) for k, v in parts.items()}, ranking_metrics(s.detach(), target)


class _Validation:
    """Fixed held-out queries/candidates and their teacher nearest candidates."""

    def __init__(self, cfg, windows, targets: TeacherTargets, device):
        rng = np.random.default_rng([cfg.seed, 11])
        (qw, qp), (cw, cp) = _draw_positions(rng, len(windows), cfg, cfg.val_queries,
                                             cfg.val_candidates)
        self.windows = torch.as_tensor(windows, device=device)
        self.q, self.c = (qw, qp), (cw, cp)
        blocks = []
        cand = targets.take((cw, cp))
        for a in range(0, len(qw), 64):
            blocks.append(teacher_distance(cfg.distance, targets.take((qw[a:a + 64], qp[a:a + 64])),
                                           cand, device=device))
        self.dist = torch.cat(blocks)
        self.target = self.dist.argmin(1)

    @torch.no_grad()
    def __call__(self, model) -> dict:
        was = model.training
        model.eval()
        try:
            emb = torch.cat([model(self.windows[a:a + 256]) for a in range(0, len(self.windows), 256)])
        finally:
            model.train(was)
        eq = emb[torch.as_tensor(self.q[0]), torch.as_tensor(self.q[1])]
        ec = emb[torch.as_tensor(self.c[0]), torch.as_tensor(self.c[1])]
        return ranking_metrics(eq @ ec.T, self.target)


def save_checkpoint(path: Path, model: FuzzyStudent, meta: dict, extra: dict | None = None,
                    dtype: torch.dtype = torch.float32) -> None:
    """Write ``{"format", "model", "model_kwargs", **meta, **extra}`` atomically with torch.save."""
    import io

    state = {k: (v.to(dtype) if v.is_floating_point() else v).detach().cpu().clone()
             for k, v in model.state_dict().items()}
    obj = {"format": CHECKPOINT_FORMAT, "model": state, "model_kwargs": dict(model.kwargs), **meta}
    if extra:
        obj.update(extra)
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def _data_key(windows: np.ndarray, train_idx, val_idx, student_tokenizer=None) -> str:
    if student_tokenizer is None:
        return content_key("fuzzy-train-data", windows, np.asarray(train_idx), np.asarray(val_idx))
    return content_key("fuzzy-train-data", windows, np.asarray(train_idx), np.asarray(val_idx),
                       "student-tokenizer", student_tokenizer.fingerprint)


def train(docs, lm, cfg: TrainConfig, out: Path, names=None, source: dict | None = None,
          tokenizer: str | None = None, teacher_cache=None, teacher_batch_size: int = 16,
          progress: bool = True, argv=None, on_step=None, device=None,
          student_tokenizer=None) -> dict:
    """Train (or resume) a student on tokenised ``docs`` with teacher ``lm``; returns the summary.

    Writes ``out/last.pt`` (model + optimiser, every ``save_every`` steps and at the end),
    ``out/best.pt`` (model of the best validation MRR) and ``out/summary.json``. A run finding
    ``out/last.pt`` of the same configuration and data resumes from it; one of another
    configuration raises ValueError.

    Parameters
    ----------
    docs : list of int arrays
        Token ids (tokenised with the teacher's tokenizer, or with ``student_tokenizer``).
    lm : gim_brain.lm.LanguageModel (duck-typed: see :mod:`gim_brain.gim.teacher`)
    cfg : TrainConfig
    student_tokenizer : gim_brain.gim.tokenizers.Tokenizer or None
        ``None``: the student reads the teacher's tokens. Otherwise ``docs`` are in this
        tokenizer's ids, the teacher is re-tokenised per position
        (:mod:`gim_brain.gim.retokenise`), the student has its own trainable ``(vocab, width)``
        table (``cfg.embedding`` must be ``"table"``), initialised from the teacher's embeddings
        of each token's text, and checkpoints record the tokenizer's name and fingerprint.
    on_step : callable(step, record) or None
        Called after every optimiser step (logging, tests).
    device : torch.device or None
        Student device (default: the teacher's).
    """
    cfg.check()
    if student_tokenizer is not None and cfg.embedding != "table":
        raise ValueError(f"a student tokenizer ({student_tokenizer.name}) other than the teacher's "
                         f"needs its own token table: embedding='table', not {cfg.embedding!r}")
    out = Path(out)
    device = torch.device(device) if device is not None else lm.device
    t_start = time.perf_counter()
    windows, doc_index = select_windows(docs, cfg.window, cfg.windows_per_doc, cfg.seed, names)
    train_idx, val_idx = split_windows(len(windows), cfg.val_fraction, cfg.seed)
    t0 = time.perf_counter()
    if student_tokenizer is None:
        targets = teacher_targets(lm, windows, top_k=cfg.top_k, positions="all",
                                  batch_size=teacher_batch_size, cache=teacher_cache,
                                  progress=progress, desc="teacher targets")
    else:
        targets = retokenised_teacher_targets(lm, windows, student_tokenizer, top_k=cfg.top_k,
                                              batch_size=teacher_batch_size, cache=teacher_cache,
                                              progress=progress)
    teacher_s = time.perf_counter() - t0
    table = lm.model.get_input_embeddings().weight.detach().float()
    meta = {"teacher": {"name": lm.name, "fingerprint": getattr(lm, "fingerprint", lm.name),
                        "embedding_digest": embedding_digest(table),
                        "vocab_size": int(lm.vocab_size)},
            "tokenizer": tokenizer, "tokenizer_digest": tokenizer_digest(lm.tokenizer),
            "distance": cfg.distance, "temperature": cfg.temperature, "config": cfg.as_dict()}
    student_vocab, init_table = int(lm.vocab_size), table
    if student_tokenizer is not None:
        meta["tokenizer"] = student_tokenizer.label
        meta["tokenizer_digest"] = tokenizer_digest(student_tokenizer.hf)
        meta["student_tokenizer"] = student_tokenizer_record(student_tokenizer)
        student_vocab = int(student_tokenizer.vocab_size)
        init_table = transfer_embedding_table(student_tokenizer, lm.tokenizer, table)
    data_key = _data_key(windows, train_idx, val_idx, student_tokenizer)

    torch.manual_seed(cfg.seed)
    model = FuzzyStudent(student_vocab, cfg.width, cfg.depth, cfg.heads, cfg.out_dim,
                         cfg.window, teacher_dim=table.shape[1], embedding=cfg.embedding,
                         mlp_ratio=cfg.mlp_ratio)
    model.init_from_teacher(init_table)
    model.to(device)
    opt = torch.optim.AdamW(model.decay_groups(cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.95))
    validate = _Validation(cfg, windows[val_idx], targets.take(val_idx), device)
    history, step, best = [], 0, None
    last_path, best_path = out / "last.pt", out / "best.pt"
    if last_path.is_file():
        try:
            state = torch.load(last_path, map_location=device, weights_only=True)
        except Exception as exc:
            raise ValueError(f"cannot resume: {last_path} is not a readable checkpoint ({exc}); "
                             f"delete it or use another --out") from exc
        if state.get("config") != cfg.as_dict() or state.get("data_key") != data_key:
            raise ValueError(f"{out} holds a run with other settings or data ({last_path}): "
                             f"use another --out, or the same command as that run")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, history, best = int(state["step"]), list(state["history"]), state.get("best")
    train_windows = torch.as_tensor(windows[train_idx], device=device)
    train_targets = targets.take(train_idx)
    out.mkdir(parents=True, exist_ok=True)
    if step == 0:
        history.append({"step": 0, "val": validate(model)})

    def save_last():
        save_checkpoint(last_path, model, meta, {"optimizer": opt.state_dict(), "step": step,
                                                 "history": history, "best": best,
                                                 "data_key": data_key})

    bar = None
    if progress and step < cfg.steps:
        from tqdm.auto import tqdm
        bar = tqdm(total=cfg.steps, initial=step, desc="train-fuzzy", unit="step")
    t_train = time.perf_counter()
    model.train()
    while step < cfg.steps:
        step += 1
        lr = lr_at(cfg, step)
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad(set_to_none=True)
        record = {"step": step, "lr": lr, "loss": 0.0}
        for micro in range(cfg.accumulate):
            rng = np.random.default_rng([cfg.seed, step, micro])
            pick = rng.choice(len(train_idx), min(cfg.windows_per_step, len(train_idx)), replace=False)
            (qw, qp), (cw, cp) = _draw_positions(rng, len(pick), cfg, cfg.queries, cfg.candidates)
            with torch.no_grad():
                dist = teacher_distance(cfg.distance, train_targets.take((pick[qw], qp)),
                                        train_targets.take((pick[cw], cp)), device=device)
            emb = model(train_windows[torch.as_tensor(pick, device=device)])
            loss, parts, metrics = _loss(cfg, emb[qw, qp], emb[cw, cp], dist)
            (loss / cfg.accumulate).backward()
            record["loss"] += float(loss.detach()) / cfg.accumulate
            for k, v in {**parts, **{f"train_{m}": x for m, x in metrics.items()}}.items():
                record[k] = record.get(k, 0.0) + v / cfg.accumulate
        record["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip))
        opt.step()
        if step % cfg.eval_every == 0 or step == cfg.steps:
            record["val"] = validate(model)
            if best is None or record["val"]["mrr"] > best["val"]["mrr"]:
                best = {"step": step, "val": record["val"]}
                save_checkpoint(best_path, model, meta, {"step": step, "val": record["val"]})
        history.append(record)
        if step % cfg.save_every == 0 or step == cfg.steps:
            save_last()
        if bar is not None:
            post = {"loss": f"{record['loss']:.3f}"}
            if "val" in record:
                post["val_mrr"] = f"{record['val']['mrr']:.3f}"
            bar.set_postfix(post)
            bar.update(1)
        if on_step is not None:
            on_step(step, record)
    if bar is not None:
        bar.close()
    if not best_path.is_file():  # resumed after the last step, or steps ended before any eval
        save_checkpoint(best_path, model, meta, {"step": step, "val": validate(model)})
    evals = [h for h in history if "val" in h]
    summary = {
        "format": CHECKPOINT_FORMAT, "command": argv, "config": cfg.as_dict(),
        "model_kwargs": dict(model.kwargs),
        "n_parameters": int(sum(p.numel() for p in model.parameters())),
        "teacher": meta["teacher"], "tokenizer": meta["tokenizer"],
        **({"student_tokenizer": meta["student_tokenizer"]} if student_tokenizer is not None else {}),
        "distance": cfg.distance,
        "source": source or {}, "n_documents": len(docs),
        "n_windows": {"train": int(len(train_idx)), "val": int(len(val_idx))},
        "positions_per_window": int(len(_usable(cfg))),
        "steps": step, "best_step": best["step"] if best else None,
        "best": best["val"] if best else None, "final": evals[-1]["val"] if evals else None,
        "random_baseline": {"recall1": 1.0 / min(cfg.val_candidates, validate.dist.shape[1]),
                            "n_val_queries": int(validate.dist.shape[0]),
                            "n_val_candidates": int(validate.dist.shape[1])},
        "validation_curve": [{"step": h["step"], **h["val"]} for h in evals],
        "train_curve": [{k: h[k] for k in ("step", "loss", "lr") if k in h}
                        for h in history if h["step"] and (h["step"] % max(1, cfg.steps // 100) == 0)],
        "seconds": {"teacher_targets": teacher_s, "training_this_run": time.perf_counter() - t_train,
                    "total_this_run": time.perf_counter() - t_start},
        "device": str(device),
    }
    atomic_write_bytes(out / "summary.json", json.dumps(summary, indent=1).encode())
    return summary
