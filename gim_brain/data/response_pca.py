"""PCA of a subject's responses read story by story, in float32, exact or randomized.

:class:`ResponsePCA` never stacks the stories: every pass walks the stories one at a time and
each story in row blocks of about 64 MB, so the extra memory of a fit is a few ``(n_rows + n_targets)
x (K + oversamples)`` matrices plus one row block, whatever the number of voxels. Two solvers:

``exact``
    the ``n_targets x n_targets`` covariance summed story by story in float64 and
    eigendecomposed: the PCA of :class:`sklearn.decomposition.PCA` (``svd_solver="full"``) up to
    rounding, for up to a few thousand targets (e.g. 200 response PCs).
``randomized``
    a randomized range finder with power iterations (Halko, Martinsson & Tropp 2011, algorithm
    4.4, QR-normalised), one pass over the stories per product: for voxel data (~27k rows x 95k
    voxels float32, 10 GB held as the stories themselves; the fit adds ~0.2 GB).

``auto`` (default) is ``exact`` up to ``exact_max_targets`` targets, else ``randomized``. Signs
follow scikit-learn (the largest-magnitude entry of each component is positive); seeded and
deterministic.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np

__all__ = ["ResponsePCA", "ResponsePCAError"]

#: Bytes of one float32 row block walked at a time (the centred copy of one block).
_BLOCK_BYTES = 64 * 1000**2


class ResponsePCAError(ValueError):
    """Responses a PCA cannot use (empty, ragged, not 2-D, NaN/inf); names the story."""


def _named_blocks(blocks) -> list[tuple[str, np.ndarray]]:
    """``(name, array)`` for a mapping story -> array or a sequence of arrays (named by index)."""
    if isinstance(blocks, Mapping):
        return [(str(k), v) for k, v in blocks.items()]
    if isinstance(blocks, np.ndarray):
        return [("responses", blocks)]
    return [(f"story {i}", b) for i, b in enumerate(blocks)]


class ResponsePCA:
    """PCA of responses given as per-story blocks ``(n_rows_i, n_targets)`` (float32 or float64).

    Parameters
    ----------
    n_components : int
        K, the number of components (capped at ``min(n_rows, n_targets)``).
    whiten : bool
        :meth:`transform` divides each component by its standard deviation on the fitted rows
        (as scikit-learn's ``whiten=True``); components of zero variance are left unscaled.
    solver : {"auto", "exact", "randomized"}
    exact_max_targets : int
        ``auto`` uses the exact covariance solver up to this many targets (default 4096: a
        134 MB float64 covariance).
    n_oversamples : int
        Extra random directions of the randomized solver (default 20).
    n_power_iter : int
        Power iterations of the randomized solver (default 5; each costs two passes).
    seed : int
        Seed of the random test matrix.

    Attributes
    ----------
    mean_ : float64 (n_targets,)
    components_ : float32 (K, n_targets)
        Orthonormal rows, by decreasing variance.
    explained_variance_ : float64 (K,)
        Variance (ddof=1) of the rows along each component.
    explained_variance_ratio_ : float64 (K,)
        ``explained_variance_`` over the total variance of all targets.
    singular_values_ : float64 (K,)
    n_components_, n_samples_, n_features_in_ : int
    solver_ : str
        The solver used.
    """

    def __init__(self, n_components: int = 100, *, whiten: bool = False, solver: str = "auto",
                 exact_max_targets: int = 4096, n_oversamples: int = 20, n_power_iter: int = 5,
                 seed: int = 0):
        self.n_components = n_components
        self.whiten = whiten
        self.solver = solver
        self.exact_max_targets = exact_max_targets
        self.n_oversamples = n_oversamples
        self.n_power_iter = n_power_iter
        self.seed = seed

    # -- passes over the stories -------------------------------------------------------------
    def _check(self, blocks) -> tuple[list[tuple[str, np.ndarray]], int, int]:
        named = _named_blocks(blocks)
        if not named:
            raise ResponsePCAError("the response PCA needs at least one story of responses")
        n_rows, n_targets = 0, None
        for name, b in named:
            shape = np.shape(b)
            if len(shape) != 2:
                raise ResponsePCAError(f"{name}: responses must be 2-D (n_rows, n_targets), got "
                                       f"shape {shape}")
            if n_targets is None:
                n_targets = shape[1]
            elif shape[1] != n_targets:
                raise ResponsePCAError(f"{name}: {shape[1]} targets, the first story has "
                                       f"{n_targets}")
            n_rows += shape[0]
        if n_rows < 2 or not n_targets:
            raise ResponsePCAError(f"the response PCA needs at least 2 rows and 1 target, got "
                                   f"{n_rows} rows x {n_targets} targets")
        return named, n_rows, int(n_targets)

    @staticmethod
    def _rows(named, n_targets: int) -> Iterator[tuple[str, np.ndarray]]:
        """Row blocks of every story as float32 (a copy only of one block at a time)."""
        step = max(1, _BLOCK_BYTES // (4 * max(n_targets, 1)))
        for name, b in named:
            for a in range(0, b.shape[0], step):
                yield name, np.asarray(b[a:a + step], dtype=np.float32)

    def _centred(self, named, n_targets: int) -> Iterator[np.ndarray]:
        mean32 = self.mean_.astype(np.float32)
        for _, x in self._rows(named, n_targets):
            yield x - mean32

    def _mean(self, named, n_targets: int, n_rows: int) -> None:
        total = np.zeros(n_targets, np.float64)
        for name, x in self._rows(named, n_targets):
            if not np.isfinite(x).all():
                raise ResponsePCAError(f"{name}: responses contain NaN or inf; remove or fill "
                                       f"them before the PCA")
            total += x.sum(axis=0, dtype=np.float64)
        self.mean_ = total / n_rows

    def _times(self, named, n_targets: int, right: np.ndarray) -> np.ndarray:
        """``Xc @ right`` (n_rows, l) in float64, one row block at a time."""
        right32 = right.astype(np.float32)
        return np.concatenate([(xc @ right32).astype(np.float64)
                               for xc in self._centred(named, n_targets)])

    def _times_t(self, named, n_targets: int, left: np.ndarray) -> np.ndarray:
        """``Xc.T @ left`` (n_targets, l) in float64, one row block at a time."""
        out = np.zeros((n_targets, left.shape[1]), np.float64)
        a = 0
        for xc in self._centred(named, n_targets):
            out += xc.T @ left[a:a + len(xc)].astype(np.float32)
            a += len(xc)
        return out

    # -- solvers -------------------------------------------------------------------------------
    def _fit_exact(self, named, n_targets: int, k: int):
        cov = np.zeros((n_targets, n_targets), np.float64)
        for xc in self._centred(named, n_targets):
            x64 = xc.astype(np.float64)
            cov += x64.T @ x64
        evals, evecs = np.linalg.eigh(cov)
        order = np.argsort(evals)[::-1]
        total_ss = float(np.trace(cov))
        evals = np.clip(evals[order][:k], 0.0, None)
        return np.sqrt(evals), evecs[:, order[:k]].T, total_ss

    def _fit_randomized(self, named, n_targets: int, n_rows: int, k: int):
        rng = np.random.default_rng(self.seed)
        width = min(k + int(self.n_oversamples), n_targets, n_rows)
        omega = rng.standard_normal((n_targets, width), dtype=np.float32)
        total_ss = 0.0
        parts = []
        for xc in self._centred(named, n_targets):  # first pass: Xc @ omega and the total SS
            total_ss += float(np.einsum("ij,ij->i", xc, xc).sum(dtype=np.float64))
            parts.append((xc @ omega).astype(np.float64))
        y = np.concatenate(parts)
        for _ in range(int(self.n_power_iter)):
            q, _ = np.linalg.qr(y)
            z, _ = np.linalg.qr(self._times_t(named, n_targets, q))
            y = self._times(named, n_targets, z)
        q, _ = np.linalg.qr(y)
        b_t = self._times_t(named, n_targets, q)  # (n_targets, width) = (Q.T Xc).T
        _, s, ut = np.linalg.svd(b_t.T, full_matrices=False)
        return s[:k], ut[:k], total_ss

    def fit(self, blocks: Sequence[np.ndarray] | Mapping[str, np.ndarray] | np.ndarray, y=None):
        """Fit on ``blocks``: per-story ``(n_rows_i, n_targets)`` arrays (a list, a dict story ->
        array, or one array); each pass walks them again, so a lazy sequence works too.

        Raises
        ------
        ResponsePCAError
            No rows, ragged target counts, non-2-D or non-finite responses (names the story).
        """
        if self.solver not in ("auto", "exact", "randomized"):
            raise ValueError(f"solver must be 'auto', 'exact' or 'randomized', got "
                             f"{self.solver!r}")
        if int(self.n_components) != self.n_components or self.n_components < 1:
            raise ValueError(f"n_components must be a whole number >= 1, got "
                             f"{self.n_components!r}")
        named, n_rows, n_targets = self._check(blocks)
        k = min(int(self.n_components), n_rows, n_targets)
        solver = self.solver
        if solver == "auto":
            solver = "exact" if n_targets <= self.exact_max_targets else "randomized"
        self._mean(named, n_targets, n_rows)
        if solver == "exact":
            s, comps, total_ss = self._fit_exact(named, n_targets, k)
        else:
            s, comps, total_ss = self._fit_randomized(named, n_targets, n_rows, k)
        # scikit-learn's sign convention: the largest-magnitude entry of each component > 0
        signs = np.sign(comps[np.arange(k), np.argmax(np.abs(comps), axis=1)])
        signs[signs == 0] = 1.0
        self.components_ = (comps * signs[:, None]).astype(np.float32)
        self.singular_values_ = np.asarray(s, np.float64)
        self.explained_variance_ = self.singular_values_**2 / (n_rows - 1)
        total_var = total_ss / (n_rows - 1)
        self.explained_variance_ratio_ = (self.explained_variance_ / total_var if total_var > 0
                                          else np.zeros(k))
        self.n_components_, self.n_samples_, self.n_features_in_ = k, n_rows, n_targets
        self.solver_ = solver
        return self

    def transform(self, responses: np.ndarray) -> np.ndarray:
        """``(n_rows, n_targets)`` -> float32 ``(n_rows, K)``: centred, projected (and whitened),
        in row blocks (no float64 or centred copy of the whole array)."""
        if not hasattr(self, "components_"):
            raise RuntimeError("ResponsePCA.transform called before fit")
        shape = np.shape(responses)
        if len(shape) != 2 or shape[1] != self.n_features_in_:
            raise ResponsePCAError(f"responses of shape {shape}: expected (n_rows, "
                                   f"{self.n_features_in_}) like the fitted ones")
        comps_t = self.components_.T
        out = np.concatenate([xc @ comps_t for xc in self._centred([("responses", responses)],
                                                                    shape[1])]
                             or [np.zeros((0, self.n_components_), np.float32)])
        if self.whiten:
            scale = np.sqrt(self.explained_variance_)
            scale[scale <= 1e-12 * max(float(scale.max(initial=0.0)), 1e-300)] = 1.0
            out /= scale.astype(np.float32)
        return out.astype(np.float32, copy=False)

    def fit_transform(self, blocks, y=None) -> list[np.ndarray]:
        """:meth:`fit`, then :meth:`transform` of every block (a list, in order)."""
        self.fit(blocks)
        return [self.transform(b) for _, b in _named_blocks(blocks)]
