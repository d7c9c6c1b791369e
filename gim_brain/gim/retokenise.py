"""Teacher targets for a student that reads another tokenizer's tokens (re-tokenised teacher).

Windows are cut in the student's tokens. The teacher target of student position ``i`` of a
window ``s[0..W-1]`` is the teacher LM's next-token distribution after the text prefix that
ends with student token ``i``:

    prefix_i = student.decode(s[0..i])            (the text up to and including token i)
    teacher reads teacher.encode(prefix_i) and its distribution after the last of those tokens

Token boundaries are thus aligned by text, not by ids: student position ``i`` corresponds to
the end of the character string ``prefix_i``; the teacher tokenises that string afresh (no
special tokens, no BOS, as for teacher-tokenizer windows), so a teacher token that would
straddle the student boundary in the whole window's encoding is never read past it. (A prefix
that ends inside a multi-byte character decodes with U+FFFD, which the teacher reads as such,
as the authors' re-tokenisation does.)

Computed without one teacher pass per position: the whole window's text
``student.decode(s)`` is encoded once; when ``teacher.encode(prefix_i)`` is a prefix of that
encoding (the usual case: the boundary falls between teacher tokens and the teacher tokenises
the prefix the same way), the target is read at that position of the window's single pass
(causal LM: identical distribution); every other position gets its own pass over its own
prefix encoding. Sequences are right-padded into batches (pads come after every read
position, so a causal LM never sees them). Distributions are kept top-k as in
:mod:`gim_brain.gim.teacher` and cached per shard under the teacher's fingerprint, the student
tokenizer's fingerprint, ``top_k`` and the shard's student ids.
"""

from __future__ import annotations

import numpy as np
import torch

from .._cache import NpzCache, content_key
from .teacher import TeacherTargets, _rest_log, sharded_targets

__all__ = ["prefix_reading", "retokenised_teacher_targets", "transfer_embedding_table"]


def _teacher_encode(lm):
    return lm.encode


def prefix_reading(window: np.ndarray, student, teacher_encode) -> tuple[list[np.ndarray], np.ndarray]:
    """How the teacher reads the prefixes of one student window.

    Parameters
    ----------
    window : int (W,)
        Student token ids.
    student : object with ``decode(ids) -> str`` (a :class:`~gim_brain.gim.tokenizers.Tokenizer`)
    teacher_encode : callable ``str -> int64 (n,)``
        The teacher's tokenizer (no special tokens).

    Returns
    -------
    sequences : list of int64 arrays
        Teacher token sequences to read; ``sequences[0]`` is the whole window's encoding.
    reads : int64 (W, 2)
        For student position ``i``: ``(sequence index, position in that sequence)`` whose
        next-token distribution is the target, i.e. the last token of ``teacher.encode(prefix_i)``.
        ``(-1, -1)`` where the prefix encodes to no teacher token at all (an empty text).
    """
    window = np.asarray(window, dtype=np.int64)
    full = np.asarray(teacher_encode(student.decode(window)), dtype=np.int64)
    sequences = [full]
    reads = np.full((len(window), 2), -1, dtype=np.int64)
    for i in range(len(window)):
        ids = full if i == len(window) - 1 else np.asarray(
            teacher_encode(student.decode(window[:i + 1])), dtype=np.int64)
        n = len(ids)
        if n == 0:
            continue
        if n <= len(full) and np.array_equal(full[:n], ids):
            reads[i] = (0, n - 1)
        else:
            sequences.append(ids)
            reads[i] = (len(sequences) - 1, n - 1)
    return sequences, reads


@torch.inference_mode()
def _read_distributions(lm, sequences: list[np.ndarray], requests: list[tuple[int, int]],
                        top_k: int, batch_size: int):
    """Top-k next-token distributions at ``requests`` ``[(sequence, position)]``."""
    m = len(requests)
    ids = np.empty((m, top_k), np.int32)
    logp = np.empty((m, top_k), np.float32)
    rest = np.empty(m, np.float32)
    by_seq: dict[int, list[tuple[int, int]]] = {}
    for r, (s, p) in enumerate(requests):
        by_seq.setdefault(s, []).append((r, p))
    order = sorted(by_seq, key=lambda s: len(sequences[s]))
    for a in range(0, len(order), batch_size):
        chunk = order[a:a + batch_size]
        width = len(sequences[chunk[-1]])
        x = np.zeros((len(chunk), width), dtype=np.int64)
        for row, s in enumerate(chunk):
            x[row, :len(sequences[s])] = sequences[s]     # right-padded: pads follow every read
        _, final = lm.forward(torch.as_tensor(x), (), final=True)
        rows, cols, dest = [], [], []
        for row, s in enumerate(chunk):
            for r, p in by_seq[s]:
                rows.append(row)
                cols.append(p)
                dest.append(r)
        lp = lm.logprobs_from_final(final[torch.as_tensor(rows), torch.as_tensor(cols)])
        val, idx = torch.topk(lp, top_k, dim=-1)
        dest = np.asarray(dest)
        ids[dest] = idx.cpu().numpy()
        logp[dest] = val.float().cpu().numpy()
        rest[dest] = _rest_log(val).cpu().numpy()
    return ids, logp, rest


def _empty_prefix_ids(lm) -> np.ndarray:
    tok = lm.tokenizer
    for tid in (getattr(tok, "bos_token_id", None), getattr(tok, "eos_token_id", None)):
        if tid is not None:
            return np.asarray([int(tid)], dtype=np.int64)
    raise ValueError("a student window prefix decodes to empty text and the teacher tokenizer "
                     "has no BOS/EOS token to read instead")


def _shard(lm, windows: np.ndarray, student, top_k: int, batch_size: int) -> dict:
    encode = _teacher_encode(lm)
    sequences: list[np.ndarray] = []
    requests: list[tuple[int, int]] = []
    n, w = windows.shape
    for window in windows:
        seqs, reads = prefix_reading(window, student, encode)
        base = len(sequences)
        sequences.extend(seqs)
        for s, p in reads:
            if s < 0:                       # empty prefix text: the teacher's start-of-text reading
                sequences.append(_empty_prefix_ids(lm))
                requests.append((len(sequences) - 1, 0))
            else:
                requests.append((base + int(s), int(p)))
    ids, logp, rest = _read_distributions(lm, sequences, requests, top_k, batch_size)
    return {"ids": ids.reshape(n, w, top_k), "logp": logp.reshape(n, w, top_k),
            "rest": rest.reshape(n, w)}


def retokenised_teacher_targets(lm, windows: np.ndarray, student, top_k: int = 64,
                                batch_size: int = 16, shard_size: int = 128,
                                cache: NpzCache | None = None, progress: bool = False,
                                desc: str = "teacher targets (re-tokenised)") -> TeacherTargets:
    """Teacher distributions ``(n, W, k)`` of every position of student-token windows.

    Parameters
    ----------
    lm : gim_brain.lm.LanguageModel (duck-typed: ``encode``, ``forward``, ``logprobs_from_final``,
        ``vocab_size``, ``fingerprint``, ``tokenizer``)
    windows : int (n_windows, W)
        Student token ids.
    student : :class:`gim_brain.gim.tokenizers.Tokenizer`
        The tokenizer of ``windows`` (``decode``, ``fingerprint``, ``vocab_size``).
    top_k, batch_size, shard_size, cache, progress
        As in :func:`gim_brain.gim.teacher.teacher_targets` (``batch_size``: teacher sequences
        per pass).
    """
    windows = np.ascontiguousarray(np.asarray(windows, dtype=np.int64))
    if windows.ndim != 2 or windows.shape[1] < 1:
        raise ValueError(f"windows must be a 2-D (n_windows, W) array of token ids, got shape {windows.shape}")
    vocab = int(lm.vocab_size)
    if not 1 <= top_k < vocab:
        raise ValueError(f"top_k must be in 1..{vocab - 1}, got {top_k}")
    if windows.size and (windows.min() < 0 or windows.max() >= int(student.vocab_size)):
        raise ValueError(f"token ids must lie in 0..{int(student.vocab_size) - 1} "
                         f"(the student tokenizer {student.name!r})")
    teacher_id = getattr(lm, "fingerprint", None) or lm.name
    return sharded_targets(
        windows, shard_size, cache, progress, desc, vocab, top_k, (0, windows.shape[1]),
        key=lambda shard: content_key("gim-teacher-targets-retokenised", teacher_id,
                                      student.fingerprint, int(top_k), shard),
        compute=lambda shard: _shard(lm, shard, student, top_k, batch_size))


def transfer_embedding_table(student, teacher_tokenizer, teacher_table: torch.Tensor) -> torch.Tensor:
    """``(student vocab, teacher_dim)`` initial embeddings: each student token's text, encoded by
    the teacher, as the mean of those teacher input embeddings (zeros for a token whose text
    encodes to nothing).

    ``student``: a :class:`~gim_brain.gim.tokenizers.Tokenizer`; ``teacher_tokenizer``: the
    teacher's transformers tokenizer (``lm.tokenizer``). Only an initialisation of the student's
    own trainable table (the teacher's table does not fit another vocabulary).
    """
    table = teacher_table.detach().float().cpu()
    n = int(student.vocab_size)
    texts = student.hf.batch_decode([[i] for i in range(n)])
    encoded = teacher_tokenizer(texts, add_special_tokens=False)["input_ids"]
    rows = np.repeat(np.arange(n), [len(e) for e in encoded])
    cols = np.fromiter((t for e in encoded for t in e), dtype=np.int64, count=len(rows))
    keep = (cols >= 0) & (cols < len(table))
    rows, cols = torch.as_tensor(rows[keep]), torch.as_tensor(cols[keep])
    out = torch.zeros(n, table.shape[1]).index_add_(0, rows, table[cols])
    count = torch.zeros(n).index_add_(0, rows, torch.ones(len(rows)))
    return out / count.clamp(min=1.0)[:, None]
