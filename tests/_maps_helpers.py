"""Builders for the maps tests: a small fake pycortex filestore and low-resolution MNI masks.

The fake filestore uses the same file formats as a real one (ds003020's
``derivative/pycortex-db``): ``transforms/{xfm}/matrices.xfm`` JSON with "coord" and
"magnet" 4x4 matrices, ``mask_thick.nii.gz`` and ``reference.nii.gz`` in the functional
grid, and ``surfaces/{name}_{lh,rh}.gii`` GIfTI files with a POINTSET and a TRIANGLE array.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

FUNC_SHAPE = (10, 12, 8)  # (ni, nj, nk): deliberately all different, so a transpose shows
FUNC_AFFINE = np.array([[2.5, 0.0, 0.0, -12.5],
                        [0.0, 2.5, 0.0, -15.0],
                        [0.0, 0.0, 3.0, -12.0],
                        [0.0, 0.0, 0.0, 1.0]])
# surface space (FreeSurfer surface RAS) -> scanner mm: a rotation about z and a shift
_ANGLE = np.deg2rad(10.0)
SURF_TO_WORLD = np.array([[np.cos(_ANGLE), -np.sin(_ANGLE), 0.0, 1.5],
                          [np.sin(_ANGLE), np.cos(_ANGLE), 0.0, -2.0],
                          [0.0, 0.0, 1.0, 0.7],
                          [0.0, 0.0, 0.0, 1.0]])


def grid_mesh(nu: int, nv: int) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) parameters (nu*nv, 2) and triangles (2*(nu-1)*(nv-1), 3) of a grid."""
    u, v = np.meshgrid(np.arange(nu, dtype=float), np.arange(nv, dtype=float), indexing="ij")
    params = np.column_stack([u.ravel(), v.ravel()])
    idx = np.arange(nu * nv).reshape(nu, nv)
    a, b = idx[:-1, :-1].ravel(), idx[1:, :-1].ravel()
    c, d = idx[:-1, 1:].ravel(), idx[1:, 1:].ravel()
    faces = np.vstack([np.column_stack([a, b, d]), np.column_stack([a, d, c])])
    return params, faces.astype(np.int32)


def write_gifti(path: Path, coords: np.ndarray, faces: np.ndarray) -> None:
    gii = nib.gifti.GiftiImage(darrays=[
        nib.gifti.GiftiDataArray(coords.astype(np.float32), intent="NIFTI_INTENT_POINTSET"),
        nib.gifti.GiftiDataArray(faces.astype(np.int32), intent="NIFTI_INTENT_TRIANGLE"),
    ])
    nib.save(gii, str(path))


@dataclass
class FakeDB:
    root: Path
    subject: str
    mask: np.ndarray  # NIfTI layout (ni, nj, nk), bool
    wm: dict  # hemi -> (n, 3) surface-space mm
    pia: dict
    faces: np.ndarray


def make_fake_pycortex_db(root: Path, subject: str = "UTS99", seed: int = 0,
                          pia_offset: float = 0.0) -> FakeDB:
    """Write a small pycortex filestore for one subject under ``root``.

    Each hemisphere is a 7x9 grid sheet inside the functional volume. ``pia`` is ``wm``
    shifted by ``pia_offset`` mm along z (0: both at the same place).
    """
    rng = np.random.default_rng(seed)
    mask = rng.random(FUNC_SHAPE) > 0.25
    folder = root / subject
    xfm_dir = folder / "transforms" / f"{subject}_auto"
    xfm_dir.mkdir(parents=True)
    (folder / "surfaces").mkdir()
    nib.save(nib.Nifti1Image(mask.astype(np.uint8), FUNC_AFFINE), str(xfm_dir / "mask_thick.nii.gz"))
    nib.save(nib.Nifti1Image(rng.random(FUNC_SHAPE).astype(np.float32), FUNC_AFFINE),
             str(xfm_dir / "reference.nii.gz"))
    magnet = SURF_TO_WORLD
    coord = np.linalg.inv(FUNC_AFFINE) @ magnet
    (xfm_dir / "matrices.xfm").write_text(json.dumps(
        {"coord": coord.tolist(), "magnet": magnet.tolist()}, indent=4, sort_keys=True))
    params, faces = grid_mesh(7, 9)
    wm, pia = {}, {}
    for hemi, x0 in (("lh", -9.0), ("rh", 1.0)):
        # a slanted sheet: x, y from the grid (1.3 mm spacing), z varying with both
        pts = np.column_stack([x0 + 1.3 * params[:, 0], -10 + 2.1 * params[:, 1],
                               -6 + 0.9 * params[:, 0] + 0.6 * params[:, 1]])
        pts += rng.normal(scale=0.2, size=pts.shape)
        wm[hemi] = pts
        pia[hemi] = pts + np.array([0.0, 0.0, pia_offset])
        write_gifti(folder / "surfaces" / f"wm_{hemi}.gii", wm[hemi], faces)
        write_gifti(folder / "surfaces" / f"pia_{hemi}.gii", pia[hemi], faces)
        centre = pts.mean(0)
        write_gifti(folder / "surfaces" / f"inflated_{hemi}.gii", centre + 1.5 * (pts - centre), faces)
        # pycortex flat meshes: (x, y, 0)
        flat = np.column_stack([params[:, 0] * 3.0 + (0 if hemi == "lh" else 40), params[:, 1] * 3.0,
                                np.zeros(len(params))])
        write_gifti(folder / "surfaces" / f"flat_{hemi}.gii", flat, faces)
    return FakeDB(root, subject, mask, {"left": wm["lh"], "right": wm["rh"]},
                  {"left": pia["lh"], "right": pia["rh"]}, faces)


def voxel_codes(mask_nifti_layout: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values that encode each voxel's (i, j, k), in pycortex order, and the (i, j, k) list.

    pycortex order = ``np.argwhere(mask.T)`` rows are (k, j, i), C order.
    """
    kji = np.argwhere(mask_nifti_layout.T)
    ijk = kji[:, ::-1]
    codes = ijk[:, 0] * 10000 + ijk[:, 1] * 100 + ijk[:, 2]
    return codes.astype(float), ijk


def decode(code: float) -> tuple[int, int, int]:
    code = int(round(code))
    return code // 10000, (code // 100) % 100, code % 100


def low_res_mni_mask(step: int = 6) -> nib.Nifti1Image:
    """nilearn's bundled 1 mm MNI152 grey-matter probability map thresholded at 0.2,
    keeping every ``step``-th voxel along each axis."""
    from nilearn import datasets

    gm = nib.load(datasets.GM_MNI152_FILE_PATH)
    sliced = gm.slicer[::step, ::step, ::step]
    data = np.asarray(sliced.dataobj, dtype=float)
    return nib.Nifti1Image((data >= 0.2 * data.max()).astype(np.uint8), sliced.affine)


def blob_values(mask: nib.Nifti1Image, centre_mm, sigma_mm: float = 8.0, order: str = "nifti",
                amplitude: float = 0.5) -> np.ndarray:
    """A Gaussian blob of ``amplitude`` at ``centre_mm`` sampled at the mask voxels."""
    from gim_brain.maps.compare import voxel_coordinates_mm

    xyz = voxel_coordinates_mm(mask, order)
    d2 = ((xyz - np.asarray(centre_mm, float)) ** 2).sum(1)
    return amplitude * np.exp(-d2 / (2 * sigma_mm ** 2))
