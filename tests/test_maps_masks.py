"""Cortical masks built from the surfaces (pycortex's thick/thin/cortical definitions), their
voxel order and caching, on a fake filestore and on pycortex's real subject S1."""

from __future__ import annotations

import json
import os
import stat

import nibabel as nib
import numpy as np
import pytest

from gim_brain.maps.masks import cortical_mask, folder_is_writable
from gim_brain.maps.native import load_pycortex_subject, voxels_to_vertices

from _maps_helpers import FUNC_AFFINE, FUNC_SHAPE, make_fake_pycortex_db


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("GIM_BRAIN_CACHE", str(folder))
    return folder


def _brute_force_distances(wm, pia, coord, shape):
    """Distance (mm) of every voxel centre (i, j, k) to the nearest fiducial vertex, by brute force."""
    fid = (wm + pia) / 2
    ijk = np.argwhere(np.ones(shape, bool))  # (i, j, k) rows, C order over (i, j, k)
    mm = nib.affines.apply_affine(np.linalg.inv(coord), ijk)
    d = np.sqrt(((mm[:, None, :] - fid[None]) ** 2).sum(-1))
    return d.min(1).reshape(shape), d.argmin(1).reshape(shape)


def _unmasked_db(tmp_path, **kw):
    db = make_fake_pycortex_db(tmp_path / "db", pia_offset=2.5, **kw)
    (db.root / db.subject / "transforms" / f"{db.subject}_auto" / "mask_thick.nii.gz").unlink()
    return db


def test_masks_follow_pycortex_definitions_and_order(tmp_path, cache):
    db = _unmasked_db(tmp_path)
    xfm_dir = db.root / db.subject / "transforms" / f"{db.subject}_auto"
    coord = np.asarray(json.loads((xfm_dir / "matrices.xfm").read_text())["coord"])
    wm = np.vstack([db.wm["left"], db.wm["right"]])
    pia = np.vstack([db.pia["left"], db.pia["right"]])
    dist, nearest = _brute_force_distances(wm, pia, coord, FUNC_SHAPE)
    thickness = np.linalg.norm(pia - wm, axis=1)
    expected = {"thick": dist < 8, "thin": dist < 2, "cortical": dist <= thickness[nearest]}
    for kind, want in expected.items():
        subject = load_pycortex_subject(db.root, db.subject, mask_type=kind)
        assert subject.mask_source == "built"
        saved = nib.load(str(xfm_dir / f"mask_{kind}.nii.gz"))
        assert saved.shape == FUNC_SHAPE and np.allclose(saved.affine, FUNC_AFFINE)
        assert saved.get_data_dtype() == np.uint8
        assert np.array_equal(saved.get_fdata() != 0, want)  # NIfTI (i, j, k) layout
        assert np.array_equal(subject.mask, want.T)  # pycortex's transposed layout
        assert 0 < want.sum() < want.size
    # once written, the filestore's mask is used as is
    assert load_pycortex_subject(db.root, db.subject).mask_source == "filestore"
    assert not cache.exists() or not any(cache.rglob("*.nii.gz"))


def test_read_only_filestore_builds_into_the_cache(tmp_path, cache):
    db = _unmasked_db(tmp_path)
    xfm_dir = db.root / db.subject / "transforms" / f"{db.subject}_auto"
    mode = xfm_dir.stat().st_mode
    os.chmod(xfm_dir, mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        assert not folder_is_writable(xfm_dir)
        first = load_pycortex_subject(db.root, db.subject)
        assert first.mask_source == "cache"
        assert sorted(p.name for p in xfm_dir.iterdir()) == ["matrices.xfm", "reference.nii.gz"]
        assert len(list(cache.rglob("mask_thick.nii.gz"))) == 1
        again = load_pycortex_subject(db.root, db.subject)
        assert again.mask_source == "cache" and np.array_equal(again.mask, first.mask)
    finally:
        os.chmod(xfm_dir, mode)
    # other surfaces -> another cache entry (the key covers the surfaces' content)
    other = _unmasked_db(tmp_path / "other", seed=3)
    xfm_other = other.root / other.subject / "transforms" / f"{other.subject}_auto"
    os.chmod(xfm_other, mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        load_pycortex_subject(other.root, other.subject)
    finally:
        os.chmod(xfm_other, mode)
    assert len(list(cache.rglob("mask_thick.nii.gz"))) == 2


def test_cortical_mask_rejects_unknown_kind():
    with pytest.raises(ValueError, match="unknown mask type 'thicker'"):
        cortical_mask("thicker", np.zeros((3, 3)), None, np.eye(4), (2, 2, 2))


# ------------------------------------------------------------------ bad filestores


def test_filestore_without_surfaces(tmp_path, cache):
    db = make_fake_pycortex_db(tmp_path / "db")
    for path in (db.root / db.subject / "surfaces").iterdir():
        path.unlink()
    with pytest.raises(FileNotFoundError, match="has no surfaces"):
        load_pycortex_subject(db.root, db.subject)


def test_missing_mask_without_reference_cannot_be_built(tmp_path, cache):
    db = _unmasked_db(tmp_path)
    (db.root / db.subject / "transforms" / f"{db.subject}_auto" / "reference.nii.gz").unlink()
    with pytest.raises(FileNotFoundError, match="no reference.nii.gz"):
        load_pycortex_subject(db.root, db.subject)


def test_mask_on_another_grid_is_refused(tmp_path, cache):
    db = make_fake_pycortex_db(tmp_path / "db")
    xfm_dir = db.root / db.subject / "transforms" / f"{db.subject}_auto"
    nib.save(nib.Nifti1Image(np.ones((10, 12, 9), np.uint8), FUNC_AFFINE),
             str(xfm_dir / "mask_thick.nii.gz"))
    with pytest.raises(ValueError, match=r"grid \(10, 12, 9\) but the transform's reference"):
        load_pycortex_subject(db.root, db.subject)


# ------------------------------------------------------------------ pycortex's subject S1


@pytest.fixture(scope="module")
def s1_cache(tmp_path_factory):
    folder = tmp_path_factory.mktemp("s1-cache")
    old = os.environ.get("GIM_BRAIN_CACHE")
    os.environ["GIM_BRAIN_CACHE"] = str(folder)
    yield folder
    if old is None:
        os.environ.pop("GIM_BRAIN_CACHE")
    else:
        os.environ["GIM_BRAIN_CACHE"] = old


@pytest.fixture(scope="module")
def s1_db(shared_data):
    db = shared_data / "pycortex_S1"
    if not (db / "S1" / "surfaces").is_dir():
        pytest.skip(f"{db} (pycortex's subject S1) is absent")
    return db


def test_s1_thick_and_thin_masks(s1_db, s1_cache):
    before = sorted(p.name for p in (s1_db / "S1" / "transforms" / "fullhead").iterdir())
    thick = load_pycortex_subject(s1_db, "S1", "fullhead", "thick")
    thin = load_pycortex_subject(s1_db, "S1", "fullhead", "thin")
    # the shared filestore is read-only: built into the cache, nothing written there
    assert thick.mask_source == "cache" and thin.mask_source == "cache"
    assert sorted(p.name for p in (s1_db / "S1" / "transforms" / "fullhead").iterdir()) == before
    assert thick.mask.shape == (31, 100, 100)  # (k, j, i) of the 100 x 100 x 31 grid
    assert not (thin.mask & ~thick.mask).any()
    # measured on S1: 80,615 thick and 37,226 thin voxels of 310,000
    assert 70_000 < thick.n_voxels < 90_000 and 30_000 < thin.n_voxels < 45_000
    # spot check against brute-force distances on a sample of voxels
    coord = thick.coord
    fid = np.vstack([thick.surface("fiducial", h)[0] for h in ("left", "right")])
    rng = np.random.default_rng(0)
    kji = np.column_stack([rng.integers(0, n, 60) for n in thick.mask.shape])
    mm = nib.affines.apply_affine(np.linalg.inv(coord), kji[:, ::-1])
    dist = np.array([np.sqrt(((fid - p) ** 2).sum(1)).min() for p in mm])
    got = thick.mask[tuple(kji.T)]
    assert np.array_equal(got, dist < 8) and got.any() and not got.all()
    # the cached file is read back in pycortex's voxel order
    cached = nib.load(str(next(s1_cache.rglob("mask_thick.nii.gz"))))
    assert np.array_equal(cached.get_fdata().T != 0, thick.mask)


def test_s1_vertex_mapping(s1_db, s1_cache):
    subject = load_pycortex_subject(s1_db, "S1", "fullhead")
    kji = np.argwhere(subject.mask)  # result (pycortex) order
    code = (kji[:, 2] * 1000 + kji[:, 1]) * 100 + kji[:, 0]  # i, j, k of each voxel
    vertex = voxels_to_vertices(code.astype(float), subject, n_samples=1)
    for hemi in ("left", "right"):
        fid, _ = subject.surface("fiducial", hemi)  # one sample: the fiducial point
        ijk = np.floor(nib.affines.apply_affine(subject.coord, fid) + 0.5).astype(int)
        v = vertex[hemi]
        ok = np.isfinite(v)
        assert ok.mean() > 0.99  # the thick mask covers the cortical ribbon
        decoded = np.column_stack([v[ok] // 100000, (v[ok] // 100) % 1000, v[ok] % 100])
        assert np.array_equal(decoded.astype(int), ijk[ok])
    # the default mapping (8 samples between wm and pia) averages neighbouring voxels
    smooth = voxels_to_vertices(kji[:, 0].astype(float), subject)
    assert all(np.isfinite(smooth[h]).mean() > 0.99 for h in smooth)
