"""Static word-vector spaces read from a user's file: ``eng1000`` and ``static``.

``eng1000``
    The English1000 vectors of Huth et al. 2016 from ``english1000sm.hf5`` in the Huth lab's
    layout (``SemanticModel.save``): HDF5 datasets ``data`` float ``(n_dims, n_vocab)`` (985 x
    10470 in the released file; one *column* per word) and ``vocab`` ``(n_vocab,)`` byte or
    unicode strings.
``static``
    Any word2vec / GloVe / fastText vector file, through ``gensim.KeyedVectors``
    (:func:`read_keyed_vectors`; ``format`` auto-detected from the file's first bytes).

Each word is looked up as written, then lower-cased; words not in the vocabulary get zeros
(as in the Huth lab's ``make_semantic_model``) and are counted in the space's ``report``
(``features.json``). Word rows are resampled to the response rows like every word feature.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .context import story_fingerprint, words_to_rows
from .downsample import DOWNSAMPLE_METHODS
from .registry import FeatureParameterError, Param, register_space

__all__ = [
    "VECTOR_FORMATS",
    "VectorFileError",
    "WordVectors",
    "check_english1000_layout",
    "detect_vector_format",
    "read_english1000",
    "read_keyed_vectors",
]

#: ``format`` values of ``static``: gensim's word2vec text (header ``n_words n_dims``) and
#: binary, GloVe text (no header), a fastText ``.bin`` model, a ``KeyedVectors.save`` file.
VECTOR_FORMATS = ("auto", "word2vec", "word2vec-binary", "glove", "fasttext", "gensim")
_FASTTEXT_MAGIC = (793712314).to_bytes(4, "little")
#: What gensim raises on a damaged or mislabelled file (numbers that are not, a cut binary, a
#: pickle that is not one, a fastText header that lies).
_GENSIM_READ_ERRORS = (ValueError, EOFError, OSError, struct.error, pickle.UnpicklingError, IndexError,
                       KeyError, AttributeError, TypeError, NotImplementedError, AssertionError)
_METHOD = Param("method", str, "lanczos", "resampling to TR times", DOWNSAMPLE_METHODS)


class VectorFileError(ValueError):
    """A word-vector file that cannot be read or is not in the expected layout (names it)."""


@dataclass
class WordVectors:
    """A vocabulary and its vectors.

    Attributes
    ----------
    index : dict word -> row of ``vectors``
    vectors : float32 ``(n_vocab, n_dims)``
    source : the file, for messages
    """

    index: dict
    vectors: np.ndarray
    source: str = ""

    def __post_init__(self) -> None:
        self._lower: dict = {}
        for w, i in self.index.items():  # first (most frequent) spelling of each lower-cased word
            self._lower.setdefault(w.lower(), i)

    @property
    def n_dims(self) -> int:
        return int(self.vectors.shape[1])

    def lookup(self, words: list[str]) -> tuple[np.ndarray, Counter]:
        """``(n_words, n_dims)`` float32 rows (zeros for unknown words) and a Counter of those
        words. A word is tried as written, then lower-cased against the lower-cased vocabulary
        (its first spelling: ``sat`` finds ``Sat``)."""
        out = np.zeros((len(words), self.n_dims), dtype=np.float32)
        missing = Counter()
        for i, w in enumerate(words):
            row = self.index.get(w)
            if row is None:
                row = self._lower.get(w.lower())
            if row is None:
                missing[w] += 1
            else:
                out[i] = self.vectors[row]
        return out, missing


def _check_matrix(vectors: np.ndarray, n_vocab: int, path) -> np.ndarray:
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or vectors.shape[0] != n_vocab or n_vocab == 0:
        raise VectorFileError(f"{path}: {n_vocab} words but vectors of shape {vectors.shape}")
    if not np.issubdtype(vectors.dtype, np.number):
        raise VectorFileError(f"{path}: vectors are not numbers (dtype {vectors.dtype})")
    vectors = vectors.astype(np.float32, copy=False)
    if not np.all(np.isfinite(vectors)):
        raise VectorFileError(f"{path}: vectors contain NaN or inf")
    return vectors


_ENG1000_LAYOUT = ("expected the Huth lab's english1000sm.hf5 layout: datasets 'data' (n_dims, n_vocab), "
                   "e.g. 985 x 10470, and 'vocab' (n_vocab,) strings")


def check_english1000_layout(path: str | os.PathLike) -> tuple[int, int]:
    """``(n_dims, n_vocab)`` of an ``english1000sm.hf5``, from its headers only (no data read).

    Raises :class:`VectorFileError` (not HDF5, ``data``/``vocab`` missing, ``vocab`` not 1-D
    strings, ``data`` not ``(n_dims, len(vocab))``; a transposed matrix is named as such)."""
    import h5py

    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            keys = sorted(f.keys())
            if "data" not in f or "vocab" not in f or not all(isinstance(f[k], h5py.Dataset)
                                                               for k in ("data", "vocab")):
                raise VectorFileError(f"{path}: holds {keys}; {_ENG1000_LAYOUT}")
            data, vocab = f["data"], f["vocab"]
            shape, vshape = tuple(data.shape), tuple(vocab.shape)
            numeric = data.dtype.kind in "fiu"
            strings = vocab.dtype.kind in "SU" or h5py.check_string_dtype(vocab.dtype) is not None
    except OSError as exc:
        raise VectorFileError(f"{path}: not a readable HDF5 file ({exc}); {_ENG1000_LAYOUT}") from None
    if len(vshape) != 1 or not strings:
        raise VectorFileError(f"{path}: 'vocab' is not a list of words (shape {vshape}); {_ENG1000_LAYOUT}")
    if len(shape) != 2 or shape[1] != vshape[0] or not numeric:
        transposed = len(shape) == 2 and shape[0] == vshape[0]
        raise VectorFileError(
            f"{path}: 'data' has shape {shape} for {vshape[0]} vocab words"
            + (" (transposed: one row per word)" if transposed else "")
            + ("" if numeric else " and is not numeric") + f"; {_ENG1000_LAYOUT}")
    return shape[0], shape[1]


def read_english1000(path: str | os.PathLike) -> WordVectors:
    """Read ``english1000sm.hf5`` (Huth lab layout: ``data`` ``(n_dims, n_vocab)``, ``vocab``).

    Returns :class:`WordVectors` with ``vectors`` ``(n_vocab, n_dims)`` float32.

    Raises
    ------
    FileNotFoundError
    VectorFileError
        The layout is wrong (:func:`check_english1000_layout`), or ``vocab`` is not UTF-8,
        or ``data`` holds NaN/inf.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"English1000 file not found: {path} (parameter 'path' of eng1000)")
    check_english1000_layout(path)
    try:
        with h5py.File(path, "r") as f:
            data = f["data"][()]
            vocab = np.asarray(f["vocab"][()])
    except OSError as exc:
        raise VectorFileError(f"{path}: cannot read its data (truncated?): {exc}") from None
    try:
        words = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in vocab]
    except UnicodeDecodeError as exc:
        raise VectorFileError(f"{path}: 'vocab' is not UTF-8 text ({exc})") from None
    vectors = _check_matrix(np.asarray(data).T, len(words), path)
    return WordVectors({w: i for i, w in enumerate(words)}, vectors, str(path))


def _first_bytes(path: Path, n: int = 1 << 16) -> bytes:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            return f.read(n)
    except (OSError, EOFError) as exc:
        raise VectorFileError(f"{path}: cannot read ({exc})") from None


def _floats(tokens: list[str]) -> bool:
    try:
        [float(t) for t in tokens]
    except ValueError:
        return False
    return True


def detect_vector_format(path: str | os.PathLike) -> str:
    """The ``format`` of a vector file from its suffix and first bytes (see :data:`VECTOR_FORMATS`).

    Raises :class:`VectorFileError` for a file that is none of them (names what was found).
    """
    path = Path(path)
    if path.suffix in (".kv", ".model"):
        return "gensim"
    head = _first_bytes(path)
    if head.startswith(_FASTTEXT_MAGIC):
        return "fasttext"
    first, _, rest = head.partition(b"\n")
    try:
        tokens = first.decode("utf-8").split()
    except UnicodeDecodeError:
        tokens = []
    if len(tokens) == 2 and all(t.isdigit() for t in tokens):
        dim = int(tokens[1])
        try:
            row = rest.split(b"\n", 1)[0].decode("utf-8").split()
        except UnicodeDecodeError:
            row = []
        if len(row) == dim + 1 and _floats(row[1:]):
            return "word2vec"
        control = set(range(32)) - {9, 10, 13}
        if not control & set(rest):  # text (a damaged text file?) rather than raw float32 rows
            return "word2vec"
        return "word2vec-binary"  # header, then raw float32 rows: gensim checks the rest
    if len(tokens) >= 2 and _floats(tokens[1:]):
        return "glove"
    shown = first[:60].decode("utf-8", "replace")
    raise VectorFileError(
        f"{path}: not a word-vector file: its first line {shown!r} is neither a word2vec header "
        f"('n_words n_dims') nor a word followed by numbers (GloVe), and it is no fastText .bin "
        f"model; pass format=... ({', '.join(VECTOR_FORMATS[1:])}) if it is one")


def read_keyed_vectors(path: str | os.PathLike, format: str = "auto", limit: int | None = None) -> WordVectors:
    """Read a word2vec / GloVe / fastText / gensim vector file with ``gensim.KeyedVectors``.

    ``limit`` keeps the first ``limit`` words (word2vec/GloVe files list frequent words first).

    Raises
    ------
    FileNotFoundError
    VectorFileError
        An unknown format or a file gensim cannot read as that format (names file and format).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"vector file not found: {path} (parameter 'path' of static)")
    if format not in VECTOR_FORMATS:
        raise VectorFileError(f"format must be one of {list(VECTOR_FORMATS)}, got {format!r}")
    fmt = detect_vector_format(path) if format == "auto" else format
    try:
        from gensim.models import KeyedVectors
    except ImportError:
        raise VectorFileError("the static space reads vector files with gensim: pip install gensim "
                              "(or pip install 'gim-brain[vectors]')") from None
    try:
        if fmt == "gensim":
            kv = KeyedVectors.load(str(path))
        elif fmt == "fasttext":
            from gensim.models.fasttext import load_facebook_vectors

            kv = load_facebook_vectors(str(path))
        else:
            kv = KeyedVectors.load_word2vec_format(str(path), binary=fmt == "word2vec-binary",
                                                   no_header=fmt == "glove", limit=limit)
    except _GENSIM_READ_ERRORS as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise VectorFileError(f"{path}: not a readable {fmt} vector file ({type(exc).__name__}: "
                              f"{first[:200]})") from None
    words = list(getattr(kv, "index_to_key", []))
    vectors = getattr(kv, "vectors", None)
    if vectors is None or not words:
        raise VectorFileError(f"{path}: no word vectors in this {fmt} file")
    if limit is not None and fmt in ("gensim", "fasttext"):
        words, vectors = words[:limit], vectors[:limit]
    vectors = _check_matrix(vectors, len(words), path)
    return WordVectors({w: i for i, w in enumerate(words)}, vectors, str(path))


# --------------------------------------------------------------------------- spaces

def _file_id(path: str) -> dict:
    """The vectors file by content (a copy elsewhere reuses the cached features)."""
    from .._cache import known_file_digest

    return {"sha256": known_file_digest(path)}


def _need_path(space: str, hint: str):
    def check(params: dict) -> None:
        path = params.get("path")
        if not path:
            raise FeatureParameterError(f"feature space {space!r} needs parameter 'path': {hint}")
        path = Path(path).expanduser()
        if not path.is_file():
            raise FeatureParameterError(f"parameter 'path' of feature space {space!r}: file not "
                                        f"found: {path}")
        try:  # headers / first bytes only: a wrong file fails before any data is read
            if space == "eng1000":
                check_english1000_layout(path)
            elif params.get("format", "auto") == "auto":
                detect_vector_format(path)
        except VectorFileError as exc:
            raise FeatureParameterError(f"parameter 'path' of feature space {space!r}: {exc}") from None
    return check


def _vectors(ctx, space: str, params: dict) -> WordVectors:
    path = str(Path(params["path"]).expanduser())
    key = ("word-vectors", space, path, params.get("format"), params.get("limit"))
    if key not in ctx.memo:
        try:
            if space == "eng1000":
                ctx.memo[key] = read_english1000(path)
            else:
                ctx.memo[key] = read_keyed_vectors(path, params["format"], params["limit"])
        except VectorFileError as exc:
            raise VectorFileError(f"parameter 'path' of feature space {space!r}: {exc}") from None
    return ctx.memo[key]


def _vector_space(ctx, params, story_name, space):
    story = ctx.story(story_name)
    parts = (space, params, _file_id(str(Path(params["path"]).expanduser())), story_fingerprint(story))

    def compute():
        vecs = _vectors(ctx, space, params)
        x, missing = vecs.lookup(story.transcript.words)
        return {"x": words_to_rows(story, x, params["method"]),
                "missing": np.array(sorted(missing), dtype=str),
                "missing_counts": np.array([missing[w] for w in sorted(missing)], dtype=np.int64),
                "n_words": np.array(len(story.transcript.words))}

    entry = ctx.cached(space, parts, compute)
    ctx.memo[("vector-misses", space, story_name)] = entry
    return entry["x"]


def _vector_report(space):
    def report(ctx, params, stories) -> dict:
        total, n_words, per_story = Counter(), 0, {}
        for s in stories:
            e = ctx.memo.get(("vector-misses", space, s))
            if e is None:
                continue
            miss = Counter(dict(zip((str(w) for w in e["missing"]), (int(c) for c in e["missing_counts"]))))
            total += miss
            n_words += int(e["n_words"])
            per_story[s] = sum(miss.values())
        n_missed = sum(total.values())
        return {"not_in_vocabulary": {"words": n_missed, "of_words": n_words,
                                      "rate": round(n_missed / n_words, 5) if n_words else 0.0,
                                      "per_story": per_story, "most_common": dict(total.most_common(50))}}
    return report


@register_space("eng1000", "English1000 word vectors (Huth et al. 2016) from a user's english1000sm.hf5; "
                "unknown words get zeros",
                params=(Param("path", "str?", None, "english1000sm.hf5 (Huth lab layout: data "
                              "(n_dims, n_vocab), vocab)"), _METHOD),
                check=_need_path("eng1000", "the english1000sm.hf5 of the Huth lab's ds003020 code "
                                 "(em_data/english1000sm.hf5), e.g. eng1000[path=/data/english1000sm.hf5]"),
                report=_vector_report("eng1000"))
def _eng1000(ctx, params, story):
    return _vector_space(ctx, params, story, "eng1000")


@register_space("static", "static word vectors from any word2vec / GloVe / fastText file (gensim); "
                "unknown words get zeros",
                params=(Param("path", "str?", None, "vector file (.txt, .vec, .bin, .gz, .kv)"),
                        Param("format", str, "auto", "file format (auto: detected from its first bytes)",
                              VECTOR_FORMATS),
                        Param("limit", "int?", None, "read only the first LIMIT words (None: all)",
                              minimum=1),
                        _METHOD),
                check=_need_path("static", "a word2vec/GloVe/fastText vector file, e.g. "
                                 "static[path=glove.6B.300d.txt]"),
                report=_vector_report("static"))
def _static(ctx, params, story):
    return _vector_space(ctx, params, story, "static")
