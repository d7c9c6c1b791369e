"""Noise ceiling from repeated presentations of a test story.

With ``N`` repeats ``y_1..y_N`` of the same story (rows aligned), the signal power (Sahani &
Linden 2003) is ``SP = (Var(sum_n y_n) - sum_n Var(y_n)) / (N (N - 1))``. From it:

- explainable variance ``EV = SP / mean_n Var(y_n)``: the share of a single repeat's variance
  that is stimulus-driven;
- ``cc_max = sqrt(SP / Var(mean_n y_n))``: the largest correlation any model can reach with the
  repeat-average (Schoppe et al. 2016), and the normalised correlation ``r / cc_max``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["signal_power", "explainable_variance", "cc_max", "normalized_correlation",
           "noise_ceiling"]


def _check_repeats(repeats, name: str = "repeats") -> np.ndarray:
    Y = np.asarray(repeats, dtype=np.float64)
    if Y.ndim == 2:
        Y = Y[:, :, None]
    if Y.ndim != 3:
        raise ValueError(f"{name} must be (n_repeats, n_rows, n_targets), got shape {Y.shape}")
    if Y.shape[0] < 2:
        raise ValueError(f"{name} has {Y.shape[0]} repeat(s); a noise ceiling needs at least 2")
    if not np.all(np.isfinite(Y)):
        raise ValueError(f"{name} contains NaN or inf")
    return Y


def signal_power(repeats) -> np.ndarray:
    """Signal power per target; ``repeats`` (n_repeats, n_rows, n_targets). Returns float64 (n_targets,)."""
    Y = _check_repeats(repeats)
    n = Y.shape[0]
    var_sum = Y.sum(0).var(0)
    sum_var = Y.var(1).sum(0)
    return (var_sum - sum_var) / (n * (n - 1))


def explainable_variance(repeats) -> np.ndarray:
    """Explainable variance per target (share of single-repeat variance driven by the stimulus).

    ``repeats`` (n_repeats, n_rows, n_targets); returns float64 (n_targets,) (can be slightly
    negative for pure noise: it is an unbiased estimate).
    """
    Y = _check_repeats(repeats)
    mean_var = Y.var(1).mean(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(mean_var > 0, signal_power(Y) / mean_var, 0.0)


def cc_max(repeats) -> np.ndarray:
    """Largest correlation reachable with the repeat-average, per target (NaN where SP <= 0)."""
    Y = _check_repeats(repeats)
    var_mean = Y.mean(0).var(0)
    sp = signal_power(Y)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(var_mean > 0, sp / var_mean, np.nan)
    return np.where(ratio > 0, np.sqrt(np.clip(ratio, 0, None)), np.nan)


def normalized_correlation(r, repeats) -> np.ndarray:
    """``r / cc_max`` per target, where ``r`` is the correlation with the repeat-average."""
    return np.asarray(r, dtype=np.float64) / cc_max(repeats)


def noise_ceiling(repeats_by_story: dict[str, np.ndarray], r=None,
                  test_stories: list[str] | None = None) -> dict[str, np.ndarray]:
    """Noise-ceiling arrays over test stories with repeats (rows concatenated across stories).

    Parameters
    ----------
    repeats_by_story : dict story -> (n_repeats, n_rows, n_targets)
        Every story needs the same number of repeats (the smallest is used otherwise).
    r : (n_targets,) or None
        Held-out correlation with the repeat-average; gives ``r_normalized``.
    test_stories : list of str or None
        Order of concatenation (default: dict order).

    Returns
    -------
    dict with float32 (n_targets,) ``explainable_variance``, ``cc_max`` (and ``r_normalized``).
    """
    stories = list(test_stories) if test_stories is not None else list(repeats_by_story)
    missing = [s for s in stories if s not in repeats_by_story]
    if missing:
        raise ValueError(f"no repeats given for test stories {missing}")
    arrays = [_check_repeats(repeats_by_story[s], name=f"repeats of story {s!r}") for s in stories]
    n_rep = min(a.shape[0] for a in arrays)
    Y = np.concatenate([a[:n_rep] for a in arrays], axis=1)
    out = {"explainable_variance": explainable_variance(Y).astype(np.float32),
           "cc_max": cc_max(Y).astype(np.float32)}
    if r is not None:
        out["r_normalized"] = normalized_correlation(r, Y).astype(np.float32)
    return out
