"""Interactive HTML maps are self-contained: no network resource, and they render offline."""

from __future__ import annotations

import subprocess
import tempfile

import numpy as np
import pytest

from gim_brain.maps.html import (external_resources, make_offline, save_html, surface_html,
                                 volume_html)
from gim_brain.maps.surface import fsaverage_meshes
from gim_brain.maps.volume import values_to_img

from _maps_helpers import blob_values, low_res_mni_mask
from _real_parts import require_program

BLOB_MM = (-56.0, -24.0, 4.0)


@pytest.fixture(scope="module")
def surface_page():
    from nilearn.surface import SurfaceImage

    pial = fsaverage_meshes("fsaverage5")["pial"]
    data = {}
    for hemi in ("left", "right"):
        d = np.linalg.norm(np.asarray(pial.parts[hemi].coordinates) - BLOB_MM, axis=1)
        data[hemi] = (0.5 * np.exp(-d ** 2 / (2 * 10.0 ** 2))).astype(np.float32)
    return surface_html(SurfaceImage(mesh=pial, data=data), "r", "r — gim — subject MNI")


def test_surface_page_inlines_plotly_and_loads_nothing_from_the_network(surface_page):
    assert external_resources(surface_page) == []
    assert "r — gim — subject MNI" in surface_page
    assert "plotly" in surface_page.lower() and len(surface_page) > 1_000_000  # library inlined
    assert "favicon" not in surface_page


def test_volume_page_is_offline_too():
    mask = low_res_mni_mask(6)
    img = values_to_img(blob_values(mask, BLOB_MM), mask)
    page = volume_html(img, "r", "r — volume")
    assert external_resources(page) == []
    assert "brainsprite" in page.lower()


def test_remote_resources_are_detected():
    page = ('<html><head><script src="https://cdn.plot.ly/plotly.js"></script>'
            '<link rel="stylesheet" href="//fonts.example/x.css"></head>'
            '<body><script>var u = "https://plot.ly/";</script></body></html>')
    assert external_resources(page) == ["https://cdn.plot.ly/plotly.js", "//fonts.example/x.css"]
    with pytest.raises(RuntimeError, match="still load network resources"):
        make_offline(page)


@pytest.mark.slow
def test_surface_page_renders_in_headless_chromium_without_network(surface_page, tmp_path):
    from PIL import Image

    chromium = require_program("chromium", "chromium-browser", why="headless rendering needs Debian's chromium")

    page = save_html(surface_page, tmp_path / "map.html")
    shot = tmp_path / "shot.png"
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", f"--user-data-dir={profile}",
             "--proxy-server=127.0.0.1:9",  # any network request would fail
             "--window-size=1000,800", "--virtual-time-budget=8000",
             f"--screenshot={shot}", page.resolve().as_uri()],
            check=True, capture_output=True, timeout=120,
        )
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    # the brain is drawn: grey shading plus coloured (non-grey) blob pixels
    spread = pixels.max(axis=2) - pixels.min(axis=2)
    assert (spread > 60).sum() > 500, "no coloured map pixels: the plot did not render"
    assert (pixels.sum(axis=2) < 600).sum() > 20000, "no brain drawn"
