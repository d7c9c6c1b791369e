"""Next-token evaluation of GIM, its components and an LM on sliding contexts.

Each document is read in contexts of ``context`` tokens at stride ``context // 2``; every token
after the first is predicted exactly once (the first context scores all its positions, later ones
only their second half, so each prediction sees at least ``context // 2`` tokens). Fuzzy
embeddings are computed once per document (each position reads only its own W-token window,
which may reach up to W-1 tokens before a context's start: past text, never the target).

Metrics per method: strict top-1 (argmax, ties broken to the smallest token id; no prediction
counts as wrong), tie-lenient top-1 (right when the actual token shares the maximal
probability), predictions per second of the method's own computation, and for GIM the share of
each branch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .distributions import SparseDistributions
from .exact import check_token_ids
from .model import BRANCHES, GIM

__all__ = ["METHODS", "context_windows", "MethodTally", "evaluate_documents"]

METHODS = ("gim", "exact", "fuzzy", "reference", "lm")


def context_windows(n: int, context: int) -> list[tuple[int, int, int]]:
    """``(start, stop, first_target)`` of the evaluation contexts of a document of ``n`` tokens.

    Window ``ids[start:stop]`` predicts targets ``first_target..stop-1`` (document indices).
    """
    if context < 2:
        raise ValueError(f"context must be >= 2 tokens, got {context}")
    stride = context // 2
    out, start, done = [], 0, 1
    while done < n:
        stop = min(n, start + context)
        out.append((start, stop, done))
        done = stop
        start += stride
    return out


@dataclass
class MethodTally:
    correct: int = 0
    correct_lenient: int = 0
    n: int = 0
    seconds: float = 0.0
    branches: dict = field(default_factory=dict)

    def add(self, strict: np.ndarray, lenient: np.ndarray) -> None:
        self.correct += int(strict.sum())
        self.correct_lenient += int(lenient.sum())
        self.n += len(strict)

    def result(self) -> dict:
        out = {"top1": self.correct / self.n if self.n else float("nan"),
               "top1_lenient": self.correct_lenient / self.n if self.n else float("nan"),
               "n_predictions": self.n, "seconds": self.seconds,
               "tokens_per_s": self.n / self.seconds if self.seconds > 0 else float("inf")}
        if self.branches:
            total = sum(self.branches.values())
            out["branch_usage"] = {b: self.branches.get(b, 0) / total for b in BRANCHES}
        return out


def _score_sparse(dist: SparseDistributions, targets: np.ndarray, rows: slice):
    top = dist.top1()[rows]
    strict = top == targets
    lenient = dist.top1_tied(np.pad(targets, (rows.start, len(dist) - rows.stop),
                                    constant_values=-1))[rows]
    return strict, lenient


def evaluate_documents(documents, gim: GIM, lm=None, context: int = 1024,
                       methods=METHODS, names=None, progress: bool = True) -> dict:
    """Evaluate next-token accuracy on tokenised documents.

    Parameters
    ----------
    documents : list of int arrays
        Token ids of each document (>= 2 tokens each).
    gim : GIM
        Its embedder / reference decide which of ``fuzzy`` / ``reference`` can run.
    lm : object with ``sequence_logprobs(ids) -> (n, vocab)``, optional
        Needed for the ``lm`` method.
    context : int
        Tokens per context (stride ``context // 2``).
    methods : subset of :data:`METHODS`
    names : list of str, optional
        Document names used in error messages.

    Returns
    -------
    dict
        ``{"methods": {name: {"top1", "top1_lenient", "tokens_per_s", "n_predictions",
        "seconds", ["branch_usage"]}}, "n_predictions": int, "context": int,
        "n_documents": int, "embeddings_from_cache": int}`` (documents whose fuzzy embeddings
        came from the cache: their embedding time, hence gim/fuzzy tokens/s, is not measured); methods that cannot run (no embedder, no reference, no LM) are
        absent.
    """
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ValueError(f"unknown method(s) {sorted(unknown)}; choose from {METHODS}")
    names = names or [f"document {i}" for i in range(len(documents))]
    window = getattr(gim.embedder, "window", None)
    if window is not None and context < window:
        raise ValueError(f"context ({context} tokens) is shorter than the fuzzy window "
                         f"W={window}: use --context >= {window} or a smaller window")
    run = [m for m in methods
           if not (m == "fuzzy" and gim.embedder is None)
           and not (m == "reference" and gim.reference is None)
           and not (m == "lm" and lm is None)]
    docs = []
    for name, doc in zip(names, documents):
        doc = check_token_ids(doc, gim._vocab_size(), what=name)
        if len(doc) < 2:
            raise ValueError(f"{name}: only {len(doc)} token(s); need at least 2 to predict anything")
        docs.append(doc)
    tallies = {m: MethodTally() for m in run}
    needs_gim = any(m in run for m in ("gim", "exact", "fuzzy", "reference"))
    windows = [(d, w) for d in range(len(docs)) for w in context_windows(len(docs[d]), context)]
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=sum(len(d) - 1 for d in docs), desc="lm-eval", unit="tok")
    embeddings_of = {}
    n_cached = 0
    for d, (start, stop, first) in windows:
        doc = docs[d]
        ids = doc[start:stop]
        rows = slice(first - start - 1, stop - start - 1)   # positions predicting the targets
        targets = doc[first:stop]
        if needs_gim:
            emb = None
            if gim.embedder is not None:
                if d not in embeddings_of:
                    t0 = time.perf_counter()
                    emb_doc, cached = gim.embed(doc, return_cached=True)   # once per document
                    embeddings_of = {d: emb_doc}
                    embed_s = time.perf_counter() - t0
                    n_cached += int(cached)
                    for m in ("gim", "fuzzy"):
                        if m in tallies:
                            tallies[m].seconds += embed_s
                emb = embeddings_of[d][start:stop]
            pred = gim.predict_document(ids, embeddings=emb)
            tm = pred.timings
            parts = {"gim": ("exact", "reference", "fuzzy", "combine"), "exact": ("exact",),
                     "reference": ("reference",), "fuzzy": ("fuzzy",)}
            sources = {"gim": pred.distributions, "exact": pred.components["context"],
                       "reference": pred.components.get("reference"),
                       "fuzzy": pred.components.get("fuzzy")}
            for m, keys in parts.items():
                if m in tallies:
                    tallies[m].seconds += sum(tm.get(k, 0.0) for k in keys)
                    tallies[m].add(*_score_sparse(sources[m], targets, rows))
            if "gim" in tallies:
                names_b, counts = np.unique(pred.branch_names[rows], return_counts=True)
                for b, c in zip(names_b.tolist(), counts.tolist()):
                    tallies["gim"].branches[b] = tallies["gim"].branches.get(b, 0) + c
        if "lm" in tallies:
            t0 = time.perf_counter()
            logp = lm.sequence_logprobs(ids)[rows]
            tallies["lm"].seconds += time.perf_counter() - t0
            best = logp.max(1)
            tallies["lm"].add(np.argmax(logp, 1) == targets,
                              logp[np.arange(len(targets)), targets] >= best)
        if bar is not None:
            bar.update(len(targets))
    if bar is not None:
        bar.close()
    n_pred = sum(len(d) - 1 for d in docs)
    return {"methods": {m: t.result() for m, t in tallies.items()}, "n_predictions": n_pred,
            "context": context, "n_documents": len(docs),
            "embeddings_from_cache": n_cached}
