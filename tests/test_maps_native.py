"""Native ds003020-style maps from a fake pycortex filestore (same formats, no pycortex)."""

from __future__ import annotations

import json
import shutil

import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np
import pytest

from gim_brain.maps.native import (curvature_shading, load_pycortex_subject, native_volume_img,
                                   plot_native_flat, plot_native_surface, read_surface,
                                   voxels_to_vertices)
from gim_brain.maps.volume import MaskShapeError

from _maps_helpers import (FUNC_AFFINE, SURF_TO_WORLD, decode, make_fake_pycortex_db,
                           voxel_codes)


@pytest.fixture()
def fake_db(tmp_path):
    return make_fake_pycortex_db(tmp_path / "pycortex-db")


def test_reads_the_filestore_formats(fake_db):
    subject = load_pycortex_subject(fake_db.root, fake_db.subject)
    assert subject.xfm_name == "UTS99_auto"
    assert set(subject.surfaces) == {"wm", "pia", "inflated", "flat"}
    assert subject.n_voxels == int(fake_db.mask.sum())
    assert subject.mask.shape == fake_db.mask.T.shape  # pycortex's transposed layout
    coords, faces = read_surface(subject.surfaces["wm"]["left"])
    assert np.allclose(coords, fake_db.wm["left"], atol=1e-4)
    assert np.array_equal(faces, fake_db.faces)
    # fiducial = mean of wm and pia, as in pycortex
    fid, _ = subject.surface("fiducial", "right")
    assert np.allclose(fid, (fake_db.wm["right"] + fake_db.pia["right"]) / 2, atol=1e-4)


def test_each_vertex_takes_the_value_of_the_voxel_it_lies_in(fake_db):
    """Voxel values encode their (i, j, k); decoded at each vertex they must name the voxel
    that contains the vertex (world = magnet @ surface, voxel = inv(affine) @ world)."""
    subject = load_pycortex_subject(fake_db.root, fake_db.subject)
    codes, _ = voxel_codes(fake_db.mask)
    vertex = voxels_to_vertices(codes, subject)
    n_checked = 0
    for hemi in ("left", "right"):
        world = nib.affines.apply_affine(SURF_TO_WORLD, fake_db.wm[hemi])
        ijk = np.rint(nib.affines.apply_affine(np.linalg.inv(FUNC_AFFINE), world)).astype(int)
        for v, (i, j, k) in enumerate(ijk):
            inside = all(0 <= a < n for a, n in zip((i, j, k), fake_db.mask.shape))
            if inside and fake_db.mask[i, j, k]:
                assert decode(vertex[hemi][v]) == (i, j, k)
                n_checked += 1
            else:
                assert np.isnan(vertex[hemi][v])
    assert n_checked > 60


def test_segment_sampling_averages_the_voxels_between_wm_and_pia(tmp_path):
    db = make_fake_pycortex_db(tmp_path / "db", pia_offset=6.0)  # pia two voxels above wm
    subject = load_pycortex_subject(db.root, db.subject)
    codes, ijk = voxel_codes(db.mask)
    values = ijk[:, 2].astype(float)  # the k index of each voxel
    vertex = voxels_to_vertices(values, subject, n_samples=8)
    world_wm = nib.affines.apply_affine(SURF_TO_WORLD, db.wm["left"])
    k_wm = nib.affines.apply_affine(np.linalg.inv(FUNC_AFFINE), world_wm)[:, 2]
    ok = np.isfinite(vertex["left"])
    # the mean k along the segment lies between the wm voxel and two voxels above it
    assert np.all(vertex["left"][ok] >= np.floor(k_wm[ok] + 0.5) - 1e-9)
    assert np.all(vertex["left"][ok] <= np.floor(k_wm[ok] + 0.5) + 2 + 1e-9)
    assert np.mean(vertex["left"][ok] > np.floor(k_wm[ok] + 0.5)) > 0.5


def test_native_volume_uses_pycortex_voxel_order(fake_db):
    subject = load_pycortex_subject(fake_db.root, fake_db.subject)
    codes, ijk = voxel_codes(fake_db.mask)
    img = native_volume_img(codes, subject)
    data = img.get_fdata()
    for n in (0, 17, len(codes) - 1):
        assert data[tuple(ijk[n])] == codes[n]
    assert np.allclose(img.affine, FUNC_AFFINE)


def test_missing_transform_names_the_folder(fake_db):
    shutil.rmtree(fake_db.root / fake_db.subject / "transforms" / f"{fake_db.subject}_auto")
    with pytest.raises(FileNotFoundError, match=r"transform 'UTS99_auto' of subject UTS99 not "
                                                r"found: .*UTS99_auto is missing"):
        load_pycortex_subject(fake_db.root, fake_db.subject)


def test_missing_subject_and_bad_matrices_are_named(fake_db):
    with pytest.raises(FileNotFoundError, match="UTS42"):
        load_pycortex_subject(fake_db.root, "UTS42")
    xfm = fake_db.root / fake_db.subject / "transforms" / "UTS99_auto" / "matrices.xfm"
    xfm.write_text(json.dumps({"magnet": np.eye(4).tolist()}))
    with pytest.raises(ValueError, match="matrices.xfm is not a pycortex transform"):
        load_pycortex_subject(fake_db.root, fake_db.subject)


def test_wrong_number_of_values_names_the_subject(fake_db):
    subject = load_pycortex_subject(fake_db.root, fake_db.subject)
    with pytest.raises(MaskShapeError, match=rf"5 values do not match the {subject.n_voxels} "
                                             r"voxels of subject UTS99"):
        voxels_to_vertices(np.zeros(5), subject)


def test_curvature_shading_tracks_fsaverage_sulcal_depth():
    """Our shading from the mesh alone correlates with FreeSurfer's sulcal depth."""
    from gim_brain.maps.surface import fsaverage_meshes, fsaverage_sulcal

    meshes = fsaverage_meshes("fsaverage5")
    sulc = np.asarray(fsaverage_sulcal("fsaverage5", "pial").data.parts["left"]).ravel()
    white = meshes["white_matter"].parts["left"]
    shade = curvature_shading(np.asarray(white.coordinates, float), np.asarray(white.faces))
    assert np.corrcoef(shade, sulc)[0, 1] > 0.7


def test_native_figures_draw_the_subject_meshes(fake_db):
    subject = load_pycortex_subject(fake_db.root, fake_db.subject)
    codes, _ = voxel_codes(fake_db.mask)
    fig = plot_native_surface(codes, subject, "r", "r — UTS99")
    assert sum(ax.name == "3d" for ax in fig.axes) == 4
    flat = plot_native_flat(codes, subject, "r", "r — UTS99", height=64)
    texts = [t.get_text() for t in flat.axes[0].texts]
    assert "left hemisphere" in texts and "right hemisphere" in texts
    (image,) = flat.axes[0].images  # one pixel-interpolated image, both hemispheres
    rgba = image.get_array()
    assert rgba.shape[0] == 64 and rgba.shape[2] == 4
    assert rgba[..., 3].mean() > 0.95  # the two nudged sheets tile the frame: all opaque
    # flat mesh is drawn in its own plane: z (the flat axis) constant
    mesh = subject.polymesh("flat")
    assert np.ptp(np.asarray(mesh.parts["left"].coordinates)[:, 2]) == 0
    plt.close("all")
