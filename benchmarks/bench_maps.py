"""All brain maps of a 95,556-voxel result (UTS03's voxel count) on CPU: target < 30 s.

Two settings, each timed end to end with ``render_maps`` (every kind: volume + glass +
ROI table, fsaverage5 surface, flat, interactive HTML), after a warm-up that loads
nilearn's bundled meshes and templates once:

* ``mni``: 95,556 MNI152 voxels (the most grey-matter-like voxels of nilearn's bundled
  2 mm grid) -> vol_to_surf on fsaverage5.
* ``native``: the same voxels as a pycortex-db subject whose surfaces are fsaverage5's
  white/pial/inflated/flat meshes (GIfTI) — the native reader and vertex sampler at full
  voxel count (real ds003020 meshes have ~10x more vertices).

Usage: python benchmarks/bench_maps.py [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("MPLBACKEND", "Agg")

N_VOXELS = 95_556


def mni_mask(n_voxels: int = N_VOXELS):
    import nibabel as nib
    from nilearn import datasets

    gm = nib.load(datasets.GM_MNI152_FILE_PATH)
    sliced = gm.slicer[::2, ::2, ::2]
    prob = np.asarray(sliced.dataobj, dtype=float)
    order = np.argsort(prob, axis=None)[::-1][:n_voxels]
    data = np.zeros(prob.size, np.uint8)
    data[order] = 1
    return nib.Nifti1Image(data.reshape(prob.shape), sliced.affine)


def fake_db_from_fsaverage(root: Path, mask_img, subject: str = "BENCH") -> None:
    import nibabel as nib

    from gim_brain.maps.surface import fsaverage_meshes

    xfm = root / subject / "transforms" / f"{subject}_auto"
    xfm.mkdir(parents=True)
    (root / subject / "surfaces").mkdir()
    nib.save(mask_img, str(xfm / "mask_thick.nii.gz"))
    coord = np.linalg.inv(mask_img.affine)
    (xfm / "matrices.xfm").write_text(json.dumps({"coord": coord.tolist(),
                                                  "magnet": np.eye(4).tolist()}))
    meshes = fsaverage_meshes("fsaverage5")
    for name, key in (("wm", "white_matter"), ("pia", "pial"), ("inflated", "inflated"),
                      ("flat", "flat")):
        for hemi, ph in (("left", "lh"), ("right", "rh")):
            part = meshes[key].parts[hemi]
            gii = nib.gifti.GiftiImage(darrays=[
                nib.gifti.GiftiDataArray(np.asarray(part.coordinates, np.float32),
                                         intent="NIFTI_INTENT_POINTSET"),
                nib.gifti.GiftiDataArray(np.asarray(part.faces, np.int32),
                                         intent="NIFTI_INTENT_TRIANGLE")])
            nib.save(gii, str(root / subject / "surfaces" / f"{name}_{ph}.gii"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="keep the maps in this folder (default: temporary)")
    args = parser.parse_args()

    from gim_brain.maps.compare import voxel_coordinates_mm
    from gim_brain.maps.render import MapTargets, render_maps
    from gim_brain.maps.values import SelectedValues

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench_maps_"))
    mask = mni_mask()
    mask_path = out / "mask.nii.gz"
    out.mkdir(parents=True, exist_ok=True)
    import nibabel as nib

    nib.save(mask, str(mask_path))

    def planted_r(order: str) -> np.ndarray:
        """Two blobs (left temporal, right frontal) plus noise, in the given voxel order."""
        xyz = voxel_coordinates_mm(mask, order)
        noise = np.random.default_rng(0).standard_normal(len(xyz))
        return (0.5 * np.exp(-((xyz - [-56, -24, 4]) ** 2).sum(1) / (2 * 10.0 ** 2))
                + 0.35 * np.exp(-((xyz - [52, 18, 10]) ** 2).sum(1) / (2 * 12.0 ** 2))
                + 0.03 * noise)

    values = {"mni": planted_r("nifti"), "native": planted_r("pycortex")}  # pycortex-db order
    assert values["mni"].size == N_VOXELS

    db = out / "pycortex-db"
    fake_db_from_fsaverage(db, mask)
    settings = {
        "mni": MapTargets("volume", "MNI-bench", mask=mask_path, space="MNI152"),
        "native": MapTargets("pycortex_db", "BENCH", db=db),
    }
    # warm-up: nilearn imports, bundled meshes/templates, matplotlib fonts
    warm = SelectedValues(values["mni"], "r", "r — bench", "r_bench")
    render_maps(warm, settings["mni"], out / "warmup", ("volume", "surface"), dpi=40)

    times = {}
    for name, targets in settings.items():
        selected = SelectedValues(values[name], "r", "r — bench", "r_bench")
        t0 = time.perf_counter()
        written = render_maps(selected, targets, out / name, dpi=100)
        times[name] = time.perf_counter() - t0
        n_files = sum(len(v) for v in written.values())
        print(f"{name:7s} {N_VOXELS} voxels, {n_files} files, all kinds: {times[name]:.1f} s "
              f"(target < 30 s) -> {out / name}")
    print(f"RESULT n_voxels={N_VOXELS} mni_all_maps_s={times['mni']:.1f} "
          f"native_all_maps_s={times['native']:.1f} target_s=30")


if __name__ == "__main__":
    main()
