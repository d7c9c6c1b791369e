"""``gim-copy``: what an induction head predicts comes next, as ``llm`` features (text only).

For every word ``i`` of a story, GIM's rule over the story's tokens (the LM tokenizer's; query:
the word's last token ``q_i``) picks an earlier token ``j``: the most recent end of the longest
exact token match when it is at least ``tau`` tokens long, else the token whose distilled fuzzy
embedding (its own ``window``-token window, GIM's fuzzy model) is nearest by cosine. The word
that FOLLOWED it, the word holding token ``j + 1``, is what GIM copies; the feature of word ``i``
is that word's ``llm`` hidden state (the ``llm`` space's ``model``, ``layer``, ``context``),
zeros for words without a match; word features are then resampled to the rows like ``llm``.

With ``copied=matched`` the feature is instead the ``llm`` state of the word holding token ``j``
itself (what was being said at the matched moment, not what followed it).

Causality, precisely: ``j + 1`` must lie before word ``i``'s first token, so the copied word is
an EARLIER word (``source < i``, never word ``i`` itself), and the feature of word ``i`` is a
function of words ``0..i`` only (the match reads the text up to ``q_i``; the copied hidden state
reads words up to ``source``). No response is read.

``gim-copy-random``
    the control: the same words, each copying from a random earlier token at a distance drawn
    from GIM's copy distances (``q_k - j_k`` in tokens) of the 100 words before it, those word
    ``i`` allows (uniform over its allowed tokens if none fits), seeded per story and word: GIM's
    distance distribution at each position without GIM's choice, causal in the same sense.
"""

from __future__ import annotations

import zlib

import numpy as np

from .context import story_fingerprint, words_to_rows
from .downsample import DOWNSAMPLE_METHODS
from .gim_matching import EarlierTokenMatches, combine_exact_fuzzy_ends, nearest_earlier
from .gim_spaces import distilled_embedder, token_distilled_states
from .lm_spaces import _lm_id, word_hidden_states
from .registry import FeatureParameterError, Param, register_space

__all__ = [
    "copied_word_features",
    "copy_sources",
    "gim_copy_ends",
    "random_copy_ends",
    "word_queries",
]

_PARAMS = (
    Param("model", "str?", None, "LM: tokenizer, distilled model's teacher and the copied llm "
          "features (default offline SmolLM2-135M)"),
    Param("layer", "int?", None, "LM layer of the copied llm features (None: n_layers // 2)"),
    Param("context", int, 256, "minimum preceding tokens the LM reads (copied llm features)",
          minimum=1),
    Param("tau", int, 8, "exact token-match length from which the exact match wins", minimum=1),
    Param("window", int, 32, "W, tokens each fuzzy embedding reads (the checkpoint's W)",
          minimum=1),
    Param("fuzzy_checkpoint", "str?", None, "distilled checkpoint (default: the shipped one)"),
    Param("copied", str, "next", "whose llm features: the word after the matched token (next, "
          "what GIM predicts) or the word holding it (matched, what was said there)",
          ("next", "matched")),
    Param("method", str, "lanczos", "resampling to TR times", DOWNSAMPLE_METHODS),
)
_BLOCK = 512
_RULES_VERSION = 3          # part of the cache key: bump when a copy rule changes


def word_queries(token_spans: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(queries, hi)`` per word: its last token, and the last token ``j`` it may match
    (``j + 1`` before the word's first token); ``hi < 0``: nothing to match."""
    spans = np.asarray(token_spans, dtype=np.int64)
    return spans[:, 1] - 1, spans[:, 0] - 2


def gim_copy_ends(ids: np.ndarray, token_states: np.ndarray, queries: np.ndarray, hi: np.ndarray,
                  tau: int) -> tuple[np.ndarray, np.ndarray]:
    """GIM's matched earlier token ``j`` of every query (exact ``>= tau`` tokens, else fuzzy).

    Parameters
    ----------
    ids : int (n_tokens,)
    token_states : (n_tokens, d) float
        L2-normalised fuzzy embeddings of every token (cosine = dot product).
    queries, hi : int (n_queries,)
        Query token and the last allowed end (ends lie in ``[0, hi]``).
    tau : int

    Returns
    -------
    ends : (n_queries,) int64, -1 where ``hi < 0``
    exact_lengths : (n_queries,) int64, tokens of the longest allowed exact match
    """
    queries = np.asarray(queries, dtype=np.int64)
    hi = np.asarray(hi, dtype=np.int64)
    ends, lengths = EarlierTokenMatches(ids).query_many(queries, 0, hi)
    states = np.asarray(token_states, dtype=np.float32)
    fuzzy = np.full(len(queries), -1, dtype=np.int64)
    for a in range(0, len(queries), _BLOCK):
        q, h = queries[a:a + _BLOCK], hi[a:a + _BLOCK]
        top = int(max(h.max(initial=-1), -1)) + 1
        if top > 0:
            fuzzy[a:a + _BLOCK] = nearest_earlier(states[q] @ states[:top].T, 0, h)
    return combine_exact_fuzzy_ends(ends, lengths, fuzzy, tau), lengths


def random_copy_ends(gim_ends: np.ndarray, queries: np.ndarray, hi: np.ndarray,
                     seed: int, neighbours: int = 100) -> np.ndarray:
    """Random earlier tokens at GIM's own copy distances: the control of ``gim-copy``.

    Query ``i`` with a GIM end gets ``queries[i] - d``, ``d`` drawn uniformly from the GIM
    distances ``queries[k] - gim_ends[k]`` of the ``neighbours`` queries before it
    (``i - neighbours <= k < i``) that keep the end in ``[0, hi[i]]``, else a uniform token of
    ``[0, hi[i]]``; each draw has its own generator ``(seed, i)``. Distances grow with the
    position in a story, so drawing from nearby queries keeps GIM's distance distribution at
    each position; and, reading only earlier queries, the control is causal like ``gim-copy``.
    Queries without a GIM end stay -1.
    """
    gim_ends = np.asarray(gim_ends, dtype=np.int64)
    queries = np.asarray(queries, dtype=np.int64)
    hi = np.asarray(hi, dtype=np.int64)
    has = gim_ends >= 0
    distances = queries - gim_ends
    out = np.full(len(gim_ends), -1, dtype=np.int64)
    for i in np.flatnonzero(has).tolist():
        q, h = int(queries[i]), int(hi[i])
        lo = max(0, i - int(neighbours))
        d = distances[lo:i][has[lo:i]]
        d = d[(d >= q - h) & (d <= q)]
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, i])
        out[i] = q - int(d[rng.integers(len(d))]) if len(d) else int(rng.integers(0, h + 1))
    return out


def _check_window(params, emb_window: int, space: str) -> None:
    if params["window"] != emb_window:
        raise FeatureParameterError(
            f"parameter 'window' of feature space {space!r} is {params['window']} but the "
            f"distilled fuzzy checkpoint reads {emb_window}-token windows: set window={emb_window} "
            f"or train a checkpoint with that window (gim-brain train-fuzzy)")


def copy_sources(ctx, params, story_name: str, rule: str, space: str) -> dict:
    """The copied word of every word of a story (``rule`` "gim" or "random"), cached.

    Returns ``{"source": (n_words,) int64 word index < i or -1, "end": (n_words,) token j,
    "exact_lengths": (n_words,) tokens of GIM's exact match (zeros for "random")}``.
    """
    emb = distilled_embedder(ctx, params["model"], params["fuzzy_checkpoint"])
    _check_window(params, emb.window, space)
    story = ctx.story(story_name)
    keys = ("tau", "window", "copied") + (("seed",) if rule == "random" else ())
    parts = ("gim-copy-sources", _RULES_VERSION, rule, {k: params[k] for k in keys},
             str(_lm_id(ctx, params["model"])), emb.digest, story_fingerprint(story))

    def compute():
        al, states = token_distilled_states(ctx, story_name, params["model"],
                                            params["fuzzy_checkpoint"])
        queries, hi = word_queries(al.spans)
        ends, lengths = gim_copy_ends(al.ids, states, queries, hi, params["tau"])
        if rule == "random":
            ends = random_copy_ends(ends, queries, hi,
                                    params["seed"] + zlib.crc32(story_name.encode()))
        shift = 1 if params["copied"] == "next" else 0
        source = np.where(ends >= 0, al.word_of_token()[ends + shift], -1)
        return {"source": source, "end": ends,
                "exact_lengths": lengths if rule == "gim" else np.zeros_like(lengths)}

    return ctx.cached("gim-copy", parts, compute)


def copied_word_features(ctx, params, story_name: str, rule: str, space: str) -> np.ndarray:
    """``(n_words, hidden)``: the ``llm`` hidden state of each word's copied word (zeros: none)."""
    source = copy_sources(ctx, params, story_name, rule, space)["source"]
    hidden = word_hidden_states(ctx, story_name, params["model"], params["layer"],
                                params["context"])
    x = np.zeros_like(hidden)
    x[source >= 0] = hidden[source[source >= 0]]
    return x


def _copied_features(ctx, params, story_name, rule, space):
    return words_to_rows(ctx.story(story_name),
                         copied_word_features(ctx, params, story_name, rule, space),
                         params["method"])


@register_space("gim-copy", "llm features of the word that followed GIM's matched earlier moment "
                "(what an induction head predicts comes next)", params=_PARAMS)
def _gim_copy(ctx, params, story):
    return _copied_features(ctx, params, story, "gim", "gim-copy")


@register_space("gim-copy-random", "control: llm features of the word after a random earlier "
                "token (GIM's copy distances)", params=_PARAMS + (Param("seed", int, 0,
                                                                      "random seed"),))
def _gim_copy_random(ctx, params, story):
    return _copied_features(ctx, params, story, "random", "gim-copy-random")
