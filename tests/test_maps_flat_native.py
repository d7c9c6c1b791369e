"""Pixel-interpolated flatmaps, overlays.svg ROIs and ROI summaries: exact checks on small
meshes and SVGs, and the real subject S1 (flat and inflated maps of a synthetic field)."""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np
import pytest

from gim_brain.maps.flat import flat_layout, flat_rgba, rasterize_flat
from gim_brain.maps.overlays import OverlayError, parse_path, read_overlays, svg_to_flat, \
    vertex_rois
from gim_brain.maps.style import style_for

from _maps_helpers import grid_mesh


def _sheet(nu=6, nv=5, scale=4.0, shift=0.0):
    params, faces = grid_mesh(nu, nv)
    xyz = np.column_stack([params[:, 0] * scale + shift, params[:, 1] * scale, np.zeros(len(params))])
    return xyz, faces


def test_pixels_interpolate_linear_fields_exactly():
    layout = flat_layout({"left": _sheet(), "right": _sheet(shift=100.0)})
    # pycortex's nudge: left ends at x = 0, right starts at x = 0
    assert layout.coords["left"][:, 0].max() == 0 and layout.coords["right"][:, 0].min() == 0
    raster = rasterize_flat(layout, height=40)
    xy = layout.stacked()
    values = 2.0 * xy[:, 0] - 0.5 * xy[:, 1] + 3.0
    img = raster.image(values)
    h, w = raster.shape
    xmin, xmax, ymin, ymax = raster.extent
    step = (ymax - ymin) / h
    rows, cols = np.divmod(raster.pixels, w)
    x, y = xmin + (cols + 0.5) * step, ymax - (rows + 0.5) * step
    assert np.allclose(img.ravel()[raster.pixels], 2.0 * x - 0.5 * y + 3.0)
    # both sheets are 20 x 16 mm: every pixel centre inside them is covered, nothing else
    inside = ((np.abs(x) <= 20) & (y >= 0) & (y <= 16))
    assert inside.all() and raster.pixels.size == pytest.approx(2 * 20 * 16 / step ** 2, rel=0.1)


def test_nan_and_medial_wall_stay_transparent():
    xyz, faces = _sheet()
    keep = ~np.isin(faces, [0]).any(1)  # vertex 0 belongs to no face: a cut (medial wall)
    layout = flat_layout({"left": (xyz, faces[keep]), "right": _sheet(shift=50.0)})
    raster = rasterize_flat(layout, height=50)
    values = np.ones(layout.n_vertices)
    values[layout.offsets["right"]:] = np.nan  # right hemisphere unknown
    img = raster.image(values)
    rgba = flat_rgba(img, style_for("r", np.array([0.5, 1.0])), None, raster.coverage())
    covered = raster.coverage()
    assert (rgba[..., 3][~covered] == 0).all() and (rgba[..., 3][covered] == 1).all()
    right = np.zeros_like(covered)
    right[:, raster.shape[1] // 2 + 1:] = True
    assert np.isnan(img[right & covered]).all()  # NaN -> underlay gray, not a colour
    assert np.allclose(rgba[right & covered][:, :3], 0.6)
    # the cut corner (around vertex 0, top-left of the left sheet) is not covered
    assert not covered[-1, 0]


SVG = """<svg xmlns="http://www.w3.org/2000/svg"
  xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape" width="200" height="100">
 <g inkscape:label="rois"><g inkscape:label="shapes">
  <g inkscape:label="BOX"><path d="M 10,10 L 40,10 40,40 10,40 Z"/>
                           <path d="m 110,10 h 30 v 30 h -30 z"/></g>
  <g inkscape:label="BLOB" transform="translate(100,50)">
     <path d="M 0,0 C 10,0 20,10 20,20 S 10,40 0,40 Q -10,20 0,0 z"/></g>
 </g><g inkscape:label="labels" transform="translate(1,2)">
     <text x="20" y="20"><tspan>BOX</tspan></text><text>nowhere</text></g></g>
 <g inkscape:label="sulci"><g inkscape:label="shapes"/></g>
</svg>"""


def test_overlays_parse_paths_and_map_to_flat(tmp_path):
    path = tmp_path / "overlays.svg"
    path.write_text(SVG)
    overlays = read_overlays(path)
    assert (overlays.width, overlays.height) == (200.0, 100.0)
    box, blob = overlays.shapes("rois")
    assert box.name == "BOX" and len(box.paths) == 2 and all(box.closed)
    assert np.allclose(box.paths[1][[0, 1, 2, 3]], [[110, 10], [140, 10], [140, 40], [110, 40]])
    assert np.allclose(blob.paths[0][0], [100, 50])  # the group's translate applies
    assert np.allclose(blob.paths[0][:, 1].max(), 90)
    assert overlays.labels["rois"] == [("BOX", (21.0, 22.0))]  # placed labels, transformed
    # svg (x right, y down) over the flat bounds (x right, y up)
    extent = (-100.0, 100.0, 0.0, 50.0)
    assert np.allclose(svg_to_flat(np.array([[0, 0], [200, 100], [50, 50]]), overlays, extent),
                       [[-100, 50], [100, 0], [-50, 25]])
    pts = np.array([[-75.0, 37.5], [25.0, 37.5], [0.0, 0.0], [-75.0, 10.0]])
    members = vertex_rois([box], overlays, pts, extent)
    assert members["BOX"].tolist() == [True, True, False, False]
    # a layer without shapes, a missing layer
    with pytest.raises(OverlayError, match="'sulci' layer .* has no outlined shapes"):
        overlays.shapes("sulci")
    with pytest.raises(OverlayError, match="has no 'cutouts' layer"):
        overlays.shapes("cutouts")


def test_overlays_without_roi_layers_and_bad_files(tmp_path):
    empty = tmp_path / "empty.svg"
    empty.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="5"><g/></svg>')
    with pytest.raises(OverlayError, match=r"has no 'rois' layer of shapes \(layers: none\)"):
        read_overlays(empty).shapes()
    broken = tmp_path / "broken.svg"
    broken.write_text("<svg><g>")
    with pytest.raises(OverlayError, match="not a readable SVG"):
        read_overlays(broken)
    with pytest.raises(OverlayError, match="malformed SVG path data"):
        parse_path("M 1,2 C 3,4 5")
    assert len(parse_path("M0 0 1e1 0 10 1e1z")[0][0]) == 4  # exponents, implicit line-tos


# ------------------------------------------------------------------ pycortex's subject S1


@pytest.fixture(scope="module")
def s1(shared_data, tmp_path_factory):
    db = shared_data / "pycortex_S1"
    if not (db / "S1" / "surfaces").is_dir():
        pytest.skip(f"{db} (pycortex's subject S1) is absent")
    old = os.environ.get("GIM_BRAIN_CACHE")
    os.environ["GIM_BRAIN_CACHE"] = str(tmp_path_factory.mktemp("s1-cache"))
    from gim_brain.maps.native import load_pycortex_subject

    yield load_pycortex_subject(db, "S1", "fullhead")
    if old is None:
        os.environ.pop("GIM_BRAIN_CACHE")
    else:
        os.environ["GIM_BRAIN_CACHE"] = old


def _synthetic(subject):
    """A smooth field over the functional grid (sine waves along i and j)."""
    kji = np.argwhere(subject.mask)
    return np.sin(kji[:, 2] / 8.0) * np.cos(kji[:, 1] / 11.0)


def test_s1_rois_lie_where_the_anatomy_says(s1):
    from gim_brain.maps.native import subject_vertex_rois

    rois = subject_vertex_rois(s1)
    assert len(rois) >= 25 and {"V1", "AC", "M1H", "Broca", "FFA"} <= set(rois)
    fid = np.vstack([s1.surface("fiducial", h)[0] for h in ("left", "right")])
    n_left = s1.surface("fiducial", "left")[0].shape[0]
    y, z = fid[:, 1], fid[:, 2]  # surface RAS: y anterior, z superior
    assert y[rois["V1"]].mean() < np.percentile(y, 10)  # occipital pole
    assert y[rois["Broca"]].mean() > np.percentile(y, 70)  # inferior frontal
    assert z[rois["M1H"]].mean() > np.percentile(z, 85)  # dorsal motor strip
    assert z[rois["FFA"]].mean() < np.percentile(z, 15)  # ventral temporal
    for name in ("V1", "AC"):  # drawn in both hemispheres
        assert rois[name][:n_left].sum() > 500 and rois[name][n_left:].sum() > 500
    assert fid[:n_left][rois["AC"][:n_left], 0].mean() < fid[n_left:][rois["AC"][n_left:], 0].mean()


def test_s1_flat_and_inflated_maps_of_a_synthetic_field(s1, tmp_path):
    from gim_brain.maps.native import native_flat_raster, native_surface_image, plot_native_flat, \
        plot_native_surface, voxels_to_vertices

    values = _synthetic(s1)
    values[:500] = np.nan
    layout, raster = native_flat_raster(s1)
    assert raster.shape == (1024, 1960)  # overlays.svg's 1960.5 x 1024 frame
    img = raster.image(np.concatenate(list(voxels_to_vertices(values, s1).values())))
    covered = raster.coverage()
    assert 0.4 < covered.mean() < 0.7
    assert np.isfinite(img[covered]).mean() > 0.98 and np.isnan(img[~covered]).all()
    # left hemisphere left of the middle, right hemisphere right of it
    middle = int(round(-layout.extent[0] / (layout.extent[1] - layout.extent[0]) * raster.shape[1]))
    left_cols = np.flatnonzero(covered[:, :middle].any(0))
    right_cols = np.flatnonzero(covered[:, middle:].any(0))
    assert left_cols.size > 800 and right_cols.size > 800
    fig = plot_native_flat(values, s1, "value", "synthetic field — S1")
    lines = [ln for ln in fig.axes[0].lines]
    labels = {t.get_text() for t in fig.axes[0].texts}
    assert len(lines) >= 50 and {"V1", "AC", "FFA"} <= labels  # ROI outlines and names
    (image,) = fig.axes[0].images
    rgba = image.get_array()
    assert (rgba[..., 3][~covered] == 0).all()  # medial wall and background transparent
    fig.savefig(tmp_path / "flat.png", dpi=60)
    assert (tmp_path / "flat.png").stat().st_size > 50_000
    inflated = plot_native_surface(values, s1, "value", "synthetic field — S1")
    assert sum(ax.name == "3d" for ax in inflated.axes) == 4
    surf = native_surface_image(values, s1, "inflated")
    vertex = voxels_to_vertices(values, s1)
    for hemi in ("left", "right"):
        assert np.allclose(np.asarray(surf.data.parts[hemi]).ravel(),
                           np.nan_to_num(vertex[hemi], nan=0.0), atol=1e-6)
        coords = np.asarray(surf.mesh.parts[hemi].coordinates)
        assert np.allclose(coords, s1.surface("inflated", hemi)[0])  # the subject's own mesh
    plt.close("all")


def test_s1_roi_summary(s1, tmp_path):
    from gim_brain.maps.rois import native_roi_table, roi_voxels, write_roi_summary

    voxels = roi_voxels(s1)
    kji = np.argwhere(s1.mask)
    # a field that is 1 in the V1 L voxels and 0 elsewhere, and its negative
    field = np.zeros(s1.n_voxels)
    field[voxels["V1 L"]] = 1.0
    table = native_roi_table({"a": field, "b": -field}, s1)
    assert table.loc["V1 L", "a"] == 1.0 and table.loc["V1 L", "b"] == -1.0
    assert table.loc["V1 L", "n_voxels"] == voxels["V1 L"].size > 100
    assert table.loc["Broca L", "a"] < 0.05 and "V1 R" in table.index
    assert kji[voxels["V1 L"]].shape[0] == voxels["V1 L"].size
    written = write_roi_summary({"a": field}, s1, tmp_path)
    assert [p.name for p in written] == ["rois_r.csv", "rois_r.png"]
    with pytest.raises(ValueError, match="do not match"):
        native_roi_table({"a": field[:-1]}, s1)
    plt.close("all")


def test_map_cli_draws_native_flat_maps_and_roi_summaries(s1, tmp_path, capsys):
    """`gim-brain map RUN --kind flat` on a run fitted on S1's voxels (two feature sets)."""
    import pandas as pd

    from gim_brain.cli.main import main

    encoding = pytest.importorskip("gim_brain.encoding")
    from gim_brain.maps.rois import roi_voxels

    voxels = roi_voxels(s1)
    r_gim = np.full(s1.n_voxels, 0.02)
    r_gim[voxels["AC L"]] = 0.4
    r_gim[voxels["AC R"]] = 0.3
    r_lm = np.full(s1.n_voxels, 0.05)
    r_lm[voxels["V1 L"]] = 0.2

    def result(spec, r):
        return encoding.EncodingResult(feature_set=spec, spaces=[spec],
                                       scores={"r": r.astype(np.float32)},
                                       alphas=np.full(r.size, 10.0, np.float32))

    encoding.write_run(tmp_path / "run", {"gim": result("gim", r_gim), "lm": result("lm", r_lm)},
                       subject="S1", test_stories=["a"],
                       targets={"kind": "pycortex_db", "db": str(s1.folder.parent),
                                "subject": "S1", "xfm": "fullhead"}, parameters={})
    out = tmp_path / "maps"
    assert main(["map", str(tmp_path / "run"), "--out", str(out), "--kind", "flat",
                 "--feature-set", "gim", "--dpi", "50"]) == 0
    printed = capsys.readouterr().out
    assert "r_gim_flat.png" in printed and "rois_r.csv" in printed
    table = pd.read_csv(out / "rois_r.csv", index_col="roi")
    assert list(table.columns) == ["n_voxels", "gim", "lm"]
    assert table.loc["AC L", "gim"] == pytest.approx(0.4) and table.loc["AC R", "gim"] > 0.25
    assert table.loc["V1 L", "lm"] == pytest.approx(0.2)
    assert table["gim"].idxmax() == "AC L"
    assert (out / "rois_r.png").stat().st_size > 10_000
    # a difference map: one column
    assert main(["map", str(tmp_path / "run"), "--out", str(out), "--kind", "flat",
                 "--value", "diff:gim-lm", "--dpi", "30"]) == 0
    diff = pd.read_csv(out / "rois_diff_gim-lm.csv", index_col="roi")
    assert list(diff.columns) == ["n_voxels", "diff:gim-lm"]
    assert diff.loc["AC L", "diff:gim-lm"] == pytest.approx(0.4 - 0.05)
    plt.close("all")


def test_map_cli_on_a_filestore_without_surfaces(tmp_path, capsys):
    from gim_brain.cli.main import main

    from _maps_helpers import make_fake_pycortex_db

    encoding = pytest.importorskip("gim_brain.encoding")
    db = make_fake_pycortex_db(tmp_path / "db")
    for path in (db.root / db.subject / "surfaces").iterdir():
        path.unlink()
    r = np.zeros(int(db.mask.sum()), np.float32)
    encoding.write_run(tmp_path / "run", {"gim": encoding.EncodingResult(
        feature_set="gim", spaces=["gim"], scores={"r": r}, alphas=np.ones_like(r))},
        subject="UTS99", test_stories=["a"],
        targets={"kind": "pycortex_db", "db": str(db.root), "subject": "UTS99"}, parameters={})
    assert main(["map", str(tmp_path / "run"), "--out", str(tmp_path / "o"), "--kind", "flat"]) == 2
    err = capsys.readouterr().err
    assert "has no surfaces" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
