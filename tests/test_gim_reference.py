"""Reference-corpus suffix-array index against brute force, and its error handling."""

import json
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from gim_brain.gim.reference import (ReferenceIndex, ReferenceIndexError, build_reference_index,
                                     build_suffix_array)


def brute_sa(seq):
    seq = list(seq)
    return sorted(range(len(seq)), key=lambda i: seq[i:])


def brute_longest(docs, context, max_length):
    """Longest suffix of context (<= max_length) found inside one document with a following token;
    at length 0 the unigram counts of the whole corpus (Infini-gram's back-off)."""
    best, counts = 0, Counter(t for d in docs for t in d)
    for k in range(1, min(max_length, len(context)) + 1):
        pat = list(context[-k:])
        c = Counter(d[i + k] for d in docs for i in range(len(d) - k) if d[i:i + k] == pat)
        if not c:
            break
        best, counts = k, c
    return best, counts


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=80))
def test_suffix_array_matches_sorting(seq):
    assert build_suffix_array(np.array(seq)).tolist() == brute_sa(seq)


@pytest.fixture(scope="module")
def small_index(tmp_path_factory):
    rng = np.random.default_rng(1)
    docs = [rng.integers(0, 6, 200).tolist(), [1, 2, 3, 4, 5] * 10, [0, 1, 2]]
    folder = tmp_path_factory.mktemp("ref")
    return docs, build_reference_index(docs, folder, tokenizer_name="toy", vocab_size=6,
                                       sources=["a", "b", "c"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=30))
def test_longest_suffix_matches_brute_force(small_index, context):
    docs, index = small_index
    m = index.longest_suffix(context, max_length=12)
    n, counts = brute_longest(docs, context, 12)
    assert m.length == n
    assert dict(zip(m.tokens.tolist(), m.counts.tolist())) == dict(counts)
    assert m.n_occurrences == sum(counts.values())


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=40))
def test_match_document_equals_per_position_queries(small_index, doc):
    docs, index = small_index
    res = index.match_document(doc, max_length=10)
    for t in range(len(doc)):
        n, counts = brute_longest(docs, doc[max(0, t - 9):t + 1], 10)
        assert res.lengths[t] == n
        tokens, cts = res.next_counts(t)
        assert dict(zip(tokens.tolist(), cts.tolist())) == dict(counts)


def test_matches_do_not_cross_documents_and_ends_have_no_continuation(tmp_path):
    index = build_reference_index([[1, 2, 3], [4, 5]], tmp_path / "i", tokenizer_name="toy",
                                  vocab_size=10)
    # "2 3" ends document 0: no following token, so the match is shorter ("3" also has none).
    assert index.longest_suffix([2, 3]).length == 0
    assert index.longest_suffix([1, 2]).length == 2
    assert index.longest_suffix([3, 4]).length == 1  # "3 4" would cross the boundary
    m = index.longest_suffix([9, 4])
    assert (m.length, m.tokens.tolist(), m.counts.tolist()) == (1, [5], [1])


def test_index_is_memory_mapped_and_reloads(small_index):
    docs, index = small_index
    again = ReferenceIndex(index.folder, tokenizer_name="toy", vocab_size=6)
    assert isinstance(again.suffix_array, np.memmap)
    assert again.n_tokens == sum(map(len, docs)) + len(docs) - 1
    assert json.loads((index.folder / "header.json").read_text())["sources"] == ["a", "b", "c"]


def test_corrupt_and_mismatched_index_errors(tmp_path):
    folder = tmp_path / "idx"
    build_reference_index([[1, 2, 3, 1, 2]], folder, tokenizer_name="toy", vocab_size=5)
    with pytest.raises(ReferenceIndexError, match="tokenizer 'toy'.*'gpt2'"):
        ReferenceIndex(folder, tokenizer_name="gpt2")
    with pytest.raises(ReferenceIndexError, match="vocab_size 5"):
        ReferenceIndex(folder, vocab_size=50257)
    with pytest.raises(ValueError, match="unknown token id 7"):
        ReferenceIndex(folder).longest_suffix([1, 7])
    # flip one byte of the token array: checksum mismatch
    data = bytearray((folder / "tokens.npy").read_bytes())
    data[-1] ^= 1
    (folder / "tokens.npy").write_bytes(bytes(data))
    with pytest.raises(ReferenceIndexError, match="checksum mismatch"):
        ReferenceIndex(folder)
    (folder / "tokens.npy").write_bytes(b"garbage")
    with pytest.raises(ReferenceIndexError, match="corrupt array file"):
        ReferenceIndex(folder)
    (folder / "header.json").write_text("{not json")
    with pytest.raises(ReferenceIndexError, match="unreadable header"):
        ReferenceIndex(folder)
    (folder / "header.json").unlink()
    with pytest.raises(ReferenceIndexError, match="missing file header.json"):
        ReferenceIndex(folder)
    with pytest.raises(ValueError, match="empty"):
        build_reference_index([[], []], tmp_path / "e", tokenizer_name="toy", vocab_size=5)
