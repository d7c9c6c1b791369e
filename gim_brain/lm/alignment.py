"""Word <-> token alignment through the tokenizer's character offsets.

The text the LM reads is the words joined by one space, each word carrying its leading space
(``" w1 w2 w3"`` when ``leading_space=True``, the form byte-level BPE tokenizers use inside running
text). Word ``i`` owns the characters of its separator and its own spelling. The whole text is
tokenized once with offsets; a token belongs to the word whose characters it covers. Where a token
would straddle two words (for example a run of spaces made by empty words) those words' pieces are
tokenized one by one instead, so every token belongs to exactly one word, and every word, an empty
one included (it still owns its separating space), gets at least one token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = ["WordAlignment", "align_words", "UnencodableWordError"]


class UnencodableWordError(ValueError):
    """A word the tokenizer cannot represent (no tokens, unknown token, or a special token)."""


@dataclass(frozen=True)
class WordAlignment:
    """Tokens of a word sequence and the token span of each word.

    Attributes
    ----------
    words : list of str
        The words as given.
    text : str
        The text that was tokenized (words with their separating spaces).
    ids : ndarray of int64, shape (n_tokens,)
    spans : ndarray of int64, shape (n_words, 2)
        ``ids[spans[i, 0]:spans[i, 1]]`` are the tokens of word i (never empty, contiguous, in order).
    char_spans : ndarray of int64, shape (n_words, 2)
        Characters of ``text`` owned by each word (separator included).
    """

    words: list
    text: str
    ids: np.ndarray
    spans: np.ndarray
    char_spans: np.ndarray

    @property
    def n_tokens(self) -> np.ndarray:
        """Tokens per word, int64 ``(n_words,)``."""
        return self.spans[:, 1] - self.spans[:, 0]

    def word_of_token(self) -> np.ndarray:
        """Index of the word each token belongs to, int64 ``(n_tokens,)``."""
        return np.repeat(np.arange(len(self.words)), self.n_tokens)


def _describe(story: str | None) -> str:
    return f"story {story!r}: " if story else ""


def _tokenize_piece(tokenizer, piece: str) -> list[int]:
    return list(tokenizer(piece, add_special_tokens=False)["input_ids"])


def align_words(tokenizer, words: Sequence[str], leading_space: bool = True,
                story: str | None = None) -> WordAlignment:
    """Tokenize ``words`` as running text and return each word's token span.

    Parameters
    ----------
    tokenizer : transformers fast tokenizer (offsets needed)
    words : sequence of str
        Words in order; empty strings and odd tokens (``{CG}``) are allowed.
    leading_space : bool
        Put a space before the first word too (default), so every word reads as inside a text.
    story : str, optional
        Name used in error messages.

    Raises
    ------
    ValueError
        ``words`` is empty or holds a non-string.
    UnencodableWordError
        A word gives no token, an unknown token, or contains a special token such as
        ``<|endoftext|>``.
    """
    words = list(words)
    if not words:
        raise ValueError(f"{_describe(story)}no words to align (empty story)")
    for i, w in enumerate(words):
        if not isinstance(w, str):
            raise ValueError(f"{_describe(story)}word {i} is {type(w).__name__} {w!r}, not a string")
    pieces = [(" " if (i > 0 or leading_space) else "") + w for i, w in enumerate(words)]
    bounds = np.zeros(len(words) + 1, dtype=np.int64)
    bounds[1:] = np.cumsum([len(p) for p in pieces])
    text = "".join(pieces)

    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    offsets = enc["offset_mapping"]
    n = len(words)
    offs = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    first = np.clip(np.searchsorted(bounds, offs[:, 0], side="right") - 1, 0, n - 1)
    last = np.clip(np.searchsorted(bounds, np.maximum(offs[:, 1], offs[:, 0] + 1) - 1, side="right") - 1,
                   0, n - 1)
    owner = last
    bad = np.zeros(n, dtype=bool)
    for f, l in zip(first[first != last], last[first != last]):  # tokens straddling words
        bad[f:l + 1] = True
    counts = np.bincount(owner, minlength=n) if len(ids) else np.zeros(n, dtype=np.int64)
    bad |= counts == 0

    out_ids: list[int] = []
    spans = np.zeros((n, 2), dtype=np.int64)
    if not bad.any():  # the usual case: the whole-text tokenization splits at every word
        out_ids = ids
        spans[:, 1] = np.cumsum(counts)
        spans[1:, 0] = spans[:-1, 1]
    else:
        j = 0
        for i in range(n):
            start = len(out_ids)
            if bad[i]:
                out_ids.extend(_tokenize_piece(tokenizer, pieces[i]))
            while j < len(ids) and owner[j] <= i:
                if not bad[owner[j]]:
                    out_ids.append(ids[j])
                j += 1
            spans[i] = (start, len(out_ids))

    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is not None:
        special.add(unk)
    arr = np.asarray(out_ids, dtype=np.int64)
    flagged = np.isin(arr, np.fromiter(special, dtype=np.int64, count=len(special)))
    suspects = np.unique(np.searchsorted(spans[:, 1], np.flatnonzero(flagged), side="right"))
    suspects = np.union1d(suspects, np.flatnonzero(spans[:, 1] == spans[:, 0]))
    for i in suspects:
        s, e = spans[i]
        if e == s:
            raise UnencodableWordError(f"{_describe(story)}word {i} ({words[i]!r}) gives no token "
                                       f"with this tokenizer")
        toks = out_ids[s:e]
        hit = [t for t in toks if t in special or t == unk]
        if hit:
            kind = "the unknown token" if unk in hit else "special/control token(s)"
            raise UnencodableWordError(
                f"{_describe(story)}word {i} ({words[i]!r}) encodes to {kind} "
                f"{tokenizer.convert_ids_to_tokens(hit)}; the tokenizer cannot represent it as text. "
                f"Clean or replace this word before extracting LM features")
    return WordAlignment(words=words, text=text, ids=arr,
                         spans=spans, char_spans=np.stack([bounds[:-1], bounds[1:]], axis=1))
