"""The demo's brain: nilearn's bundled MNI152 brain mask at low resolution, and planted regions.

Nothing is downloaded: nilearn ships the MNI152 (2009a, symmetric) template and masks inside the
package. At 8 mm the mask has 3,666 voxels, small enough for a fit in seconds on a laptop.

The planted regions are spheres around MNI coordinates in the spirit of the language network
(auditory cortex for word rate, temporo-parietal and anterior temporal cortex for LM features,
inferior frontal gyrus and precuneus for GIM statistics). They are illustrative ground truth for
the simulation, not a claim about where these signals live in real brains.
"""

from __future__ import annotations

from dataclasses import dataclass

import nibabel as nib
import numpy as np

__all__ = ["PlantedRegion", "DEFAULT_REGIONS", "demo_mask", "voxel_coordinates", "plant_regions"]


@dataclass(frozen=True)
class PlantedRegion:
    """A group of voxels driven by one feature space.

    Attributes
    ----------
    space : str
        Name of the feature space that drives these voxels (e.g. ``"wordrate"``).
    centers_mm : tuple of (x, y, z)
        Sphere centres in MNI millimetres.
    radius_mm : float
        Sphere radius in millimetres.
    label : str
        Human-readable description.
    """

    space: str
    centers_mm: tuple[tuple[float, float, float], ...]
    radius_mm: float
    label: str


DEFAULT_REGIONS: tuple[PlantedRegion, ...] = (
    PlantedRegion("wordrate", ((-52.0, -20.0, 6.0), (54.0, -18.0, 6.0)), 13.0,
                  "bilateral auditory cortex (Heschl's gyrus / STG)"),
    PlantedRegion("llm", ((-48.0, -62.0, 26.0), (-56.0, -6.0, -16.0)), 13.0,
                  "left angular gyrus and left anterior temporal lobe"),
    PlantedRegion("gim-stats", ((-46.0, 24.0, 8.0), (2.0, -60.0, 38.0)), 13.0,
                  "left inferior frontal gyrus and precuneus"),
)


def demo_mask(resolution_mm: int = 8) -> nib.Nifti1Image:
    """nilearn's bundled MNI152 brain mask resampled to ``resolution_mm`` isotropic voxels.

    Returns
    -------
    Nifti1Image
        uint8 volume, 1 inside the brain (3,666 voxels at 8 mm, 1,876 at 10 mm).
    """
    from nilearn.datasets import load_mni152_brain_mask

    if int(resolution_mm) != resolution_mm or resolution_mm < 2:
        raise ValueError(f"demo_mask: resolution_mm must be a whole number of mm >= 2 (the "
                         f"template's own resolution), got {resolution_mm}")
    img = load_mni152_brain_mask(resolution=int(resolution_mm))
    data = (np.asarray(img.dataobj) > 0).astype(np.uint8)
    return nib.Nifti1Image(data, img.affine)


def voxel_coordinates(mask_img: nib.Nifti1Image) -> np.ndarray:
    """MNI coordinates (mm) of the mask's voxels, in the order ``mask > 0`` (C order).

    Returns
    -------
    float64 (n_voxels, 3)
    """
    ijk = np.argwhere(np.asarray(mask_img.dataobj) > 0)
    return nib.affines.apply_affine(mask_img.affine, ijk)


def plant_regions(mask_img: nib.Nifti1Image,
                  regions: tuple[PlantedRegion, ...] = DEFAULT_REGIONS) -> np.ndarray:
    """Index of the planted region of every voxel (-1: not planted).

    A voxel belongs to a region when its centre lies within ``radius_mm`` of one of the region's
    centres; where spheres overlap, the nearer centre wins.

    Returns
    -------
    int64 (n_voxels,)
        Index into ``regions`` or -1.

    Raises
    ------
    ValueError
        If a region gets no voxel at this resolution (its sphere misses the mask).
    """
    coords = voxel_coordinates(mask_img)
    labels = np.full(len(coords), -1, dtype=np.int64)
    best = np.full(len(coords), np.inf)
    for k, region in enumerate(regions):
        for center in region.centers_mm:
            dist = np.linalg.norm(coords - np.asarray(center), axis=1)
            take = (dist <= region.radius_mm) & (dist < best)
            labels[take] = k
            best[take] = dist[take]
    for k, region in enumerate(regions):
        if not np.any(labels == k):
            raise ValueError(f"planted region {region.space!r} ({region.label}) has no voxel in the "
                             f"mask at this resolution; enlarge radius_mm or use a finer mask")
    return labels
