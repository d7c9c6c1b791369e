"""Flat maps: values on flattened cortical meshes, both hemispheres side by side.

* :func:`plot_flat_image` — publication flatmaps in the manner of pycortex's quickflat: the
  flat triangles are rasterised to a pixel grid once (:func:`rasterize_flat`), each pixel
  interpolates the values of its triangle's three vertices (barycentric weights), over a
  two-tone curvature underlay; medial wall, cuts and NaN stay transparent; ROI outlines and
  labels can be drawn on top (:mod:`gim_brain.maps.overlays`).
* :func:`plot_flat` — the same for values on any flat ``PolyMesh`` (default: nilearn's
  bundled fsaverage flat meshes, sulcal-depth underlay).

Layout (:func:`flat_layout`) follows pycortex: the left hemisphere is shifted so that its
largest x is 0, the right one so that its smallest x is 0 (pycortex's ``nudge``), y up;
for pycortex flat surfaces this puts frontal lobes at the outer edges and occipital
cortex in the middle. Flat meshes are cut: vertices that belong to no face (medial wall)
are not drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np

from .style import MapStyle, style_for
from .surface import HEMIS, _bg_array, _fsaverage_name, fsaverage_meshes, fsaverage_sulcal, \
    surface_values

__all__ = ["plot_flat", "flat_extent", "FlatLayout", "FlatRaster", "flat_layout",
           "rasterize_flat", "flat_rgba", "plot_flat_image"]


def flat_extent(flat_mesh) -> dict[str, tuple[float, float]]:
    """x range (same units as the mesh) of the drawn vertices of each hemisphere."""
    out = {}
    for hemi in HEMIS:
        part = flat_mesh.parts[hemi]
        used = np.unique(np.asarray(part.faces))
        x = np.asarray(part.coordinates)[used, 0]
        out[hemi] = (float(x.min()), float(x.max()))
    return out


def plot_flat(surf_img, kind: str = "r", title: str = "", style: MapStyle | None = None,
              flat_mesh=None, bg_map=None, height: int = 640) -> plt.Figure:
    """Pixel-interpolated flatmap of vertex values, left hemisphere left, right one right.

    Parameters
    ----------
    surf_img : SurfaceImage
        Values per vertex (vertex order of ``flat_mesh``); exact zeros (outside the mask of
        an MNI volume sampled on fsaverage) are left transparent like NaN.
    kind, title, style
        As in :func:`gim_brain.maps.surface.plot_surface`.
    flat_mesh : PolyMesh, optional
        Flat mesh with coordinates ``(x, y, ~0)``; default: nilearn's fsaverage flat mesh
        of the matching resolution.
    bg_map : SurfaceImage or dict of arrays, optional
        Sulcal depth (positive in sulci) for the gray underlay; default: fsaverage's.
    height : int
        Image height in pixels.

    Returns
    -------
    matplotlib Figure (see :func:`plot_flat_image`)
    """
    values = surface_values(surf_img)
    if flat_mesh is None or bg_map is None:
        name = _fsaverage_name(values["left"].size)
        flat_mesh = flat_mesh if flat_mesh is not None else fsaverage_meshes(name)["flat"]
        bg_map = bg_map if bg_map is not None else fsaverage_sulcal(name, mesh_type="flat")
    all_values = np.concatenate([values[h] for h in HEMIS])
    style = style or style_for(kind, all_values[all_values != 0])
    layout = flat_layout({h: (np.asarray(flat_mesh.parts[h].coordinates),
                              np.asarray(flat_mesh.parts[h].faces)) for h in HEMIS})
    raster = rasterize_flat(layout, height)
    sulc = {h: _bg_array(bg_map, h) for h in HEMIS}
    scale = float(np.nanstd(np.concatenate(list(sulc.values())))) or 1.0
    underlay = {h: 0.52 - 0.17 * np.tanh(1.5 * sulc[h] / scale) for h in HEMIS}
    shown = {h: np.where(values[h] == 0, np.nan, values[h]) for h in HEMIS}
    return plot_flat_image(raster, shown, style, title, underlay=underlay)


@dataclass
class FlatLayout:
    """Both flat hemispheres in one plane (mm), in pycortex's side-by-side layout.

    Attributes
    ----------
    coords : dict hemi -> float (n_vertices, 2)
        In-plane ``(x, y)`` of every vertex, left hemisphere at x <= 0, right at x >= 0.
    faces : dict hemi -> int (n_faces, 3)
        Triangles of the flat patch (medial-wall vertices belong to none).
    extent : (xmin, xmax, ymin, ymax)
        Bounds over all vertices of both hemispheres (pycortex's overlays.svg frame).
    """

    coords: dict
    faces: dict
    extent: tuple

    @property
    def offsets(self) -> dict[str, int]:
        """First row of each hemisphere in stacked (left then right) vertex arrays."""
        return {"left": 0, "right": int(self.coords["left"].shape[0])}

    @property
    def n_vertices(self) -> int:
        return sum(int(c.shape[0]) for c in self.coords.values())

    def stacked(self) -> np.ndarray:
        """(n_left + n_right, 2) coordinates, left hemisphere first."""
        return np.vstack([self.coords[h] for h in HEMIS])


def flat_layout(meshes: dict) -> FlatLayout:
    """Lay out flat meshes ``{hemi: (coordinates (n, 2 or 3), faces (f, 3))}`` side by side.

    The in-plane axes are the two that vary most over the patch's vertices (pycortex flat
    surfaces: x and y, z = 0); their order is kept.
    """
    coords, faces = {}, {}
    for hemi in HEMIS:
        xyz, tri = meshes[hemi]
        xyz = np.asarray(xyz, dtype=float)
        tri = np.asarray(tri, dtype=np.int64)
        if xyz.shape[1] == 3:
            used = np.unique(tri)
            normal = int(np.argmin(xyz[used].std(0)))
            xyz = xyz[:, [a for a in range(3) if a != normal]]
        xy = xyz[:, :2].copy()
        xy[:, 0] -= xy[:, 0].max() if hemi == "left" else xy[:, 0].min()
        coords[hemi], faces[hemi] = xy, tri
    both = np.vstack([coords[h] for h in HEMIS])
    lo, hi = both.min(0), both.max(0)
    return FlatLayout(coords, faces, (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])))


@dataclass
class FlatRaster:
    """Which triangle covers each pixel of a flatmap, with barycentric weights.

    Attributes
    ----------
    shape : (height, width)
    extent : (xmin, xmax, ymin, ymax), mm — the image's frame (row 0 at ymax).
    pixels : int64 (n_pixels,)
        Flat (row-major) index of each covered pixel.
    vertices : int64 (n_pixels, 3)
        Stacked (left then right) vertex ids of the covering triangle.
    weights : float64 (n_pixels, 3)
        Barycentric weights of the pixel centre (sum to 1).
    """

    shape: tuple
    extent: tuple
    pixels: np.ndarray
    vertices: np.ndarray
    weights: np.ndarray

    def image(self, values: np.ndarray, min_weight: float = 0.5) -> np.ndarray:
        """Interpolate stacked per-vertex ``values`` to a ``(height, width)`` image.

        Vertices with non-finite values are left out and the weights of the others renormalised;
        a pixel whose finite vertices weigh less than ``min_weight`` (and any uncovered pixel)
        is NaN.
        """
        values = np.asarray(values, dtype=float)
        finite = np.isfinite(values)
        w = self.weights * finite[self.vertices]
        total = w.sum(1)
        num = (w * np.where(finite, values, 0.0)[self.vertices]).sum(1)
        out = np.full(self.shape[0] * self.shape[1], np.nan)
        ok = total >= min_weight
        out[self.pixels[ok]] = num[ok] / total[ok]
        return out.reshape(self.shape)

    def coverage(self) -> np.ndarray:
        """Boolean ``(height, width)``: pixels inside the flat patch."""
        out = np.zeros(self.shape[0] * self.shape[1], dtype=bool)
        out[self.pixels] = True
        return out.reshape(self.shape)


def rasterize_flat(layout: FlatLayout, height: int = 1024) -> FlatRaster:
    """Rasterise the flat triangles of both hemispheres on a pixel grid ``height`` pixels high.

    Pixel ``(row, col)`` has its centre at ``x = xmin + (col + 0.5) * s``,
    ``y = ymax - (row + 0.5) * s`` with ``s = (ymax - ymin) / height`` mm.
    """
    xmin, xmax, ymin, ymax = layout.extent
    step = (ymax - ymin) / height
    width = max(1, int(round((xmax - xmin) / step)))
    uv = np.column_stack([(layout.stacked()[:, 0] - xmin) / step - 0.5,
                          (ymax - layout.stacked()[:, 1]) / step - 0.5])
    faces = np.vstack([layout.faces[h] + layout.offsets[h] for h in HEMIS])
    tri = uv[faces]  # (f, 3, 2): (col, row) of each corner
    cmin = np.maximum(np.ceil(tri[:, :, 0].min(1)), 0).astype(np.int64)
    cmax = np.minimum(np.floor(tri[:, :, 0].max(1)), width - 1).astype(np.int64)
    rmin = np.maximum(np.ceil(tri[:, :, 1].min(1)), 0).astype(np.int64)
    rmax = np.minimum(np.floor(tri[:, :, 1].max(1)), height - 1).astype(np.int64)
    a = tri[:, 0]
    e1, e2 = tri[:, 1] - a, tri[:, 2] - a
    den = e1[:, 0] * e2[:, 1] - e2[:, 0] * e1[:, 1]
    ncols, nrows = cmax - cmin + 1, rmax - rmin + 1
    keep = (ncols > 0) & (nrows > 0) & (np.abs(den) > 1e-12)
    size = np.maximum(ncols, nrows)
    pix, tris, bary = [], [], []
    low = 0
    for top in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 1 << 30):
        sel = np.flatnonzero(keep & (size > low) & (size <= top))
        low = top
        if sel.size == 0:
            continue
        reach = int(size[sel].max())
        for dr in range(reach):
            for dc in range(reach):
                ok = (dc < ncols[sel]) & (dr < nrows[sel])
                s = sel[ok]
                if s.size == 0:
                    continue
                col, row = cmin[s] + dc, rmin[s] + dr
                px, py = col - a[s, 0], row - a[s, 1]
                lb = (px * e2[s, 1] - e2[s, 0] * py) / den[s]
                lc = (e1[s, 0] * py - px * e1[s, 1]) / den[s]
                la = 1.0 - lb - lc
                inside = (la >= -1e-9) & (lb >= -1e-9) & (lc >= -1e-9)
                pix.append(row[inside] * width + col[inside])
                tris.append(s[inside])
                bary.append(np.column_stack([la, lb, lc])[inside])
    pixels = np.concatenate(pix) if pix else np.zeros(0, np.int64)
    tris_a = np.concatenate(tris) if tris else np.zeros(0, np.int64)
    bary_a = np.concatenate(bary) if bary else np.zeros((0, 3))
    pixels, first = np.unique(pixels, return_index=True)  # shared edges: keep one triangle
    weights = np.clip(bary_a[first], 0.0, None)
    weights /= weights.sum(1, keepdims=True)
    return FlatRaster((height, width), (xmin, xmax, ymin, ymax), pixels,
                      faces[tris_a[first]], weights)


def flat_rgba(values: np.ndarray, style: MapStyle, underlay: np.ndarray | None = None,
              covered: np.ndarray | None = None) -> np.ndarray:
    """Compose a flatmap image: colour-mapped values over a gray underlay.

    Parameters
    ----------
    values : float (height, width)
        Values (NaN where not drawn).
    style : MapStyle
        Colour map and range; unsigned kinds hide values <= threshold, signed kinds
        ``|v| <= threshold``.
    underlay : float (height, width), optional
        Gray level in [0, 1] (e.g. curvature); NaN where not covered.
    covered : bool (height, width), optional
        Pixels inside the cortex; default: where the underlay (or the values) is finite.

    Returns
    -------
    float (height, width, 4) RGBA, alpha 0 outside the cortex.
    """
    from matplotlib import colormaps, colors

    values = np.asarray(values, dtype=float)
    if covered is None:
        covered = np.isfinite(underlay) if underlay is not None else np.isfinite(values)
    shown = np.isfinite(values)
    if style.threshold is not None:
        magnitude = np.abs(values) if style.signed else values
        shown &= np.where(np.isfinite(magnitude), magnitude, -np.inf) > style.threshold
    norm = colors.Normalize(vmin=style.vmin, vmax=style.vmax, clip=True)
    rgba = colormaps[style.cmap](norm(np.where(shown, values, style.vmin)))
    gray = np.full(values.shape, 0.6) if underlay is None else np.nan_to_num(underlay, nan=0.6)
    rgba[..., :3] = np.where(shown[..., None], rgba[..., :3], gray[..., None])
    rgba[..., 3] = covered.astype(float)
    return rgba


def plot_flat_image(raster: FlatRaster, vertex_values: dict, style: MapStyle, title: str = "",
                    underlay: dict | None = None, outlines=None, labels: bool = True,
                    label_positions=None, hemi_names: bool = True) -> plt.Figure:
    """Draw a rasterised flatmap with colour bar, optional ROI outlines and labels.

    Parameters
    ----------
    raster : FlatRaster
    vertex_values : dict hemi -> (n_vertices,)
        Values per vertex (NaN where unknown).
    style : MapStyle
        Shared colour limits for both hemispheres.
    underlay : dict hemi -> (n_vertices,), optional
        Gray level per vertex in [0, 1] (curvature).
    outlines : list of (name, list of (n, 2) arrays), optional
        ROI outlines in flat mm (same frame as the raster).
    labels : bool
        Write each ROI's name: at its ``label_positions`` entries when it has some, else at
        the centre of each of its outlines.
    label_positions : list of (name, (x, y)), optional
        Label places in flat mm (overlays.svg's own labels).

    Returns
    -------
    matplotlib Figure
    """
    from matplotlib import cm, colors, patheffects

    stacked = np.concatenate([np.asarray(vertex_values[h], dtype=float) for h in HEMIS])
    under = None
    if underlay is not None:
        under = raster.image(np.concatenate([np.asarray(underlay[h], float) for h in HEMIS]))
    img = flat_rgba(raster.image(stacked), style, under, raster.coverage())
    height, width = raster.shape
    fig_w = 12.0
    fig = plt.figure(figsize=(fig_w, fig_w * height / width + 1.3))
    ax = fig.add_axes([0.0, 0.16, 1.0, 0.76 if title else 0.82])
    xmin, xmax, ymin, ymax = raster.extent
    ax.imshow(img, extent=(xmin, xmax, ymin, ymax), interpolation="bilinear", origin="upper")
    outline_fx = [patheffects.withStroke(linewidth=2.2, foreground="black")]
    placed: dict[str, list] = {}
    for name, xy in label_positions or []:
        placed.setdefault(name, []).append(xy)
    for name, parts in outlines or []:
        spots = placed.get(name) or [part.mean(0) for part in parts if part.shape[0] > 2]
        for part in parts:
            ax.plot(part[:, 0], part[:, 1], color="white", lw=0.9, alpha=0.9)
        for cx, cy in spots if labels else []:
            ax.text(cx, cy, name, color="white", fontsize=7, ha="center", va="center",
                    path_effects=outline_fx)
    if hemi_names:
        for hemi, x in (("left", xmin), ("right", xmax)):
            ax.text(x, ymax, f"{hemi} hemisphere", fontsize=10, va="top",
                    ha="left" if hemi == "left" else "right")
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymin, ymax)
    ax.set_aspect("equal")
    ax.axis("off")
    norm = colors.Normalize(vmin=style.vmin, vmax=style.vmax)
    cax = fig.add_axes([0.35, 0.07, 0.3, 0.025])
    bar = fig.colorbar(cm.ScalarMappable(norm=norm, cmap=style.cmap), cax=cax,
                       orientation="horizontal")
    bar.set_label(style.label)
    if title:
        fig.suptitle(title, fontsize=13)
    return fig
