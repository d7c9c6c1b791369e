"""One feature set of one subject, from words to a fitted encoding model.

The glue between ``gim_brain.features`` (design matrices on the response rows) and
``gim_brain.encoding`` (ridge / banded ridge), used by :func:`run_experiment` for every
subject x SPEC.
"""

from __future__ import annotations

import time
from typing import Any, Mapping, Sequence

import numpy as np

from ..encoding import EncodingResult, fit_encoding
from ..features import DEFAULT_DELAYS, SpaceContext, build_design

__all__ = ["fit_feature_set", "fit_design"]


def fit_feature_set(ctx: SpaceContext, spec: str, stories: Sequence[str],
                    Y_by_story: Mapping[str, np.ndarray], test_stories: Sequence[str], *,
                    params: Mapping[str, Any] | None = None,
                    delays: Sequence[int] = DEFAULT_DELAYS, feature_set: str | None = None,
                    **fit_options) -> EncodingResult:
    """Build the design of ``spec`` for ``stories`` and fit it to the responses.

    Parameters
    ----------
    ctx : SpaceContext
        Dataset, subject, LM options and training stories the feature spaces see.
    spec : str
        A space, ``a+b`` (concatenated: one ridge) or ``a,b`` (bands: banded ridge).
    stories : sequence of str
        Training and test stories.
    Y_by_story : mapping story -> float32 (n_rows, n_targets)
    test_stories : sequence of str
    params : mapping, optional
        Feature-space parameters applied to every space of ``spec`` that has them.
    delays : sequence of int
        FIR delays in TRs.
    feature_set : str, optional
        The name recorded in the result (default: ``spec``).
    **fit_options
        Passed to :func:`gim_brain.encoding.fit_encoding` (alphas, n_folds, backend, ...).

    Returns
    -------
    EncodingResult
        With the feature description and the features+fit time in ``provenance``.
    """
    t0 = time.perf_counter()
    design = build_design(ctx, spec, stories, params=dict(params or {}), delays=delays)
    return fit_design(design, Y_by_story, test_stories, feature_set=feature_set or spec,
                      t0=t0, **fit_options)


def fit_design(design, Y_by_story: Mapping[str, np.ndarray], test_stories: Sequence[str], *,
               feature_set: str, t0: float | None = None, **fit_options) -> EncodingResult:
    """Fit a built :class:`~gim_brain.features.design.Design` to the responses (as
    :func:`fit_feature_set`; ``t0`` is when building the features started)."""
    t0 = time.perf_counter() if t0 is None else t0
    banded = len(design.bands) > 1
    X = ({s: [x[:, design.band_slices[b]] for b in design.bands] for s, x in design.X.items()}
         if banded else design.X)
    result = fit_encoding(X, Y_by_story, list(test_stories), feature_set=feature_set,
                          band_names=design.bands if banded else None, **fit_options)
    result.provenance = dict(result.provenance or {}, features=design.describe(),
                             n_features=design.n_features,
                             features_and_fit_s=time.perf_counter() - t0)
    return result
