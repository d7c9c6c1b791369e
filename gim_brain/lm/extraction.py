"""Per-word LM features: contextual hidden states, static embeddings, surprisal, next-token laws.

Definition of a word's context (what "context N, stride S" means everywhere here)
-------------------------------------------------------------------------------------
The story's tokens are the word tokens of :func:`~gim_brain.lm.alignment.align_words`, preceded
by one document-start token (``<|endoftext|>``/BOS) when ``prefix=True``. Let word w own tokens
``[a, b)``. Its context starts at ``c = k*S`` with ``k = max(0, floor((a - N) / S))``: the last
multiple of the stride S that leaves at least N tokens before the word's first token (or the story
start when fewer exist), so every word sees between N and N+S-1 preceding tokens. The word's
features come from ONE causal pass over tokens ``[c, b)``:

- ``hidden[l]``: hidden state at layer l of the word's last token (layer convention of
  :mod:`gim_brain.lm.model`: 0 = input embeddings, l = output of block l);
- ``surprisal``: ``-sum_j log2 p(token_j | tokens[c:j])`` over the word's tokens, in bits (NaN for
  a first word with no preceding token, i.e. ``prefix=False``);
- ``next_token_logprobs``: ``log p(next token | tokens[c:b])`` over the vocabulary;
- ``embeddings``: the mean of the input-embedding rows of the word's tokens (no context).

:func:`word_features_per_word` computes exactly that, one pass per word (slow; the reference).
:func:`word_features` gives the same numbers with one pass per chunk: chunk k covers tokens
``[k*S, max b of its words)`` and serves every word whose context starts at ``k*S``; chunks are
right-padded and batched (causal attention makes right padding exact), passes stop after the
deepest requested block, and the LM head runs only where surprisal/next-token laws are asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .._cache import NpzCache, content_key
from .alignment import align_words
from .model import LanguageModel

__all__ = ["WordFeatures", "word_features", "word_features_per_word", "DEFAULT_CONTEXT_TOKENS"]

DEFAULT_CONTEXT_TOKENS = 256
_LN2 = float(np.log(2.0))


@dataclass
class WordFeatures:
    """LM features of one word sequence.

    Attributes
    ----------
    words : list of str
    token_ids : int64 (n_tokens,)
        The token stream the LM read (document-start token first when ``prefix``).
    spans : int64 (n_words, 2)
        Token span of each word in ``token_ids``.
    context_start : int64 (n_words,)
        First token of each word's context (see the module docstring).
    hidden : dict[int, float32 (n_words, hidden_size)]
        Hidden state of the word's last token per (normalised) layer.
    embeddings : float32 (n_words, hidden_size)
        Mean static input embedding of the word's tokens.
    surprisal : float32 (n_words,) or None
        Bits; present when requested.
    next_token_logprobs : float32 (n_words, vocab_size) or None
        Present when requested.
    params : dict
        Model name, layers, context_tokens, stride, prefix.

    Arrays are float64 instead of float32 when the model itself is float64.
    """

    words: list
    token_ids: np.ndarray
    spans: np.ndarray
    context_start: np.ndarray
    hidden: dict
    embeddings: np.ndarray
    surprisal: np.ndarray | None = None
    next_token_logprobs: np.ndarray | None = None
    params: dict = field(default_factory=dict)


class _Plan:
    """Token stream, word spans and context starts for one story."""

    def __init__(self, lm: LanguageModel, words: Sequence[str], context_tokens: int, stride: int | None,
                 prefix: bool, story: str | None):
        if isinstance(context_tokens, bool) or not isinstance(context_tokens, (int, np.integer)) or context_tokens < 1:
            raise ValueError(f"context_tokens must be a positive int, got {context_tokens!r}")
        stride = context_tokens if stride is None else stride
        if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
            raise ValueError(f"stride must be a positive int, got {stride!r}")
        al = align_words(lm.tokenizer, words, story=story)
        start_id = lm.document_start_id if prefix else None
        pre = [] if start_id is None else [start_id]
        self.words = al.words
        self.ids = np.concatenate([np.asarray(pre, dtype=np.int64), al.ids])
        self.spans = al.spans + len(pre)
        self.N, self.S = int(context_tokens), int(stride)
        a = self.spans[:, 0]
        self.chunk = np.maximum(0, (a - self.N) // self.S)
        self.context_start = self.chunk * self.S
        longest = int((self.spans[:, 1] - self.context_start).max())
        if longest > lm.max_length:
            raise ValueError(f"{'story ' + repr(story) + ': ' if story else ''}context_tokens={self.N} with "
                             f"stride={self.S} needs passes of {longest} tokens, more than {lm.name!r} accepts "
                             f"({lm.max_length}); lower context_tokens or stride")


def _normalise_layers(lm: LanguageModel, layers) -> list[int]:
    if layers is None:
        layers = [lm.n_layers // 2]
    elif isinstance(layers, (int, np.integer)) and not isinstance(layers, bool):
        layers = [layers]
    out = []
    for layer in layers:
        norm = lm.check_layer(layer)
        if norm not in out:
            out.append(norm)
    return out


def _static_embeddings(lm: LanguageModel, plan: _Plan) -> np.ndarray:
    weight = lm.model.get_input_embeddings().weight.detach()
    ids = torch.as_tensor(plan.ids, device=weight.device)
    rows = weight[ids].float().cpu().numpy()
    sums = np.add.reduceat(rows, plan.spans[:, 0], axis=0) if len(plan.spans) else rows[:0]
    # reduceat sums up to the next word's start: spans are contiguous and cover every word token
    counts = (plan.spans[:, 1] - plan.spans[:, 0]).astype(np.float32)
    return (sums / counts[:, None]).astype(np.float32)


def _read_rows(lm: LanguageModel, plan: _Plan, rows: list[tuple[int, int, np.ndarray]], layers: list[int],
               surprisal: bool, next_token: bool, out: dict) -> None:
    """One batched pass over ``rows`` = [(start, end, word indices)], writing the words' features."""
    length = max(end - start for start, end, _ in rows)
    pad = plan.ids[0]
    batch = np.full((len(rows), length), pad, dtype=np.int64)
    for r, (start, end, _) in enumerate(rows):
        batch[r, :end - start] = plan.ids[start:end]
    final_needed = surprisal or next_token
    wide = torch.float64 if _out_dtype(lm) == np.float64 else torch.float32
    hs, final = lm.forward(torch.as_tensor(batch), layers, final=final_needed)
    for r, (start, _end, widx) in enumerate(rows):
        last = plan.spans[widx, 1] - 1 - start
        for layer in layers:
            out["hidden"][layer][widx] = hs[layer][r, torch.as_tensor(last)].to(wide).cpu().numpy()
        if not final_needed:
            continue
        if surprisal:
            pos, tgt, owner = [], [], []
            for w in widx:
                a, b = plan.spans[w]
                for j in range(max(a, 1), b):  # token j predicted from position j-1
                    pos.append(j - 1 - start)
                    tgt.append(plan.ids[j])
                    owner.append(w)
            total = np.zeros(len(widx), dtype=np.float64)
            if pos:
                lp = lm.logprobs_from_final(final[r, torch.as_tensor(pos)])
                vals = lp.to(wide).gather(1, torch.as_tensor(tgt, device=lp.device)[:, None])[:, 0].double().cpu().numpy()
                local = np.searchsorted(widx, owner)
                np.add.at(total, local, vals)
            first_tokens_missing = plan.spans[widx, 0] == 0
            total[first_tokens_missing] = np.nan
            out["surprisal"][widx] = -total / _LN2
        if next_token:
            lp = lm.logprobs_from_final(final[r, torch.as_tensor(last)])
            out["next_token_logprobs"][widx] = lp.to(wide).cpu().numpy()


def _out_dtype(lm: LanguageModel):
    """float32, or float64 for a float64 model (used to show the chunking is exact)."""
    return np.float64 if next(lm.model.parameters()).dtype == torch.float64 else np.float32


def _empty_outputs(lm, plan, layers, surprisal, next_token) -> dict:
    n, dt = len(plan.words), _out_dtype(lm)
    out = {"hidden": {layer: np.empty((n, lm.hidden_size), dtype=dt) for layer in layers}}
    out["surprisal"] = np.empty(n, dtype=dt) if surprisal else None
    out["next_token_logprobs"] = np.empty((n, lm.vocab_size), dtype=dt) if next_token else None
    return out


def _finish(lm, plan, layers, out, prefix) -> WordFeatures:
    return WordFeatures(words=plan.words, token_ids=plan.ids, spans=plan.spans,
                        context_start=plan.context_start, hidden=out["hidden"],
                        embeddings=_static_embeddings(lm, plan), surprisal=out["surprisal"],
                        next_token_logprobs=out["next_token_logprobs"],
                        params={"model": lm.name, "layers": layers, "context_tokens": plan.N,
                                "stride": plan.S, "prefix": prefix})


def word_features(lm: LanguageModel, words: Sequence[str], layers: int | Sequence[int] | None = None,
                  context_tokens: int = DEFAULT_CONTEXT_TOKENS, stride: int | None = None,
                  surprisal: bool = False, next_token: bool = False, prefix: bool = True,
                  batch_size: int = 4, cache: bool | NpzCache = True, story: str | None = None,
                  progress: bool = True) -> WordFeatures:
    """Per-word LM features, chunked and batched (exactly the per-word definition; module docstring).

    The ``llm`` feature space uses::

        word_features(lm, story.transcript.words, layers=[lm.n_layers // 2], context_tokens=256)

    with ``lm = load_lm()`` (SmolLM2-135M, 30 blocks -> layer 15, hidden 576), stride 256, no
    surprisal (so passes stop after block 15 and skip the LM head), document-start prefix.

    Parameters
    ----------
    lm : LanguageModel
    words : sequence of str
        The story's words in order (any spelling; empty strings allowed).
    layers : int, sequence of int or None
        Layers to read (0..n_layers, negatives from the end); None = ``[n_layers // 2]``.
    context_tokens : int
        N: minimum number of tokens preceding each word (when the story has them).
    stride : int or None
        S: chunk stride (default N); contexts hold between N and N+S-1 tokens.
    surprisal, next_token : bool
        Also compute surprisal (bits) / next-token log-probs ``(n_words, vocab)`` (runs all blocks
        and the LM head). Results with ``next_token=True`` are not cached (they are large).
    prefix : bool
        Start the token stream with the document-start token.
    batch_size : int
        Chunks per forward pass.
    cache : bool or NpzCache
        True: ``NpzCache(namespace="lm_features")``; False: no cache. Keyed by model fingerprint,
        layers, context, stride, prefix, surprisal and the words.
    story : str, optional
        Name used in progress bars and error messages.

    Returns
    -------
    WordFeatures
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    layers = _normalise_layers(lm, layers)
    plan = _Plan(lm, words, context_tokens, stride, prefix, story)
    store = None
    if cache is not False and not next_token:
        store = cache if isinstance(cache, NpzCache) else NpzCache(namespace="lm_features")
        key = content_key("lm.word_features", lm.fingerprint, layers, plan.N, plan.S, bool(prefix),
                          bool(surprisal), plan.words)
        found = store.load(key)
        if found is not None:
            out = {"hidden": {layer: found[f"hidden_{layer}"] for layer in layers},
                   "surprisal": found["surprisal"] if surprisal else None, "next_token_logprobs": None}
            return _finish(lm, plan, layers, out, prefix)

    out = _empty_outputs(lm, plan, layers, surprisal, next_token)
    chunks = []
    for k in np.unique(plan.chunk):
        widx = np.flatnonzero(plan.chunk == k)
        start = int(k) * plan.S
        chunks.append((start, int(plan.spans[widx, 1].max()), widx))
    chunks.sort(key=lambda c: c[1] - c[0])  # similar lengths share a batch: little padding
    batches = [chunks[i:i + batch_size] for i in range(0, len(chunks), batch_size)]
    bar = tqdm(batches, desc=f"LM features {story or ''}".strip(), unit="batch", disable=not progress,
               leave=False)
    for rows in bar:
        _read_rows(lm, plan, rows, layers, surprisal, next_token, out)
    if store is not None:
        arrays = {f"hidden_{layer}": out["hidden"][layer] for layer in layers}
        if surprisal:
            arrays["surprisal"] = out["surprisal"]
        store.save(key, arrays)
    return _finish(lm, plan, layers, out, prefix)


def word_features_per_word(lm: LanguageModel, words: Sequence[str], layers: int | Sequence[int] | None = None,
                           context_tokens: int = DEFAULT_CONTEXT_TOKENS, stride: int | None = None,
                           surprisal: bool = False, next_token: bool = False, prefix: bool = True,
                           indices: Sequence[int] | None = None, story: str | None = None,
                           progress: bool = True) -> WordFeatures:
    """The reference definition: one forward pass per word over exactly its context ``[c, b)``.

    Same parameters and outputs as :func:`word_features` (no cache). ``indices`` computes only
    those words (the other rows are NaN), for tests and benchmarks on long stories.
    """
    layers = _normalise_layers(lm, layers)
    plan = _Plan(lm, words, context_tokens, stride, prefix, story)
    out = _empty_outputs(lm, plan, layers, surprisal, next_token)
    for arr in [out["surprisal"], out["next_token_logprobs"], *out["hidden"].values()]:
        if arr is not None:
            arr.fill(np.nan)
    todo = range(len(plan.words)) if indices is None else [int(i) for i in indices]
    for w in tqdm(todo, desc=f"per-word LM features {story or ''}".strip(), disable=not progress, leave=False):
        _read_rows(lm, plan, [(int(plan.context_start[w]), int(plan.spans[w, 1]), np.array([w]))],
                   layers, surprisal, next_token, out)
    return _finish(lm, plan, layers, out, prefix)
