"""Feature spaces of the induction head over brain responses and its three controls.

All four share the response side (:class:`~gim_brain.features.induction.ResponseInduction`: PCA
of the subject's responses fitted on the TRAINING stories only, whitened; blocks for rows
``t, t-1, t-2``; ``m <= t - gap``) and differ only in how the earlier moment ``m`` is chosen:

``gim-induction``
    GIM's rule at the level of TRs: the most recent earlier occurrence of the longest exact word
    n-gram ending at row ``t``'s last word when it is at least ``tau`` words long, otherwise the
    earlier row whose text is most similar — cosine of the LM hidden states (``llm`` space model
    and layer) at each row's last word, i.e. GIM's fuzzy branch with an ``lm-hidden`` similarity.
    (Embedding every token with its own LM window over whole stories is too slow on a CPU; the
    last-word hidden state with a 256-token context is the cheap stand-in, documented here.)
``gim-induction-random``
    a uniformly random earlier row (seeded per story).
``ngram-induction``
    the longest exact word n-gram match only (no fuzzy fallback; no match -> zeros).
``ar-control``
    ``m = t - gap``: plain autoregression at the same lag.

These spaces are neither z-scored per story (that would use the story's future responses) nor
FIR-delayed (they already live in response time).
"""

from __future__ import annotations

import zlib

import numpy as np

from .context import story_fingerprint
from .induction import (ResponseInduction, combine_exact_fuzzy, cosine_similarity_rows,
                        match_autoregressive, match_by_ngram, match_by_similarity, match_random,
                        row_last_word)
from .registry import FeatureParameterError, Param, register_space

__all__ = ["fitted_induction", "story_matches", "word_ids"]

_COMMON = (
    Param("n_components", int, 100, "response PCs K (PCA fitted on training stories only)",
          minimum=1),
    Param("gap", int, 4, "the matched row m satisfies m <= t - gap", minimum=1),
    Param("horizon", int, 3, "response changes z[m+k] - z[m] for k = 1..horizon (< gap)",
          minimum=1),
    Param("n_lags", int, 3, "blocks for rows t, t-1, ..., t-n_lags+1", minimum=1),
)


def _check_horizon(params: dict) -> None:
    """``horizon < gap``: the response changes after ``m`` must end before row ``t``."""
    if params["horizon"] >= params["gap"]:
        raise FeatureParameterError(
            f"parameter 'horizon' of the induction spaces must be < 'gap' (the changes "
            f"z[m+k] - z[m], k <= horizon, must end before row t), got horizon="
            f"{params['horizon']} with gap={params['gap']}")


def fitted_induction(ctx, params) -> ResponseInduction:
    """The response PCA of the run, fitted once on the training stories' responses."""
    train = ctx.training_stories()
    key = ("induction-pca", ctx.subject, tuple(train), params["n_components"], params["gap"],
           params["horizon"], params["n_lags"])
    if key not in ctx.memo:
        model = ResponseInduction(n_components=params["n_components"], gap=params["gap"],
                                  horizon=params["horizon"], lags=tuple(range(params["n_lags"])))
        ctx.memo[key] = model.fit([ctx.responses(s) for s in train])
    return ctx.memo[key]


def word_ids(words) -> np.ndarray:
    """Integer identity of each (lower-cased) word, in order of first appearance."""
    vocab: dict[str, int] = {}
    return np.array([vocab.setdefault(w.lower(), len(vocab)) for w in words], dtype=np.int64)


def _ngram(ctx, story, gap):
    parts = ("ngram-matches", story_fingerprint(story), gap)

    def compute():
        rows = story.grid.assign_words(story.transcript.onsets)
        m, n = match_by_ngram(word_ids(story.transcript.words), rows, story.grid.n_rows, gap)
        return {"matches": m, "lengths": n}

    return ctx.cached("induction-matches", parts, compute)


def story_matches(ctx, params, story_name: str, rule: str) -> np.ndarray:
    """The matched earlier row of every row of a story under ``rule`` (-1 where none)."""
    story = ctx.story(story_name)
    n, gap = story.grid.n_rows, params["gap"]
    if rule == "ar":
        return match_autoregressive(n, gap)
    if rule == "random":
        return match_random(n, gap, seed=params["seed"] + zlib.crc32(story_name.encode()))
    exact = _ngram(ctx, story, gap)
    if rule == "ngram":
        return exact["matches"]
    if rule == "gim":
        from .lm_spaces import word_hidden_states

        hidden = word_hidden_states(ctx, story_name, params["model"], params["layer"],
                                    params["context"])
        rows = story.grid.assign_words(story.transcript.onsets)
        last = row_last_word(rows, n)
        reps = np.zeros((n, hidden.shape[1]), dtype=np.float64)
        reps[last >= 0] = hidden[last[last >= 0]]
        sim, valid = cosine_similarity_rows(reps)
        fuzzy = match_by_similarity(sim, gap, valid)
        return combine_exact_fuzzy(exact["matches"], exact["lengths"], fuzzy, params["tau"])
    raise ValueError(f"unknown match rule {rule!r}")


def _features(ctx, params, story, rule):
    model = fitted_induction(ctx, params)
    return model.transform(ctx.responses(story), story_matches(ctx, params, story, rule))


_OPTS = dict(delayed=False, zscore=False, uses_responses=True, check=_check_horizon)


@register_space("gim-induction", "responses after the earlier moment GIM matches (exact n-gram "
                ">= tau words, else LM hidden-state similarity)", params=_COMMON + (
                    Param("tau", int, 6, "exact-match length (words) from which the exact match wins",
                          minimum=1),
                    Param("model", "str?", None, "LM for the similarity (default offline SmolLM2-135M)"),
                    Param("layer", "int?", None, "LM layer (None: n_layers // 2)"),
                    Param("context", int, 256, "LM context in tokens", minimum=1),
                ), **_OPTS)
def _gim_induction(ctx, params, story):
    return _features(ctx, params, story, "gim")


@register_space("gim-induction-random", "control: responses after a random earlier moment",
                params=_COMMON + (Param("seed", int, 0, "random seed"),), **_OPTS)
def _random_induction(ctx, params, story):
    return _features(ctx, params, story, "random")


@register_space("ngram-induction", "control: responses after the longest exact word n-gram match",
                params=_COMMON, **_OPTS)
def _ngram_induction(ctx, params, story):
    return _features(ctx, params, story, "ngram")


@register_space("ar-control", "control: responses after row t - gap (plain autoregression)",
                params=_COMMON, **_OPTS)
def _ar_control(ctx, params, story):
    return _features(ctx, params, story, "ar")
