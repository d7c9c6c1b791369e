"""Teacher targets for the distilled fuzzy model: an LM's top-k next-token log-probabilities.

The teacher (any causal LM wrapped by :class:`gim_brain.lm.LanguageModel`, passed in by duck
typing: ``forward(ids, (), final=True)``, ``logprobs_from_final``, ``vocab_size``,
``fingerprint``) reads each W-token window causally. Two readings:

``positions="all"``
    One pass per window gives the distribution at every position ``i`` of the window, having
    read ``window[:i+1]`` (contexts of 1..W tokens; what training uses: W targets per pass).
``positions="last"``
    Only the window's last position (the exact per-window semantics of GIM's fuzzy branch,
    where position ``t`` reads ``ids[t-W+1:t+1]``; what evaluation uses).

Each distribution is kept as its ``top_k`` token ids and log-probabilities plus the log of the
remaining mass ``rest``; the mass outside the top k is spread evenly over the other
``vocab - k`` tokens (:func:`dense_union`). Targets are computed in shards of windows, each
stored in the content-keyed cache under the teacher's fingerprint, ``top_k``, the reading and
the shard's token ids, so an interrupted computation resumes with the shards it finished and a
changed corpus or teacher never reuses stale targets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .._cache import NpzCache, content_key

__all__ = ["TeacherTargets", "teacher_targets", "dense_union", "skl_matrix", "jsd_matrix",
           "teacher_distance", "DISTANCES"]

DISTANCES = ("skl", "jsd")


@dataclass
class TeacherTargets:
    """Top-k next-token distributions of a set of positions.

    Attributes
    ----------
    ids : int32 (..., k)
        Token ids of the k most probable next tokens.
    logp : float32 (..., k)
        Their log-probabilities (nats).
    rest : float32 (...)
        ``log(1 - sum(exp(logp)))``, the log of the mass outside the top k.
    vocab_size : int
    """

    ids: np.ndarray
    logp: np.ndarray
    rest: np.ndarray
    vocab_size: int

    def reshape(self, *shape) -> "TeacherTargets":
        k = self.ids.shape[-1]
        return TeacherTargets(self.ids.reshape(*shape, k), self.logp.reshape(*shape, k),
                              self.rest.reshape(*shape), self.vocab_size)

    def take(self, index) -> "TeacherTargets":
        return TeacherTargets(self.ids[index], self.logp[index], self.rest[index], self.vocab_size)


def _rest_log(logp: torch.Tensor) -> torch.Tensor:
    mass = torch.exp(logp.double()).sum(-1)
    return torch.log(torch.clamp(1.0 - mass, min=1e-12)).float()


@torch.inference_mode()
def _shard_targets(lm, windows: np.ndarray, top_k: int, positions: str, batch_size: int):
    n, w = windows.shape
    shape = (n, w) if positions == "all" else (n,)
    ids = np.empty(shape + (top_k,), np.int32)
    logp = np.empty(shape + (top_k,), np.float32)
    rest = np.empty(shape, np.float32)
    for a in range(0, n, batch_size):
        x = torch.as_tensor(windows[a:a + batch_size], dtype=torch.long)
        _, final = lm.forward(x, (), final=True)
        if positions == "last":
            final = final[:, -1]
        lp = lm.logprobs_from_final(final)
        val, idx = torch.topk(lp, top_k, dim=-1)
        ids[a:a + batch_size] = idx.cpu().numpy()
        logp[a:a + batch_size] = val.float().cpu().numpy()
        rest[a:a + batch_size] = _rest_log(val).cpu().numpy()
    return {"ids": ids, "logp": logp, "rest": rest}


def teacher_targets(lm, windows: np.ndarray, top_k: int = 64, positions: str = "all",
                    batch_size: int = 16, shard_size: int = 128, cache: NpzCache | None = None,
                    progress: bool = False, desc: str = "teacher") -> TeacherTargets:
    """Teacher distributions of W-token windows, computed once and cached per shard.

    Parameters
    ----------
    lm : gim_brain.lm.LanguageModel (duck-typed)
    windows : int (n_windows, W)
        Token ids; each row is read causally from its first token.
    top_k : int
        Tokens kept per distribution.
    positions : {"all", "last"}
        Every position of each window (``(n, W, k)`` arrays) or only the last (``(n, k)``).
    batch_size : int
        Windows per teacher pass.
    shard_size : int
        Windows per cache entry (the unit of resumption).
    cache : NpzCache or None
        Where shards are stored (``None``: nothing is stored).
    """
    windows = np.ascontiguousarray(np.asarray(windows, dtype=np.int64))
    if windows.ndim != 2 or windows.shape[1] < 1:
        raise ValueError(f"windows must be a 2-D (n_windows, W) array of token ids, got shape {windows.shape}")
    if positions not in ("all", "last"):
        raise ValueError(f"positions must be 'all' or 'last', got {positions!r}")
    vocab = int(lm.vocab_size)
    if not 1 <= top_k < vocab:
        raise ValueError(f"top_k must be in 1..{vocab - 1}, got {top_k}")
    if windows.size and (windows.min() < 0 or windows.max() >= vocab):
        raise ValueError(f"token ids must lie in 0..{vocab - 1} (the teacher's vocabulary)")
    teacher_id = getattr(lm, "fingerprint", None) or lm.name
    shape = (0, windows.shape[1]) if positions == "all" else (0,)
    return sharded_targets(
        windows, shard_size, cache, progress, desc, vocab, top_k, shape,
        key=lambda shard: content_key("gim-teacher-targets", teacher_id, int(top_k), positions, shard),
        compute=lambda shard: _shard_targets(lm, shard, top_k, positions, batch_size))


def sharded_targets(windows: np.ndarray, shard_size: int, cache, progress: bool, desc: str,
                    vocab: int, top_k: int, empty_shape: tuple, key, compute) -> TeacherTargets:
    """Teacher targets of ``windows`` computed ``shard_size`` windows at a time, each shard
    looked up in / stored to ``cache`` under ``key(shard)`` (``compute(shard)`` -> dict of
    ``ids``, ``logp``, ``rest``), with a progress bar over windows; ``empty_shape``: the leading
    shape of the arrays when there are no windows."""
    parts = []
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(windows), desc=desc, unit="win")
    for a in range(0, len(windows), shard_size):
        shard = windows[a:a + shard_size]
        entry = key(shard)
        found = cache.load(entry) if cache is not None else None
        if found is None or found["ids"].shape[0] != len(shard):
            found = compute(shard)
            if cache is not None:
                cache.save(entry, found)
        parts.append(found)
        if bar is not None:
            bar.update(len(shard))
    if bar is not None:
        bar.close()
    if not parts:
        return TeacherTargets(np.zeros(empty_shape + (top_k,), np.int32),
                              np.zeros(empty_shape + (top_k,), np.float32),
                              np.zeros(empty_shape, np.float32), vocab)
    return TeacherTargets(np.concatenate([p["ids"] for p in parts]),
                          np.concatenate([p["logp"] for p in parts]).astype(np.float32),
                          np.concatenate([p["rest"] for p in parts]).astype(np.float32), vocab)


# ---------------------------------------------------------------------------- distances
def dense_union(*targets: TeacherTargets, device=None):
    """Dense ``(n, U)`` probabilities and log-probabilities over the union of kept tokens.

    Returns ``(P_list, L_list, floor_logp_list, n_outside)``: for each input (flattened to rows)
    the probabilities ``P`` and log-probabilities ``L`` over the ``U`` union columns (tokens a
    row did not keep get its floor ``rest - log(vocab - k)``), each row's floor log-probability,
    and ``vocab - U``, the number of tokens outside the union (floor for every row).
    """
    vocab = targets[0].vocab_size
    flat = [t.reshape(-1) for t in targets]
    k = flat[0].ids.shape[-1]
    cols, inverse = np.unique(np.concatenate([f.ids.reshape(-1) for f in flat]), return_inverse=True)
    u = len(cols)
    out_p, out_l, floors = [], [], []
    offset = 0
    for f in flat:
        n = f.ids.shape[0]
        floor = torch.as_tensor(f.rest, dtype=torch.float32, device=device) - float(np.log(vocab - k))
        L = floor[:, None].expand(n, u).clone()
        col = torch.as_tensor(inverse[offset:offset + n * k].reshape(n, k), device=device)
        offset += n * k
        L.scatter_(1, col, torch.as_tensor(f.logp, dtype=torch.float32, device=device))
        out_p.append(torch.exp(L))
        out_l.append(L)
        floors.append(floor)
    return out_p, out_l, floors, vocab - u


def skl_matrix(a: TeacherTargets, b: TeacherTargets, device=None) -> torch.Tensor:
    """Symmetrised KL ``½(KL(p‖q) + KL(q‖p))`` (nats) of every row of ``a`` vs every row of ``b``.

    Computed with two matrix products: ``½ Σ_v (p_v - q_v)(log p_v - log q_v) =
    ½ [Σ p log p + Σ q log q - P @ log Qᵀ - log P @ Qᵀ]`` over the union of kept tokens, plus
    the closed-form term of the tokens outside it. Returns float32 ``(n_a, n_b)``.
    """
    (pa, pb), (la, lb), (fa, fb), outside = dense_union(a, b, device=device)
    ha = (pa * la).sum(1)
    hb = (pb * lb).sum(1)
    d = ha[:, None] + hb[None, :] - pa @ lb.T - la @ pb.T
    if outside:
        d = d + outside * (torch.exp(fa)[:, None] - torch.exp(fb)[None, :]) * (fa[:, None] - fb[None, :])
    return torch.clamp(0.5 * d, min=0.0)


def jsd_matrix(a: TeacherTargets, b: TeacherTargets, device=None, max_elements: int = 1 << 24
               ) -> torch.Tensor:
    """Jensen-Shannon divergence (nats) of every row of ``a`` vs every row of ``b``, ``(n_a, n_b)``.

    Not bilinear, so it is computed in blocks of rows of ``a`` whose ``(rows, n_b, U)`` slab
    holds at most ``max_elements`` values (never the full query x candidate x vocabulary tensor).
    """
    (pa, pb), (la, lb), (fa, fb), outside = dense_union(a, b, device=device)
    ha = (pa * la).sum(1)
    hb = (pb * lb).sum(1)
    nb, u = pb.shape
    rows = max(1, max_elements // max(1, nb * u))
    out = torch.empty(pa.shape[0], nb, device=pa.device)
    for s in range(0, pa.shape[0], rows):
        m = 0.5 * (pa[s:s + rows, None, :] + pb[None, :, :])
        mlogm = (m * torch.log(m)).sum(-1)
        if outside:
            mf = 0.5 * (torch.exp(fa[s:s + rows])[:, None] + torch.exp(fb)[None, :])
            mlogm = mlogm + outside * mf * torch.log(mf)
        out[s:s + rows] = mlogm
    if outside:
        ha = ha + outside * torch.exp(fa) * fa
        hb = hb + outside * torch.exp(fb) * fb
    return torch.clamp(0.5 * (ha[:, None] + hb[None, :]) - out, min=0.0)


def teacher_distance(kind: str, a: TeacherTargets, b: TeacherTargets, device=None) -> torch.Tensor:
    """``skl_matrix`` or ``jsd_matrix`` by name."""
    if kind == "skl":
        return skl_matrix(a, b, device=device)
    if kind == "jsd":
        return jsd_matrix(a, b, device=device)
    raise ValueError(f"unknown teacher distance {kind!r}; choose one of {DISTANCES}")
