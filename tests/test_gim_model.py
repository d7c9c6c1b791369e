"""GIM combination, fuzzy matching, explanations and the lm-eval evaluation."""

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from gim_brain.gim import (GIM, LMDistributionEmbedder, LMHiddenEmbedder, PositionEmbedder,
                           SparseDistributions, build_reference_index, exact_matches,
                           fuzzy_distributions)
from gim_brain.gim.evaluate import context_windows, evaluate_documents

sys.path.insert(0, str(Path(__file__).parent))


class BagOfTokensEmbedder:
    """A real (if simple) position embedder: L2-normalised token counts of the window."""

    name = "bag-of-tokens"

    def __init__(self, vocab_size=20, window=3):
        self.vocab_size, self.window = vocab_size, window

    def embed(self, ids):
        out = np.zeros((len(ids), self.vocab_size), np.float32)
        for t in range(len(ids)):
            np.add.at(out[t], ids[max(0, t - self.window + 1):t + 1], 1.0)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def similarity(self, q, k):
        return q @ k.T

    def cache_parts(self):
        return {"embedder": self.name, "window": self.window}


def test_bag_embedder_fits_protocol():
    assert isinstance(BagOfTokensEmbedder(), PositionEmbedder)


def brute_fuzzy(ids, emb, T):
    rows = [{}]
    for t in range(1, len(ids)):
        w = {}
        for j in range(t):
            cos = float(emb[j] @ emb[t])
            w[int(ids[j + 1])] = w.get(int(ids[j + 1]), 0.0) + np.exp(-(1 - cos) / T)
        z = sum(w.values())
        rows.append({k: v / z for k, v in w.items()})
    return rows


def test_fuzzy_distributions_match_brute_force():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 20, 70)
    e = BagOfTokensEmbedder(20, 4)
    emb = e.embed(ids)
    fz = fuzzy_distributions(ids, emb, e, temperature=0.1, block=16)   # several blocks
    for t, expected in enumerate(brute_fuzzy(ids, emb, 0.1)):
        tokens, probs = fz.distributions.row(t)
        assert dict(zip(tokens.tolist(), probs.tolist())) == pytest.approx(expected)
    assert np.isnan(fz.max_similarity[0])
    assert fz.max_similarity[5] == pytest.approx(max(emb[j] @ emb[5] for j in range(5)))
    (j, sim, w), *_ = fz.neighbours(40, k=3)
    assert sim == pytest.approx(max(emb[i] @ emb[40] for i in range(40)))


def test_gim_branches_follow_tau_and_sources():
    unit = [1, 2, 3, 4, 5, 6]
    ids = np.array(unit + [9] + unit + [8, 7])
    pred = GIM(tau=4).predict_document(ids)
    ex = exact_matches(ids)
    assert pred.context_match_length.tolist() == ex.lengths.tolist()
    # no embedder: exact whenever it matched at all, "none" otherwise
    assert set(pred.branch_names[ex.lengths > 0]) == {"context"}
    assert set(pred.branch_names[ex.lengths == 0]) == {"none"}
    # with fuzzy, positions below tau use fuzzy
    pred = GIM(BagOfTokensEmbedder(), tau=4).predict_document(ids)
    below = (ex.lengths < 4) & (np.arange(len(ids)) > 0)
    assert set(pred.branch_names[below]) == {"fuzzy"}
    assert set(pred.branch_names[ex.lengths >= 4]) == {"context"}
    assert pred.branch_names[0] == "none" and np.isnan(pred.entropy[0])
    # position 12 ("... 5 6" after 1 2 3 4 5 6 9 1 2 3 4 5 6) predicts 9 with certainty
    assert pred.top1()[12] == 9 and pred.entropy[12] == pytest.approx(0.0)
    assert pred.next_token_prob[11] == pytest.approx(1.0)      # 6 follows "1 2 3 4 5"
    assert np.isnan(pred.next_token_prob[-1])
    sums = np.add.reduceat(pred.distributions.probs, pred.distributions.indptr[:-1][~pred.distributions.empty])
    assert np.allclose(sums, 1.0)


def test_reference_wins_only_when_longer(tmp_path):
    ref = build_reference_index([[1, 2, 3, 4, 5, 6, 7], [2, 3, 9]], tmp_path / "r",
                                tokenizer_name="toy", vocab_size=20)
    ids = np.array([2, 3, 5, 1, 2, 3, 4, 5])
    pred = GIM(reference=ref, tau=2).predict_document(ids)
    # t=5: context "2 3" (len 2) vs reference "1 2 3" (len 3): reference, predicts 4
    assert pred.branch_names[5] == "reference" and pred.top1()[5] == 4
    # t=1: context has no match, reference "2 3" (len 2) -> {9: 1/2... } tokens after "2 3"
    assert pred.reference_match_length[1] == 2
    # ties go to the context: t=4 context "1 2"? no -> build a tie explicitly
    ids2 = np.array([2, 3, 7, 2, 3])
    p2 = GIM(reference=ref, tau=1).predict_document(ids2)
    assert p2.context_match_length[4] == 2 == p2.reference_match_length[4]
    assert p2.branch_names[4] == "context" and p2.top1()[4] == 7
    text = str(pred.explain(5))
    assert "branch=reference" in text and "reference@0" in text and "ids=[1, 2, 3]" in text


def test_explanation_prints_spans_and_neighbours_with_text():
    vocab = {i: w for i, w in enumerate("the cat sat on mat dog log and".split())}
    decode = lambda ids: " ".join(vocab[int(i)] for i in ids)
    ids = np.array([0, 1, 2, 3, 0, 4, 7, 0, 5, 2, 3, 0, 6, 7, 0, 1, 2, 3, 0])
    g = GIM(BagOfTokensEmbedder(8, 3), tau=3, decode=decode)
    pred = g.predict_document(ids)
    exp = pred.explain(17)
    assert exp.branch == "context" and exp.match_length == 4
    assert exp.spans[0].text == "the cat sat on" and exp.spans[0].next_text == "the"
    s = str(exp)
    assert "branch=context" in s and "'the cat sat on' -> 0 'the'" in s
    fz = pred.explain(8)
    assert fz.branch == "fuzzy" and len(fz.neighbours) == 5
    assert sum(n.weight for n in fz.neighbours) <= 1.0 + 1e-9
    assert "fuzzy neighbours" in str(fz) and "sim=" in str(fz)
    with pytest.raises(IndexError):
        pred.explain(len(ids))


def test_sparse_distribution_tie_break_and_lenient():
    d = SparseDistributions.stack_rows([(np.array([3, 5, 9]), np.array([0.4, 0.4, 0.2])),
                                        (np.zeros(0, np.int64), np.zeros(0)),
                                        (np.array([1]), np.array([1.0]))])
    assert d.top1().tolist() == [3, -1, 1]
    assert d.top1_tied(np.array([5, 0, 1])).tolist() == [True, False, True]
    assert d.prob_of(np.array([9, 2, 1])).tolist() == pytest.approx([0.2, 0.0, 1.0])
    assert d.to_scipy(10).shape == (3, 10)


def test_context_windows_predict_every_target_once():
    for n, L in [(1, 4), (2, 4), (10, 4), (11, 4), (100, 16), (5, 1024)]:
        targets = [i for _, stop, first in context_windows(max(n, 1), L) for i in range(first, stop)]
        assert targets == list(range(1, n))
        for start, stop, first in context_windows(n, L):
            assert stop - start <= L and (start == 0 or first - start >= L // 2)


def test_evaluate_documents_scores_and_errors(tmp_path):
    rng = np.random.default_rng(3)
    unit = rng.integers(0, 20, 30)
    doc = np.concatenate([unit, unit, unit])
    ref = build_reference_index([unit], tmp_path / "r", tokenizer_name="toy", vocab_size=20)
    g = GIM(BagOfTokensEmbedder(20, 3), reference=ref, tau=3)
    res = evaluate_documents([doc], g, context=16, progress=False)
    m = res["methods"]
    assert set(m) == {"gim", "exact", "fuzzy", "reference"}       # no LM given
    assert res["n_predictions"] == len(doc) - 1
    for r in m.values():
        assert 0 <= r["top1"] <= r["top1_lenient"] <= 1 and r["tokens_per_s"] > 0
    assert m["reference"]["top1"] > 0.9          # the whole document repeats the reference
    assert sum(m["gim"]["branch_usage"].values()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shorter than the fuzzy window"):
        evaluate_documents([doc], GIM(BagOfTokensEmbedder(20, 32)), context=16, progress=False)
    with pytest.raises(ValueError, match="story-x: only 1 token"):
        evaluate_documents([[1]], GIM(), context=16, names=["story-x"], progress=False)
    with pytest.raises(ValueError, match="unknown token id 25 at position 1"):
        evaluate_documents([[1, 25]], GIM(vocab_size=20), context=16, progress=False)
    with pytest.raises(ValueError, match="unknown method"):
        evaluate_documents([doc], g, methods=("gpt4",), progress=False)


def test_gim_bad_input():
    with pytest.raises(ValueError, match="empty document"):
        GIM().predict_document([])
    with pytest.raises(ValueError, match="unknown token id 30"):
        GIM(BagOfTokensEmbedder(20)).predict_document([1, 30])
    with pytest.raises(ValueError, match="tau"):
        GIM(tau=0).predict_document([1, 2])
    with pytest.raises(ValueError, match="rows for a document"):
        GIM(BagOfTokensEmbedder(20)).predict_document([1, 2, 3], embeddings=np.ones((2, 20)))


def test_vocabulary_mismatch_between_embedder_and_reference(tmp_path):
    ref = build_reference_index([[1, 2]], tmp_path / "r", tokenizer_name="toy", vocab_size=50)
    with pytest.raises(ValueError, match="vocabulary sizes disagree"):
        GIM(BagOfTokensEmbedder(20), reference=ref).predict_document([1, 2])


# ---------------------------------------------------------------- LM-backed embedders
@pytest.fixture(scope="module")
def tiny():
    from _lm_fixtures import tiny_lm
    return tiny_lm()


def test_lm_hidden_embed_once_equals_per_window(tiny):
    ids = tiny.encode("the cat sat on the mat and the dog sat on the log, then the cat sat again")
    e = LMHiddenEmbedder(tiny, layer=2, window=6)
    emb = e.embed(ids)
    assert emb.shape == (len(ids), tiny.hidden_size) and emb.dtype == np.float32
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    for t in (0, 3, 10, len(ids) - 1):   # embedding of t only depends on its own window
        alone = e.embed(ids[max(0, t - 5):t + 1])[-1]
        assert np.allclose(alone, emb[t], atol=1e-4)
    pred = GIM(e, tau=3, decode=tiny.decode).predict_document(ids)
    assert pred.fuzzy_max_similarity[1:].max() <= 1.0 + 1e-5
    assert "fuzzy neighbours" in str(pred.explain(len(ids) - 1)) or pred.branch_names[-1] == "context"


def test_lm_distribution_similarity_is_one_minus_jsd_bits(tiny):
    ids = tiny.encode("to be or not to be, that is the question")
    e = LMDistributionEmbedder(tiny, window=4, top_k=None, distance="jsd")   # exact distributions
    rep = e.embed(ids)
    k = tiny.vocab_size - 1
    assert rep.shape == (len(ids), 2 * k + 1)
    p = np.exp(tiny.window_next_token_logprobs(ids, 4).astype(np.float64))
    sim = e.similarity(rep[:2], rep[:4])
    for i in range(2):
        for j in range(4):
            jsd_bits = jensenshannon(p[i], p[j], base=2) ** 2
            assert sim[i, j] == pytest.approx(1 - jsd_bits, abs=1e-4)
    assert sim[0, 0] == pytest.approx(1.0, abs=1e-5)
    small = LMDistributionEmbedder(tiny, window=4, top_k=8).embed(ids)
    assert small.shape == (len(ids), 17)
    pred = GIM(LMDistributionEmbedder(tiny, window=4, top_k=16), tau=3).predict_document(ids)
    assert pred.branch_names[-1] in ("fuzzy", "context")


def test_lm_hidden_rejects_unknown_ids(tiny):
    with pytest.raises(ValueError, match="unknown token id"):
        LMHiddenEmbedder(tiny, layer=1, window=4).embed([1, tiny.vocab_size + 5])


def test_embeddings_are_cached_by_content(tmp_path):
    from gim_brain._cache import NpzCache
    g = GIM(BagOfTokensEmbedder(20, 3), cache=NpzCache(tmp_path))
    ids = np.array([1, 2, 3, 4, 1, 2])
    e1, c1 = g.embed(ids, return_cached=True)
    e2, c2 = g.embed(ids, return_cached=True)
    e3, c3 = g.embed(ids[:-1], return_cached=True)
    assert (c1, c2, c3) == (False, True, False) and np.array_equal(e1, e2)
