"""scikit-learn-style estimators over the story-grouped solvers, for Python users.

Parameters go in ``__init__`` (no work there); :meth:`fit` takes per-story dicts, builds
story-grouped folds (a story is never split between training and validation) and calls the same
solvers as :func:`~gim_brain.encoding.fit_encoding`; fitted attributes end in ``_``.

>>> model = StoryRidgeCV(alphas=[1, 10, 100], n_folds=3).fit(X_by_story, Y_by_story)  # doctest: +SKIP
>>> model.best_alphas_, model.score(X_test_by_story, Y_test_by_story)                 # doctest: +SKIP
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from .backend import resolve_backend, use_backend
from .cv import story_folds
from .fit import DEFAULT_ALPHAS, _test_scores

__all__ = ["StoryRidgeCV", "StoryBandedRidgeCV"]


def _stories(X_by_story: Mapping, Y_by_story: Mapping | None) -> list[str]:
    if not isinstance(X_by_story, Mapping) or not X_by_story:
        raise TypeError("X_by_story must be a non-empty dict story -> array")
    if Y_by_story is None:
        return list(X_by_story)
    if not isinstance(Y_by_story, Mapping):
        raise TypeError("Y_by_story must be a dict story -> (n_rows, n_targets) array")
    missing = [s for s in X_by_story if s not in Y_by_story]
    if missing:
        raise ValueError(f"stories {missing} have features but no responses")
    return list(X_by_story)


def _bands(x, story: str, n_bands: int | None) -> list[np.ndarray]:
    bands = list(x) if isinstance(x, (list, tuple)) else [x]
    if n_bands is not None and len(bands) != n_bands:
        raise ValueError(f"story {story!r}: {len(bands)} feature bands, expected {n_bands}")
    out = []
    for b in bands:
        b = np.asarray(b, dtype=np.float32)
        if b.ndim != 2:
            raise ValueError(f"story {story!r}: features must be 2-D (n_rows, n_features), got "
                             f"shape {b.shape}")
        out.append(b)
    return out


def _responses(Y_by_story: Mapping, stories: Sequence[str], rows: dict[str, int]) -> list[np.ndarray]:
    out = []
    for s in stories:
        y = np.asarray(Y_by_story[s], dtype=np.float32)
        if y.ndim != 2 or y.shape[0] != rows[s]:
            raise ValueError(f"story {s!r}: responses of shape {y.shape} for {rows[s]} feature rows")
        if not np.all(np.isfinite(y)):
            raise ValueError(f"story {s!r}: responses contain NaN or inf")
        out.append(y)
    return out


class _StoryEstimator:
    """Shared predict/score of the story estimators."""

    coef_: np.ndarray

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet: call fit first")

    def _design(self, x, story: str) -> np.ndarray:
        raise NotImplementedError

    def predict(self, X_by_story):
        """Predicted responses: dict story -> float32 (n_rows, n_targets) (an array for an array)."""
        self._check_fitted()
        if not isinstance(X_by_story, Mapping):
            return self._design(X_by_story, "<array>") @ self.coef_
        return {s: self._design(x, s) @ self.coef_ for s, x in X_by_story.items()}

    def score(self, X_by_story, Y_by_story) -> np.ndarray:
        """Per-target held-out score (``self.score_metric``: Pearson r or R²) over all rows.

        Like himalaya, one value per target, float32 (n_targets,).
        """
        stories = _stories(X_by_story, Y_by_story)
        pred = self.predict({s: X_by_story[s] for s in stories})
        Y = np.concatenate([np.asarray(Y_by_story[s], np.float32) for s in stories])
        r, r2 = _test_scores(Y, np.concatenate([pred[s] for s in stories]))
        return r if self.score_metric == "correlation" else r2


class StoryRidgeCV(_StoryEstimator):
    """Ridge with one alpha per target chosen by story-grouped cross-validation.

    Parameters
    ----------
    alphas : sequence of float
        Ridge grid (default 17 values 1e0..1e8).
    n_folds : int
        Story-grouped folds (at most the number of training stories).
    solver : {"auto", "fastpath", "ridge", "kernel"}
    score : {"correlation", "r2"}
        Validation score choosing the alphas; also what :meth:`score` returns.
    backend : {"auto", "numpy", "torch", "torch_cuda"}
    n_targets_batch : int or None

    Attributes
    ----------
    best_alphas_ : float32 (n_targets,)
    cv_scores_ : float32 (n_targets,)
    coef_ : float32 (n_features, n_targets)
    solver_ : str
    folds_ : list of list of str
        Validation stories of each fold.
    """

    def __init__(self, alphas=DEFAULT_ALPHAS, n_folds: int = 5, solver: str = "auto",
                 score: str = "correlation", backend: str = "auto",
                 n_targets_batch: int | None = None):
        self.alphas = alphas
        self.n_folds = n_folds
        self.solver = solver
        self.score_metric = score
        self.backend = backend
        self.n_targets_batch = n_targets_batch

    def get_params(self, deep: bool = True) -> dict:
        return {"alphas": self.alphas, "n_folds": self.n_folds, "solver": self.solver,
                "score": self.score_metric, "backend": self.backend,
                "n_targets_batch": self.n_targets_batch}

    def _design(self, x, story):
        return _bands(x, story, 1)[0]

    def fit(self, X_by_story: Mapping[str, np.ndarray], Y_by_story: Mapping[str, np.ndarray]):
        """Fit on every story of ``X_by_story``: dict story -> (n_rows, n_features)."""
        from .ridge import fit_ridge

        stories = _stories(X_by_story, Y_by_story)
        X = {s: self._design(X_by_story[s], s) for s in stories}
        rows = {s: x.shape[0] for s, x in X.items()}
        Y = _responses(Y_by_story, stories, rows)
        folds = story_folds(rows, self.n_folds)
        with use_backend(resolve_backend(self.backend)):
            fit = fit_ridge(np.concatenate([X[s] for s in stories]), Y, folds,
                            np.asarray(self.alphas, np.float64), solver=self.solver,
                            score=self.score_metric, return_weights=True,
                            n_targets_batch=self.n_targets_batch)
        self.best_alphas_ = np.asarray(fit.best_alphas, np.float32)
        self.cv_scores_ = np.asarray(fit.cv_scores, np.float32)
        self.coef_ = np.asarray(fit.weights, np.float32)
        self.solver_ = fit.solver
        self.folds_ = [list(f.val_stories) for f in folds]
        self.n_features_in_ = self.coef_.shape[0]
        return self


class StoryBandedRidgeCV(_StoryEstimator):
    """Banded ridge: one weight per feature band and one alpha per target, by story-grouped CV.

    Parameters
    ----------
    alphas : sequence of float
    n_folds : int
    n_iter : int
        Random-search draws of the band weights (the first is uniform).
    solver : {"auto", "fastpath", "banded_ridge", "multiple_kernel"}
    score : {"correlation", "r2"}
    backend : str
    random_state : int
    n_targets_batch : int or None

    Attributes
    ----------
    best_alphas_ : float32 (n_targets,)
    deltas_ : float32 (n_bands, n_targets)
        Log band weights.
    cv_scores_ : float32 (n_targets,)
    coef_ : float32 (n_features_total, n_targets)
        Weights on the concatenated bands.
    band_widths_ : list of int
    solver_ : str
    """

    def __init__(self, alphas=DEFAULT_ALPHAS, n_folds: int = 5, n_iter: int = 20,
                 solver: str = "auto", score: str = "correlation", backend: str = "auto",
                 random_state: int = 0, n_targets_batch: int | None = None):
        self.alphas = alphas
        self.n_folds = n_folds
        self.n_iter = n_iter
        self.solver = solver
        self.score_metric = score
        self.backend = backend
        self.random_state = random_state
        self.n_targets_batch = n_targets_batch

    def get_params(self, deep: bool = True) -> dict:
        return {"alphas": self.alphas, "n_folds": self.n_folds, "n_iter": self.n_iter,
                "solver": self.solver, "score": self.score_metric, "backend": self.backend,
                "random_state": self.random_state, "n_targets_batch": self.n_targets_batch}

    def _design(self, x, story):
        bands = _bands(x, story, len(self.band_widths_))
        widths = [b.shape[1] for b in bands]
        if widths != self.band_widths_:
            raise ValueError(f"story {story!r}: band widths {widths}, fitted on {self.band_widths_}")
        return np.concatenate(bands, axis=1)

    def fit(self, X_by_story: Mapping[str, Sequence[np.ndarray]],
            Y_by_story: Mapping[str, np.ndarray]):
        """Fit on every story: ``X_by_story`` is dict story -> list of (n_rows, n_features_b)."""
        from .banded import fit_banded

        stories = _stories(X_by_story, Y_by_story)
        first = _bands(X_by_story[stories[0]], stories[0], None)
        if len(first) < 2:
            raise ValueError("StoryBandedRidgeCV needs at least 2 bands per story "
                             "(use StoryRidgeCV for one)")
        X = {s: _bands(X_by_story[s], s, len(first)) for s in stories}
        rows = {s: x[0].shape[0] for s, x in X.items()}
        Y = np.concatenate(_responses(Y_by_story, stories, rows))
        Xs = [np.concatenate([X[s][b] for s in stories]) for b in range(len(first))]
        folds = story_folds(rows, self.n_folds)
        with use_backend(resolve_backend(self.backend)):
            fit = fit_banded(Xs, Y, folds, np.asarray(self.alphas, np.float64),
                             band_names=[f"band{b}" for b in range(len(Xs))],
                             Xs_test=Xs, Y_test=Y, solver=self.solver,
                             n_iter=self.n_iter, score=self.score_metric, return_weights=True,
                             n_targets_batch=self.n_targets_batch, variance_partitioning=False,
                             random_state=self.random_state)
        self.best_alphas_ = np.asarray(fit.best_alphas, np.float32)
        self.deltas_ = np.asarray(fit.deltas, np.float32)
        self.cv_scores_ = np.asarray(fit.cv_scores, np.float32)
        self.coef_ = np.asarray(fit.weights, np.float32)
        self.band_widths_ = [x.shape[1] for x in Xs]
        self.solver_ = fit.solver
        self.folds_ = [list(f.val_stories) for f in folds]
        self.n_features_in_ = self.coef_.shape[0]
        return self
