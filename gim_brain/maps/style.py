"""How a kind of per-voxel value is drawn: colour map, range, threshold and label.

Signed quantities (differences, unique variance) get a diverging map centred on zero;
non-negative ones (correlation r, R², log10 alpha, -log10 p) a sequential map.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MapStyle", "style_for", "VALUE_KINDS"]

#: value kind -> (label shown in titles and colour bars, signed?)
VALUE_KINDS: dict[str, tuple[str, bool]] = {
    "r": ("correlation r", False),
    "r2": ("R²", False),
    "alpha": ("log10 ridge alpha", False),
    "pvalue": ("-log10 p", False),
    "unique": ("unique variance (R²)", True),
    "split": ("split variance (R²)", True),
    "diff": ("difference", True),
    "value": ("value", True),
}


@dataclass(frozen=True)
class MapStyle:
    """Drawing parameters shared by every kind of map of one value array.

    Attributes
    ----------
    label : str
        What the values are (used in titles).
    cmap : str
        Matplotlib colour map name.
    signed : bool
        True: diverging map symmetric around 0 (``vmin = -vmax``).
    vmin, vmax : float
        Colour range.
    threshold : float or None
        Values with ``|v| <= threshold`` are left transparent (None: draw all).
    """

    label: str
    cmap: str
    signed: bool
    vmin: float
    vmax: float
    threshold: float | None

    def for_display(self, values: np.ndarray) -> np.ndarray:
        """Values as drawn: non-finite -> 0; for unsigned kinds, values <= threshold -> 0."""
        shown = np.nan_to_num(np.asarray(values, dtype=float), nan=0.0, posinf=0.0, neginf=0.0)
        if not self.signed and self.threshold is not None:
            shown = np.where(shown > self.threshold, shown, 0.0)
        return shown

    @property
    def nilearn_threshold(self) -> float | None:
        """Threshold argument for nilearn plotting: hides exact zeros (outside the mask) and,
        for signed kinds, ``|v| <= threshold``."""
        if self.signed and self.threshold:
            return float(self.threshold)
        return 1e-12


def _robust_max(values: np.ndarray, q: float = 99.0) -> float:
    finite = np.abs(values[np.isfinite(values)])
    if finite.size == 0:
        return 1.0
    top = float(np.percentile(finite, q))
    if top <= 0:
        top = float(finite.max())
    return top if top > 0 else 1.0


def style_for(kind: str, values: np.ndarray, threshold: float | None = None) -> MapStyle:
    """Choose colour map, range and threshold for ``values`` of a given kind.

    Parameters
    ----------
    kind : str
        One of :data:`VALUE_KINDS` (``"r"``, ``"alpha"``, ``"unique"``, ``"diff"``...).
    values : ndarray, shape (n_values,)
        The values as they will be drawn (after any log transform).
    threshold : float, optional
        Overrides the default: 0 for non-negative kinds (values <= 0 hidden), none for
        signed kinds and alpha.

    Returns
    -------
    MapStyle
    """
    if kind not in VALUE_KINDS:
        raise ValueError(f"unknown value kind {kind!r}; expected one of {sorted(VALUE_KINDS)}")
    label, signed = VALUE_KINDS[kind]
    values = np.asarray(values, dtype=float)
    top = _robust_max(values)
    if signed:
        return MapStyle(label, "RdBu_r", True, -top, top, threshold)
    if kind == "alpha":
        finite = values[np.isfinite(values)]
        lo = float(finite.min()) if finite.size else 0.0
        hi = float(finite.max()) if finite.size else 1.0
        return MapStyle(label, "viridis", False, lo, hi if hi > lo else lo + 1.0, threshold)
    return MapStyle(label, "inferno", False, 0.0, top, 0.0 if threshold is None else threshold)
