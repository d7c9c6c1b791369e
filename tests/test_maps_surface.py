"""fsaverage5 surface and flat maps: a planted MNI blob appears at the expected vertices."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest

from gim_brain.maps.flat import flat_extent, plot_flat
from gim_brain.maps.surface import (fsaverage_meshes, mni_to_fsaverage, plot_surface,
                                    surface_values)
from gim_brain.maps.volume import values_to_img

from _maps_helpers import blob_values, low_res_mni_mask

BLOB_MM = (-56.0, -24.0, 4.0)  # left superior temporal cortex


@pytest.fixture(scope="module")
def blob_surface():
    mask = low_res_mni_mask(3)
    values = blob_values(mask, BLOB_MM, sigma_mm=6.0)
    img = values_to_img(values, mask)
    return mni_to_fsaverage(img)


def test_planted_blob_lands_on_the_nearest_fsaverage5_vertices(blob_surface):
    values = surface_values(blob_surface)
    assert values["left"].shape == (10242,) and values["right"].shape == (10242,)
    pial = fsaverage_meshes("fsaverage5")["pial"]
    dist = np.linalg.norm(np.asarray(pial.parts["left"].coordinates) - BLOB_MM, axis=1)
    near, far = dist < 6.0, dist > 30.0
    assert near.sum() > 5
    # vertices at the blob carry it, vertices far away do not; nothing lands on the right
    assert values["left"][near].mean() > 0.2
    assert np.abs(values["left"][far]).max() < 0.05
    assert np.abs(values["right"]).max() < 0.05
    # the strongest vertex is within a voxel or two of the planted centre
    assert dist[np.argmax(values["left"])] < 8.0


def test_nan_voxels_do_not_spread_over_the_surface():
    mask = low_res_mni_mask(6)
    values = blob_values(mask, BLOB_MM, sigma_mm=6.0)
    values[::50] = np.nan  # e.g. constant voxels whose r is undefined
    surf = surface_values(mni_to_fsaverage(values_to_img(values, mask)))
    assert np.isfinite(surf["left"]).all() and np.isfinite(surf["right"]).all()
    assert surf["left"].max() > 0.2


def test_surface_figure_has_lateral_and_medial_views_of_both_hemispheres(blob_surface):
    fig = plot_surface(blob_surface, "r", "r — gim — subject MNI")
    titles = [ax.get_title() for ax in fig.axes]
    assert {"left lateral", "right lateral", "left medial", "right medial"} <= set(titles)
    assert fig._suptitle.get_text() == "r — gim — subject MNI"
    assert any(ax.get_xlabel() == "correlation r" for ax in fig.axes)  # colour bar label
    plt.close(fig)


def test_flat_figure_shows_both_hemispheres_side_by_side(blob_surface):
    fig = plot_flat(blob_surface, "unique", "unique variance", height=200)
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert "left hemisphere" in texts and "right hemisphere" in texts
    (image,) = ax.images  # one pixel-interpolated image of both hemispheres
    rgba = np.asarray(image.get_array())
    assert rgba.shape[0] == 200 and rgba.shape[2] == 4
    # nilearn's bundled fsaverage5 flat meshes, nudged apart at x = 0 (pycortex's layout)
    flat = fsaverage_meshes("fsaverage5")["flat"]
    ext = flat_extent(flat)
    width_mm = (ext["left"][1] - ext["left"][0]) + (ext["right"][1] - ext["right"][0])
    xmin, xmax, ymin, ymax = image.get_extent()
    assert xmax - xmin == pytest.approx(width_mm, rel=0.02) and xmin < 0 < xmax
    middle = int(round(-xmin / (xmax - xmin) * rgba.shape[1]))
    assert rgba[:, :middle, 3].mean() > 0.3 and rgba[:, middle:, 3].mean() > 0.3
    assert fig._suptitle.get_text() == "unique variance"
    assert any(a.get_xlabel() == "unique variance (R²)" for a in fig.axes)  # colour bar
    plt.close(fig)


def test_unbundled_mesh_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("NILEARN_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="'fsaverage6' is not available offline"):
        fsaverage_meshes("fsaverage6")
