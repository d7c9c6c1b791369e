"""Simulated voxel responses with planted ground truth.

Each planted voxel responds to one feature space: a random linear read-out of that space's
TR-level features (a few latent tuning directions shared within a region, mixed per voxel),
convolved with the canonical haemodynamic response, scaled to a chosen signal-to-noise ratio and
added to AR(1) noise. Voxels outside the planted regions are noise only. Everything is a
deterministic function of the inputs and ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import gamma

__all__ = ["canonical_hrf", "SimulationParams", "simulate_responses"]


def canonical_hrf(tr: float, duration: float = 32.0) -> np.ndarray:
    """SPM's double-gamma haemodynamic response sampled every ``tr`` seconds.

    ``h(t) = g(t; 6) - g(t; 16) / 6`` with ``g`` the gamma density of unit scale, sampled at
    ``t = 0, tr, 2 tr, ...`` up to ``duration`` and scaled to a peak of 1. It peaks at ~5 s and
    undershoots at ~15 s.

    Returns
    -------
    float64 (n_lags,)
    """
    if not tr > 0:
        raise ValueError(f"canonical_hrf: tr must be > 0 seconds, got {tr}")
    t = np.arange(0.0, duration + 1e-9, tr)
    h = gamma.pdf(t, 6.0) - gamma.pdf(t, 16.0) / 6.0
    return h / h.max()


@dataclass(frozen=True)
class SimulationParams:
    """Parameters of the response simulation.

    Attributes
    ----------
    snr : float
        Signal variance / noise variance in planted voxels (1.0: a noise-free model reaches r ~0.7).
    n_latent : int
        Tuning directions shared by the voxels of one region.
    noise_ar : float
        Lag-1 autocorrelation of the noise (fMRI noise is temporally smooth).
    seed : int
        Seed of every random draw.
    """

    snr: float = 1.0
    n_latent: int = 3
    noise_ar: float = 0.3
    seed: int = 0


def _zscore(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    sd = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def simulate_responses(drivers: dict[str, list[np.ndarray]], labels: np.ndarray,
                       region_spaces: list[str], tr: float,
                       params: SimulationParams = SimulationParams()) -> list[np.ndarray]:
    """Responses of every voxel for every story.

    Parameters
    ----------
    drivers : dict space -> list of float (n_rows_story, n_features_space)
        TR-level features of each space (no delays), one array per story, same row counts
        across spaces for a given story.
    labels : int (n_voxels,)
        Planted region of each voxel, an index into ``region_spaces``, or -1 (noise only).
    region_spaces : list of str
        The driving space of each planted region (keys of ``drivers``).
    tr : float
        Seconds between rows (for the haemodynamic response).
    params : SimulationParams

    Returns
    -------
    list of float32 (n_rows_story, n_voxels)
        Z-scored per story and voxel, like preprocessed fMRI.
    """
    labels = np.asarray(labels)
    missing = sorted({region_spaces[k] for k in set(labels[labels >= 0].tolist())} - set(drivers))
    if missing:
        raise ValueError(f"simulate_responses: no driver features for planted space(s) {missing}; "
                         f"got {sorted(drivers)}")
    spaces = sorted(drivers)
    n_stories = len(drivers[spaces[0]])
    rows = [len(x) for x in drivers[spaces[0]]]
    for space in spaces:
        if [len(x) for x in drivers[space]] != rows:
            raise ValueError(f"simulate_responses: space {space!r} has row counts "
                             f"{[len(x) for x in drivers[space]]}, expected {rows}")
    rng = np.random.default_rng(params.seed)
    hrf = canonical_hrf(tr)
    n_vox = len(labels)
    signal = [np.zeros((n, n_vox)) for n in rows]
    for k, space in enumerate(region_spaces):
        vox = np.flatnonzero(labels == k)
        if len(vox) == 0:
            continue
        xs = [_zscore(x) for x in drivers[space]]
        p = xs[0].shape[1]
        latent = rng.normal(size=(p, params.n_latent)) / np.sqrt(p)
        weights = latent @ rng.normal(size=(params.n_latent, len(vox)))  # (p, n_vox_k)
        for s in range(n_stories):
            drive = xs[s] @ weights
            conv = np.stack([np.convolve(drive[:, j], hrf)[: rows[s]] for j in range(len(vox))], 1)
            signal[s][:, vox] = conv
    # unit signal variance over all stories, then noise at the requested SNR
    full = np.concatenate(signal)
    sd = full.std(axis=0)
    scale = np.where(sd > 0, 1.0 / np.where(sd > 0, sd, 1.0), 0.0) * np.sqrt(params.snr)
    out = []
    for s in range(n_stories):
        noise = rng.normal(size=(rows[s], n_vox))
        for t in range(1, rows[s]):
            noise[t] = params.noise_ar * noise[t - 1] + np.sqrt(1 - params.noise_ar ** 2) * noise[t]
        y = (signal[s] - signal[s].mean(0)) * scale + noise
        out.append(_zscore(y).astype(np.float32))
    return out
