"""Exact in-context matching: the suffix automaton against brute force."""

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from gim_brain.gim.exact import SuffixAutomaton, check_token_ids, exact_matches


def brute_force(ids):
    """Per position: longest suffix ending earlier, its earlier end positions, next-token counts."""
    ids = list(ids)
    out = []
    for t in range(len(ids)):
        best, occ = 0, []
        for k in range(1, t + 1):
            suffix = ids[t - k + 1:t + 1]
            found = [j for j in range(k - 1, t) if ids[j - k + 1:j + 1] == suffix]
            if not found:
                break
            best, occ = k, found
        out.append((best, occ, Counter(ids[j + 1] for j in occ)))
    return out


def assert_matches_brute_force(ids):
    m = exact_matches(ids)
    for t, (n, occ, counts) in enumerate(brute_force(ids)):
        assert m.lengths[t] == n, (t, ids)
        assert m.occurrences(t).tolist() == occ, (t, ids)
        tokens, cts = m.next_counts(t)
        assert dict(zip(tokens.tolist(), cts.tolist())) == dict(counts), (t, ids)
        assert tokens.tolist() == sorted(tokens.tolist())


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=60))
def test_random_small_alphabet_matches_brute_force(ids):
    assert_matches_brute_force(ids)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=8), st.integers(1, 8),
       st.lists(st.integers(0, 50), max_size=10))
def test_repetitive_sequences_match_brute_force(unit, reps, noise):
    ids = unit * reps + noise + unit * 2
    assert_matches_brute_force(ids)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=40))
def test_large_vocabulary_matches_brute_force(ids):
    assert_matches_brute_force(ids)


def test_periodic_and_constant_sequences():
    assert_matches_brute_force([7] * 30)
    assert_matches_brute_force([1, 2] * 20)
    m = exact_matches([5] * 6)
    assert m.lengths.tolist() == [0, 1, 2, 3, 4, 5]
    # The last position predicts the token after the document: all earlier occurrences count.
    assert m.next_counts(5)[1].tolist() == [1]
    assert m.occurrences(5).tolist() == [4]


def test_continuation_at_document_end_counts_every_earlier_occurrence():
    ids = [1, 2, 3, 9, 1, 2, 4, 1, 2]
    m = exact_matches(ids)
    assert m.lengths[-1] == 2
    assert m.occurrences(8).tolist() == [1, 5]
    tokens, counts = m.next_counts(8)
    assert dict(zip(tokens.tolist(), counts.tolist())) == {3: 1, 4: 1}


def test_streaming_automaton_gives_same_lengths():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 5, 300)
    sam = SuffixAutomaton()
    streamed = [sam.extend(int(x))[0] for x in ids]
    assert streamed == exact_matches(ids).lengths.tolist()


def test_bad_input_errors():
    with pytest.raises(ValueError, match="empty document"):
        exact_matches([])
    with pytest.raises(ValueError, match="unknown token id 12 at position 2"):
        exact_matches([1, 2, 12], vocab_size=10)
    with pytest.raises(ValueError, match="unknown token id -1"):
        exact_matches([1, -1])
    with pytest.raises(ValueError, match="1-D"):
        check_token_ids(np.zeros((2, 2), int))
    with pytest.raises(ValueError, match="integers"):
        check_token_ids([0.5, 1.0])


def test_chunked_counting_equals_single_chunk():
    from gim_brain.gim.exact import _next_token_counts
    rng = np.random.default_rng(5)
    ids = np.concatenate([rng.integers(0, 4, 150), [1, 2] * 40])
    m = exact_matches(ids)
    for chunk in (1, 7, 100):
        indptr, tokens, counts = _next_token_counts(ids, m.lengths, m._states, m._positions,
                                                    m._start, m._stop, chunk_pairs=chunk)
        assert indptr.tolist() == m.indptr.tolist()
        assert tokens.tolist() == m.tokens.tolist() and counts.tolist() == m.counts.tolist()
