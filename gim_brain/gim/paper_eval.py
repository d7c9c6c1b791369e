"""The paper's next-token protocol: one target per full L-token window, with sweeps.

Windows (the authors' code, ``../shared/docs/GIM.md``): in a document of ``n`` tokens the
windows start at ``s = 0, L/2, L, ...`` while ``s + L < n``; window ``s`` reads the context
``ids[s:s+L]`` and predicts the one target ``ids[s+L]``. A document needs ``n >= L + 1`` tokens
(L context tokens and a target; GIM.md's "longer than L + 1" counts the authors' document
separator). ``max_windows`` draws that many windows at random without replacement (seeded).

Everything a prediction uses lies inside its context: exact matches over ``ids[s:s+L]`` (an
earlier occurrence must end at ``j <= s+L-2`` so that its follower is in the context), the
reference lookup of the context's suffix, and fuzzy embeddings of the context read as a
document of its own (the first W-1 positions read truncated windows, as in the authors' code).

Work is shared across sweep points: per window the exact and reference matches are computed
once, the fuzzy similarities of the target's query to its ``L - 1`` keys once per
(backend, W), the LM once; a ``(tau, T)`` point only re-weights and re-combines.

Metrics per method (:data:`METRICS`): ``top1`` strict (argmax, ties to the smallest id),
``top1_equal`` ("equal recall@1": the target shares the maximal probability, as the authors'
``recall_1_eq``; a method without a prediction is wrong), ``recall5`` (target among the 5 most
probable in the strict order, with probability > 0). Also per GIM branch and per
exact-match-length bucket (:data:`BUCKETS`), and predictions per second.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

import numpy as np

from .exact import check_token_ids, exact_matches

__all__ = [
    "BUCKETS",
    "METHODS",
    "METRICS",
    "PROTOCOLS",
    "ProtocolError",
    "WindowEvidence",
    "add_fuzzy_evidence",
    "collect_evidence",
    "context_embeddings",
    "evaluate_paper",
    "last_token_logprobs",
    "paper_windows",
    "rank_metrics",
    "score_point",
    "select_windows",
]

PROTOCOLS = ("paper", "every-token")
METHODS = ("gim", "exact", "fuzzy", "reference", "lm")
METRICS = ("top1", "top1_equal", "recall5")
#: Exact-match-length buckets ``(label, lo, hi)`` (inclusive) of the longer of context/reference.
BUCKETS = (("0", 0, 0), ("1-3", 1, 3), ("4-7", 4, 7), ("8-15", 8, 15), ("16-31", 16, 31),
           ("32+", 32, 1 << 62))


class ProtocolError(ValueError):
    """Documents or parameters that the paper protocol cannot evaluate (message says why)."""


def paper_windows(n: int, context: int) -> np.ndarray:
    """Start positions of the windows of a document of ``n`` tokens (stride ``context // 2``).

    Window ``s`` reads ``ids[s:s+context]`` and predicts ``ids[s+context]``; empty when
    ``n < context + 1``.
    """
    if context < 2:
        raise ProtocolError(f"context L must be >= 2 tokens, got {context}")
    return np.arange(0, max(0, n - context), context // 2, dtype=np.int64)


def select_windows(lengths, context: int, max_windows: int | None = None, seed: int = 0,
                   names=None) -> list[tuple[int, int]]:
    """``(document, start)`` of every evaluated window, in document order.

    Raises
    ------
    ProtocolError
        When no document has ``context + 1`` tokens (names L and the longest document).
    """
    lengths = [int(x) for x in lengths]
    names = names or [f"document {i}" for i in range(len(lengths))]
    allw = [(d, int(s)) for d, n in enumerate(lengths) for s in paper_windows(n, context)]
    if not allw:
        longest = int(np.argmax(lengths)) if lengths else None
        what = (f"the longest, {names[longest]}, has {lengths[longest]} tokens"
                if longest is not None else "no documents were given")
        raise ProtocolError(f"--protocol paper needs a document of at least L + 1 = {context + 1} "
                            f"tokens (L = --context {context}); {what}: lower --context or use "
                            f"--protocol every-token")
    if max_windows is not None:
        if max_windows < 1:
            raise ProtocolError(f"--max-windows must be >= 1, got {max_windows}")
        if max_windows < len(allw):
            pick = np.random.default_rng(seed).choice(len(allw), size=max_windows, replace=False)
            allw = [allw[i] for i in np.sort(pick)]
    return allw


def rank_metrics(tokens: np.ndarray, probs: np.ndarray, target: int) -> tuple[bool, bool, bool]:
    """``(strict top-1, equal top-1, top-5)`` of one sparse distribution for ``target``."""
    if len(tokens) == 0:
        return False, False, False
    hit = np.flatnonzero(tokens == target)
    if hit.size == 0 or not probs[hit[0]] > 0:
        return False, False, False
    p = probs[hit[0]]
    best = probs.max()
    ahead = int(np.count_nonzero(probs > p) + np.count_nonzero((probs == p) & (tokens < target)))
    return ahead == 0, bool(p >= best * (1 - 1e-9)), ahead < 5


def _normalise_counts(tokens, counts):
    c = np.asarray(counts, dtype=np.float64)
    return np.asarray(tokens, dtype=np.int64), (c / c.sum() if c.size else c)


@dataclass
class WindowEvidence:
    """What the sweep points of one window share (computed once).

    ``fuzzy[key]`` holds ``(similarities float64 (L-1,), followers int64 (L-1,))`` of the
    target's query position against every earlier position of the context, per (backend, W).
    ``lm`` holds the LM's ``(top1, top1_equal, recall5)`` for the target.
    """

    document: int
    start: int
    target: int
    context_length: int
    context_tokens: np.ndarray
    context_counts: np.ndarray
    reference_length: int
    reference_tokens: np.ndarray
    reference_counts: np.ndarray
    fuzzy: dict = field(default_factory=dict)
    lm: tuple | None = None


def last_token_logprobs(lm, ctx: np.ndarray) -> np.ndarray:
    """``log p(next | ctx)`` float32 ``(vocab,)``: one causal pass, the LM head on the last position.

    Uses ``lm.forward`` + ``lm.logprobs_from_final`` when the LM has them (a
    :class:`gim_brain.lm.LanguageModel`: no ``(L, vocab)`` array), else ``sequence_logprobs``.
    """
    if hasattr(lm, "forward") and hasattr(lm, "logprobs_from_final") and \
            len(ctx) <= getattr(lm, "max_length", len(ctx)):
        import torch

        with torch.inference_mode():
            _, final = lm.forward(torch.as_tensor(np.asarray(ctx, dtype=np.int64)[None]), (),
                                  final=True)
            return lm.logprobs_from_final(final[0, -1:])[0].float().cpu().numpy()
    return lm.sequence_logprobs(ctx)[-1]


def collect_evidence(docs, windows, context: int, reference=None, max_reference_length: int = 500,
                     lm=None, timings=None, progress=None) -> list[WindowEvidence]:
    """Exact (context) and reference matches of each window's target, and the LM's metrics.

    ``timings`` (dict) accumulates seconds under ``exact``, ``reference`` and ``lm``.
    """
    timings = {} if timings is None else timings
    out = []
    for d, s in windows:
        ctx = docs[d][s:s + context]
        target = int(docs[d][s + context])
        t0 = time.perf_counter()
        ex = exact_matches(ctx)
        tok, cnt = ex.next_counts(context - 1)
        timings["exact"] = timings.get("exact", 0.0) + time.perf_counter() - t0
        rlen, rtok, rcnt = 0, np.zeros(0, np.int64), np.zeros(0, np.int64)
        if reference is not None:
            t0 = time.perf_counter()
            m = reference.longest_suffix(ctx, max_reference_length)
            rlen, rtok, rcnt = int(m.length), m.tokens, m.counts
            timings["reference"] = timings.get("reference", 0.0) + time.perf_counter() - t0
        ev = WindowEvidence(d, s, target, int(ex.lengths[context - 1]), tok.copy(), cnt.copy(),
                            rlen, np.asarray(rtok, np.int64), np.asarray(rcnt, np.int64))
        if lm is not None:
            t0 = time.perf_counter()
            logp = np.asarray(last_token_logprobs(lm, ctx), dtype=np.float64)
            timings["lm"] = timings.get("lm", 0.0) + time.perf_counter() - t0
            ev.lm = rank_metrics(np.arange(len(logp)), np.exp(logp), target)
        out.append(ev)
        if progress is not None:
            progress.update(1)
    return out


def context_embeddings(embedder, doc: np.ndarray, start: int, context: int,
                       doc_embeddings: np.ndarray | None = None, cache=None) -> np.ndarray:
    """Embeddings ``(L, d)`` of the context ``doc[start:start+L]`` read as a document of its own.

    With ``doc_embeddings`` (``embedder.embed(doc)``) the rows ``j >= W-1`` are taken from it
    (their W-token windows lie inside the context, so they are the same rows) and only the first
    ``W - 1`` positions, which read truncated windows, are embedded again.
    """
    from .fuzzy import embed_document

    ctx = doc[start:start + context]
    if doc_embeddings is None:
        return embed_document(embedder, ctx, cache)
    head = min(context, embedder.window - 1)
    rows = [doc_embeddings[start + head:start + context]]
    if head:
        rows.insert(0, embedder.embed(ctx[:head]))
    return np.concatenate(rows).astype(doc_embeddings.dtype, copy=False)


def add_fuzzy_evidence(evidence, docs, context: int, embedder, key, cache=None, timings=None,
                       progress=None) -> None:
    """Fuzzy similarities of each window's query to its keys under ``embedder`` (stored at ``key``).

    No embedding reads a token before its window (:func:`context_embeddings`). A document whose
    windows cover more tokens than it has is embedded once (content-keyed ``cache``); otherwise
    each context is embedded on its own. ``timings[key]`` accumulates seconds.
    """
    from .fuzzy import embed_document

    timings = {} if timings is None else timings
    per_doc: dict = {}
    for ev in evidence:
        per_doc[ev.document] = per_doc.get(ev.document, 0) + 1
    doc_emb: dict = {}
    for ev in evidence:
        doc = docs[ev.document]
        t0 = time.perf_counter()
        if ev.document not in doc_emb:
            dense = per_doc[ev.document] * context > len(doc)
            doc_emb = {ev.document: embed_document(embedder, doc, cache) if dense else None}
        emb = context_embeddings(embedder, doc, ev.start, context, doc_emb[ev.document], cache)
        sim = np.asarray(embedder.similarity(emb[-1:], emb[:-1])[0], dtype=np.float64)
        ev.fuzzy[key] = (sim, doc[ev.start + 1:ev.start + context].copy())
        timings[key] = timings.get(key, 0.0) + time.perf_counter() - t0
        if progress is not None:
            progress.update(1)


def _fuzzy_distribution(sim: np.ndarray, followers: np.ndarray, temperature: float):
    w = np.exp(-(sim.max() - sim) / temperature)       # same normalised weights, no underflow
    toks, inv = np.unique(followers, return_inverse=True)
    mass = np.bincount(inv.ravel(), weights=w, minlength=len(toks))
    return toks, mass / mass.sum()


def _bucket(length: int) -> str:
    for label, lo, hi in BUCKETS:
        if lo <= length <= hi:
            return label
    raise AssertionError(length)


class _Tally:
    def __init__(self):
        self.hits = dict.fromkeys(METRICS, 0)
        self.n = 0

    def add(self, flags) -> None:
        self.n += 1
        for m, f in zip(METRICS, flags):
            self.hits[m] += bool(f)

    def result(self) -> dict:
        out = {m: (self.hits[m] / self.n if self.n else float("nan")) for m in METRICS}
        out["n"] = self.n
        return out


def score_point(evidence, tau: int, temperature: float, fuzzy_key=None, methods=METHODS) -> dict:
    """Metrics of every method at one ``(tau, T, fuzzy backend/W)`` point.

    Returns ``{"methods": {m: {top1, top1_equal, recall5, n}}, "by_branch": {branch: {m: ...}},
    "by_match_length": {bucket: {m: ...}}, "branch_usage": {branch: share}}``.
    """
    overall = {m: _Tally() for m in methods}
    by_branch: dict = {}
    by_bucket: dict = {}
    branch_count: dict = {}
    for ev in evidence:
        flags = {}
        ctx = _normalise_counts(ev.context_tokens, ev.context_counts)
        ref = _normalise_counts(ev.reference_tokens, ev.reference_counts)
        fz = None
        if fuzzy_key is not None and len(ev.fuzzy[fuzzy_key][0]):
            fz = _fuzzy_distribution(*ev.fuzzy[fuzzy_key], temperature)
        use_ref = ev.reference_length > ev.context_length          # ties to the context
        length = ev.reference_length if use_ref else ev.context_length
        exact_src, exact_name = (ref, "reference") if use_ref else (ctx, "context")
        if length >= tau:
            chosen, branch = exact_src, exact_name
        elif fz is not None:
            chosen, branch = fz, "fuzzy"
        elif length > 0:
            chosen, branch = exact_src, exact_name
        else:
            chosen, branch = None, "none"
        sources = {"gim": chosen, "exact": ctx, "reference": ref, "fuzzy": fz}
        for m in methods:
            if m == "lm":
                if ev.lm is not None:
                    flags[m] = ev.lm
            elif m == "fuzzy" and fuzzy_key is None:
                continue
            elif sources[m] is None:                 # no prediction: wrong
                flags[m] = (False, False, False)
            else:
                flags[m] = rank_metrics(*sources[m], ev.target)
        for m, f in flags.items():
            overall[m].add(f)
            by_branch.setdefault(branch, {}).setdefault(m, _Tally()).add(f)
            by_bucket.setdefault(_bucket(length), {}).setdefault(m, _Tally()).add(f)
        branch_count[branch] = branch_count.get(branch, 0) + 1
    n = len(evidence)
    usage = {b: c / n for b, c in branch_count.items()}
    order = [b[0] for b in BUCKETS]
    return {"methods": {m: t.result() for m, t in overall.items() if t.n},
            "by_branch": {b: {m: t.result() for m, t in by_branch[b].items()}
                          for b in ("context", "reference", "fuzzy", "none") if b in by_branch},
            "by_match_length": {b: {m: t.result() for m, t in by_bucket[b].items()}
                                for b in order if b in by_bucket},
            "branch_usage": usage}


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def evaluate_paper(documents, context: int, taus, temperatures, fuzzy_backends=(),
                   reference=None, max_reference_length: int = 500, lm=None, methods=METHODS,
                   max_windows: int | None = None, seed: int = 0, names=None, cache=None,
                   vocab_size: int | None = None, progress: bool = True) -> dict:
    """Evaluate under the paper protocol at every point of a (tau x T x backend) sweep.

    Parameters
    ----------
    documents : list of int arrays
    context : int
        L, context tokens per window (stride L // 2).
    taus, temperatures : int / float or lists
    fuzzy_backends : list of ``(label, embedder)``
        One entry per fuzzy backend / window W (label e.g. ``"distilled W=32"``); empty: no fuzzy.
    reference : ReferenceIndex-like (``longest_suffix(ctx, max_length)``) or None
    lm : object with ``sequence_logprobs(ids) -> (n, vocab)`` or None
    methods : subset of :data:`METHODS`
    max_windows, seed : random subsample of the windows (without replacement)
    cache : NpzCache or None
        Fuzzy embeddings of each context, by content.

    Returns
    -------
    dict
        ``{"protocol": "paper", "context": L, "stride": L // 2, "n_windows", "n_windows_total",
        "windows": [[doc, start], ...], "points": [{"tau", "temperature", "fuzzy", **score_point}],
        "seconds": {...}, "tokens_per_s": {method: predictions/s}}``.
    """
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ProtocolError(f"unknown method(s) {sorted(unknown)}; choose from {METHODS}")
    names = names or [f"document {i}" for i in range(len(documents))]
    docs = [check_token_ids(d, vocab_size, what=nm) for nm, d in zip(names, documents)]
    for label, emb in fuzzy_backends:
        if emb.window > context:
            raise ProtocolError(f"context L = {context} is shorter than the fuzzy window "
                                f"W = {emb.window} of {label}")
    n_total = sum(len(paper_windows(len(d), context)) for d in docs)
    windows = select_windows([len(d) for d in docs], context, max_windows, seed, names)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(windows) * (1 + len(fuzzy_backends)), desc="lm-eval paper",
                   unit="win")
    seconds: dict = {}
    run_ref = reference if ("reference" in methods or "gim" in methods) else None
    evidence = collect_evidence(docs, windows, context, run_ref, max_reference_length,
                                lm if "lm" in methods else None, seconds, bar)
    use_fuzzy = "fuzzy" in methods or "gim" in methods
    keys = []
    for label, emb in (fuzzy_backends if use_fuzzy else ()):
        add_fuzzy_evidence(evidence, docs, context, emb, label, cache, seconds, bar)
        keys.append(label)
    if bar is not None:
        bar.close()
    run_methods = [m for m in methods
                   if not (m == "reference" and reference is None)
                   and not (m == "lm" and lm is None)
                   and not (m == "fuzzy" and not keys)]
    points = []
    for fkey, tau, temp in itertools.product(keys or [None], _as_list(taus),
                                             _as_list(temperatures)):
        t0 = time.perf_counter()
        res = score_point(evidence, int(tau), float(temp), fkey, run_methods)
        res["combine_seconds"] = time.perf_counter() - t0
        points.append({"tau": int(tau), "temperature": float(temp), "fuzzy": fkey, **res})
    n = len(evidence)
    exact_s = seconds.get("exact", 0.0)
    ref_s = seconds.get("reference", 0.0)
    rate = lambda s: n / s if s > 0 else float("inf")
    tps = {"exact": rate(exact_s), "reference": rate(ref_s), "lm": rate(seconds.get("lm", 0.0))}
    for k in keys:
        tps[f"fuzzy[{k}]"] = rate(seconds[k])
        tps[f"gim[{k}]"] = rate(exact_s + ref_s + seconds[k])
    if not keys:
        tps["gim"] = rate(exact_s + ref_s)
    tps = {k: v for k, v in tps.items() if k.split("[")[0] in run_methods}
    return {"protocol": "paper", "context": int(context), "stride": int(context // 2),
            "n_windows": n, "n_windows_total": int(n_total), "max_windows": max_windows,
            "seed": int(seed), "n_documents": len(docs),
            "n_documents_with_windows": len({d for d, _ in windows}),
            "windows": [[int(d), int(s)] for d, s in windows], "points": points,
            "seconds": seconds, "tokens_per_s": tps}
