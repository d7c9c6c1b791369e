"""Fuzzy matching: embed every position from its own W-token window once, weight earlier positions.

For a query position ``t`` and every earlier position ``j < t`` (which has the following token
``ids[j+1]``), the weight is ``w_j = exp(-(1 - sim(e_j, e_t)) / T)``; each weight goes to
``ids[j+1]`` and the result is normalised (GIM step 3). Embeddings depend only on a window, so a
document is embedded once and each query costs one row of a similarity matrix.

Embedders follow the :class:`PositionEmbedder` protocol: ``embed(ids (n,)) -> float32 (n, d)``,
``similarity(queries (m, d), keys (k, d)) -> (m, k)`` with 1 = identical, plus ``name``,
``window`` and ``cache_parts()``. Three backends are provided:

``distilled`` (:class:`DistilledEmbedder`, the default)
    GIM's own fuzzy model: a small windowed transformer distilled from the teacher LM so that
    its cosine ranks positions like the teacher's next-token distributions
    (:mod:`gim_brain.gim.student`, trained by ``gim-brain train-fuzzy``). The package ships a
    default checkpoint (:data:`DEFAULT_CHECKPOINT`); the cache key holds its weights' digest.

``lm-hidden`` (:class:`LMHiddenEmbedder`)
    L2-normalised hidden state of one LM layer at the last token of the window; similarity is
    the cosine.
``lm-distribution`` (:class:`LMDistributionEmbedder`)
    The LM's top-k next-token distribution over the window; similarity ``1 - SKL(p, q)`` with
    the authors' **symmetrised KL** in nats (weight ``exp(-SKL/T)``; their ``exp(-SKL)`` is
    ``T = 1``), or ``1 - JSD/ln 2`` with ``distance="jsd"``. Memory-bounded (top-k rows, tiled
    similarities). The teacher a distilled model imitates; slower.

Any other object with the protocol's members plugs into :class:`~gim_brain.gim.GIM`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from .._cache import NpzCache, content_key
from .distributions import SparseDistributions
from .exact import check_token_ids

__all__ = ["PositionEmbedder", "LMHiddenEmbedder", "LMDistributionEmbedder", "DistilledEmbedder",
           "DEFAULT_CHECKPOINT", "DEFAULT_EMBEDDER", "make_embedder",
           "embed_document", "FuzzyResult", "fuzzy_distributions", "EMBEDDERS"]


@runtime_checkable
class PositionEmbedder(Protocol):
    """What GIM needs from a position embedder."""

    name: str
    window: int

    def embed(self, ids: np.ndarray) -> np.ndarray:
        """float32 ``(n, d)``: representation of each position from ``ids[max(0,t-W+1):t+1]``."""

    def similarity(self, queries: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """``(m, k)`` similarities, 1 for identical representations."""

    def cache_parts(self) -> dict:
        """JSON-like description identifying the embedder (weights included) for cache keys."""


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norm > 0, norm, 1.0)).astype(np.float32)


def _check_window(window) -> int:
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
        raise ValueError(f"window must be a positive int (tokens), got {window!r}")
    return int(window)


class LMHiddenEmbedder:
    """``lm-hidden``: hidden state of ``layer`` at the window's last token, L2-normalised.

    Parameters
    ----------
    lm : object with ``window_hidden_states(ids, window, layer, batch_size)``, ``name``,
        ``vocab_size`` (a :class:`gim_brain.lm.LanguageModel`).
    layer : int
        LM layer (0 = input embeddings; the pass stops after this block).
    window : int
        W, tokens per window.
    batch_size : int
        Windows per forward pass.
    """

    name = "lm-hidden"

    def __init__(self, lm, layer: int = 4, window: int = 32, batch_size: int = 64):
        self.lm = lm
        self.layer = layer
        self.window = _check_window(window)
        self.batch_size = batch_size

    @property
    def vocab_size(self) -> int:
        return int(self.lm.vocab_size)

    def embed(self, ids) -> np.ndarray:
        ids = check_token_ids(ids, self.vocab_size)
        return _l2_normalise(self.lm.window_hidden_states(ids, self.window, self.layer,
                                                          batch_size=self.batch_size))

    def similarity(self, queries: np.ndarray, keys: np.ndarray) -> np.ndarray:
        return queries @ keys.T

    def cache_parts(self) -> dict:
        return {"embedder": self.name, "lm": getattr(self.lm, "fingerprint", self.lm.name),
                "layer": self.layer, "window": self.window}


class LMDistributionEmbedder:
    """``lm-distribution``: the LM's next-token distribution over the window, top-k sparse.

    Each position's representation is its window's top-``top_k`` next-token distribution, packed
    into one float32 row ``[ids (k) | log-probs (k) | log rest mass (1)]`` (``d = 2k + 1``; ids
    are exact in float32 below 2**24); the mass outside the top k is spread evenly over the other
    ``vocab - k`` tokens, as for the distillation teacher (:mod:`gim_brain.gim.teacher`).

    ``distance="skl"`` (default, the authors' choice): symmetrised KL
    ``½(KL(p‖q) + KL(q‖p))`` in nats by :func:`gim_brain.gim.teacher.skl_matrix` (two matrix
    products), ``similarity = 1 - SKL``, so the fuzzy weight ``exp(-(1 - sim)/T)`` is
    ``exp(-SKL/T)``: the authors' ``exp(-SKL)`` at ``T = 1``. ``distance="jsd"``: Jensen-Shannon
    (:func:`~gim_brain.gim.teacher.jsd_matrix`), ``similarity = 1 - JSD/ln 2`` in [0, 1].

    Memory is bounded independently of the document length: the LM's ``(rows, vocab)``
    log-probabilities are read ``chunk`` positions at a time and reduced to top k at once, and
    similarities are computed in ``block x block`` tiles whose dense union holds at most
    ``2 * block * (2 * block * k)`` float32 values per tensor (``benchmarks/gim_skl_memory.py``).

    Parameters
    ----------
    lm : object with ``window_next_token_logprobs(ids, window, batch_size)``, ``name``,
        ``vocab_size``.
    window : int
    top_k : int or None
        Tokens kept per position; ``None`` keeps ``vocab - 1`` (the last token carries the exact
        remaining mass, so the distribution is exact; large: ``2 * vocab`` floats per position).
    batch_size : int
        Windows per LM pass.
    distance : {"skl", "jsd"}
    chunk : int
        Positions whose full-vocabulary log-probabilities are held at once.
    block : int
        Query / key rows per similarity tile.
    """

    name = "lm-distribution"

    def __init__(self, lm, window: int = 32, top_k: int | None = 64, batch_size: int = 64,
                 distance: str = "skl", chunk: int = 128, block: int = 128):
        from .teacher import DISTANCES

        if distance not in DISTANCES:
            raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")
        self.lm = lm
        self.window = _check_window(window)
        vocab = int(lm.vocab_size)
        k = vocab - 1 if top_k is None else int(top_k)
        if not 1 <= k < vocab:
            raise ValueError(f"top_k must be in 1..{vocab - 1} (or None), got {top_k!r}")
        self.top_k = top_k
        self._k = k
        self.batch_size = batch_size
        self.distance = distance
        self.chunk = max(1, int(chunk))
        self.block = max(1, int(block))

    @property
    def vocab_size(self) -> int:
        return int(self.lm.vocab_size)

    def embed(self, ids) -> np.ndarray:
        """float32 ``(n, 2k + 1)``: packed top-k distribution of each position's W-token window."""
        import torch

        from .teacher import _rest_log

        ids = check_token_ids(ids, self.vocab_size)
        n, k, W = len(ids), self._k, self.window
        out = np.empty((n, 2 * k + 1), dtype=np.float32)
        for a in range(0, n, self.chunk):
            b = min(n, a + self.chunk)
            lo = max(0, a - W + 1)       # rows >= a of ids[lo:b] read the same windows as in ids
            logp = self.lm.window_next_token_logprobs(ids[lo:b], W, batch_size=self.batch_size)
            val, idx = torch.topk(torch.from_numpy(np.ascontiguousarray(logp[a - lo:])), k, dim=-1)
            out[a:b, :k] = idx.numpy()
            out[a:b, k:2 * k] = val.numpy()
            out[a:b, 2 * k] = _rest_log(val).numpy()
        return out

    def _targets(self, rows: np.ndarray):
        from .teacher import TeacherTargets

        k = self._k
        if rows.ndim != 2 or rows.shape[1] != 2 * k + 1:
            raise ValueError(f"lm-distribution representations must be (n, {2 * k + 1}) rows "
                             f"(top_k={k}), got shape {rows.shape}")
        return TeacherTargets(rows[:, :k].astype(np.int64), rows[:, k:2 * k].astype(np.float32),
                              rows[:, 2 * k].astype(np.float32), self.vocab_size)

    def distances(self, queries: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """float32 ``(m, n_keys)``: SKL (nats) or JSD (nats) between packed rows, tile by tile."""
        from .teacher import jsd_matrix, skl_matrix

        q, kk = self._targets(np.asarray(queries)), self._targets(np.asarray(keys))
        out = np.empty((len(q.ids), len(kk.ids)), dtype=np.float32)
        fn = skl_matrix if self.distance == "skl" else jsd_matrix
        s = self.block
        for a in range(0, len(q.ids), s):
            qa = q.take(slice(a, a + s))
            for c in range(0, len(kk.ids), s):
                out[a:a + s, c:c + s] = fn(qa, kk.take(slice(c, c + s))).numpy()
        return out

    def similarity(self, queries: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """``1 - SKL`` (``distance="skl"``) or ``1 - JSD/ln 2`` (``"jsd"``), float32 ``(m, k)``."""
        d = self.distances(queries, keys)
        if self.distance == "jsd":
            return (1.0 - np.clip(d, 0.0, np.log(2)) / np.log(2)).astype(np.float32)
        return (1.0 - d).astype(np.float32)

    def cache_parts(self) -> dict:
        return {"embedder": self.name, "lm": getattr(self.lm, "fingerprint", self.lm.name),
                "window": self.window, "top_k": self._k, "format": "packed-top-k"}


#: The distilled fuzzy model shipped with the package (see gim_brain/gim/README.md).
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "fuzzy_default.pt"


class DistilledEmbedder:
    """``distilled``: GIM's distilled fuzzy model; cosine of its L2-normalised outputs.

    Parameters
    ----------
    lm : object or None
        The teacher-side LM (a :class:`gim_brain.lm.LanguageModel`) whose tokenizer produced the
        ids: its input embeddings feed ``projected`` checkpoints (digest checked) and its
        tokenizer must be the checkpoint's. ``None`` only for ``table`` checkpoints.
    tokenizer : gim_brain.gim.tokenizers.Tokenizer or None
        The tokenizer that produced the ids when it is not ``lm``'s (``lm-eval --tokenizer``);
        must be the checkpoint's. A checkpoint trained with ``train-fuzzy --student-tokenizer``
        records its tokenizer's name and fingerprint and reads that tokenizer's ids
        (:attr:`tokenizer`); it needs no LM.
    checkpoint : path or None
        A ``train-fuzzy`` checkpoint (``best.pt``), or one in the authors' layout (``model`` +
        ``model_kwargs``, optional ``module.`` prefixes); ``None``: :data:`DEFAULT_CHECKPOINT`.
    device : str, torch.device or None
        Where the student runs (default: the LM's device, else CPU).
    batch_size : int
        Windows per student pass.

    Raises
    ------
    gim_brain.gim.student.CheckpointError
        Missing or corrupt checkpoint, or one whose tokenizer / teacher embeddings differ from
        ``lm``'s or ``tokenizer`` (the message names the file and both tokenizers).
    """

    name = "distilled"

    def __init__(self, lm=None, checkpoint=None, device=None, batch_size: int = 64,
                 tokenizer=None):
        import torch

        from .student import CheckpointError, build_student, read_checkpoint, tokenizer_digest

        path = Path(checkpoint) if checkpoint is not None else DEFAULT_CHECKPOINT
        ckpt = read_checkpoint(path)
        self.checkpoint = path
        self.digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        self.meta = {k: v for k, v in ckpt.items() if k not in ("model", "optimizer", "history")}
        self._tokenizer = tokenizer
        self._lm = lm
        own = ckpt.get("student_tokenizer")
        if isinstance(own, dict) and own.get("fingerprint"):
            self._check_own_tokenizer(path, own, tokenizer, lm)
            lm = None                    # a table checkpoint on its own vocabulary: no LM needed
        want_tok = ckpt.get("tokenizer_digest")
        if tokenizer is not None and want_tok is not None and not own:
            got_tok = tokenizer_digest(tokenizer.hf)
            if got_tok != want_tok:
                raise CheckpointError(
                    f"fuzzy checkpoint {path} was trained with tokenizer {ckpt.get('tokenizer')!r} "
                    f"(vocabulary digest {want_tok}), but the text is tokenised by "
                    f"{tokenizer.name!r} (digest {got_tok}): use --tokenizer of that checkpoint, "
                    f"or train one with gim-brain train-fuzzy --student-tokenizer {tokenizer.name}")
        if lm is not None and want_tok is not None and not own:
            got_tok = tokenizer_digest(lm.tokenizer)
            if got_tok != want_tok:
                raise CheckpointError(
                    f"fuzzy checkpoint {path} was trained with tokenizer {ckpt.get('tokenizer')!r} "
                    f"(vocabulary digest {want_tok}), but the text is tokenised by {lm.name!r} "
                    f"(digest {got_tok}): use the checkpoint's teacher LM (--model) or train a "
                    f"checkpoint for this tokenizer with gim-brain train-fuzzy")
        vocab = int(ckpt["model_kwargs"].get("vocab_size", 0))
        if lm is not None and vocab and vocab != int(lm.vocab_size):
            raise CheckpointError(f"fuzzy checkpoint {path} has a vocabulary of {vocab} tokens; "
                                  f"the LM {lm.name!r} has {lm.vocab_size}")
        table = None
        if lm is not None and ckpt["model_kwargs"].get("embedding", "projected") == "projected":
            table = lm.model.get_input_embeddings().weight.detach().float().cpu()
        self.model = build_student(ckpt, table)
        if device is None:
            device = getattr(self._lm, "device", None) or "cpu"
        self.model.to(torch.device(device))
        self.window = int(self.model.window)
        self._vocab_size = vocab or None
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size

    @staticmethod
    def _check_own_tokenizer(path, own: dict, tokenizer, lm) -> None:
        from .student import CheckpointError
        from .tokenizers import Tokenizer

        if tokenizer is None and lm is not None:
            tokenizer = Tokenizer.from_hf(lm.tokenizer, name=getattr(lm, "name", None))
        if tokenizer is not None and tokenizer.fingerprint != own["fingerprint"]:
            raise CheckpointError(
                f"fuzzy checkpoint {path} was trained with student tokenizer {own.get('name')!r} "
                f"(fingerprint {str(own['fingerprint'])[:12]}), but the text is tokenised by "
                f"{tokenizer.name!r} (fingerprint {tokenizer.fingerprint[:12]}): match with "
                f"--tokenizer {own.get('name')} or use a checkpoint trained on {tokenizer.name!r}")

    @property
    def tokenizer(self):
        """The :class:`~gim_brain.gim.tokenizers.Tokenizer` whose ids this model reads (or None).

        A ``--student-tokenizer`` checkpoint: the tokenizer given, else the one its recorded name
        loads (fingerprint checked). Otherwise the one given, else the LM's.
        """
        if self._tokenizer is not None:
            return self._tokenizer
        own = self.meta.get("student_tokenizer")
        if isinstance(own, dict) and own.get("fingerprint"):
            from .student import CheckpointError
            from .tokenizers import TokenizerNotFoundError, load_tokenizer

            try:
                tok = load_tokenizer(str(own.get("name")))
            except (TokenizerNotFoundError, OSError, ValueError) as exc:
                raise CheckpointError(f"fuzzy checkpoint {self.checkpoint}: cannot load its "
                                      f"tokenizer {own.get('name')!r} ({exc})") from None
            self._check_own_tokenizer(self.checkpoint, own, tok, None)
            self._tokenizer = tok
        elif self._lm is not None:
            from .tokenizers import Tokenizer

            self._tokenizer = Tokenizer.from_hf(self._lm.tokenizer)
        return self._tokenizer

    @property
    def vocab_size(self):
        return self._vocab_size

    def embed(self, ids) -> np.ndarray:
        ids = check_token_ids(ids, self._vocab_size)
        return self.model.embed_document(ids, batch_size=self.batch_size)

    def similarity(self, queries: np.ndarray, keys: np.ndarray) -> np.ndarray:
        return queries @ keys.T

    def cache_parts(self) -> dict:
        return {"embedder": self.name, "weights": self.digest, "window": self.window}


EMBEDDERS = {"distilled": DistilledEmbedder, "lm-hidden": LMHiddenEmbedder,
             "lm-distribution": LMDistributionEmbedder}
#: The fuzzy backend used when none is named.
DEFAULT_EMBEDDER = "distilled"


def make_embedder(kind: str, lm, **params) -> PositionEmbedder:
    """Build an embedder by name (``"distilled"``, ``"lm-hidden"`` or ``"lm-distribution"``)."""
    if kind not in EMBEDDERS:
        raise ValueError(f"unknown fuzzy embedder {kind!r}; choose one of {sorted(EMBEDDERS)}")
    return EMBEDDERS[kind](lm, **params)


def embed_document(embedder: PositionEmbedder, ids, cache: NpzCache | None = None,
                   return_cached: bool = False):
    """Embed a document once, through an optional content-keyed cache.

    With ``return_cached=True`` returns ``(embeddings, came_from_cache)``.
    """
    ids = check_token_ids(ids)
    found = None
    if cache is not None:
        key = content_key("gim-fuzzy-embedding", embedder.cache_parts(), ids)
        found = cache.load(key)
    if found is not None:
        emb = found["e"]
    else:
        emb = embedder.embed(ids)
        if cache is not None:
            cache.save(key, {"e": emb})
    return (emb, found is not None) if return_cached else emb


class FuzzyResult:
    """Fuzzy distributions of every position plus what explanations need.

    Attributes
    ----------
    distributions : SparseDistributions
        Row ``t``: weights ``exp(-(1 - sim)/T)`` of positions ``j < t`` given to ``ids[j+1]``.
    max_similarity : float32 (n,)
        Highest similarity to an earlier position (NaN at t = 0).
    """

    def __init__(self, distributions, max_similarity, embeddings, embedder, temperature, ids):
        self.distributions = distributions
        self.max_similarity = max_similarity
        self.embeddings = embeddings
        self.embedder = embedder
        self.temperature = temperature
        self.ids = ids

    def neighbours(self, t: int, k: int = 5) -> list[tuple[int, float, float]]:
        """Top ``k`` earlier positions of ``t``: ``(j, similarity, normalised weight)``, best first."""
        if t == 0:
            return []
        sim = self.embedder.similarity(self.embeddings[t:t + 1], self.embeddings[:t])[0]
        w = np.exp(-(1.0 - sim.astype(np.float64)) / self.temperature)
        w /= w.sum()
        order = np.argsort(-w, kind="stable")[:k]
        return [(int(j), float(sim[j]), float(w[j])) for j in order]


def fuzzy_distributions(ids: np.ndarray, embeddings: np.ndarray, embedder: PositionEmbedder,
                        temperature: float = 0.1, block: int = 512) -> FuzzyResult:
    """Fuzzy next-token distributions of all positions from precomputed embeddings.

    Parameters
    ----------
    ids : int64 (n,)
    embeddings : (n, d)
        ``embedder.embed(ids)`` (or rows of the embedding of a longer document that contains it).
    temperature : float
        T > 0 (0.1 in the paper).
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    n = len(ids)
    if len(embeddings) != n:
        raise ValueError(f"embeddings have {len(embeddings)} rows for a document of {n} tokens")
    # local vocabulary of following tokens ids[1:]
    local, inverse = np.unique(ids[1:], return_inverse=True) if n > 1 else (np.zeros(0, np.int64), np.zeros(0, np.int64))
    max_sim = np.full(n, np.nan, dtype=np.float32)
    rows: list[tuple[np.ndarray, np.ndarray]] = [(np.zeros(0, np.int64), np.zeros(0))]
    for a in range(1, n, block):
        b = min(n, a + block)
        sim = np.asarray(embedder.similarity(embeddings[a:b], embeddings[:b - 1]), dtype=np.float64)
        tri = np.arange(b - 1)[None, :] < np.arange(a, b)[:, None]  # key j < query t
        max_sim[a:b] = np.where(tri, sim, -np.inf).max(1)
        w = np.where(tri, np.exp(-(1.0 - sim) / temperature), 0.0)
        onehot = np.zeros((b - 1, len(local)))
        onehot[np.arange(b - 1), inverse[:b - 1]] = 1.0
        mass = w @ onehot
        mass /= mass.sum(1, keepdims=True)
        for r in mass:
            nz = np.flatnonzero(r)
            rows.append((local[nz], r[nz]))
    return FuzzyResult(SparseDistributions.stack_rows(rows), max_sim, embeddings, embedder,
                       temperature, ids)
