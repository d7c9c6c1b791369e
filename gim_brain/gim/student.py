"""The distilled fuzzy matching model: a small windowed transformer with relative positions.

Architecture (the authors' design, GIM.md): token embeddings, ``depth`` pre-LN blocks whose
self-attention is causal, limited to the last ``window`` (W) tokens and uses relative position
embeddings on keys and values (Shaw et al.) clipped at ±W, no absolute positions, a final layer
norm ``ln_f``, a bias-free linear head to ``out_dim`` and L2 normalisation. The embedding of a
position depends only on its own W-token window: :meth:`FuzzyStudent.embed_document` reads
every window separately (batched), so embedding a document at once equals embedding each window
alone.

Token embeddings, two modes (``embedding=``):

``"projected"`` (default)
    The teacher LM's input-embedding table, frozen and not stored in checkpoints, times a
    trained ``(teacher_dim, width)`` projection initialised from the table's top principal
    directions (identity when ``width == teacher_dim``). Keeps a narrow student with a 49k-token
    vocabulary small on disk; checkpoints record the table's digest to verify it at load.
``"table"``
    A trainable ``(vocab, width)`` table (the authors' layout), initialised as the teacher table
    times that projection.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["FuzzyStudent", "embedding_digest", "tokenizer_digest", "initial_projection",
           "student_tokenizer_record"]


def embedding_digest(table: torch.Tensor | np.ndarray) -> str:
    """SHA-256 (first 16 hex digits) of a float32 copy of an embedding table."""
    arr = table.detach().float().cpu().numpy() if isinstance(table, torch.Tensor) else np.asarray(table, np.float32)
    h = hashlib.sha256(str(arr.shape).encode())
    h.update(np.ascontiguousarray(arr, dtype=np.float32).tobytes())
    return h.hexdigest()[:16]


def tokenizer_digest(tokenizer) -> str:
    """SHA-256 (first 16 hex digits) of a tokenizer's vocabulary (``get_vocab()``, sorted)."""
    import json

    items = sorted((str(k), int(v)) for k, v in tokenizer.get_vocab().items())
    return hashlib.sha256(json.dumps(items).encode()).hexdigest()[:16]


def student_tokenizer_record(tokenizer) -> dict:
    """What a checkpoint records of a student tokenizer other than the teacher's.

    ``{"name", "fingerprint", "vocab_size"}`` of a :class:`gim_brain.gim.tokenizers.Tokenizer`
    (``name`` is the spec for ``gpt2`` / ``smollm2``, a folder's name otherwise).
    """
    return {"name": str(tokenizer.name), "fingerprint": str(tokenizer.fingerprint),
            "vocab_size": int(tokenizer.vocab_size)}


def initial_projection(table: torch.Tensor, width: int) -> torch.Tensor:
    """``(teacher_dim, width)`` projection onto the table's top principal directions.

    Scaled so projected embeddings keep the table's overall scale; padded with zeros (identity on
    the first ``teacher_dim`` columns) when ``width > teacher_dim``.
    """
    table = table.detach().float()
    dim = table.shape[1]
    if width >= dim:
        out = torch.zeros(dim, width)
        out[:, :dim] = torch.eye(dim)
        return out
    centred = table - table.mean(0, keepdim=True)
    cov = centred.T @ centred / max(1, len(table) - 1)
    _, vecs = torch.linalg.eigh(cov.double())
    top = vecs[:, -width:].flip(1).float()           # (dim, width), largest variance first
    return top * math.sqrt(dim / width)


class _WindowAttention(nn.Module):
    def __init__(self, width: int, heads: int, window: int):
        super().__init__()
        if width % heads:
            raise ValueError(f"width ({width}) must be divisible by heads ({heads})")
        self.heads, self.window, self.head_dim = heads, window, width // heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.rel_k = nn.Parameter(torch.randn(2 * window + 1, self.head_dim) * 0.02)
        self.rel_v = nn.Parameter(torch.randn(2 * window + 1, self.head_dim) * 0.02)

    def forward(self, x: torch.Tensor | None, last_only: bool = False,
                qkv: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` (b, n, width) normed input, or its projections ``qkv`` (b, n, 3 width) given."""
        if qkv is None and last_only:   # keys/values of all positions, the query of the last
            w = self.qkv.weight.shape[1]
            kv = F.linear(x, self.qkv.weight[w:], self.qkv.bias[w:])
            qv = F.linear(x[:, -1:], self.qkv.weight[:w], self.qkv.bias[:w])
            b, n, _ = x.shape
            k, v = kv.view(b, n, 2, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
            q = qv.view(b, 1, self.heads, self.head_dim).transpose(1, 2)
        else:
            qkv = self.qkv(x) if qkv is None else qkv
            b, n, _ = qkv.shape
            q, k, v = qkv.view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
            if last_only:
                q = q[:, :, -1:]
        width = self.heads * self.head_dim
        pos = torch.arange(n, device=q.device)
        qpos = pos[-1:] if last_only else pos
        offset = pos[None, :] - qpos[:, None]                           # j - i, (m, n)
        rel = offset.clamp(-self.window, self.window) + self.window
        allowed = (offset <= 0) & (offset > -self.window)               # causal, last W tokens
        rk = self.rel_k[rel]                                            # (m, n, hd)
        scores = q @ k.transpose(-1, -2) + torch.einsum("bhid,ijd->bhij", q, rk)
        scores = scores / math.sqrt(self.head_dim)
        scores = scores.masked_fill(~allowed, float("-inf"))
        att = torch.softmax(scores, dim=-1)
        out = att @ v + torch.einsum("bhij,ijd->bhid", att, self.rel_v[rel])
        return self.proj(out.transpose(1, 2).reshape(b, len(qpos), width))


class _Block(nn.Module):
    def __init__(self, width: int, heads: int, window: int, mlp_ratio: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = _WindowAttention(width, heads, window)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, mlp_ratio * width), nn.GELU(approximate="tanh"),
                                 nn.Linear(mlp_ratio * width, width))

    def forward(self, x: torch.Tensor, last_only: bool = False,
                qkv: torch.Tensor | None = None) -> torch.Tensor:
        """``qkv``: ``attn.qkv(ln_1(x))`` when already known (token-wise in the first block)."""
        h = self.attn(self.ln_1(x) if qkv is None else None, last_only, qkv=qkv)
        x = (x[:, -1:] if last_only else x) + h
        return x + self.mlp(self.ln_2(x))


class FuzzyStudent(nn.Module):
    """Windowed relative-position transformer; L2-normalised ``out_dim`` outputs.

    Parameters
    ----------
    vocab_size : int
    width, depth, heads, out_dim : int
        Model width, number of blocks, attention heads, output size.
    window : int
        W: each position attends to itself and the W-1 tokens before it; relative positions are
        clipped at ±W.
    teacher_dim : int
        Width of the teacher's input embeddings.
    embedding : {"projected", "table"}
        See the module docstring.
    mlp_ratio : int
        MLP hidden size / width.
    """

    def __init__(self, vocab_size: int, width: int = 128, depth: int = 4, heads: int = 4,
                 out_dim: int = 128, window: int = 32, teacher_dim: int = 576,
                 embedding: str = "projected", mlp_ratio: int = 4):
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("width", width), ("depth", depth),
                            ("heads", heads), ("out_dim", out_dim), ("window", window),
                            ("teacher_dim", teacher_dim), ("mlp_ratio", mlp_ratio)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if embedding not in ("projected", "table"):
            raise ValueError(f"embedding must be 'projected' or 'table', got {embedding!r}")
        self.kwargs = dict(vocab_size=int(vocab_size), width=int(width), depth=int(depth),
                           heads=int(heads), out_dim=int(out_dim), window=int(window),
                           teacher_dim=int(teacher_dim), embedding=embedding,
                           mlp_ratio=int(mlp_ratio))
        self.window = int(window)
        self.embedding = embedding
        if embedding == "projected":
            self.register_buffer("teacher_embedding", torch.zeros(vocab_size, teacher_dim),
                                 persistent=False)
            self.embed_proj = nn.Linear(teacher_dim, width, bias=False)
        else:
            self.tok_emb = nn.Embedding(vocab_size, width)
        self.blocks = nn.ModuleList(_Block(width, heads, window, mlp_ratio) for _ in range(depth))
        self.ln_f = nn.LayerNorm(width)
        self.head = nn.Linear(width, out_dim, bias=False)
        self._table_cache = None

    # ------------------------------------------------------------------ embeddings
    def init_from_teacher(self, table: torch.Tensor) -> None:
        """Initialise token embeddings from the teacher's ``(vocab, teacher_dim)`` table."""
        table = table.detach().float()
        if tuple(table.shape) != (self.kwargs["vocab_size"], self.kwargs["teacher_dim"]):
            raise ValueError(f"teacher embedding table has shape {tuple(table.shape)}, expected "
                             f"({self.kwargs['vocab_size']}, {self.kwargs['teacher_dim']})")
        proj = initial_projection(table, self.kwargs["width"])
        with torch.no_grad():
            if self.embedding == "projected":
                self.set_teacher_embedding(table)
                self.embed_proj.weight.copy_(proj.T)
            else:
                self.tok_emb.weight.copy_(table @ proj)

    def set_teacher_embedding(self, table: torch.Tensor) -> None:
        """Attach the frozen teacher table (``projected`` mode; not part of the state dict)."""
        if self.embedding != "projected":
            return
        table = table.detach().float()
        if tuple(table.shape) != tuple(self.teacher_embedding.shape):
            raise ValueError(f"teacher embedding table has shape {tuple(table.shape)}, expected "
                             f"{tuple(self.teacher_embedding.shape)}")
        self.teacher_embedding = table.to(self.teacher_embedding.device)
        self._table_cache = None

    def token_table(self) -> torch.Tensor:
        """The effective ``(vocab, width)`` token-embedding table (projected mode: E @ P)."""
        if self.embedding == "table":
            return self.tok_emb.weight
        return self.embed_proj(self.teacher_embedding)

    def _embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        if self.embedding == "table":
            return self.tok_emb(ids)
        if not self.training and not torch.is_grad_enabled():
            key = (self.embed_proj.weight._version, self.embed_proj.weight.data_ptr(),
                   self.teacher_embedding.data_ptr(), self.embed_proj.weight.dtype)
            if self._table_cache is None or self._table_cache[0] != key:
                self._table_cache = (key, self.token_table())
            return F.embedding(ids, self._table_cache[1])
        return self.embed_proj(F.embedding(ids, self.teacher_embedding))

    # ------------------------------------------------------------------ passes
    def forward(self, ids: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """L2-normalised outputs ``(batch, length, out_dim)`` of causal windowed reading of ``ids``.

        Position ``i`` of a row reads ``row[max(0, i-W+1):i+1]`` in every block. With
        ``last_only`` only the last position is computed, ``(batch, out_dim)``.
        """
        return self._rest(self._embed_tokens(ids), start=0, last_only=last_only)

    def _rest(self, x: torch.Tensor, start: int, last_only: bool) -> torch.Tensor:
        """Blocks ``start..`` then ``ln_f``, head and L2 normalisation."""
        for i in range(start, len(self.blocks)):
            x = self.blocks[i](x, last_only=last_only and i == len(self.blocks) - 1)
        out = F.normalize(self.head(self.ln_f(x)), dim=-1)
        return out[:, -1] if last_only else out

    @torch.no_grad()
    def embed_document(self, ids, batch_size: int = 64) -> np.ndarray:
        """float32 ``(n, out_dim)``: position ``t`` from ``ids[max(0, t-W+1):t+1]`` alone.

        The first W positions come from one causal pass over ``ids[:W]`` (their windows are its
        prefixes); every later position from its own W-token window, ``batch_size`` per pass.
        """
        was_training = self.training
        self.eval()
        try:
            dev = next(self.parameters()).device
            arr = torch.as_tensor(np.asarray(ids, dtype=np.int64), device=dev)
            n, w = len(arr), self.window
            out = torch.empty(n, self.kwargs["out_dim"], device=dev)
            if n == 0:
                return out.cpu().numpy()
            head = min(n, w)
            out[:head] = self.forward(arr[None, :head])[0]
            if n > w:
                # the first block's input and its q/k/v projections depend on the token alone
                # (no absolute positions): computed once per token, then gathered per window
                first = self.blocks[0]
                x_doc = self._embed_tokens(arr)
                qkv_doc = first.attn.qkv(first.ln_1(x_doc))
                windows = torch.arange(n, device=dev).unfold(0, w, 1)[1:]   # t-W+1..t, t >= W
                for a in range(0, len(windows), batch_size):
                    rows = windows[a:a + batch_size]
                    x = first(x_doc[rows], last_only=len(self.blocks) == 1, qkv=qkv_doc[rows])
                    out[w + a:w + a + batch_size] = self._rest(x, start=1, last_only=True)
            return out.float().cpu().numpy()
        finally:
            self.train(was_training)

    def decay_groups(self, weight_decay: float) -> list[dict]:
        """AdamW parameter groups: weight decay on tensors with >= 2 dimensions only."""
        params = [p for p in self.parameters() if p.requires_grad]
        return [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
                {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]


# ---------------------------------------------------------------------------- checkpoints
class CheckpointError(ValueError):
    """A fuzzy-model checkpoint that is missing, unreadable or does not fit (names the file)."""


#: Other spellings of ``model_kwargs`` keys accepted from checkpoints (nanoGPT-style names).
_KWARG_ALIASES = {"n_layer": "depth", "n_head": "heads", "n_embd": "width", "block_size": "window",
                  "window_size": "window", "output_dim": "out_dim", "n_out": "out_dim"}


def read_checkpoint(path) -> dict:
    """Load a checkpoint file: ``{"model": state_dict, "model_kwargs": {...}, ...}``.

    Accepts the authors' layout (``model`` + ``model_kwargs``), keys prefixed by ``module.``
    (DistributedDataParallel) and nanoGPT-style kwarg names. Raises :class:`CheckpointError`.
    """
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"fuzzy checkpoint {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"fuzzy checkpoint {path} is not a readable torch checkpoint "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("model"), dict) \
            or not isinstance(obj.get("model_kwargs"), dict):
        raise CheckpointError(f"fuzzy checkpoint {path} has no 'model' state dict and "
                              f"'model_kwargs' (not a distilled fuzzy model checkpoint)")
    state = {}
    for k, v in obj["model"].items():
        state[k[len("module."):] if k.startswith("module.") else k] = v
    kwargs = {}
    for k, v in obj["model_kwargs"].items():
        kwargs[_KWARG_ALIASES.get(k, k)] = v
    known = set(FuzzyStudent.__init__.__code__.co_varnames[1:FuzzyStudent.__init__.__code__.co_argcount])
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise CheckpointError(f"fuzzy checkpoint {path}: unknown model_kwargs {unknown} "
                              f"(expected some of {sorted(known)})")
    if "embedding" not in kwargs:
        kwargs["embedding"] = "projected" if "embed_proj.weight" in state else "table"
    if kwargs["embedding"] == "table" and "tok_emb.weight" in state:
        kwargs.setdefault("vocab_size", int(state["tok_emb.weight"].shape[0]))
        kwargs.setdefault("teacher_dim", int(state["tok_emb.weight"].shape[1]))
    return {**obj, "model": state, "model_kwargs": kwargs, "path": str(path)}


def build_student(ckpt: dict, teacher_table: torch.Tensor | None = None) -> FuzzyStudent:
    """The :class:`FuzzyStudent` of a :func:`read_checkpoint` dict, weights loaded (float32).

    ``projected`` checkpoints need ``teacher_table``, the teacher's input embeddings, whose
    digest must equal the one the checkpoint recorded.
    """
    path = ckpt.get("path", "(checkpoint)")
    try:
        model = FuzzyStudent(**ckpt["model_kwargs"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"fuzzy checkpoint {path}: bad model_kwargs ({exc})") from None
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in ckpt["model"].items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"fuzzy checkpoint {path}: weights do not match its model_kwargs "
                              f"({str(exc).splitlines()[0]})") from None
    if model.embedding == "projected":
        if teacher_table is None:
            raise CheckpointError(f"fuzzy checkpoint {path} stores a projection of the teacher's "
                                  f"input embeddings: pass the teacher LM to load it")
        want = (ckpt.get("teacher") or {}).get("embedding_digest")
        got = embedding_digest(teacher_table)
        if want is not None and want != got:
            raise CheckpointError(
                f"fuzzy checkpoint {path} was trained on the input embeddings of teacher "
                f"{(ckpt.get('teacher') or {}).get('name')!r} (digest {want}); the LM given has "
                f"digest {got}: use that teacher (--model) or another checkpoint")
        model.set_teacher_embedding(teacher_table)
    model.eval()
    return model
