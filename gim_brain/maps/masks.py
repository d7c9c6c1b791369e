"""Cortical voxel masks of a pycortex transform, built from the surfaces as pycortex does.

pycortex builds ``mask_{type}.nii.gz`` on first use (``cortex.utils.get_cortical_mask``);
a filestore may lack them (pycortex's example subject S1 does). The definitions, for every
voxel centre of the transform's functional grid mapped to surface mm by ``inv(coord)``:

* ``thick``: closer than 8 mm to the nearest fiducial vertex (both hemispheres);
* ``thin``: closer than 2 mm;
* ``cortical``: no farther than the cortical thickness ``|pia - wm|`` at that nearest
  vertex (the ribbon between the white-matter and pial surfaces).

The fiducial surface is ``(wm + pia) / 2`` when both exist. Masks are written as pycortex
writes them: uint8 NIfTI in the reference grid (``(i, j, k)`` layout, reference affine), so
that the voxel order of results is ``get_fdata().T != 0`` (C order over ``(k, j, i)``).
A built mask is saved beside the transform, or in the gim-brain cache under a key of its
inputs when the filestore is read-only.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Callable

import nibabel as nib
import numpy as np

from .._cache import atomic_write_bytes, cache_dir, content_key, file_digest

__all__ = ["MASK_TYPES", "MASK_DISTANCES_MM", "voxel_distances", "cortical_mask",
           "mask_to_img", "folder_is_writable", "find_or_build_mask"]

MASK_TYPES = ("thick", "thin", "cortical")
#: mask type -> distance (mm) from the fiducial surface below which a voxel is kept
MASK_DISTANCES_MM = {"thick": 8.0, "thin": 2.0}


def voxel_distances(fiducial: np.ndarray, coord: np.ndarray, grid_shape: tuple[int, int, int],
                    max_dist: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
    """Distance of each voxel centre to the nearest surface vertex.

    Parameters
    ----------
    fiducial : float (n_vertices, 3)
        Surface vertices in mm (both hemispheres stacked).
    coord : float (4, 4)
        Surface mm -> voxel ``(i, j, k)``, the transform's ``coord`` matrix.
    grid_shape : (ni, nj, nk)
        Functional grid (the reference volume's NIfTI shape).
    max_dist : float
        Voxels farther than this (mm) get ``inf`` and nearest ``-1`` (faster queries).

    Returns
    -------
    dist : float64 (nk, nj, ni), mm
    nearest : int64 (nk, nj, ni), index into ``fiducial`` (-1 beyond ``max_dist``)
    """
    from scipy.spatial import cKDTree

    ni, nj, nk = (int(n) for n in grid_shape)
    ijk = np.stack(np.meshgrid(np.arange(ni), np.arange(nj), np.arange(nk), indexing="ij"),
                   axis=-1).reshape(-1, 3).astype(float)
    inverse = np.linalg.inv(np.asarray(coord, dtype=float))
    mm = ijk @ inverse[:3, :3].T + inverse[:3, 3]
    dist, nearest = cKDTree(np.asarray(fiducial, dtype=float)).query(
        mm, distance_upper_bound=max_dist)
    nearest = np.where(np.isfinite(dist), nearest, -1).astype(np.int64)
    # rows are in (i, j, k) C order: reshape to (ni, nj, nk), then transpose to pycortex's layout
    return dist.reshape(ni, nj, nk).T, nearest.reshape(ni, nj, nk).T


def cortical_mask(kind: str, wm: np.ndarray, pia: np.ndarray | None, coord: np.ndarray,
                  grid_shape: tuple[int, int, int]) -> np.ndarray:
    """Boolean mask ``(nk, nj, ni)`` (pycortex's transposed layout) of type ``kind``.

    Parameters
    ----------
    kind : {"thick", "thin", "cortical"}
    wm, pia : float (n_vertices, 3)
        White-matter and pial vertices (both hemispheres stacked, same order), mm. Without
        ``pia``, ``wm`` is taken as the fiducial surface (``cortical`` then needs ``pia``).
    coord, grid_shape
        As in :func:`voxel_distances`.
    """
    if kind not in MASK_TYPES:
        raise ValueError(f"unknown mask type {kind!r}; expected one of {MASK_TYPES}")
    fiducial = wm if pia is None else (np.asarray(wm) + np.asarray(pia)) / 2.0
    if kind in MASK_DISTANCES_MM:
        dist, _ = voxel_distances(fiducial, coord, grid_shape, MASK_DISTANCES_MM[kind] + 1.0)
        return dist < MASK_DISTANCES_MM[kind]
    if pia is None:
        raise ValueError("the 'cortical' mask needs both white-matter and pial surfaces")
    thickness = np.linalg.norm(np.asarray(pia) - np.asarray(wm), axis=1)
    dist, nearest = voxel_distances(fiducial, coord, grid_shape, float(thickness.max()) + 1.0)
    found = nearest >= 0
    out = np.zeros(dist.shape, dtype=bool)
    out[found] = dist[found] <= thickness[nearest[found]]
    return out


def mask_to_img(mask: np.ndarray, reference: nib.Nifti1Image) -> nib.Nifti1Image:
    """uint8 NIfTI of a transposed-layout mask ``(nk, nj, ni)`` in the reference grid."""
    header = nib.Nifti1Header()
    header.set_data_dtype(np.uint8)
    img = nib.Nifti1Image(np.ascontiguousarray(mask.T).astype(np.uint8), reference.affine, header)
    img.header.set_xyzt_units("mm")
    return img


def folder_is_writable(folder: str | Path) -> bool:
    """False for a folder whose permission bits grant no write, or where writing is refused.

    Permission bits are checked as well as ``os.access``, so that a filestore made read-only
    with ``chmod a-w`` is left alone even by root.
    """
    folder = Path(folder)
    try:
        mode = folder.stat().st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)) and os.access(folder, os.W_OK)


def find_or_build_mask(xfm_dir: Path, kind: str, reference: nib.Nifti1Image | None,
                       surface_files: list[Path],
                       load_surfaces: Callable[[], tuple[np.ndarray, np.ndarray | None]],
                       coord: np.ndarray) -> tuple[Path, str]:
    """Path of ``mask_{kind}.nii.gz`` for a transform, building and saving it when missing.

    Parameters
    ----------
    xfm_dir : Path
        ``{db}/{subject}/transforms/{xfm}``.
    kind : str
        Mask type (:data:`MASK_TYPES`).
    reference : Nifti1Image or None
        The transform's functional reference (its grid and affine); needed to build.
    surface_files : list of Path
        Files the mask is built from (their content keys the cached copy).
    load_surfaces : callable
        Returns ``(wm, pia)`` stacked over hemispheres (``pia`` may be None).
    coord : (4, 4)
        The transform's ``coord`` matrix.

    Returns
    -------
    path : Path
    source : {"filestore", "built", "cache"}
        Found in the filestore, built now, or found in (or built into) the gim-brain cache.

    Raises
    ------
    FileNotFoundError
        The mask is missing and there is no reference volume to build it in.
    ValueError
        Unknown mask type.
    """
    if kind not in MASK_TYPES:
        raise ValueError(f"unknown mask type {kind!r}; expected one of {MASK_TYPES}")
    beside = xfm_dir / f"mask_{kind}.nii.gz"
    if beside.is_file():
        return beside, "filestore"
    if reference is None:
        raise FileNotFoundError(
            f"mask {beside} is missing and cannot be built: the transform has no "
            f"reference.nii.gz giving its functional grid")
    key = content_key("pycortex-mask", kind, np.asarray(coord, float),
                      [int(n) for n in reference.shape[:3]], np.asarray(reference.affine, float),
                      [file_digest(p) for p in surface_files])
    cached = cache_dir("pycortex-masks") / key / f"mask_{kind}.nii.gz"
    if not folder_is_writable(xfm_dir) and cached.is_file():
        return cached, "cache"
    wm, pia = load_surfaces()
    mask = cortical_mask(kind, wm, pia, coord, tuple(reference.shape[:3]))
    data = mask_to_img(mask, reference).to_bytes()
    import gzip

    payload = gzip.compress(data, compresslevel=6)
    if folder_is_writable(xfm_dir):
        try:
            return atomic_write_bytes(beside, payload), "built"
        except OSError:
            pass  # refused after all: fall back to the cache
    return atomic_write_bytes(cached, payload), "cache"
