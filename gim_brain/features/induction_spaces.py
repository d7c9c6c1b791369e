"""Feature spaces of the induction head over brain responses and its three controls.

All four share the response side (:class:`~gim_brain.features.induction.ResponseInduction`: PCA
of the subject's responses fitted on the TRAINING stories only, whitened; blocks for rows
``t, t-1, t-2``; ``m <= t - gap``) and differ only in how the earlier moment ``m`` is chosen:

``gim-induction``
    GIM's rule at the level of TRs, on the LM tokenizer's TOKENS. Row ``t`` is its last token
    ``q_t`` (the last token of the last word heard by the end of the row). If the longest exact
    token match of ``ids[:q_t+1]`` with an earlier end in a row ``<= t - gap`` is at least
    ``tau`` tokens long (default 8, the paper's GPT-2 value), its most recent such end decides
    ``m`` (the row of that token); otherwise ``m`` is the earlier row ``<= t - gap`` whose
    representation is nearest, by ``similarity``:

    ``distilled`` (default)
        GIM's distilled fuzzy model (shipped checkpoint, or ``fuzzy_checkpoint``) at ``q_t``,
        reading only its ``window``-token window (must be the checkpoint's W, 32); cosine.
    ``lm-window``
        the LM's next-token distribution after ``q_t`` reading the same W-token window (top
        ``top_k`` log-probabilities, the distilled model's teacher), nearest by symmetrised KL.
    ``lm-context``
        the variant before GIM's own similarity: cosine of the ``llm`` hidden states (``model``,
        ``layer``, ``context`` tokens of context) at each row's last word, with exact WORD
        n-grams (``tau`` then counts words; ``tau=6`` reproduces it).
``gim-induction-random``
    a uniformly random earlier row (seeded per story).
``ngram-induction``
    the longest exact word n-gram match only, when at least ``min_length`` words (default 3) long
    (no fuzzy fallback; no match -> zeros).
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

__all__ = ["SIMILARITIES", "fitted_induction", "gim_row_matches", "row_queries", "story_matches",
           "word_ids"]

#: Fuzzy representations of a TR for ``gim-induction`` (first: the default).
SIMILARITIES = ("distilled", "lm-window", "lm-context")

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
    if rule == "gim" and params["similarity"] != "lm-context":
        return gim_row_matches(ctx, params, story_name)["matches"]
    exact = _ngram(ctx, story, gap)
    if rule == "ngram":
        short = exact["lengths"] < params["min_length"]
        return np.where(short, -1, exact["matches"]).astype(np.int64)
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


def row_queries(story, token_spans: np.ndarray, gap: int):
    """Query token, candidate range and word row of a story's TRs for the token-level rule.

    Parameters
    ----------
    story : gim_brain.data.Story
    token_spans : (n_words, 2) int
        Token span of each word (:class:`gim_brain.lm.alignment.WordAlignment` ``spans``).
    gap : int

    Returns
    -------
    queries : (n_rows,) int64, the last token heard by the end of each row (-1: none yet)
    lo, hi : (n_rows,) int64, the tokens of words in rows ``0..t - gap`` (``hi < lo``: none)
    word_rows : (n_words,) int64, each word's row (-1 outside the grid)
    """
    n = story.grid.n_rows
    rows = np.asarray(story.grid.assign_words(story.transcript.onsets), dtype=np.int64)
    last = row_last_word(rows, n)
    spans = np.asarray(token_spans, dtype=np.int64)
    queries = np.where(last >= 0, spans[np.maximum(last, 0), 1] - 1, -1)
    inside = np.flatnonzero((rows >= 0) & (rows < n))
    first = int(inside[0]) if len(inside) else len(rows)
    lo = np.full(n, spans[first, 0] if first < len(rows) else 0, dtype=np.int64)
    hi = np.full(n, -1, dtype=np.int64)
    if gap < n:
        w = last[:n - gap]                          # last word of rows <= t - gap, t = gap..n-1
        hi[gap:] = np.where(w >= first, spans[np.maximum(w, 0), 1] - 1, -1)
    return queries, lo, hi, rows


def _check_window(params, emb_window: int) -> None:
    if params["window"] != emb_window:
        raise FeatureParameterError(
            f"parameter 'window' of feature space 'gim-induction' is {params['window']} but the "
            f"distilled fuzzy checkpoint reads {emb_window}-token windows: set window={emb_window} "
            f"or train a checkpoint with that window (gim-brain train-fuzzy)")


def _row_similarity(ctx, params, story_name, al, queries):
    """``(n_rows, n_rows)`` similarity of the rows' W-token windows and which rows have text."""
    valid = queries >= 0
    n = len(queries)
    if params["similarity"] == "distilled":
        from .gim_spaces import distilled_embedder, token_distilled_states

        emb = distilled_embedder(ctx, params["model"], params["fuzzy_checkpoint"])
        _check_window(params, emb.window)
        _, tokens = token_distilled_states(ctx, story_name, params["model"],
                                           params["fuzzy_checkpoint"])
        reps = np.zeros((n, tokens.shape[1]), dtype=np.float64)
        reps[valid] = tokens[queries[valid]]
        sim, _ = cosine_similarity_rows(reps)
        return sim, valid
    from .gim_matching import skl_similarity, window_distributions

    lm = ctx.lm(params["model"])
    if params["window"] > lm.max_length:
        raise FeatureParameterError(
            f"parameter 'window' of feature space 'gim-induction' is {params['window']} tokens, "
            f"more than the LM {lm.name!r} reads ({lm.max_length})")
    sim = np.full((n, n), -np.inf)
    if valid.any():
        targets = window_distributions(lm, al.ids, queries[valid], params["window"],
                                       params["top_k"])
        sim[np.ix_(valid, valid)] = skl_similarity(targets)
    return sim, valid


def gim_row_matches(ctx, params, story_name: str) -> dict:
    """GIM's token-level match of every row (``similarity`` distilled or lm-window), cached.

    Returns ``{"matches": (n_rows,) int64 row m <= t - gap or -1, "exact_lengths": (n_rows,)
    tokens of the exact match with an allowed end, "used_exact": (n_rows,) bool}``.
    """
    from ..lm.alignment import align_words
    from .gim_matching import EarlierTokenMatches
    from .gim_spaces import distilled_embedder
    from .lm_spaces import _lm_id

    story = ctx.story(story_name)
    weights = (distilled_embedder(ctx, params["model"], params["fuzzy_checkpoint"]).digest
               if params["similarity"] == "distilled" else None)
    keys = ("similarity", "window", "tau", "gap") + (
        ("top_k",) if params["similarity"] == "lm-window" else ())
    parts = ("gim-token-matches", {k: params[k] for k in keys}, str(_lm_id(ctx, params["model"])),
             weights, story_fingerprint(story))

    def compute():
        al = align_words(ctx.lm(params["model"]).tokenizer, story.transcript.words,
                         story=story_name)
        queries, lo, hi, rows = row_queries(story, al.spans, params["gap"])
        ends, lengths = EarlierTokenMatches(al.ids).query_many(queries, lo, hi)
        word_of_token = al.word_of_token()
        exact_rows = np.where(ends >= 0, rows[word_of_token[np.maximum(ends, 0)]], -1)
        sim, valid = _row_similarity(ctx, params, story_name, al, queries)
        fuzzy = match_by_similarity(sim, params["gap"], valid)
        matches = combine_exact_fuzzy(exact_rows, lengths, fuzzy, params["tau"])
        return {"matches": matches, "exact_lengths": lengths,
                "used_exact": (lengths >= params["tau"]) & (exact_rows >= 0)}

    return ctx.cached("induction-matches", parts, compute)


def _features(ctx, params, story, rule):
    model = fitted_induction(ctx, params)
    return model.transform(ctx.responses(story), story_matches(ctx, params, story, rule))


_OPTS = dict(delayed=False, zscore=False, uses_responses=True, check=_check_horizon)


@register_space("gim-induction", "responses after the earlier moment GIM matches (exact token "
                "n-gram >= tau tokens, else the nearest W-token window by GIM's fuzzy similarity)",
                params=_COMMON + (
                    Param("similarity", str, SIMILARITIES[0], "fuzzy representation of a TR: the "
                          "distilled fuzzy model or the LM's next-token distribution (symmetrised "
                          "KL) over its W-token window, or lm-context (LM hidden state, word "
                          "n-grams)", SIMILARITIES),
                    Param("window", int, 32, "W, tokens each TR's fuzzy representation reads "
                          "(distilled: the checkpoint's W)", minimum=1),
                    Param("tau", int, 8, "exact-match length from which the exact match wins: "
                          "tokens (words for similarity=lm-context)", minimum=1),
                    Param("top_k", int, 64, "next-token log-probabilities kept per window "
                          "(similarity=lm-window)", minimum=1),
                    Param("fuzzy_checkpoint", "str?", None,
                          "distilled checkpoint (default: the shipped one)"),
                    Param("model", "str?", None, "LM: tokenizer, distilled model's teacher and "
                          "lm-window/lm-context similarity (default offline SmolLM2-135M)"),
                    Param("layer", "int?", None, "LM layer for lm-context (None: n_layers // 2)"),
                    Param("context", int, 256, "LM context in tokens for lm-context", minimum=1),
                ), version="2", **_OPTS)
def _gim_induction(ctx, params, story):
    return _features(ctx, params, story, "gim")


@register_space("gim-induction-random", "control: responses after a random earlier moment",
                params=_COMMON + (Param("seed", int, 0, "random seed"),), **_OPTS)
def _random_induction(ctx, params, story):
    return _features(ctx, params, story, "random")


@register_space("ngram-induction", "control: responses after the longest exact word n-gram match",
                params=_COMMON + (Param("min_length", int, 3, "shortest word n-gram that counts "
                                        "as a match", minimum=1),), version="2", **_OPTS)
def _ngram_induction(ctx, params, story):
    return _features(ctx, params, story, "ngram")


@register_space("ar-control", "control: responses after row t - gap (plain autoregression)",
                params=_COMMON, **_OPTS)
def _ar_control(ctx, params, story):
    return _features(ctx, params, story, "ar")
