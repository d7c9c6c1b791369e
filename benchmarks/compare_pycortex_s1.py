"""Our masks and flatmap pixels against pycortex's own, on pycortex's subject S1 (``fullhead``).

pycortex is never a dependency: give the Python of a scratch environment that has it
(``python -m venv /tmp/pcx && /tmp/pcx/bin/pip install pycortex``). The S1 filestore is copied
to a temporary folder for pycortex (it writes masks and caches into its filestore).

Compares
* ``thick`` / ``thin`` masks: voxels that differ (pycortex ``db.get_mask`` vs
  :func:`gim_brain.maps.native.load_pycortex_subject`);
* the vertex -> voxel mapping with one sample per vertex (mid-depth) against pycortex's
  ``nearest`` mapper: share of vertices mapped to the same voxel;
* the 1024-pixel-high flatmap of a synthetic per-voxel field (Gaussian blobs plus noise,
  1% NaN voxels): pycortex ``quickflat.utils.make_flatmap_image`` vs our
  :class:`~gim_brain.maps.flat.FlatRaster` image — image size, pixels covered by one but not
  the other, correlation and mean absolute difference of the pixels both cover.

Usage: python benchmarks/compare_pycortex_s1.py --pycortex-python /tmp/pcx/bin/python
       [--db ../shared/data/pycortex_S1] [--out DIR] [--store DIR]
Last line: ``RESULT thick_diff=... thin_diff=... pixel_corr=... ...``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

os.environ.setdefault("MPLBACKEND", "Agg")

PYCORTEX_SCRIPT = r"""
import sys, numpy as np, nibabel as nib
from cortex.database import db
import cortex
db.filestore = sys.argv[1]
db.reload_subjects()
out = sys.argv[2]
for kind in ("thick", "thin"):
    db.get_mask("S1", "fullhead", kind)
mask = nib.load(out + "/our_thick.nii.gz").get_fdata().T != 0
vol = np.full(mask.shape, np.nan)
vol[mask] = np.load(out + "/field.npy")
img, _ = cortex.quickflat.utils.make_flatmap_image(cortex.Volume(vol, "S1", "fullhead"), height=1024)
np.save(out + "/pycortex_flat.npy", img)
mapper = cortex.get_mapper("S1", "fullhead", "nearest")
for hemi, mat in zip(("left", "right"), mapper.masks):
    mat = mat.tocsr()
    cols = np.full(mat.shape[0], -1)
    rows, found = mat.nonzero()
    cols[rows] = found
    np.save(out + f"/pycortex_nearest_{hemi}.npy", cols)
"""


def synthetic_field(subject) -> np.ndarray:
    """Blobs (sigma 12 mm) at three places of the functional grid, noise, 1% NaN voxels."""
    kji = np.argwhere(subject.mask)
    mm = nib.affines.apply_affine(np.linalg.inv(subject.coord), kji[:, ::-1])
    centres = mm[np.random.default_rng(0).choice(len(mm), 3, replace=False)]
    r = -0.05 + sum(a * np.exp(-((mm - c) ** 2).sum(1) / (2 * 12.0 ** 2))
                    for a, c in zip((0.5, 0.4, 0.3), centres))
    r += np.random.default_rng(1).normal(scale=0.03, size=r.size)
    r[np.random.default_rng(2).random(r.size) < 0.01] = np.nan
    return r


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pycortex-python", required=True,
                        help="python of a scratch environment with pycortex installed")
    parser.add_argument("--db", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"
                                            / "pycortex_S1"))
    parser.add_argument("--out", help="folder for the arrays (default: a temporary folder)")
    parser.add_argument("--store", help="a writable copy of the S1 filestore for pycortex, kept "
                                        "(reuses its caches); default: a temporary copy")
    args = parser.parse_args()

    from gim_brain.maps.native import load_pycortex_subject, native_flat_raster, \
        vertex_voxel_matrix, voxels_to_vertices

    out = Path(args.out or tempfile.mkdtemp(prefix="pcx-compare-"))
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    ours = {k: load_pycortex_subject(args.db, "S1", "fullhead", k) for k in ("thick", "thin")}
    thick = ours["thick"]
    nib.save(nib.Nifti1Image(thick.mask.T.astype(np.uint8), thick.reference_img.affine),
             str(out / "our_thick.nii.gz"))
    field = synthetic_field(thick)
    np.save(out / "field.npy", field)
    _, raster = native_flat_raster(thick, 1024)
    vertex = voxels_to_vertices(field, thick)
    our_img = raster.image(np.concatenate([vertex["left"], vertex["right"]]))
    t_ours = time.perf_counter() - t0

    store = Path(args.store) if args.store else Path(tempfile.mkdtemp(prefix="pcx-db-"))
    if not (store / "S1").is_dir():
        shutil.copytree(Path(args.db) / "S1", store / "S1")
        for path in store.rglob("*"):
            path.chmod(path.stat().st_mode | 0o200)
    t1 = time.perf_counter()
    subprocess.run([args.pycortex_python, "-c", PYCORTEX_SCRIPT, str(store), str(out)], check=True,
                   env={**os.environ, "MPLBACKEND": "Agg"})
    t_pcx = time.perf_counter() - t1

    diffs = {}
    for kind, subject in ours.items():
        theirs = nib.load(str(store / "S1" / "transforms" / "fullhead" / f"mask_{kind}.nii.gz"))
        diffs[kind] = int(((theirs.get_fdata().T != 0) != subject.mask).sum())
        print(f"{kind:6s} mask: pycortex {int((theirs.get_fdata() != 0).sum())} voxels, "
              f"ours {subject.n_voxels}, differing {diffs[kind]}")
    same = {}
    in_mask = np.flatnonzero(thick.mask)
    for hemi in ("left", "right"):
        theirs = np.load(out / f"pycortex_nearest_{hemi}.npy")
        matrix = vertex_voxel_matrix(thick, hemi, n_samples=1).tocsr()
        mine = np.full(matrix.shape[0], -1)
        rows, cols = matrix.nonzero()
        mine[rows] = in_mask[cols]
        mapped = theirs >= 0
        same[hemi] = float((mine[mapped] == theirs[mapped]).mean())
        print(f"vertex mapping {hemi}: {mapped.sum()} vertices mapped by pycortex, same voxel for "
              f"{same[hemi]:.2%}; {int(((mine >= 0) & ~mapped).sum())} more mapped by us "
              f"(medial wall, which pycortex leaves out)")
    their_img = np.load(out / "pycortex_flat.npy")
    fp, fo = np.isfinite(their_img), np.isfinite(our_img)
    both = fp & fo
    corr = float(np.corrcoef(their_img[both], our_img[both])[0, 1])
    mad = float(np.abs(their_img[both] - our_img[both]).mean())
    print(f"flatmap: pycortex {their_img.shape}, ours {our_img.shape}; pixels drawn by pycortex "
          f"only {fp[~fo].sum() if fp.shape == fo.shape else 'n/a'}, by us only {(fo & ~fp).sum()}, "
          f"both {both.sum()}; corr {corr:.4f}, mean |diff| {mad:.4f} "
          f"(field spread {np.nanstd(field):.3f})")
    print(f"time: ours {t_ours:.1f} s, pycortex {t_pcx:.1f} s (masks, mapper and flat cache; "
          f"{'reused from --store' if args.store else 'built on first use'})")
    print(f"RESULT thick_diff={diffs['thick']} thin_diff={diffs['thin']} "
          f"same_voxel_lh={same['left']:.4f} same_voxel_rh={same['right']:.4f} pixel_corr={corr:.4f} "
          f"pixel_mad={mad:.4f} only_pycortex={int((fp & ~fo).sum())} only_ours={int((fo & ~fp).sum())} "
          f"ours_s={t_ours:.1f} pycortex_s={t_pcx:.1f}")
    if not args.store:
        shutil.rmtree(store, ignore_errors=True)


if __name__ == "__main__":
    main()
