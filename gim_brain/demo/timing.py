"""Synthetic word timings at a natural speech rate.

A narrator reading aloud says about 2.5 words per second, lingers on long words and pauses at
commas, longer at sentence ends and longest between paragraphs. :func:`synthesize_timings` turns a
list of words into onsets and offsets (seconds from audio start) with that structure and seeded
jitter, so the demo's word-to-TR assignment, downsampling and word-rate feature see realistic input.
"""

from __future__ import annotations

import numpy as np

__all__ = ["synthesize_timings", "PAUSES"]

#: Mean and standard deviation (seconds) of the silence after each kind of boundary.
PAUSES: dict[str, tuple[float, float]] = {
    "": (0.04, 0.02),
    "clause": (0.25, 0.08),
    "sentence": (0.55, 0.15),
    "paragraph": (1.2, 0.25),
}


def synthesize_timings(words: list[str], boundaries: list[str] | None = None, *,
                       rate: float = 2.5, lead_in: float = 1.0, jitter: float = 0.2,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Onsets and offsets of ``words`` read aloud at ``rate`` words per second on average.

    Word durations grow with word length (a proxy for syllables) with log-normal jitter; the
    silence after a word depends on its boundary (:data:`PAUSES`). Durations are then scaled so
    that the whole reading (pauses included) lasts ``len(words) / rate`` seconds.

    Parameters
    ----------
    words : list of str, length n_words
    boundaries : list of str or None
        Boundary after each word (``""``, ``"clause"``, ``"sentence"``, ``"paragraph"``);
        None means no pauses beyond the short gaps between words.
    rate : float
        Average words per second over the whole reading, pauses included.
    lead_in : float
        Seconds of silence before the first word.
    jitter : float
        Standard deviation of the log-normal factor applied to each word's duration.
    seed : int
        Seed of the random generator (the timings are a deterministic function of all inputs).

    Returns
    -------
    onsets, offsets : float64 (n_words,)
        Seconds from audio start; ``offsets > onsets`` and ``onsets[i+1] >= offsets[i]``.
    """
    n = len(words)
    if n == 0:
        raise ValueError("synthesize_timings: got no words")
    if boundaries is None:
        boundaries = [""] * n
    if len(boundaries) != n:
        raise ValueError(f"synthesize_timings: {n} words but {len(boundaries)} boundaries")
    unknown = sorted(set(boundaries) - set(PAUSES))
    if unknown:
        raise ValueError(f"synthesize_timings: unknown boundary kinds {unknown}; "
                         f"use one of {sorted(PAUSES)}")
    if not rate > 0:
        raise ValueError(f"synthesize_timings: rate must be > 0 words/s, got {rate}")
    rng = np.random.default_rng(seed)
    letters = np.array([max(1, sum(ch.isalnum() for ch in w)) for w in words], dtype=float)
    durations = (0.10 + 0.055 * letters) * rng.lognormal(0.0, jitter, size=n)
    means = np.array([PAUSES[b][0] for b in boundaries])
    sds = np.array([PAUSES[b][1] for b in boundaries])
    gaps = np.clip(rng.normal(means, sds), 0.01, None)
    gaps[-1] = 0.0
    target = n / rate
    speech = target - gaps.sum()
    if speech <= 0.1 * target:  # pauses alone would exceed the target: shrink them too
        gaps *= 0.5 * target / gaps.sum()
        speech = target - gaps.sum()
    durations *= speech / durations.sum()
    onsets = np.empty(n)
    offsets = np.empty(n)
    t = float(lead_in)
    for i in range(n):
        onsets[i] = t
        offsets[i] = t + durations[i]
        t = offsets[i] + gaps[i]
    return onsets, offsets
