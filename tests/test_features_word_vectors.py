"""``eng1000`` (English1000 in the Huth lab's hf5 layout) and ``static`` (gensim vector files):
small real files written here, lookups, OOV reports and the errors for files of the wrong kind."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from _features_helpers import TEXT, make_tiny_dataset

from gim_brain._cache import NpzCache
from gim_brain.data import load_dataset
from gim_brain.features import (
    FeatureParameterError,
    SpaceContext,
    build_design,
    resolve_params,
)
from gim_brain.features.word_vectors import (
    VectorFileError,
    detect_vector_format,
    read_english1000,
    read_keyed_vectors,
)

VOCAB = sorted(set(TEXT) - {"river", "boats"})  # two words of the stories left out of the vocabulary


def _vectors(dim=6, seed=0):
    return np.random.default_rng(seed).normal(size=(len(VOCAB), dim)).astype(np.float32)


def write_english1000(path, vectors=None, vocab=VOCAB, transposed=False):
    """An ``english1000sm.hf5`` in the Huth lab's layout: ``data`` (n_dims, n_vocab), ``vocab`` bytes."""
    vectors = _vectors() if vectors is None else vectors
    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=vectors if transposed else vectors.T)
        f.create_dataset("vocab", data=np.array([w.encode() for w in vocab]))
    return path


def _keyed(vectors=None):
    from gensim.models import KeyedVectors

    vectors = _vectors() if vectors is None else vectors
    kv = KeyedVectors(vector_size=vectors.shape[1])
    kv.add_vectors([w.capitalize() if w == "man" else w for w in VOCAB], vectors)  # 'Man' is cased
    return kv


@pytest.fixture()
def tiny(tmp_path):
    manifest = make_tiny_dataset(tmp_path / "data", n_stories=2)
    ds = load_dataset(manifest, tmp_path / "data")
    return ds, SpaceContext(ds, cache=NpzCache(tmp_path / "cache"), progress=False)


def test_english1000_layout_is_read_and_oov_words_get_zeros(tmp_path, tiny):
    ds, ctx = tiny
    vecs = _vectors()
    path = write_english1000(tmp_path / "english1000sm.hf5", vecs)
    wv = read_english1000(path)
    assert wv.vectors.shape == (len(VOCAB), 6) and wv.n_dims == 6
    x, missing = wv.lookup(["old", "river", "Man"])
    np.testing.assert_array_equal(x[0], vecs[VOCAB.index("old")])
    np.testing.assert_array_equal(x[1], 0)
    np.testing.assert_array_equal(x[2], vecs[VOCAB.index("man")])
    assert missing == {"river": 1}

    d = build_design(ctx, f"eng1000[path={path};method=sum]", delays=(0,))
    rep = d.spaces[0]["report"]["not_in_vocabulary"]
    words = {s: ds.load_story(s).words for s in ("s0", "s1")}
    n_oov = {s: sum(w in ("river", "boats") for w in ws) for s, ws in words.items()}
    assert rep["per_story"] == n_oov and rep["words"] == sum(n_oov.values()) > 0
    assert set(rep["most_common"]) == {"river", "boats"}
    assert rep["of_words"] == sum(len(w) for w in words.values())
    # the sum-resampled raw rows are the sums of the word vectors of each row
    from gim_brain.features import get_space

    space = get_space("eng1000")
    raw = space.build(ctx, resolve_params(space, {"path": str(path), "method": "sum"}), "s1")
    st = ds.load_story("s1")
    rows = st.grid.assign_words(st.transcript.onsets)
    x, _ = wv.lookup(st.words)
    expected = np.zeros((st.n_rows, 6))
    np.add.at(expected, rows[rows >= 0], x[rows >= 0])
    np.testing.assert_allclose(raw, expected, atol=1e-5)


@pytest.mark.parametrize("fmt", ["word2vec", "word2vec-binary", "glove", "gensim"])
def test_static_reads_gensim_files_and_detects_their_format(tmp_path, tiny, fmt):
    ds, ctx = tiny
    vecs = _vectors(dim=5, seed=1)
    kv = _keyed(vecs)
    path = tmp_path / {"word2vec": "v.txt", "word2vec-binary": "v.bin", "glove": "glove.txt",
                       "gensim": "v.kv"}[fmt]
    if fmt == "gensim":
        kv.save(str(path))
    elif fmt == "glove":
        path.write_text("".join(f"{w} {' '.join(repr(float(v)) for v in kv[w])}\n" for w in kv.index_to_key))
    else:
        kv.save_word2vec_format(str(path), binary=fmt == "word2vec-binary")
    assert detect_vector_format(path) == fmt
    wv = read_keyed_vectors(path)
    x, missing = wv.lookup(["man", "sea", "boats"])  # 'man' finds the cased 'Man'
    np.testing.assert_allclose(x[0], vecs[VOCAB.index("man")], rtol=1e-6)
    np.testing.assert_allclose(x[1], vecs[VOCAB.index("sea")], rtol=1e-6)
    assert missing == {"boats": 1} and not x[2].any()
    d = build_design(ctx, f"static[path={path}]", stories=["s1"])
    assert d.X["s1"].shape == (ds.load_story("s1").n_rows, 5 * 4)
    assert set(d.spaces[0]["report"]["not_in_vocabulary"]["most_common"]) == {"river", "boats"}
    if fmt in ("word2vec", "glove"):
        assert len(read_keyed_vectors(path, fmt, limit=3).index) == 3


def test_wrong_files_are_clear_errors(tmp_path, tiny):
    _, ctx = tiny
    transposed = write_english1000(tmp_path / "t.hf5", transposed=True)
    with pytest.raises(VectorFileError, match=r"t\.hf5: 'data' has shape \(\d+, 6\).*transposed"):
        read_english1000(transposed)
    with h5py.File(tmp_path / "keys.hf5", "w") as f:
        f["embeddings"] = np.zeros((3, 2))
    with pytest.raises(VectorFileError, match=r"keys\.hf5: holds \['embeddings'\].*'data'.*'vocab'"):
        read_english1000(tmp_path / "keys.hf5")
    (tmp_path / "notes.txt").write_text("These are my notes\nnot vectors\n")
    with pytest.raises(VectorFileError, match=r"notes\.txt: not an? .*HDF5"):
        read_english1000(tmp_path / "notes.txt")
    with pytest.raises(VectorFileError, match=r"notes\.txt: not a word-vector file.*These are my notes"):
        read_keyed_vectors(tmp_path / "notes.txt")
    (tmp_path / "cut.bin").write_bytes(b"3 5\nthe \x00\x01\x02")
    with pytest.raises(VectorFileError, match=r"cut\.bin: not a readable word2vec-binary vector file"):
        read_keyed_vectors(tmp_path / "cut.bin")
    for spec in (f"eng1000[path={transposed}]", f"static[path={tmp_path / 'notes.txt'}]"):
        with pytest.raises(FeatureParameterError, match=r"parameter 'path' of feature space '(eng1000|static)'"):
            build_design(ctx, spec)  # found from the headers, before any story is built
    with pytest.raises(VectorFileError, match=r"parameter 'path' of feature space 'static'.*cut\.bin"):
        build_design(ctx, f"static[path={tmp_path / 'cut.bin'}]")  # found when gensim reads it
    with pytest.raises(FeatureParameterError, match="'eng1000' needs parameter 'path'"):
        resolve_params("eng1000", {})
    with pytest.raises(FeatureParameterError, match=r"'path' of feature space 'static': file not found: .*nope\.txt"):
        resolve_params("static", {"path": str(tmp_path / "nope.txt")})
