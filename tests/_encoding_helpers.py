"""Synthetic per-story data with known weights for the encoding tests."""

from __future__ import annotations

import numpy as np


def synthetic_stories(n_stories=8, n_features=20, n_targets=60, rows=(80, 130), noise=1.0,
                      weight_scales=None, seed=0):
    """Per-story (X, Y) with ``Y = X @ W + noise``; returns ``X_by_story, Y_by_story, W``.

    ``weight_scales`` (n_targets,) sets the prior std of each target's weights (default: spread
    log-uniformly over 0.01..1 so the best alphas differ between targets).
    """
    rng = np.random.default_rng(seed)
    if weight_scales is None:
        weight_scales = np.logspace(-2, 0, n_targets)
    W = (rng.standard_normal((n_features, n_targets)) * weight_scales[None, :]).astype(np.float32)
    X, Y = {}, {}
    for i in range(n_stories):
        n = int(rng.integers(*rows))
        x = rng.standard_normal((n, n_features)).astype(np.float32)
        X[f"story{i:02d}"] = x
        Y[f"story{i:02d}"] = (x @ W + noise * rng.standard_normal((n, n_targets))).astype(np.float32)
    return X, Y, W


import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """One BLAS/torch thread: on a shared 2-core machine oversubscribed BLAS threads make small
    eigendecompositions ~20x slower."""
    import torch
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(previous)
