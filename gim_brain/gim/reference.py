"""Reference-corpus matching (Infini-gram style): an on-disk, memory-mapped suffix array.

An index is a folder with four files:

``tokens.npy``
    ``>u4 (n_tokens,)``: the tokenised corpus, documents separated by ``SEPARATOR``
    (``0xFFFFFFFF``). Big-endian so that the byte order of a slice sorts like the token order.
``suffix_array.npy``
    ``int64 (n_tokens,)``: start positions of all suffixes in lexicographic order (built by
    prefix doubling with NumPy).
``unigram.npy``
    ``int64 (vocab_size,)``: how often each token occurs (the back-off at suffix length 0).
``header.json``
    format name and version, token count, vocabulary size, tokenizer name and fingerprint (a
    digest of its vocabulary, :mod:`gim_brain.gim.tokenizers`), the source files and a SHA-256
    checksum of the arrays.

Queries follow Infini-gram: the longest suffix of (at most the last ``max_length`` = 500 tokens
of) the context that occurs followed by a token in the same document; when no suffix of length
>= 1 does, the back-off is the unigram distribution of the whole corpus (length 0).

Both arrays are opened with ``mmap_mode="r"``; a query reads only the O(k log N) bytes its binary
searches touch plus the slice of matching suffixes.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .._cache import atomic_write_bytes
from .exact import check_token_ids

__all__ = ["SEPARATOR", "MAX_QUERY_LENGTH", "ReferenceIndexError", "ReferenceMatch",
           "ReferenceMatches", "ReferenceIndex", "build_suffix_array", "build_reference_index",
           "check_index_tokenizer", "missing_index_error"]

SEPARATOR = 0xFFFFFFFF
FORMAT = "gim-brain-suffix-array"
FORMAT_VERSION = 2
_TOKENS, _SA, _UNIGRAM, _HEADER = "tokens.npy", "suffix_array.npy", "unigram.npy", "header.json"
#: Default query length: the last 500 tokens of a context, as Infini-gram queries.
MAX_QUERY_LENGTH = 500


class ReferenceIndexError(ValueError):
    """A reference index folder is missing, corrupt, or does not fit the tokenizer in use."""


def build_suffix_array(tokens: np.ndarray) -> np.ndarray:
    """Suffix array of an integer sequence by prefix doubling, ``O(n log^2 n)`` in NumPy.

    Parameters
    ----------
    tokens : integer array (n,)

    Returns
    -------
    int64 (n,)
        Start positions of the suffixes in lexicographic order (a proper prefix sorts first).
    """
    tokens = np.asarray(tokens)
    n = len(tokens)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    _, rank = np.unique(tokens.astype(np.int64), return_inverse=True)
    rank = rank.astype(np.int64).ravel()
    k = 1
    while True:
        second = np.zeros(n, dtype=np.int64)  # 0 = past the end: sorts before every token
        second[:n - k] = rank[k:] + 1
        key = rank * (n + 1) + second
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        new_rank_sorted = np.concatenate(([0], np.cumsum(sorted_key[1:] != sorted_key[:-1])))
        rank = np.empty(n, dtype=np.int64)
        rank[order] = new_rank_sorted
        if new_rank_sorted[-1] == n - 1 or k >= n:
            return order.astype(np.int64)
        k *= 2


@dataclass
class ReferenceMatch:
    """Longest match of one context in the reference corpus.

    Attributes
    ----------
    length : int
        Length of the longest suffix of the context that occurs in the corpus followed by a token
        (0: no such suffix; then ``tokens``/``counts`` are the corpus unigram counts).
    tokens, counts : int64 (k,)
        The following tokens (ascending) and how often each followed the match.
    n_occurrences : int
        Occurrences of the match that have a following token (``counts.sum()``).
    sa_range : (int, int)
        Rows of the suffix array holding the occurrences (including any at a document end); all
        rows at length 0.
    """

    length: int
    tokens: np.ndarray
    counts: np.ndarray
    n_occurrences: int
    sa_range: tuple[int, int]


@dataclass
class ReferenceMatches:
    """Reference matches of every position of a document (CSR like :class:`ExactMatches`)."""

    lengths: np.ndarray
    indptr: np.ndarray
    tokens: np.ndarray
    counts: np.ndarray
    sa_ranges: np.ndarray  # int64 (n, 2)

    def next_counts(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.indptr[t], self.indptr[t + 1]
        return self.tokens[a:b], self.counts[a:b]


def _checksum(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for arr in arrays:
        view = np.ascontiguousarray(arr).view(np.uint8)
        for i in range(0, len(view), 1 << 24):
            h.update(view[i:i + (1 << 24)])
    return h.hexdigest()


def describe_tokenizer(name, fingerprint) -> str:
    """``'name' (fingerprint abcdef123456)`` for error messages."""
    fp = f"fingerprint {fingerprint[:12]}" if fingerprint else "no fingerprint recorded"
    return f"{name!r} ({fp})"


def missing_index_error(folder: Path) -> ReferenceIndexError:
    """The error for a reference index folder that does not exist."""
    return ReferenceIndexError(
        f"reference index folder {folder} does not exist; build one with "
        f"`gim-brain reference-index --text FILE... --out {folder}` (add --engine and --tokenizer)")


def check_index_tokenizer(folder: Path, header: dict, tokenizer=None,
                          tokenizer_name: str | None = None, vocab_size: int | None = None) -> None:
    """Refuse a query tokenizer that differs from the one an index ``header`` records.

    ``tokenizer`` (a :class:`~gim_brain.gim.tokenizers.Tokenizer`) is compared by vocabulary
    fingerprint and size; ``tokenizer_name`` / ``vocab_size`` by equality.
    """
    built = describe_tokenizer(header.get("tokenizer"), header.get("tokenizer_fingerprint"))
    if tokenizer is not None:
        if header.get("tokenizer_fingerprint") != tokenizer.fingerprint:
            raise ReferenceIndexError(
                f"reference index {folder} was built with tokenizer {built}, but the query uses "
                f"{describe_tokenizer(tokenizer.name, tokenizer.fingerprint)}: token ids would not "
                f"mean the same text; rebuild the index with that tokenizer or query with the other")
        vocab_size = tokenizer.vocab_size if vocab_size is None else vocab_size
    if tokenizer_name is not None and tokenizer_name != header.get("tokenizer"):
        raise ReferenceIndexError(
            f"reference index {folder} was built with tokenizer "
            f"{header.get('tokenizer')!r}, but the model uses {tokenizer_name!r}")
    if vocab_size is not None and vocab_size != header.get("vocab_size"):
        raise ReferenceIndexError(
            f"reference index {folder} has vocab_size {header.get('vocab_size')}, "
            f"but the model has {vocab_size}")


def tokenizer_fields(tokenizer, tokenizer_name, vocab_size, tokenizer_fingerprint) -> dict:
    """Header fields naming the tokenizer of an index (from a Tokenizer or given explicitly)."""
    if tokenizer is not None:
        tokenizer_name = tokenizer.name if tokenizer_name is None else tokenizer_name
        vocab_size = tokenizer.vocab_size if vocab_size is None else vocab_size
        tokenizer_fingerprint = tokenizer.fingerprint
    if tokenizer_name is None or vocab_size is None:
        raise ValueError("building a reference index needs tokenizer=<Tokenizer> or both "
                         "tokenizer_name and vocab_size")
    return {"tokenizer": str(tokenizer_name), "tokenizer_fingerprint": tokenizer_fingerprint,
            "vocab_size": int(vocab_size)}


def checked_documents(documents: Iterable[Sequence[int]], vocab_size: int) -> tuple[list, int]:
    """Checked non-empty int64 documents and their count (empty ones skipped)."""
    docs = []
    for i, doc in enumerate(documents):
        doc = np.asarray(doc, dtype=np.int64).reshape(-1)
        if doc.size == 0:
            continue
        check_token_ids(doc, vocab_size, what=f"reference document {i}")
        docs.append(doc)
    if not docs:
        raise ValueError("reference corpus is empty: no document has any token")
    return docs, len(docs)


def build_reference_index(documents: Iterable[Sequence[int]], folder: str | os.PathLike, *,
                          tokenizer=None, tokenizer_name: str | None = None,
                          vocab_size: int | None = None, tokenizer_fingerprint: str | None = None,
                          sources: Sequence[str] = ()) -> "ReferenceIndex":
    """Concatenate tokenised documents, build the suffix array and write an index folder.

    Parameters
    ----------
    documents : iterable of int sequences
        Token ids of each document (empty ones are skipped).
    folder : path
        Output folder (created; files written atomically).
    tokenizer : :class:`~gim_brain.gim.tokenizers.Tokenizer`, optional
        Its name, vocabulary size and fingerprint are recorded; queries with another tokenizer
        are refused.
    tokenizer_name, vocab_size, tokenizer_fingerprint :
        Explicit values instead of (or overriding the name/size of) ``tokenizer``.
    sources : list of str
        Where the documents came from (recorded in the header).
    """
    fields = tokenizer_fields(tokenizer, tokenizer_name, vocab_size, tokenizer_fingerprint)
    docs, n_docs = checked_documents(documents, fields["vocab_size"])
    sep = np.array([SEPARATOR], dtype=np.int64)
    tokens = np.concatenate([part for d in docs for part in (sep, d)][1:]).astype(">u4")
    unigram = np.bincount(np.concatenate(docs), minlength=fields["vocab_size"]).astype(np.int64)
    sa = build_suffix_array(tokens.astype(np.int64))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in ((_TOKENS, tokens), (_SA, sa), (_UNIGRAM, unigram)):
        buf = io.BytesIO()
        np.save(buf, arr)
        atomic_write_bytes(folder / name, buf.getvalue())
    header = {"format": FORMAT, "version": FORMAT_VERSION, "n_tokens": int(len(tokens)),
              "n_documents": n_docs, **fields, "sources": [str(s) for s in sources],
              "sha256": _checksum(tokens, sa, unigram)}
    atomic_write_bytes(folder / _HEADER, json.dumps(header, indent=1).encode())
    return ReferenceIndex(folder)


def unigram_match(unigram: np.ndarray, n_rows: int) -> ReferenceMatch:
    """The length-0 back-off: every token that occurs, with its corpus count."""
    tokens = np.flatnonzero(unigram).astype(np.int64)
    counts = np.asarray(unigram[tokens], dtype=np.int64)
    return ReferenceMatch(0, tokens, counts, int(counts.sum()), (0, int(n_rows)))


class IndexHeader:
    """What every reference index reads from its ``header.json`` (``self.header``, ``self.folder``)."""

    header: dict
    folder: Path

    @property
    def n_tokens(self) -> int:
        """Tokens in the corpus file, document separators included."""
        return int(self.header["n_tokens"])

    @property
    def vocab_size(self) -> int:
        return int(self.header["vocab_size"])

    @property
    def tokenizer_name(self) -> str:
        return str(self.header["tokenizer"])

    @property
    def tokenizer_fingerprint(self) -> str | None:
        return self.header.get("tokenizer_fingerprint")

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({str(self.folder)!r}, n_tokens={self.n_tokens}, "
                f"tokenizer={self.tokenizer_name!r})")


class ReferenceIndex(IndexHeader):
    """A memory-mapped suffix-array index over a tokenised reference corpus.

    Parameters
    ----------
    folder : path
        Written by :func:`build_reference_index`.
    tokenizer : :class:`~gim_brain.gim.tokenizers.Tokenizer`, optional
        When given, its vocabulary fingerprint and size must equal the recorded ones.
    tokenizer_name : str, optional
        When given, must equal the tokenizer name recorded in the header.
    vocab_size : int, optional
        When given, must equal the recorded vocabulary size.
    verify : bool
        Recompute the SHA-256 checksum of the arrays (reads them once).

    Raises
    ------
    ReferenceIndexError
        Missing folder or file, unreadable or inconsistent header/arrays, checksum mismatch, or a
        tokenizer/vocabulary that differs from the one the index was built with.
    """

    engine = "suffix-array"

    def __init__(self, folder: str | os.PathLike, tokenizer_name: str | None = None,
                 vocab_size: int | None = None, verify: bool = True, *, tokenizer=None):
        self.folder = Path(folder)
        header_path = self.folder / _HEADER
        if not self.folder.is_dir():
            raise missing_index_error(self.folder)
        for name in (_HEADER, _TOKENS, _SA, _UNIGRAM):
            if not (self.folder / name).is_file():
                raise ReferenceIndexError(f"reference index {self.folder}: missing file {name}")
        try:
            header = json.loads(header_path.read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise ReferenceIndexError(f"reference index {header_path}: unreadable header ({exc})") from exc
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ReferenceIndexError(f"reference index {header_path}: not a {FORMAT} header")
        if header.get("version") != FORMAT_VERSION:
            raise ReferenceIndexError(f"reference index {header_path}: format version "
                                      f"{header.get('version')} (expected {FORMAT_VERSION}; "
                                      f"rebuild the index)")
        self.header = header
        try:
            self.tokens = np.load(self.folder / _TOKENS, mmap_mode="r")
            self.suffix_array = np.load(self.folder / _SA, mmap_mode="r")
            self.unigram = np.load(self.folder / _UNIGRAM)
        except (ValueError, OSError) as exc:
            raise ReferenceIndexError(f"reference index {self.folder}: corrupt array file ({exc})") from exc
        n = header.get("n_tokens")
        if (self.tokens.dtype != np.dtype(">u4") or self.suffix_array.dtype != np.int64
                or self.tokens.shape != (n,) or self.suffix_array.shape != (n,)
                or self.unigram.shape != (header.get("vocab_size"),)):
            raise ReferenceIndexError(
                f"reference index {self.folder}: arrays {self.tokens.dtype}{self.tokens.shape} / "
                f"{self.suffix_array.dtype}{self.suffix_array.shape} / unigram "
                f"{self.unigram.shape} do not match the header (n_tokens={n}, "
                f"vocab_size={header.get('vocab_size')})")
        if verify and _checksum(self.tokens, self.suffix_array, self.unigram) != header.get("sha256"):
            raise ReferenceIndexError(f"reference index {self.folder}: checksum mismatch "
                                      "(files corrupt or modified; rebuild the index)")
        check_index_tokenizer(self.folder, header, tokenizer, tokenizer_name, vocab_size)
        self._bytes = memoryview(self.tokens.view(np.uint8))
        self._memo: dict = {}
        self._backoff = unigram_match(self.unigram, n)

    # -- search -------------------------------------------------------------------------
    def _range(self, pattern: bytes) -> tuple[int, int]:
        """Suffix-array rows whose suffix starts with ``pattern`` (big-endian u4 bytes)."""
        sa, data, m = self.suffix_array, self._bytes, len(pattern)
        lo, hi = 0, len(sa)
        while lo < hi:  # first row >= pattern
            mid = (lo + hi) // 2
            s = 4 * int(sa[mid])
            if bytes(data[s:s + m]) < pattern:
                lo = mid + 1
            else:
                hi = mid
        first = lo
        hi = len(sa)
        while lo < hi:  # first row whose prefix > pattern
            mid = (lo + hi) // 2
            s = 4 * int(sa[mid])
            if bytes(data[s:s + m]) <= pattern:
                lo = mid + 1
            else:
                hi = mid
        return first, lo

    def _continuations(self, k: int, rows: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        big = rows[1] - rows[0] > 2048   # frequent short patterns recur: remember their counts
        if big and (k, rows) in self._memo:
            return self._memo[(k, rows)]
        starts = np.asarray(self.suffix_array[rows[0]:rows[1]]) + k
        starts = starts[starts < self.n_tokens]
        nxt = np.asarray(self.tokens[starts]).astype(np.int64)
        nxt = nxt[nxt != SEPARATOR]
        out = np.unique(nxt, return_counts=True)
        if big:
            if len(self._memo) > 4096:
                self._memo.clear()
            self._memo[(k, rows)] = out
        return out

    def _probe(self, context: np.ndarray, k: int):
        """(rows, tokens, counts) of the length-k suffix of ``context``, or None when absent."""
        rows = self._range(context[len(context) - k:].astype(">u4").tobytes())
        if rows[0] == rows[1]:
            return None
        tokens, counts = self._continuations(k, rows)
        if len(tokens) == 0:
            return None
        return rows, tokens, counts

    def _check(self, ids, what):
        return check_token_ids(ids, self.vocab_size, what=what)

    def longest_suffix(self, context, max_length: int = MAX_QUERY_LENGTH) -> ReferenceMatch:
        """Longest suffix (at most ``max_length`` tokens) of ``context`` that occurs followed by a
        token; the corpus unigram counts (length 0) when none does."""
        return self.longest_suffixes([context], max_length)[0]

    def longest_suffixes(self, contexts: Sequence,
                         max_length: int = MAX_QUERY_LENGTH) -> list[ReferenceMatch]:
        """Batched :meth:`longest_suffix`: one :class:`ReferenceMatch` per context.

        Each context is searched by binary search over the suffix length (``O(log max_length)``
        suffix-array searches of ``O(k log N)`` each).
        """
        out = []
        for i, context in enumerate(contexts):
            ctx = self._check(context, f"query context {i}")
            lo, hi = 0, min(max_length, len(ctx))  # lo always matches (0 = empty match)
            best = None
            while lo < hi:
                mid = (lo + hi + 1) // 2
                found = self._probe(ctx, mid)
                if found is None:
                    hi = mid - 1
                else:
                    lo, best = mid, found
            if lo == 0:
                out.append(self._backoff)
            else:
                rows, tokens, counts = best
                out.append(ReferenceMatch(lo, tokens.astype(np.int64), counts.astype(np.int64),
                                          int(counts.sum()), rows))
        return out

    def match_document(self, ids, max_length: int = MAX_QUERY_LENGTH) -> ReferenceMatches:
        """Reference matches for every position ``t`` of a document (context ``ids[:t+1]``).

        Uses ``n_{t} <= n_{t-1} + 1``: the search starts one token longer than the previous match
        and shortens, so a document costs O(n) suffix-array searches in total. Positions with no
        match of length >= 1 get the unigram back-off (length 0).
        """
        ids = self._check(ids, "document")
        n = len(ids)
        lengths = np.zeros(n, dtype=np.int64)
        ranges = np.zeros((n, 2), dtype=np.int64)
        indptr = np.zeros(n + 1, dtype=np.int64)
        toks, cnts = [], []
        prev = 0
        for t in range(n):
            ctx = ids[max(0, t + 1 - max_length):t + 1]
            k = min(prev + 1, len(ctx))
            found = None
            while k > 0:
                found = self._probe(ctx, k)
                if found is not None:
                    break
                k -= 1
            prev = k
            if found is None:
                back = self._backoff
                found = (back.sa_range, back.tokens, back.counts)
            lengths[t] = k
            ranges[t] = found[0]
            toks.append(found[1])
            cnts.append(found[2])
            indptr[t + 1] = len(found[1])
        np.cumsum(indptr, out=indptr)
        cat = lambda parts: np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)
        return ReferenceMatches(lengths, indptr, cat(toks), cat(cnts), ranges)

    def occurrence_starts(self, sa_range: tuple[int, int], limit: int = 5) -> np.ndarray:
        """Corpus start positions of (at most ``limit``) occurrences in a suffix-array range."""
        a, b = sa_range
        return np.sort(np.asarray(self.suffix_array[a:min(b, a + limit)]))

    def corpus_slice(self, start: int, stop: int) -> np.ndarray:
        """Tokens ``[start, stop)`` of the corpus (``int64``; a separator reads as -1)."""
        out = np.asarray(self.tokens[max(0, start):min(stop, self.n_tokens)]).astype(np.int64)
        out[out == SEPARATOR] = -1
        return out
