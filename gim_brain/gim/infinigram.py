"""Reference matching with the ``infini-gram`` engine (PyPI ``infini-gram``), same API as ReferenceIndex.

An index folder holds the engine's own files plus ours:

``tokenized.0``, ``offset.0``, ``table.0``
    The engine's format (version 4): every document preceded by a separator (``0xFFFF``, u16
    little-endian tokens; u32 for vocabularies over 65534 tokens, whose indexer in infini-gram
    2.6.0 allocates 32 GiB at any corpus size), the byte offset of each
    document, and the suffix array built by the package's own indexer
    (``python -m infini_gram.indexing``, which runs its ``rust_indexing`` binary). We write the
    token file ourselves with a :class:`~gim_brain.gim.tokenizers.Tokenizer` (the indexer's own
    tokenisation needs the Hugging Face hub), so the indexer skips its step 1.
``unigram.npy``
    ``int64 (vocab_size,)``: the engine's answer at suffix length 0 (``infgram_ntd`` of an
    empty prompt), computed once after indexing.
``header.json``
    ``gim-brain-infini-gram``: tokenizer name/fingerprint/vocabulary size, token and document
    counts, the sources, and ``doc_end_id`` (the id the engine reports for "the document ended").

Queries use the last ``max_length`` (500) tokens. The longest suffix is found with the engine's
own suffix-array search (``find``); its continuations are read from the engine's files
(``table.0`` pointers into ``tokenized.0``); at suffix length 0 the answer is the engine's own
``infgram_ntd`` of an empty prompt, the unigram counts of the corpus. The engine counts the end
of a document as a continuation (``doc_end_id``); we drop it and, when a suffix occurs only at
document ends, back off one token, so the answer is "the longest suffix followed by a token in
the same document", exactly what :class:`~gim_brain.gim.reference.ReferenceIndex` answers on the
same corpus.

Why not ``infgram_ntd`` for every query: in infini-gram 2.6.0 its exact path (``max_support`` at
least the prompt count) crashes the process with a segmentation fault on some prompts (on a
GPT-2 index of three plays, ``ntd(prompt_ids=[0])`` with 109 occurrences), and with a smaller
``max_support`` the counts are sampled (``approx``), not exact.
"""

from __future__ import annotations

import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from .._cache import atomic_write_bytes
from .exact import check_token_ids
from .reference import (
    MAX_QUERY_LENGTH,
    IndexHeader,
    ReferenceIndexError,
    ReferenceMatch,
    ReferenceMatches,
    check_index_tokenizer,
    checked_documents,
    missing_index_error,
    tokenizer_fields,
)

__all__ = ["FORMAT", "InfiniGramError", "InfiniGramIndex", "build_infinigram_index"]

FORMAT = "gim-brain-infini-gram"
FORMAT_VERSION = 1
_HEADER = "header.json"
_UNIGRAM = "unigram.npy"
_SHARD_FILES = ("tokenized.0", "offset.0", "table.0")


class InfiniGramError(ReferenceIndexError):
    """The ``infini-gram`` package is missing, its indexer failed, or the engine refused a query."""


def _token_dtype(vocab_size: int) -> tuple[str, np.dtype]:
    # the separator is the largest value of the dtype; doc_end_id = vocab_size must stay below it
    return ("u16", np.dtype("<u2")) if vocab_size + 1 < 0xFFFF else ("u32", np.dtype("<u4"))


def _engine_module():
    try:
        from infini_gram import engine
    except ImportError as exc:
        raise InfiniGramError("the infini-gram engine needs the PyPI package 'infini-gram' "
                              f"(pip install infini-gram): {exc}") from exc
    return engine


def build_infinigram_index(documents: Iterable[Sequence[int]], folder: str | os.PathLike, *,
                           tokenizer=None, tokenizer_name: str | None = None,
                           vocab_size: int | None = None, tokenizer_fingerprint: str | None = None,
                           sources: Sequence[str] = (), cpus: int = 1,
                           mem_gib: int = 2) -> InfiniGramIndex:
    """Write tokenised documents in the engine's format and run its indexer into ``folder``.

    Parameters
    ----------
    documents : iterable of int sequences
        Token ids of each document (empty ones are skipped).
    folder : path
        Output folder (built in a temporary sibling folder, then renamed into place).
    tokenizer, tokenizer_name, vocab_size, tokenizer_fingerprint, sources :
        As :func:`~gim_brain.gim.reference.build_reference_index`.
    cpus, mem_gib :
        Passed to the indexer (``--cpus``, ``--mem``).

    Raises
    ------
    InfiniGramError
        The package is missing or its indexer failed (the message holds the indexer's output).
    """
    _engine_module()
    fields = tokenizer_fields(tokenizer, tokenizer_name, vocab_size, tokenizer_fingerprint)
    docs, n_docs = checked_documents(documents, fields["vocab_size"])
    dtype_name, dtype = _token_dtype(fields["vocab_size"])
    sep = np.array([np.iinfo(dtype).max], dtype=dtype).tobytes()
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", suffix=".tmp", dir=folder.parent))
    try:
        offsets, pos = [], 0
        with open(tmp / "tokenized.0", "wb") as f:
            for d in docs:
                offsets.append(pos)
                data = sep + d.astype(dtype).tobytes()
                f.write(data)
                pos += len(data)
        (tmp / "offset.0").write_bytes(np.array(offsets, dtype="<u8").tobytes())
        (tmp / "raw").mkdir()  # the indexer wants a data folder; step 1 is skipped
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        ulimit = hard if hard != resource.RLIM_INFINITY else 1048576
        cmd = [sys.executable, "-m", "infini_gram.indexing", "--data_dir", str(tmp / "raw"),
               "--save_dir", str(tmp), "--token_dtype", dtype_name, "--cpus", str(int(cpus)),
               "--mem", str(int(mem_gib)), "--ulimit", str(min(ulimit, 1048576))]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not (tmp / "table.0").is_file():
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            hint = ("" if dtype_name == "u16" else
                    f"\n(the vocabulary of {fields['vocab_size']} tokens needs u32 tokens; the "
                    f"package's u32 indexer allocates 32 GiB, the suffix-array engine does not)")
            raise InfiniGramError(f"infini-gram indexer failed for {folder} (exit "
                                  f"{proc.returncode}): {' '.join(cmd)}\n{tail}{hint}")
        (tmp / "raw").rmdir()
        header = {"format": FORMAT, "version": FORMAT_VERSION, "engine_index_version": 4,
                  "token_dtype": dtype_name, "n_tokens": pos // dtype.itemsize,
                  "n_documents": n_docs, **fields, "doc_end_id": fields["vocab_size"],
                  "sources": [str(s) for s in sources]}
        atomic_write_bytes(tmp / _HEADER, json.dumps(header, indent=1).encode())
        if folder.exists():
            shutil.rmtree(folder)
        os.rename(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    index = InfiniGramIndex(folder)
    index._unigram()  # the engine's length-0 answer, stored once in the folder
    return index


class InfiniGramIndex(IndexHeader):
    """A local ``infini-gram`` index queried like :class:`~gim_brain.gim.reference.ReferenceIndex`.

    Parameters
    ----------
    folder : path
        Written by :func:`build_infinigram_index`.
    tokenizer : :class:`~gim_brain.gim.tokenizers.Tokenizer`, optional
        When given, its fingerprint and vocabulary size must equal the recorded ones.
    tokenizer_name, vocab_size : optional
        When given, must equal the recorded values.

    Raises
    ------
    ReferenceIndexError
        Missing folder/file, unreadable header, or another tokenizer.
    InfiniGramError
        The package is missing or the engine cannot open the index.
    """

    engine = "infini-gram"

    def __init__(self, folder: str | os.PathLike, tokenizer_name: str | None = None,
                 vocab_size: int | None = None, *, tokenizer=None):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise missing_index_error(self.folder)
        for name in (_HEADER, *_SHARD_FILES):
            if not (self.folder / name).is_file():
                raise ReferenceIndexError(f"infini-gram index {self.folder}: missing file {name}")
        try:
            header = json.loads((self.folder / _HEADER).read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise ReferenceIndexError(f"infini-gram index {self.folder / _HEADER}: unreadable "
                                      f"header ({exc})") from exc
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ReferenceIndexError(f"infini-gram index {self.folder / _HEADER}: not a {FORMAT} "
                                      f"header")
        if header.get("version") != FORMAT_VERSION:
            raise ReferenceIndexError(f"infini-gram index {self.folder / _HEADER}: format version "
                                      f"{header.get('version')} (expected {FORMAT_VERSION})")
        self.header = header
        check_index_tokenizer(self.folder, header, tokenizer, tokenizer_name, vocab_size)
        self.doc_end_id = int(header["doc_end_id"])
        self._dtype = np.dtype("<u2") if header["token_dtype"] == "u16" else np.dtype("<u4")
        data_bytes = (self.folder / "tokenized.0").stat().st_size
        if data_bytes != self.n_tokens * self._dtype.itemsize:
            raise ReferenceIndexError(f"infini-gram index {self.folder}: tokenized.0 has "
                                      f"{data_bytes} bytes, the header says {self.n_tokens} tokens")
        engine = _engine_module()
        self._max_support = self.n_tokens + 1  # never sample: counts are exact
        try:
            self._engine = engine.InfiniGramEngine(
                index_dir=str(self.folder), eos_token_id=self.doc_end_id,
                vocab_size=self.doc_end_id + 1, version=4, token_dtype=header["token_dtype"],
                max_support=self._max_support)
        except Exception as exc:  # the C++ engine raises RuntimeError on damaged files
            raise InfiniGramError(f"infini-gram index {self.folder}: the engine cannot open it "
                                  f"({type(exc).__name__}: {exc})") from exc
        self._backoff: ReferenceMatch | None = None
        self._memo: dict = {}
        self._data = None
        self._table = None

    # -- engine calls -------------------------------------------------------------------
    def _find(self, suffix: list[int]) -> tuple[int, tuple[int, int]]:
        """The engine's count of ``suffix`` and its suffix-array rows."""
        found = self._engine.find(input_ids=suffix)
        if "error" in found:
            raise InfiniGramError(f"infini-gram index {self.folder}: find: {found['error']}")
        start, stop = found["segment_by_shard"][0]
        return int(found["cnt"]), (int(start), int(stop))

    def _continuations(self, k: int, rows: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Tokens following the occurrences in ``rows`` of a length-``k`` pattern (same document).

        Frequent short patterns recur: ranges of more than 2048 rows are remembered.
        """
        big = rows[1] - rows[0] > 2048
        if big and (k, rows) in self._memo:
            return self._memo[(k, rows)]
        data, _ = self._arrays()
        starts = self._positions(rows[0], rows[1]) + k
        starts = starts[starts < self.n_tokens]
        nxt = np.asarray(data[starts]).astype(np.int64)
        nxt = nxt[nxt != np.iinfo(self._dtype).max]
        tokens, counts = np.unique(nxt, return_counts=True)
        out = tokens.astype(np.int64), counts.astype(np.int64)
        if big:
            if len(self._memo) > 4096:
                self._memo.clear()
            self._memo[(k, rows)] = out
        return out

    def _unigram(self) -> ReferenceMatch:
        """The engine's own answer at suffix length 0 (``infgram_ntd`` of an empty prompt).

        Computed once (it enumerates the corpus: seconds per million tokens) and kept in the
        index folder as ``unigram.npy`` (``int64 (vocab_size,)``).
        """
        if self._backoff is not None:
            return self._backoff
        path = self.folder / _UNIGRAM
        counts_all = None
        if path.is_file():
            try:
                counts_all = np.load(path)
            except (ValueError, OSError):
                counts_all = None
            if counts_all is not None and counts_all.shape != (self.vocab_size,):
                counts_all = None
        if counts_all is None:
            result = self._engine.infgram_ntd(prompt_ids=[], max_support=self._max_support)
            if "error" in result or result.get("approx"):
                raise InfiniGramError(f"infini-gram index {self.folder}: unigram counts: "
                                      f"{result.get('error', 'approximate')}")
            counts_all = np.zeros(self.vocab_size, dtype=np.int64)
            for t, r in result["result_by_token_id"].items():
                if int(t) != self.doc_end_id:
                    counts_all[int(t)] = int(r["cont_cnt"])
            buf = io.BytesIO()
            np.save(buf, counts_all)
            try:
                atomic_write_bytes(path, buf.getvalue())
            except OSError:  # a read-only index folder: recompute next time
                pass
        tokens = np.flatnonzero(counts_all).astype(np.int64)
        counts = counts_all[tokens].astype(np.int64)
        self._backoff = ReferenceMatch(0, tokens, counts, int(counts.sum()), (0, self.n_tokens))
        return self._backoff

    def _match(self, ctx: np.ndarray, start: int) -> ReferenceMatch:
        """Longest suffix of ``ctx`` (length <= ``start``) followed by a token in its document.

        Shortens from ``start`` while the engine finds no occurrence, then while every occurrence
        ends its document; the unigram back-off at length 0.
        """
        prompt = ctx.tolist()
        k = start
        while k > 0:
            cnt, rows = self._find(prompt[len(prompt) - k:])
            if cnt > 0:
                tokens, counts = self._continuations(k, rows)
                if len(tokens):
                    return ReferenceMatch(k, tokens, counts, int(counts.sum()), rows)
            k -= 1
        return self._unigram()

    def _longest_occurring(self, ctx: np.ndarray) -> int:
        """Infini-gram's suffix length: the longest suffix with a non-zero count (binary search)."""
        prompt = ctx.tolist()
        lo, hi = 0, len(prompt)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._find(prompt[len(prompt) - mid:])[0] > 0:
                lo = mid
            else:
                hi = mid - 1
        return lo

    # -- the ReferenceIndex API -----------------------------------------------------------
    def longest_suffix(self, context, max_length: int = MAX_QUERY_LENGTH) -> ReferenceMatch:
        """Longest suffix (at most ``max_length`` tokens) of ``context`` followed by a token in
        the corpus; the unigram counts (length 0) when none is."""
        return self.longest_suffixes([context], max_length)[0]

    def longest_suffixes(self, contexts: Sequence,
                         max_length: int = MAX_QUERY_LENGTH) -> list[ReferenceMatch]:
        """One :class:`ReferenceMatch` per context (``O(log max_length)`` engine searches each)."""
        out = []
        for i, context in enumerate(contexts):
            ctx = check_token_ids(context, self.vocab_size, what=f"query context {i}")
            ctx = ctx[max(0, len(ctx) - max_length):]
            out.append(self._match(ctx, self._longest_occurring(ctx)))
        return out

    def match_document(self, ids, max_length: int = MAX_QUERY_LENGTH) -> ReferenceMatches:
        """Reference matches for every position ``t`` of a document (context ``ids[:t+1]``).

        As :meth:`ReferenceIndex.match_document`: the search starts one token longer than the
        previous match (``n_t <= n_{t-1} + 1``), so a document costs O(n) engine searches.
        """
        ids = check_token_ids(ids, self.vocab_size, what="document")
        n = len(ids)
        matches, prev = [], 0
        for t in range(n):
            ctx = ids[max(0, t + 1 - max_length):t + 1]
            m = self._match(ctx, min(prev + 1, len(ctx)))
            prev = m.length
            matches.append(m)
        indptr = np.zeros(n + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([len(m.tokens) for m in matches])
        cat = lambda parts: np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)
        return ReferenceMatches(
            np.array([m.length for m in matches], dtype=np.int64).reshape(n), indptr,
            cat([m.tokens for m in matches]), cat([m.counts for m in matches]),
            np.array([m.sa_range for m in matches], dtype=np.int64).reshape(n, 2))

    def _arrays(self):
        if self._data is None:
            self._data = np.memmap(self.folder / "tokenized.0", dtype=self._dtype, mode="r")
            ds_bytes = self.n_tokens * self._dtype.itemsize
            ratio = int(np.ceil(np.log2(ds_bytes) / 8))  # bytes per suffix-array entry
            self._table = np.memmap(self.folder / "table.0", dtype=np.uint8, mode="r").reshape(-1, ratio)
        return self._data, self._table

    def _positions(self, a: int, b: int) -> np.ndarray:
        """Token positions (in ``tokenized.0``) of suffix-array rows ``[a, b)``."""
        _, table = self._arrays()
        rows = np.asarray(table[a:b]).astype(np.uint64)
        weights = np.uint64(256) ** np.arange(rows.shape[1], dtype=np.uint64)
        byte_ptr = (rows * weights).sum(axis=1, dtype=np.uint64)
        return (byte_ptr // np.uint64(self._dtype.itemsize)).astype(np.int64)

    def occurrence_starts(self, sa_range: tuple[int, int], limit: int = 5) -> np.ndarray:
        """Token positions (in ``tokenized.0``) of (at most ``limit``) occurrences of a range."""
        a, b = sa_range
        return np.sort(self._positions(a, min(b, a + limit)))

    def corpus_slice(self, start: int, stop: int) -> np.ndarray:
        """Tokens ``[start, stop)`` of ``tokenized.0`` (``int64``; a separator reads as -1)."""
        data, _ = self._arrays()
        out = np.asarray(data[max(0, start):min(stop, self.n_tokens)]).astype(np.int64)
        out[out == np.iinfo(self._dtype).max] = -1
        return out
