"""Per-voxel values <-> NIfTI volumes, and the volume figures (stat map, glass brain).

Voxel order: the ``n_voxels`` values of an encoding result are the voxels where the mask
is non-zero, in the order given by ``order``:

* ``"nifti"`` (default): NumPy C order over the NIfTI array ``(i, j, k)``, i.e.
  ``mask.get_fdata() != 0`` — what nilearn's ``NiftiMasker`` uses.
* ``"pycortex"``: C order over the transposed array ``(k, j, i)``, i.e.
  ``mask.get_fdata().T != 0`` — the order of ds003020's preprocessed responses.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np

from .style import MapStyle, style_for

__all__ = [
    "MaskShapeError",
    "load_mask",
    "mask_indices",
    "values_to_img",
    "img_to_values",
    "plot_volume",
    "plot_glass",
    "mni_overlap",
]

VOXEL_ORDERS = ("nifti", "pycortex")


class MaskShapeError(ValueError):
    """The number of values does not match the number of voxels in the mask."""


def load_mask(mask: str | Path | nib.Nifti1Image) -> nib.Nifti1Image:
    """Load a 3-D mask image; raise ``FileNotFoundError`` naming the file if it is missing."""
    if isinstance(mask, (str, Path)):
        path = Path(mask)
        if not path.is_file():
            raise FileNotFoundError(f"mask image {path} does not exist")
        mask = nib.load(str(path))
    if len(mask.shape) != 3:
        raise ValueError(f"mask must be a 3-D image, got shape {mask.shape}")
    return mask


def mask_indices(mask: nib.Nifti1Image, order: str = "nifti") -> tuple[np.ndarray, ...]:
    """NIfTI array indices ``(i, j, k)`` of the mask's voxels, in ``order``.

    Returns
    -------
    tuple of 3 int arrays, each (n_voxels,)
        Index the NIfTI data array ``data[i, j, k]`` in result order.
    """
    if order not in VOXEL_ORDERS:
        raise ValueError(f"unknown voxel order {order!r}; expected one of {VOXEL_ORDERS}")
    data = np.asanyarray(mask.dataobj)
    if order == "nifti":
        return np.nonzero(data != 0)
    k, j, i = np.nonzero(data.T != 0)
    return i, j, k


def values_to_img(
    values: np.ndarray,
    mask: str | Path | nib.Nifti1Image,
    order: str = "nifti",
    fill: float = 0.0,
) -> nib.Nifti1Image:
    """Put per-voxel values back into the mask's 3-D grid.

    Parameters
    ----------
    values : array, shape (n_voxels,)
        One value per mask voxel, in ``order``.
    mask : path or Nifti1Image
        3-D mask; its affine and header define the output grid.
    order : {"nifti", "pycortex"}
        Voxel order of ``values`` (see module docstring).
    fill : float
        Value outside the mask.

    Returns
    -------
    Nifti1Image, float32, shape of the mask
    """
    mask = load_mask(mask)
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"values must be 1-D (n_voxels,), got shape {values.shape}")
    idx = mask_indices(mask, order)
    n_voxels = idx[0].size
    if values.size != n_voxels:
        name = mask.get_filename() or "the mask"
        raise MaskShapeError(
            f"{values.size} values do not match the {n_voxels} voxels of {name}"
        )
    out = np.full(mask.shape, fill, dtype=np.float32)
    out[idx] = values
    img = nib.Nifti1Image(out, mask.affine)
    img.header.set_xyzt_units(*mask.header.get_xyzt_units())
    return img


def img_to_values(img: nib.Nifti1Image, mask: str | Path | nib.Nifti1Image,
                  order: str = "nifti") -> np.ndarray:
    """Inverse of :func:`values_to_img`: the mask voxels of ``img`` as (n_voxels,)."""
    mask = load_mask(mask)
    if img.shape[:3] != mask.shape:
        raise ValueError(f"image shape {img.shape} differs from mask shape {mask.shape}")
    return np.asarray(img.dataobj)[mask_indices(mask, order)]


def mni_overlap(mask: str | Path | nib.Nifti1Image) -> float:
    """Fraction of the mask's voxels whose world position falls inside the MNI152 head.

    Close to 1 for a mask in MNI space; a native-space (scanner coordinates) mask usually
    gives much less. Uses the MNI152 template bundled with nilearn (non-zero voxels).
    """
    from nilearn import datasets

    mask = load_mask(mask)
    brain = nib.load(datasets.MNI152_FILE_PATH)
    ijk = np.column_stack(mask_indices(mask))
    if ijk.size == 0:
        return 0.0
    world = nib.affines.apply_affine(mask.affine, ijk)
    vox = np.rint(nib.affines.apply_affine(np.linalg.inv(brain.affine), world)).astype(int)
    inside = ((vox >= 0) & (vox < np.array(brain.shape[:3]))).all(1)
    data = np.asarray(brain.dataobj)
    hits = np.zeros(len(vox), dtype=bool)
    hits[inside] = data[tuple(vox[inside].T)] > 0
    return float(hits.mean())


def _styled_img(img: nib.Nifti1Image, style: MapStyle) -> nib.Nifti1Image:
    shown = style.for_display(np.asarray(img.dataobj))
    return nib.Nifti1Image(shown.astype(np.float32), img.affine)


def plot_volume(img: nib.Nifti1Image, kind: str = "r", title: str = "",
                style: MapStyle | None = None, bg_img="MNI152", display_mode: str = "ortho",
                cut_coords=None) -> plt.Figure:
    """Orthogonal slices of a value volume over a background (``plot_stat_map``).

    Parameters
    ----------
    img : Nifti1Image
        Values (0 outside the mask).
    kind : str
        Value kind (see :mod:`gim_brain.maps.style`), chooses colours and threshold.
    title : str
        Figure title; say what is shown and for which subject.
    style : MapStyle, optional
        Overrides :func:`style_for` computed on the in-mask values.
    bg_img : image, "MNI152" or None
        Background; pass the subject's reference volume for native-space results.

    Returns
    -------
    matplotlib Figure
    """
    from nilearn import plotting

    style = style or style_for(kind, _nonzero(img))
    fig = plt.figure(figsize=(11, 4))
    kwargs = {}
    if bg_img is None:
        kwargs["bg_img"] = None  # plot_stat_map: None turns the background off
    elif not (isinstance(bg_img, str) and bg_img == "MNI152"):
        kwargs["bg_img"] = bg_img
    plotting.plot_stat_map(
        _styled_img(img, style), **kwargs,
        display_mode=display_mode, cut_coords=cut_coords, figure=fig, title=title or None,
        threshold=style.nilearn_threshold, cmap=style.cmap, vmin=style.vmin if not style.signed else None,
        vmax=style.vmax, symmetric_cbar=style.signed, black_bg=False, draw_cross=False,
        resampling_interpolation="nearest",
    )
    return fig


def plot_glass(img: nib.Nifti1Image, kind: str = "r", title: str = "",
               style: MapStyle | None = None) -> plt.Figure:
    """Glass-brain projection (maximum along each axis) of a value volume in MNI space.

    Signed kinds show positive and negative values (``plot_abs=False``).

    Returns
    -------
    matplotlib Figure
    """
    from nilearn import plotting

    style = style or style_for(kind, _nonzero(img))
    fig = plt.figure(figsize=(11, 4))
    plotting.plot_glass_brain(
        _styled_img(img, style), display_mode="lyrz", figure=fig, title=title or None,
        threshold=style.nilearn_threshold, cmap=style.cmap,
        vmin=style.vmin if not style.signed else None, vmax=style.vmax,
        plot_abs=not style.signed, symmetric_cbar=style.signed, colorbar=True,
        resampling_interpolation="nearest",
    )
    return fig


def _nonzero(img: nib.Nifti1Image) -> np.ndarray:
    data = np.asarray(img.dataobj)
    return data[(data != 0) & np.isfinite(data)]
