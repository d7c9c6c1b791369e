"""Feature spaces from GIM's next-word predictions over each story.

GIM (``gim_brain.gim``) runs over the story at the WORD level: the "token ids" it sees are word
identities (lower-cased word types of the story), its exact branch is in-context word n-gram
matching, and its fuzzy branch compares one representation per word (cosine similarity, weights
``exp(-(1 - cos) / T)``), chosen by ``fuzzy``:

``llm-hidden`` (default)
    The ``llm`` hidden states of the words (SmolLM2-135M, ``layer``, >= ``context`` tokens of
    context), already computed and cached for the ``llm`` space: the representation the
    reported gim-stats / gim-next results and the demo's planted responses use.
``distilled``
    GIM's distilled fuzzy model (the checkpoint shipped in ``gim_brain.gim``, or
    ``fuzzy_checkpoint``) at each word's last token, reading only its own W-token window: GIM's
    own fuzzy representation, cheap enough for whole datasets (the story's tokens are embedded
    once). Needs the checkpoint's teacher LM (``model``) for its tokenizer and embeddings.
``tau`` is in words (default 6, about the paper's 8 GPT-2 tokens; not tuned on any test story).

``gim-stats`` (7 features per word, then resampled to rows)
    log(1 + exact match length), fuzzy maximum similarity, branch used (one-hot: context exact,
    fuzzy, none), entropy (nats) of GIM's next-word distribution after the word, and the surprisal
    (bits, capped at 10) of the word under GIM's prediction made before it.
``gim-next``
    GIM's next-word distribution after each word projected into the LM input-embedding space:
    ``sum_v p(v) e(v)`` with ``e(v)`` the static embedding of word type ``v`` (the ``embedding``
    space's vectors) — the expected next-word embedding.
"""

from __future__ import annotations

import numpy as np

from .context import story_fingerprint, words_to_rows
from .downsample import DOWNSAMPLE_METHODS
from .induction_spaces import word_ids
from .lm_spaces import _lm_id, word_hidden_states, word_static_embeddings
from .registry import Param, register_space

__all__ = ["WordStateEmbedder", "distilled_embedder", "gim_next_matrix", "gim_stats_matrix",
           "gim_word_prediction", "token_distilled_states", "word_distilled_states"]

_PARAMS = (
    Param("model", "str?", None, "LM for the fuzzy similarity (default offline SmolLM2-135M)"),
    Param("fuzzy", str, "llm-hidden", "fuzzy representation of a word: the distilled fuzzy model "
          "at its last token, or the llm hidden state", ("distilled", "llm-hidden")),
    Param("fuzzy_checkpoint", "str?", None, "distilled checkpoint (default: the shipped one)"),
    Param("layer", "int?", None, "LM layer for fuzzy=llm-hidden (None: n_layers // 2)"),
    Param("context", int, 256, "minimum preceding tokens the LM reads (fuzzy=llm-hidden)"),
    Param("tau", int, 6, "exact match length (words) from which GIM uses the exact branch"),
    Param("temperature", float, 0.1, "T of the fuzzy weights exp(-(1 - cos) / T)"),
    Param("method", str, "lanczos", "resampling to TR times", DOWNSAMPLE_METHODS),
)
_SURPRISAL_CAP_BITS = 10.0


class WordStateEmbedder:
    """GIM position embedder over word positions with precomputed representations.

    Parameters
    ----------
    states : (n_words, d) float
        One representation per word (L2-normalised here).
    description : dict
        What the states are (LM, layer, context): part of GIM's cache keys.
    """

    name = "llm-word-hidden"
    vocab_size = None

    def __init__(self, states: np.ndarray, description: dict):
        states = np.asarray(states, dtype=np.float32)
        norm = np.linalg.norm(states, axis=1, keepdims=True)
        self.states = states / np.where(norm > 0, norm, 1.0)
        self.window = int(description.get("context", 0)) or 1
        self.description = description

    def embed(self, ids: np.ndarray) -> np.ndarray:
        if len(ids) != len(self.states):
            raise ValueError(f"{len(ids)} word ids but {len(self.states)} precomputed word states")
        return self.states

    def similarity(self, queries: np.ndarray, keys: np.ndarray) -> np.ndarray:
        return queries @ keys.T

    def cache_parts(self) -> dict:
        return {"embedder": self.name, **self.description}


def distilled_embedder(ctx, model, checkpoint):
    """The ``distilled`` fuzzy embedder for ``model``'s tokenizer (memoised per run)."""
    from ..gim import DistilledEmbedder

    key = ("distilled-embedder", model, checkpoint)
    if key not in ctx.memo:
        ctx.memo[key] = DistilledEmbedder(ctx.lm(model), checkpoint=checkpoint)
    return ctx.memo[key]


def token_distilled_states(ctx, story_name: str, model, checkpoint):
    """``(alignment, (n_tokens, d))``: the story's words aligned to ``model``'s tokens and the
    distilled fuzzy embedding of every token (its own W-token window; memoised per run)."""
    from .._cache import NpzCache
    from ..gim import embed_document
    from ..lm.alignment import align_words

    key = ("token-distilled", story_name, model, checkpoint)
    if key not in ctx.memo:
        emb = distilled_embedder(ctx, model, checkpoint)
        story = ctx.story(story_name)
        al = align_words(ctx.lm(model).tokenizer, story.transcript.words, story=story_name)
        ctx.memo[key] = (al, embed_document(emb, al.ids, cache=NpzCache(namespace="gim-fuzzy")))
    return ctx.memo[key]


def word_distilled_states(ctx, story_name: str, model, checkpoint) -> np.ndarray:
    """Distilled fuzzy embedding ``(n_words, d)`` at each word's last token (its W-token window)."""
    al, tokens = token_distilled_states(ctx, story_name, model, checkpoint)
    return tokens[al.spans[:, 1] - 1]


def _word_states(ctx, story_name: str, params: dict):
    """``(states, description)`` of the fuzzy representation chosen by ``params["fuzzy"]``."""
    if params.get("fuzzy", "llm-hidden") == "distilled":
        emb = distilled_embedder(ctx, params["model"], params["fuzzy_checkpoint"])
        states = word_distilled_states(ctx, story_name, params["model"], params["fuzzy_checkpoint"])
        return states, {"fuzzy": "distilled", "weights": emb.digest, "window": emb.window}
    states = word_hidden_states(ctx, story_name, params["model"], params["layer"], params["context"])
    return states, {"lm": str(_lm_id(ctx, params["model"])), "layer": params["layer"],
                    "context": params["context"]}


def gim_word_prediction(ctx, story_name: str, params: dict):
    """GIM's :class:`~gim_brain.gim.DocumentPrediction` over a story's words (memoised per run).

    Returns ``(prediction, ids)``; ``ids`` are the word-type ids GIM read.
    """
    from ..gim import GIM

    key = ("gim-words", story_name, params["model"], params.get("fuzzy"), params.get("fuzzy_checkpoint"),
           params["layer"], params["context"], params["tau"], params["temperature"])
    if key not in ctx.memo:
        story = ctx.story(story_name)
        ids = word_ids(story.transcript.words)
        states, description = _word_states(ctx, story_name, params)
        emb = WordStateEmbedder(states, description)
        gim = GIM(embedder=emb, tau=params["tau"], temperature=params["temperature"])
        ctx.memo[key] = (gim.predict_document(ids, embeddings=emb.states), ids)
    return ctx.memo[key]


def gim_stats_matrix(pred) -> np.ndarray:
    """``(n_words, 7)`` word-level statistics of a GIM document prediction (module docstring)."""
    from ..gim import BRANCHES

    n = len(pred.ids)
    branch = np.asarray(pred.branch)
    onehot = np.stack([branch == BRANCHES.index(b) for b in ("context", "fuzzy", "none")], 1)
    p_word = np.full(n, np.nan)
    p_word[1:] = pred.next_token_prob[:-1]          # prediction made before word t, for word t
    surprisal = np.minimum(-np.log2(np.maximum(np.nan_to_num(p_word, nan=0.0), 1e-300)),
                           _SURPRISAL_CAP_BITS)
    surprisal[0] = 0.0
    out = np.column_stack([
        np.log1p(pred.match_length.astype(np.float64)),
        np.nan_to_num(pred.fuzzy_max_similarity.astype(np.float64), nan=0.0),
        onehot.astype(np.float64),
        np.nan_to_num(pred.entropy, nan=0.0),
        surprisal,
    ])
    return out.astype(np.float32)


def gim_next_matrix(pred, ids: np.ndarray, word_embeddings: np.ndarray) -> np.ndarray:
    """Expected next-word embedding ``(n_words, d)``: GIM's distribution times word embeddings.

    ``word_embeddings`` (n_words, d) holds each word occurrence's static embedding; word type
    ``v`` takes the row of its first occurrence. Positions without a prediction get zeros.
    """
    vocab = int(ids.max()) + 1
    first = np.full(vocab, -1, dtype=np.int64)
    for i in range(len(ids) - 1, -1, -1):
        first[ids[i]] = i
    table = np.asarray(word_embeddings, dtype=np.float64)[first]
    return np.asarray(pred.distributions.to_scipy(vocab) @ table, dtype=np.float32)


def _parts(ctx, params, st):
    weights = (distilled_embedder(ctx, params["model"], params["fuzzy_checkpoint"]).digest
               if params.get("fuzzy") == "distilled" else None)
    return (params, str(_lm_id(ctx, params["model"])), story_fingerprint(st), weights)


@register_space("gim-stats", "GIM over the story's words: match length, fuzzy similarity, branch, "
                "entropy, surprisal", params=_PARAMS)
def _gim_stats(ctx, params, story):
    st = ctx.story(story)

    def compute():
        pred, _ = gim_word_prediction(ctx, story, params)
        return {"x": words_to_rows(st, gim_stats_matrix(pred), params["method"])}

    return ctx.cached("gim-stats", _parts(ctx, params, st), compute)["x"]


@register_space("gim-next", "GIM's next-word distribution projected into the LM embedding space "
                "(expected next-word embedding)", params=_PARAMS)
def _gim_next(ctx, params, story):
    st = ctx.story(story)

    def compute():
        pred, ids = gim_word_prediction(ctx, story, params)
        emb = word_static_embeddings(ctx, story, params["model"])
        return {"x": words_to_rows(st, gim_next_matrix(pred, ids, emb), params["method"])}

    return ctx.cached("gim-next", _parts(ctx, params, st), compute)["x"]
