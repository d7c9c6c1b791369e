"""Comparisons between feature spaces, and region-of-interest summaries of a value map.

* :func:`difference` — per-voxel difference of two score arrays (e.g. r of GIM features
  minus r of LM features), checked for matching shapes.
* :func:`unique_variance` — the unique-variance array of one space of a banded fit.
* :func:`roi_summary` — mean / median / max / count of a value map in each labelled region.
* :func:`seitzman_labels` — an offline atlas for MNI data: each voxel (or vertex) within
  ``radius`` mm of one of the 300 Seitzman et al. (2018) ROI centres (bundled with
  nilearn) takes that ROI's network and hemisphere, e.g. ``"Auditory L"``.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["difference", "unique_variance", "roi_summary", "seitzman_labels",
           "voxel_coordinates_mm"]


def difference(values_a: np.ndarray, values_b: np.ndarray, name_a: str = "A",
               name_b: str = "B") -> np.ndarray:
    """``values_a - values_b`` per voxel; raises ValueError naming both if shapes differ.

    Returns
    -------
    float64 (n_voxels,)
    """
    a = np.asarray(values_a, dtype=float)
    b = np.asarray(values_b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"cannot subtract {name_b} {b.shape} from {name_a} {a.shape}: "
                         "they were fitted on different targets")
    return a - b


def unique_variance(unique: Mapping[str, np.ndarray] | None, space: str,
                    feature_set: str = "this result") -> np.ndarray:
    """Unique variance of ``space`` from a banded fit's ``unique_variance`` dict.

    Raises
    ------
    KeyError
        If the result has no unique variance or not for ``space`` (names what it has).
    """
    if not unique:
        raise KeyError(f"{feature_set} has no unique-variance maps (fit a banded model "
                       "with several feature spaces)")
    if space not in unique:
        raise KeyError(f"{feature_set} has no unique variance for space {space!r}; "
                       f"spaces: {sorted(unique)}")
    return np.asarray(unique[space], dtype=float)


def voxel_coordinates_mm(mask_img, order: str = "nifti") -> np.ndarray:
    """World coordinates (mm) of the mask voxels, (n_voxels, 3), in result order."""
    import nibabel as nib

    from .volume import load_mask, mask_indices

    mask_img = load_mask(mask_img)
    ijk = np.column_stack(mask_indices(mask_img, order))
    return nib.affines.apply_affine(mask_img.affine, ijk)


def seitzman_labels(coordinates_mm: np.ndarray, radius: float = 8.0) -> np.ndarray:
    """Network + hemisphere label of each point near a Seitzman 2018 ROI centre.

    Parameters
    ----------
    coordinates_mm : (n_points, 3)
        MNI coordinates of voxels (:func:`voxel_coordinates_mm`) or fsaverage pial vertices.
    radius : float
        Distance (mm) within which a point belongs to the nearest ROI centre.

    Returns
    -------
    object array (n_points,)
        e.g. ``"DefaultMode L"``; ``""`` for points near no ROI (and ROIs labelled
        "unassigned" by the atlas).
    """
    from nilearn import datasets
    from scipy.spatial import cKDTree

    atlas = datasets.fetch_coords_seitzman_2018()  # bundled with nilearn: no download
    centres = np.asarray(atlas.rois[["x", "y", "z"]], dtype=float)
    hemis = {"cortexL": "L", "cortexR": "R"}
    names = np.array([
        "" if net == "unassigned" else f"{net} {hemis.get(region, 'mid')}"
        for net, region in zip(atlas.networks, atlas.regions)
    ], dtype=object)
    distance, nearest = cKDTree(centres).query(np.asarray(coordinates_mm, float))
    labels = names[nearest]
    labels[distance > radius] = ""
    return labels


def roi_summary(values: np.ndarray, labels: Sequence | np.ndarray) -> pd.DataFrame:
    """Summary of a value map per region.

    Parameters
    ----------
    values : (n_points,)
        One value per voxel or vertex.
    labels : (n_points,)
        Region of each point (str or int); ``""``, None, 0 or -1 mean "no region".

    Returns
    -------
    DataFrame indexed by region with columns ``n``, ``mean``, ``median``, ``max``,
    ``frac_positive``, sorted by decreasing mean. Non-finite values are ignored.
    """
    values = np.asarray(values, dtype=float)
    labels = np.asarray(labels, dtype=object)
    if values.shape != labels.shape:
        raise ValueError(f"{values.size} values but {labels.size} labels")
    keep = np.isfinite(values) & ~np.isin(labels, ["", None, 0, -1])
    frame = pd.DataFrame({"region": labels[keep].astype(str), "value": values[keep]})
    if frame.empty:
        return pd.DataFrame(columns=["n", "mean", "median", "max", "frac_positive"])
    grouped = frame.groupby("region")["value"]
    out = pd.DataFrame({
        "n": grouped.size(),
        "mean": grouped.mean(),
        "median": grouped.median(),
        "max": grouped.max(),
        "frac_positive": grouped.apply(lambda v: float(np.mean(v > 0))),
    })
    return out.sort_values("mean", ascending=False)
