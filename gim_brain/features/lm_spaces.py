"""Language-model feature spaces: static input embeddings and contextual hidden states.

``embedding``
    Each word's mean input-embedding row over its tokens (no context): the interpretable,
    Eng1000-like baseline. Only the tokenizer and the embedding matrix are used (no forward pass).
``llm``
    The hidden state at ``layer`` (default ``n_layers // 2``) of each word's last token, the LM
    reading at least ``context`` preceding tokens (default 256), from
    :func:`gim_brain.lm.extraction.word_features` — called with exactly its defaults so the
    shared content-keyed LM cache is reused.

Both are resampled to the response rows (Lanczos by default), then z-scored per story and
FIR-delayed by the design.
"""

from __future__ import annotations

import numpy as np

from .context import story_fingerprint, words_to_rows
from .downsample import DOWNSAMPLE_METHODS
from .registry import Param, register_space

__all__ = ["word_hidden_states", "word_static_embeddings", "resolve_layer"]

_MODEL = Param("model", "str?", None, "LM: hub id, folder or .gguf (default offline SmolLM2-135M)")
_METHOD = Param("method", str, "lanczos", "resampling to TR times", DOWNSAMPLE_METHODS)


def resolve_layer(lm, layer: int | None) -> int:
    """``None`` -> the middle layer ``n_layers // 2``; otherwise checked by the LM."""
    if layer is None:
        return lm.n_layers // 2
    return lm.check_layer(layer)


def word_hidden_states(ctx, story_name: str, model: str | None, layer: int | None,
                       context: int) -> np.ndarray:
    """Hidden states ``(n_words, hidden_size)`` of a story's words (memoised per run)."""
    from ..lm.extraction import word_features

    key = ("word-hidden", story_name, model, layer, context)
    if key not in ctx.memo:
        lm = ctx.lm(model)
        layer_ = resolve_layer(lm, layer)
        story = ctx.story(story_name)
        wf = word_features(lm, story.transcript.words, layers=[layer_], context_tokens=context,
                           story=story_name, progress=ctx.progress)
        ctx.memo[key] = np.asarray(wf.hidden[layer_], dtype=np.float32)
    return ctx.memo[key]


def word_static_embeddings(ctx, story_name: str, model: str | None) -> np.ndarray:
    """Mean input-embedding row of each word's tokens, ``(n_words, hidden_size)``."""
    from ..lm.alignment import align_words

    key = ("word-static", story_name, model)
    if key not in ctx.memo:
        lm = ctx.lm(model)
        story = ctx.story(story_name)
        al = align_words(lm.tokenizer, story.transcript.words, story=story_name)
        table = lm.model.get_input_embeddings().weight.detach().float().cpu().numpy()
        sums = np.add.reduceat(table[al.ids], al.spans[:, 0], axis=0)
        ctx.memo[key] = (sums / al.n_tokens[:, None]).astype(np.float32)
    return ctx.memo[key]


def _lm_id(ctx, model):
    lm = ctx.lm(model)
    return getattr(lm, "fingerprint", lm.name)


@register_space("embedding", "static LM input embeddings (mean over each word's tokens)",
                params=(_MODEL, _METHOD))
def _embedding(ctx, params, story):
    st = ctx.story(story)
    parts = (params, _lm_id(ctx, params["model"]), story_fingerprint(st))
    return ctx.cached("embedding", parts, lambda: {"x": words_to_rows(
        st, word_static_embeddings(ctx, story, params["model"]), params["method"])})["x"]


@register_space("llm", "contextual LM hidden states at each word's last token",
                params=(_MODEL, Param("layer", "int?", None, "LM layer (None: n_layers // 2)"),
                        Param("context", int, 256, "minimum preceding tokens the LM reads"),
                        _METHOD))
def _llm(ctx, params, story):
    st = ctx.story(story)
    parts = (params, _lm_id(ctx, params["model"]), story_fingerprint(st))
    return ctx.cached("llm", parts, lambda: {"x": words_to_rows(
        st, word_hidden_states(ctx, story, params["model"], params["layer"], params["context"]),
        params["method"])})["x"]
