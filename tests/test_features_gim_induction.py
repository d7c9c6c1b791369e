"""gim-induction with GIM's own similarity: token-level exact matching with a range, the
distilled / lm-window fuzzy branch, no response at or after row t, and named parameter errors."""

import json

import numpy as np
import pytest
from _features_helpers import make_tiny_dataset
from _lm_fixtures import offline_lm
from hypothesis import given, settings
from hypothesis import strategies as st

from gim_brain._cache import NpzCache
from gim_brain.data import load_dataset
from gim_brain.features import (
    FeatureParameterError,
    SpaceContext,
    build_design,
    resolve_params,
)
from gim_brain.features.gim_matching import (
    EarlierTokenMatches,
    combine_exact_fuzzy_ends,
    nearest_earlier,
)
from gim_brain.features.induction import row_last_word
from gim_brain.features.induction_spaces import (
    fitted_induction,
    gim_row_matches,
    row_queries,
    story_matches,
)


def _naive_match(ids, q, lo, hi):
    """Longest common suffix of ids[:q+1] and ids[:j+1] over j in [lo, min(hi, q-1)], latest j."""
    best, where = 0, -1
    for j in range(max(lo, 0), min(hi, q - 1) + 1):
        n = 0
        while j - n >= 0 and ids[j - n] == ids[q - n]:
            n += 1
        if n > 0 and n >= best:
            best, where = n, j
    return where, best


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=2, max_size=40), st.data())
def test_exact_match_with_a_range_equals_the_naive_search(ids, data):
    ids = np.array(ids)
    m = EarlierTokenMatches(ids)
    for _ in range(5):
        q = data.draw(st.integers(0, len(ids) - 1))
        lo = data.draw(st.integers(0, len(ids) - 1))
        hi = data.draw(st.integers(-1, len(ids) - 1))
        assert m.query(q, lo, hi) == _naive_match(ids, q, lo, hi), (q, lo, hi)


def test_fuzzy_and_combination_rules():
    sim = np.array([[0.1, 0.9, 0.9, 5.0], [0.3, -np.inf, 0.2, 0.0]])
    # ties go to the latest key, keys above hi never count, an empty range gives -1
    assert nearest_earlier(sim, 0, [2, 1]).tolist() == [2, 0]
    assert nearest_earlier(sim, [3, 2], [2, 1]).tolist() == [-1, -1]
    assert combine_exact_fuzzy_ends([4, 5, -1], [8, 7, 9], [1, 2, 3], tau=8).tolist() == [4, 2, 3]
    with pytest.raises(ValueError, match="tau"):
        combine_exact_fuzzy_ends([1], [1], [1], tau=0)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny dataset with the real SmolLM2 (the distilled checkpoint's teacher)."""
    lm = offline_lm()
    root = tmp_path_factory.mktemp("gim-induction")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GIM_BRAIN_CACHE", str(root / "usercache"))
        manifest = make_tiny_dataset(root / "data")
        yield lm, manifest, root


def _ctx(tiny, data=None, cache="cache"):
    lm, manifest, root = tiny
    return SpaceContext(load_dataset(manifest, data or root / "data"), subject="S1",
                        cache=NpzCache(root / cache), progress=False, lm_model=lm)


@pytest.mark.parametrize("similarity", ["distilled", "lm-window"])
def test_row_t_never_reads_a_response_at_or_after_t(tiny, similarity):
    ctx = _ctx(tiny)
    params = resolve_params("gim-induction", {"similarity": similarity, "tau": 4})
    story = ctx.story("s0")                       # the test story
    n, gap = story.grid.n_rows, params["gap"]
    m = story_matches(ctx, params, "s0", "gim")
    t = np.arange(n)
    assert ((m == -1) | (m <= t - gap)).all() and (m[gap:] >= 0).any()
    found = gim_row_matches(ctx, params, "s0")
    assert found["used_exact"].any() and (~found["used_exact"][gap:]).any()  # both branches used
    model = fitted_induction(ctx, params)
    responses = ctx.responses("s0")
    base = model.transform(responses, m)
    rng = np.random.default_rng(0)
    for row in range(n):
        leaky = responses.copy()
        leaky[row:] = rng.normal(scale=1e3, size=leaky[row:].shape)
        np.testing.assert_array_equal(model.transform(leaky, m)[row], base[row],
                                      err_msg=f"{similarity}: row {row} read a response at/after it")


def test_matches_read_only_the_text_heard_so_far(tiny, tmp_path):
    """Rewriting the words after some time leaves the matches of the rows heard before unchanged."""
    import shutil

    root = tiny[2]
    data = tmp_path / "data"
    shutil.copytree(root / "data", data)
    path = data / "words" / "s0.tsv"
    lines = path.read_text().splitlines()
    cut = (len(lines) - 1) * 2 // 3                      # first rewritten word
    lines[1 + cut:] = ["\t".join(ln.split("\t")[:2] + ["PURPLE"]) for ln in lines[1 + cut:]]
    path.write_text("\n".join(lines) + "\n")
    params = resolve_params("gim-induction", {"tau": 4})
    before = story_matches(_ctx(tiny), params, "s0", "gim")
    after_ctx = _ctx(tiny, data, cache="cache-rewritten")
    after = story_matches(after_ctx, params, "s0", "gim")
    story = after_ctx.story("s0")
    assert story.transcript.words[cut] == "purple" and story.transcript.words[cut - 1] != "purple"
    last = row_last_word(story.grid.assign_words(story.transcript.onsets), story.grid.n_rows)
    heard = (last >= 0) & (last < cut)                   # rows whose text ends before the rewrite
    assert heard.sum() > 5 and not heard.all()
    np.testing.assert_array_equal(after[heard], before[heard])
    assert not np.array_equal(after, before)


def test_row_queries_and_the_design(tiny):
    ctx = _ctx(tiny)
    from gim_brain.lm.alignment import align_words

    story = ctx.story("s1")
    al = align_words(offline_lm().tokenizer, story.transcript.words)
    q, lo, hi, rows = row_queries(story, al.spans, gap=4)
    word = al.word_of_token()
    n = story.grid.n_rows
    for t in range(4, n):
        if hi[t] >= lo[t]:
            assert rows[word[hi[t]]] <= t - 4 and rows[word[lo[t]]] >= 0 and hi[t] <= q[t]  # j = q is never a match
    d = build_design(ctx, "gim-induction[n_components=3;tau=4]")
    assert d.spaces[0]["params"]["similarity"] == "distilled"
    assert all(x.shape == (ctx.story(s).grid.n_rows, 27) for s, x in d.X.items())


def test_bad_parameters_name_the_parameter(tiny):
    for given_, name in [({"similarity": "cosine"}, "similarity"), ({"tau": 0}, "tau"),
                         ({"window": 0}, "window"), ({"top_k": 0}, "top_k")]:
        with pytest.raises(FeatureParameterError, match=f"'{name}'"):
            resolve_params("gim-induction", given_)
    with pytest.raises(FeatureParameterError, match="'min_length'"):
        resolve_params("ngram-induction", {"min_length": 0})
    ctx = _ctx(tiny)
    with pytest.raises(FeatureParameterError, match="'window'.*32-token windows"):
        story_matches(ctx, resolve_params("gim-induction", {"window": 16}), "s1", "gim")


def test_ngram_min_length_and_the_old_variant_stay_available(tiny):
    ctx = _ctx(tiny)
    one = story_matches(ctx, resolve_params("ngram-induction", {"min_length": 1}), "s1", "ngram")
    three = story_matches(ctx, resolve_params("ngram-induction"), "s1", "ngram")
    assert (three >= 0).sum() < (one >= 0).sum()
    assert ((three == one) | (three == -1)).all()
    old = story_matches(ctx, resolve_params("gim-induction", {"similarity": "lm-context",
                                                              "tau": 6}), "s1", "gim")
    assert old.shape == one.shape and (old[4:] >= 0).any()


def test_similarity_window_tau_are_recorded_in_summary_json(tmp_path, monkeypatch):
    from gim_brain.cli.main import main
    from gim_brain.experiment import route_params

    per = route_params(["embedding+gim-induction"], {"tau": 6})["embedding+gim-induction"].per_space
    assert {k: per["gim-induction"][k] for k in ("similarity", "window", "tau")} == {
        "similarity": "distilled", "window": 32, "tau": 6}
    # the record goes through to summary.json (a space that needs no LM, to stay fast)
    monkeypatch.setenv("GIM_BRAIN_CACHE", str(tmp_path / "cache"))
    manifest = make_tiny_dataset(tmp_path / "data", n_stories=4)
    assert main(["fit", "--manifest", str(manifest), "--data-root", str(tmp_path / "data"),
                 "--subject", "S1", "--features", "ngram-induction[n_components=3]", "--n-folds",
                 "2", "--n-permutations", "0", "--backend", "numpy", "--no-progress",
                 "--no-report", "--out", str(tmp_path / "run")]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    rec = summary["feature_params"]["ngram-induction[n_components=3]"]
    assert rec["ngram-induction[n_components=3]"]["min_length"] == 3
