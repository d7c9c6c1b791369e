"""Volume maps: values land on the right voxels in both voxel orders; figures; styles."""

from __future__ import annotations

import matplotlib
import nibabel as nib
import numpy as np
import pytest

from gim_brain.maps import style_for
from gim_brain.maps.volume import (MaskShapeError, img_to_values, mask_indices, plot_glass,
                                   plot_volume, values_to_img)

from _maps_helpers import blob_values, low_res_mni_mask


@pytest.fixture()
def small_mask(tmp_path):
    rng = np.random.default_rng(3)
    data = (rng.random((5, 6, 7)) > 0.4).astype(np.uint8)
    affine = np.diag([2.0, 3.0, 4.0, 1.0])
    affine[:3, 3] = [-5, -9, -14]
    path = tmp_path / "mask.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path, data.astype(bool), affine


def test_values_land_on_mask_voxels_in_nifti_order(small_mask):
    path, mask, affine = small_mask
    values = np.arange(1, mask.sum() + 1, dtype=float)
    img = values_to_img(values, path)
    data = img.get_fdata()
    assert np.allclose(img.affine, affine)
    assert np.all(data[~mask] == 0)
    # C order over (i, j, k): the n-th True of mask gets value n+1
    assert np.array_equal(data[mask], values)
    assert np.array_equal(img_to_values(img, path), values)


def test_pycortex_order_is_transposed_mask(small_mask):
    path, mask, _ = small_mask
    n = int(mask.sum())
    values = np.arange(1, n + 1, dtype=float)
    img = values_to_img(values, path, order="pycortex")
    data = img.get_fdata()
    # pycortex reads the mask as get_fdata().T != 0 and fills in C order of (k, j, i)
    assert np.array_equal(data.T[mask.T], values)
    assert not np.array_equal(data[mask], values)  # the two orders really differ here
    kji = np.argwhere(mask.T)
    i, j, k = mask_indices(nib.load(str(path)), "pycortex")
    assert np.array_equal(np.column_stack([k, j, i]), kji)
    assert np.array_equal(img_to_values(img, path, order="pycortex"), values)


def test_wrong_number_of_values_names_the_mask(small_mask):
    path, mask, _ = small_mask
    with pytest.raises(MaskShapeError, match=rf"{int(mask.sum()) + 1} values do not match the "
                                             rf"{int(mask.sum())} voxels of .*mask.nii.gz"):
        values_to_img(np.zeros(int(mask.sum()) + 1), path)


def test_missing_mask_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.nii.gz"):
        values_to_img(np.zeros(3), tmp_path / "nope.nii.gz")


def test_styles_sequential_for_r_and_diverging_for_signed():
    r = np.array([-0.1, 0.0, 0.2, 0.5])
    s = style_for("r", r)
    assert not s.signed and s.cmap == "inferno" and s.vmin == 0.0
    assert np.array_equal(s.for_display(r), [0.0, 0.0, 0.2, 0.5])  # r <= 0 not drawn
    d = style_for("diff", np.array([-0.3, 0.1, 0.2]))
    assert d.signed and d.cmap == "RdBu_r" and d.vmin == -d.vmax
    assert np.array_equal(d.for_display(np.array([-0.3, np.nan])), [-0.3, 0.0])
    with pytest.raises(ValueError, match="unknown value kind 'bogus'"):
        style_for("bogus", r)


def test_stat_map_and_glass_brain_figures_show_the_blob():
    mask = low_res_mni_mask(6)
    values = blob_values(mask, (-54, -20, 6))
    img = values_to_img(values, mask)
    fig = plot_volume(img, "r", "r — gim — subject MNI")
    assert isinstance(fig, matplotlib.figure.Figure)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert any("subject MNI" in t for t in texts)
    # the cut goes through the blob's peak
    peak = nib.affines.apply_affine(img.affine, np.unravel_index(np.argmax(img.get_fdata()), img.shape))
    assert peak[0] < -40
    bare = plot_volume(img, "r", "no background", bg_img=None)  # native data without anatomy
    assert isinstance(bare, matplotlib.figure.Figure)
    glass = plot_glass(img, "diff", "diff")
    assert isinstance(glass, matplotlib.figure.Figure)
    matplotlib.pyplot.close("all")
