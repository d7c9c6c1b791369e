"""The Generalized Induction-Head Model: exact (context / reference) or fuzzy, chosen by ``tau``.

``GIM(...).predict_document(ids)`` is the one call downstream layers need: for every position
``t`` of a document (having read ``ids[:t+1]``, predicting ``ids[t+1]``) it returns arrays of the
exact match lengths, the branch used, the fuzzy maximal similarity, the entropy and the
probability of the actual next token, the sparse next-token distributions, and on request an
:class:`Explanation` that prints the spans and neighbours behind the prediction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .._cache import NpzCache
from .distributions import SparseDistributions, from_counts
from .exact import ExactMatches, check_token_ids, exact_matches
from .fuzzy import FuzzyResult, PositionEmbedder, embed_document, fuzzy_distributions
from .reference import ReferenceIndex, ReferenceMatches

__all__ = ["GIM", "combine", "DocumentPrediction", "Explanation", "MatchedSpan", "Neighbour", "BRANCHES"]

#: Branch codes of ``DocumentPrediction.branch``.
BRANCHES = ("none", "context", "reference", "fuzzy")
NONE, CONTEXT, REFERENCE, FUZZY = range(4)


@dataclass
class MatchedSpan:
    """An earlier occurrence of the matched suffix and the token that followed it."""

    source: str          # "context" or "reference"
    start: int           # first token of the span (document or corpus position)
    ids: list[int]
    text: str | None
    next_id: int
    next_text: str | None


@dataclass
class Neighbour:
    """An earlier position chosen by fuzzy matching."""

    position: int        # j: its window ends at j
    similarity: float
    weight: float        # normalised weight given to ``next_id``
    window_text: str | None
    next_id: int
    next_text: str | None


@dataclass
class Explanation:
    """Why GIM predicted what it predicted at one position; ``print()`` it."""

    position: int
    branch: str
    match_length: int
    context_match_length: int
    reference_match_length: int
    tau: int
    context_text: str | None
    top: list[tuple[int, float, str | None]]       # (token id, probability, text), best first
    actual_next: int | None
    spans: list[MatchedSpan] = field(default_factory=list)
    n_occurrences: int = 0
    neighbours: list[Neighbour] = field(default_factory=list)

    def __str__(self) -> str:
        q = lambda s: "" if s is None else repr(s)
        lines = [f"position {self.position}: branch={self.branch} (exact match {self.match_length} "
                 f"tokens: context {self.context_match_length}, reference "
                 f"{self.reference_match_length}; tau={self.tau})"]
        if self.context_text is not None:
            lines.append(f"  context ends: ...{self.context_text!r}")
        tops = ", ".join(f"{tid} {q(txt)} p={p:.3f}" for tid, p, txt in self.top) or "(no prediction)"
        lines.append(f"  predicts: {tops}")
        if self.actual_next is not None:
            lines.append(f"  actual next: {self.actual_next}")
        if self.spans:
            lines.append(f"  matched spans ({len(self.spans)} shown of {self.n_occurrences}):")
            for s in self.spans:
                lines.append(f"    {s.source}@{s.start}: ids={s.ids} {q(s.text)} -> "
                             f"{s.next_id} {q(s.next_text)}")
        if self.neighbours:
            lines.append("  fuzzy neighbours:")
            for nb in self.neighbours:
                lines.append(f"    j={nb.position} sim={nb.similarity:.3f} weight={nb.weight:.3f} "
                             f"{q(nb.window_text)} -> {nb.next_id} {q(nb.next_text)}")
        return "\n".join(lines)


@dataclass
class DocumentPrediction:
    """GIM's predictions for every position ``t`` of one document (predicting ``ids[t+1]``).

    Attributes
    ----------
    ids : int64 (n,)
    match_length : int64 (n,)
        Exact match length used for the branch decision: the longer of the context and the
        reference match (ties to the context).
    context_match_length, reference_match_length : int64 (n,)
        Each source's own longest match (reference is all 0 without a reference index).
    branch : int8 (n,)
        Index into :data:`BRANCHES` (``branch_names`` gives strings): ``context``/``reference``
        when ``match_length >= tau``; else ``fuzzy`` when there is an earlier position and a
        fuzzy embedder; else the exact source below tau when it matched at all; else ``none``.
    fuzzy_max_similarity : float32 (n,)
        Highest similarity of ``t``'s window to an earlier window (NaN at t = 0 or without fuzzy).
    entropy : float64 (n,)
        Entropy (nats) of the chosen distribution; NaN where the branch is ``none``.
    next_token_prob : float64 (n,)
        Probability the chosen distribution gives to ``ids[t+1]``; NaN at the last position.
    distributions : SparseDistributions
        The chosen (combined) next-token distribution of every position;
        ``distributions.to_scipy(vocab_size)`` is an ``(n, vocab)`` CSR matrix.
    components : dict[str, SparseDistributions]
        The per-source distributions that were computed: ``"context"`` always,
        ``"reference"`` and ``"fuzzy"`` when configured.
    timings : dict[str, float]
        Seconds spent per component (``exact``, ``reference``, ``embed``, ``fuzzy``, ``combine``).
    """

    ids: np.ndarray
    match_length: np.ndarray
    context_match_length: np.ndarray
    reference_match_length: np.ndarray
    branch: np.ndarray
    fuzzy_max_similarity: np.ndarray
    entropy: np.ndarray
    next_token_prob: np.ndarray
    distributions: SparseDistributions
    components: dict
    timings: dict
    tau: int
    _exact: ExactMatches = field(repr=False, default=None)
    _reference: ReferenceMatches | None = field(repr=False, default=None)
    _fuzzy: FuzzyResult | None = field(repr=False, default=None)
    _model: "GIM" = field(repr=False, default=None)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def branch_names(self) -> np.ndarray:
        """str (n,): branch of each position."""
        return np.asarray(BRANCHES)[self.branch]

    def top1(self) -> np.ndarray:
        """int64 (n,): predicted next token (ties to the smallest id; -1 where no prediction)."""
        return self.distributions.top1()

    def explain(self, t: int, n_spans: int = 3, n_neighbours: int = 5,
                context_tokens: int = 12) -> Explanation:
        """Explanation of the prediction at position ``t`` (see :class:`Explanation`)."""
        n = len(self.ids)
        if not -n <= t < n:
            raise IndexError(f"position {t} outside a document of {n} tokens")
        t %= n
        dec = self._model.decode if self._model is not None else None
        text = (lambda ids: dec(np.asarray(ids, dtype=np.int64))) if dec else (lambda ids: None)
        tokens, probs = self.distributions.row(t)
        order = np.lexsort((tokens, -probs))[:5]
        top = [(int(tokens[i]), float(probs[i]), text([tokens[i]])) for i in order]
        b = int(self.branch[t])
        L = int(self.match_length[t])
        spans, n_occ, neighbours = [], 0, []
        if b == CONTEXT:
            occ = self._exact.occurrences(t)
            n_occ = len(occ)
            for j in occ[-n_spans:][::-1]:
                ids = self.ids[j - L + 1:j + 1]
                spans.append(MatchedSpan("context", int(j - L + 1), ids.tolist(), text(ids),
                                         int(self.ids[j + 1]), text([self.ids[j + 1]])))
        elif b == REFERENCE:
            index = self._model.reference
            rng = tuple(self._reference.sa_ranges[t])
            n_occ = int(self._reference.counts[self._reference.indptr[t]:self._reference.indptr[t + 1]].sum())
            for s in index.occurrence_starts(rng, limit=n_spans):
                seg = index.corpus_slice(int(s), int(s) + L + 1)
                if len(seg) <= L or seg[L] < 0:
                    continue
                spans.append(MatchedSpan("reference", int(s), seg[:L].tolist(), text(seg[:L]),
                                         int(seg[L]), text([seg[L]])))
        if self._fuzzy is not None and (b == FUZZY or n_neighbours):
            W = getattr(self._model.embedder, "window", 1)
            for j, sim, w in self._fuzzy.neighbours(t, n_neighbours) if b == FUZZY else []:
                win = self.ids[max(0, j - W + 1):j + 1]
                neighbours.append(Neighbour(j, sim, w, text(win[-context_tokens:]),
                                            int(self.ids[j + 1]), text([self.ids[j + 1]])))
        return Explanation(
            position=t, branch=BRANCHES[b], match_length=L,
            context_match_length=int(self.context_match_length[t]),
            reference_match_length=int(self.reference_match_length[t]), tau=self.tau,
            context_text=text(self.ids[max(0, t - context_tokens + 1):t + 1]), top=top,
            actual_next=int(self.ids[t + 1]) if t + 1 < n else None,
            spans=spans, n_occurrences=n_occ, neighbours=neighbours)


def combine(context_length: np.ndarray, reference_length: np.ndarray, components: dict,
            tau: int) -> tuple[np.ndarray, np.ndarray, SparseDistributions]:
    """GIM's choice per position from the component distributions.

    The exact source is the longer of context and reference match (ties to the context); it is
    used when its length is ``>= tau``; otherwise the fuzzy distribution when it has one (any
    ``t > 0`` with an embedder); otherwise the exact source when it matched at all; else none.

    Parameters
    ----------
    context_length, reference_length : int (n,)
    components : dict
        ``"context"`` (required), ``"reference"``, ``"fuzzy"`` -> :class:`SparseDistributions`.
    tau : int

    Returns
    -------
    branch : int8 (n,), match_length : int64 (n,), distributions : SparseDistributions
    """
    n = len(context_length)
    use_ref = reference_length > context_length           # ties to the context
    match_length = np.where(use_ref, reference_length, context_length).astype(np.int64)
    exact_branch = np.where(use_ref, REFERENCE, CONTEXT)
    branch = np.full(n, NONE, dtype=np.int8)
    fuzzy = components.get("fuzzy")
    has_fuzzy = np.zeros(n, dtype=bool) if fuzzy is None else ~fuzzy.empty
    branch[match_length > 0] = exact_branch[match_length > 0]
    branch[has_fuzzy] = FUZZY
    above = match_length >= tau
    branch[above] = exact_branch[above]
    sources = {CONTEXT: components["context"], REFERENCE: components.get("reference"),
               FUZZY: fuzzy}
    empty = (np.zeros(0, np.int64), np.zeros(0))
    rows = [sources[b].row(t) if b != NONE else empty for t, b in enumerate(branch.tolist())]
    return branch, match_length, SparseDistributions.stack_rows(rows)


class GIM:
    """Generalized Induction-Head Model over token ids.

    Parameters
    ----------
    embedder : PositionEmbedder or None
        Fuzzy backend (``LMHiddenEmbedder``, ``LMDistributionEmbedder`` or a distilled model);
        None disables fuzzy matching (exact-only below tau).
    reference : ReferenceIndex or None
        Reference corpus (Infini-gram style); its tokenizer must be the one of ``ids``.
    tau : int
        Use an exact distribution when its match length is ``>= tau`` (8 in the paper for GPT-2
        BPE; tune on held-out text for another tokenizer).
    temperature : float
        T of the fuzzy weights ``exp(-(1 - sim) / T)``.
    max_reference_length : int
        Longest suffix looked up in the reference corpus (tokens; 500 = the last 500 tokens, as
        Infini-gram queries).
    vocab_size : int or None
        Ids outside ``[0, vocab_size)`` raise ``ValueError``; defaults to the embedder's or the
        reference index's vocabulary.
    decode : callable(ids) -> str, optional
        Turns ids into text for explanations (e.g. ``LanguageModel.decode``).
    cache : NpzCache or None
        Caches fuzzy embeddings by content key.
    """

    def __init__(self, embedder: PositionEmbedder | None = None,
                 reference: ReferenceIndex | None = None, tau: int = 8,
                 temperature: float = 0.1, max_reference_length: int = 500,
                 vocab_size: int | None = None, decode: Callable | None = None,
                 cache: NpzCache | None = None):
        self.embedder = embedder
        self.reference = reference
        self.tau = tau
        self.temperature = temperature
        self.max_reference_length = max_reference_length
        self.vocab_size = vocab_size
        self.decode = decode
        self.cache = cache

    def _vocab_size(self) -> int | None:
        if self.vocab_size is not None:
            return self.vocab_size
        for source in (self.embedder, self.reference):
            if source is not None and getattr(source, "vocab_size", None) is not None:
                return int(source.vocab_size)
        return None

    def _check_params(self) -> None:
        if isinstance(self.tau, bool) or not isinstance(self.tau, (int, np.integer)) or self.tau < 1:
            raise ValueError(f"tau must be a positive int (tokens), got {self.tau!r}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature!r}")
        vs = [getattr(s, "vocab_size", None) for s in (self.embedder, self.reference) if s is not None]
        if self.vocab_size is not None:
            vs.append(self.vocab_size)
        if len(set(vs)) > 1:
            raise ValueError(f"vocabulary sizes disagree between embedder, reference index and "
                             f"vocab_size: {vs} (they must share one tokenizer)")

    def embed(self, ids, return_cached: bool = False):
        """Fuzzy embeddings ``(n, d)`` of a whole document (computed once; cached when ``cache`` is set).

        With ``return_cached=True`` returns ``(embeddings, came_from_cache)``.
        """
        if self.embedder is None:
            raise ValueError("this GIM has no fuzzy embedder")
        return embed_document(self.embedder, check_token_ids(ids, self._vocab_size()), self.cache,
                              return_cached=return_cached)

    def predict_document(self, ids, embeddings: np.ndarray | None = None) -> DocumentPrediction:
        """Predict the next token at every position of one document.

        Parameters
        ----------
        ids : int sequence (n,)
            Token ids (n >= 1) of the embedder's / reference index's tokenizer.
        embeddings : (n, d) array, optional
            Precomputed ``self.embed(ids)`` rows (e.g. a slice of a longer document's
            embeddings); computed here when omitted and an embedder is set.

        Returns
        -------
        DocumentPrediction
        """
        self._check_params()
        ids = check_token_ids(ids, self._vocab_size())
        n = len(ids)
        timings = {}
        t0 = time.perf_counter()
        exact = exact_matches(ids)
        ctx = from_counts(exact.indptr, exact.tokens, exact.counts)
        timings["exact"] = time.perf_counter() - t0
        components = {"context": ctx}
        ref_len = np.zeros(n, dtype=np.int64)
        refm = None
        if self.reference is not None:
            t0 = time.perf_counter()
            refm = self.reference.match_document(ids, self.max_reference_length)
            ref_len = refm.lengths
            components["reference"] = from_counts(refm.indptr, refm.tokens, refm.counts)
            timings["reference"] = time.perf_counter() - t0
        fz = None
        if self.embedder is not None:
            t0 = time.perf_counter()
            if embeddings is None:
                embeddings = self.embed(ids)
            elif len(embeddings) != n:
                raise ValueError(f"embeddings have {len(embeddings)} rows for a document of {n} tokens")
            timings["embed"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            fz = fuzzy_distributions(ids, embeddings, self.embedder, self.temperature)
            components["fuzzy"] = fz.distributions
            timings["fuzzy"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        branch, match_length, dist = combine(exact.lengths, ref_len, components, self.tau)
        targets = np.append(ids[1:], -1)
        next_prob = dist.prob_of(targets)
        next_prob[-1] = np.nan
        timings["combine"] = time.perf_counter() - t0
        return DocumentPrediction(
            ids=ids, match_length=match_length, context_match_length=exact.lengths,
            reference_match_length=ref_len, branch=branch,
            fuzzy_max_similarity=(fz.max_similarity if fz is not None
                                  else np.full(n, np.nan, dtype=np.float32)),
            entropy=dist.entropy(), next_token_prob=next_prob, distributions=dist,
            components=components, timings=timings, tau=int(self.tau),
            _exact=exact, _reference=refm, _fuzzy=fz, _model=self)
