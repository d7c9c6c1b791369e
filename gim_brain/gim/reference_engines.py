"""Choose a reference engine by name: our memory-mapped suffix array or the ``infini-gram`` engine.

Both answer the same queries (:class:`~gim_brain.gim.reference.ReferenceIndex` API:
``match_document``, ``longest_suffix(es)``, ``occurrence_starts``, ``corpus_slice``) with identical
counts on the same corpus: the longest suffix of the last 500 context tokens followed by a token
in one document, and the corpus unigram counts at length 0.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from .reference import FORMAT as SUFFIX_ARRAY_FORMAT
from .reference import (
    ReferenceIndex,
    ReferenceIndexError,
    build_reference_index,
    missing_index_error,
)

__all__ = [
    "DEFAULT_ENGINE",
    "ENGINES",
    "build_reference",
    "build_reference_from_files",
    "cached_reference",
    "open_reference",
]

ENGINES = ("suffix-array", "infini-gram")
DEFAULT_ENGINE = "suffix-array"


def _check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise ValueError(f"unknown reference engine {engine!r}; choose from {', '.join(ENGINES)}")
    return engine


def _engine_of_folder(folder: Path) -> str | None:
    try:
        fmt = json.loads((folder / "header.json").read_text()).get("format")
    except (OSError, ValueError, AttributeError):
        return None
    from .infinigram import FORMAT as INFINIGRAM_FORMAT

    return {SUFFIX_ARRAY_FORMAT: "suffix-array", INFINIGRAM_FORMAT: "infini-gram"}.get(fmt)


def open_reference(engine: str, index_dir: str | os.PathLike, tokenizer=None):
    """Open a reference index folder with the named engine, refusing another tokenizer.

    Parameters
    ----------
    engine : {"suffix-array", "infini-gram"}
    index_dir : path
        Built by :func:`build_reference` (or ``gim-brain reference-index``).
    tokenizer : :class:`~gim_brain.gim.tokenizers.Tokenizer`, optional
        The tokenizer of the token ids that will be queried; must be the index's.

    Returns
    -------
    ReferenceIndex or InfiniGramIndex

    Raises
    ------
    ValueError
        Unknown engine.
    ReferenceIndexError
        Missing folder, a folder of the other engine, a damaged index, or another tokenizer.
    """
    _check_engine(engine)
    folder = Path(index_dir)
    if not folder.is_dir():
        raise missing_index_error(folder)
    found = _engine_of_folder(folder)
    if found is not None and found != engine:
        raise ReferenceIndexError(f"reference index {folder} was built for the {found} engine, "
                                  f"not {engine}; use engine {found!r} or rebuild it")
    if engine == "suffix-array":
        return ReferenceIndex(folder, tokenizer=tokenizer)
    from .infinigram import InfiniGramIndex

    return InfiniGramIndex(folder, tokenizer=tokenizer)


def build_reference(engine: str, documents, folder: str | os.PathLike, tokenizer, *,
                    sources: Sequence[str] = ()):
    """Build an index of tokenised ``documents`` with the named engine; returns it opened."""
    _check_engine(engine)
    if engine == "suffix-array":
        return build_reference_index(documents, folder, tokenizer=tokenizer, sources=sources)
    from .infinigram import build_infinigram_index

    return build_infinigram_index(documents, folder, tokenizer=tokenizer, sources=sources)


def build_reference_from_files(engine: str, files: Sequence[str | os.PathLike],
                               folder: str | os.PathLike, tokenizer):
    """Tokenise UTF-8 text files (one document each) and build an index of them.

    Raises
    ------
    FileNotFoundError, ValueError
        A file that is missing, not UTF-8 text, or has no token (named in the message).
    """
    docs = []
    for f in files:
        path = Path(f)
        if not path.is_file():
            raise FileNotFoundError(f"reference corpus file {path} does not exist")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"reference corpus file {path} is not UTF-8 text ({exc})") from exc
        ids = tokenizer.encode(text)
        if len(ids) == 0:
            raise ValueError(f"reference corpus file {path} has no token")
        docs.append(ids)
    return build_reference(engine, docs, folder, tokenizer,
                           sources=[str(Path(f).resolve()) for f in files])


def cached_reference(engine: str, files: Sequence[str | os.PathLike], tokenizer, *,
                     notice=print):
    """Open (or build once) the index of text ``files`` for ``tokenizer`` in the user cache.

    The folder is ``cache_dir("gim-reference")/<key>``, keyed by the engine, the tokenizer
    fingerprint and the SHA-256 of every file, so a changed file or tokenizer builds a new index.
    An unusable cached folder (damaged, older format) is rebuilt with a ``notice``.
    """
    import shutil

    from .._cache import cache_dir, content_key, file_digest

    _check_engine(engine)
    for f in files:
        if not Path(f).is_file():
            raise FileNotFoundError(f"reference corpus file {f} does not exist")
    digests = [file_digest(f) for f in files]
    key = content_key("reference-index", engine, tokenizer.fingerprint, digests, version="1")
    folder = cache_dir("gim-reference") / f"{engine}-{tokenizer.name.replace('/', '_')}-{key[:16]}"
    if folder.is_dir():
        try:
            return open_reference(engine, folder, tokenizer)
        except ReferenceIndexError as exc:
            notice(f"rebuilding reference index ({exc})")
            shutil.rmtree(folder, ignore_errors=True)
    return build_reference_from_files(engine, files, folder, tokenizer)
