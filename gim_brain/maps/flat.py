"""Flat maps: values on flattened cortical meshes, both hemispheres side by side.

fsaverage5's flat meshes ship with nilearn. Flat meshes are cut: some vertices (medial
wall) belong to no face and are not drawn.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .style import MapStyle, style_for
from .surface import HEMIS, _add_colorbar, _bg_array, _fsaverage_name, fsaverage_meshes, \
    fsaverage_sulcal, surface_values

__all__ = ["plot_flat", "flat_extent"]


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
              flat_mesh=None, bg_map=None) -> plt.Figure:
    """Draw vertex values on flat meshes, left hemisphere left, right hemisphere right.

    Parameters
    ----------
    surf_img : SurfaceImage
        Values per vertex (vertex order of ``flat_mesh``).
    kind, title, style
        As in :func:`gim_brain.maps.surface.plot_surface`.
    flat_mesh : PolyMesh, optional
        Flat mesh with coordinates ``(x, y, ~0)``; default: nilearn's fsaverage flat mesh
        of the matching resolution.
    bg_map : SurfaceImage or dict of arrays, optional
        Shading; default: fsaverage sulcal depth.

    Returns
    -------
    matplotlib Figure
    """
    from nilearn import plotting

    values = surface_values(surf_img)
    if flat_mesh is None or bg_map is None:
        name = _fsaverage_name(values["left"].size)
        flat_mesh = flat_mesh if flat_mesh is not None else fsaverage_meshes(name)["flat"]
        bg_map = bg_map if bg_map is not None else fsaverage_sulcal(name, mesh_type="flat")
    all_values = np.concatenate([values[h] for h in HEMIS])
    style = style or style_for(kind, all_values[all_values != 0])
    fig = plt.figure(figsize=(12, 5.4))
    for n, hemi in enumerate(HEMIS):
        ax = fig.add_subplot(1, 2, n + 1, projection="3d")
        plotting.plot_surf_stat_map(
            flat_mesh.parts[hemi], stat_map=style.for_display(values[hemi]),
            bg_map=_bg_array(bg_map, hemi), hemi=hemi, view=(90.0, 270.0), axes=ax, figure=fig,
            cmap=style.cmap, threshold=style.nilearn_threshold, vmax=style.vmax,
            vmin=style.vmin if not style.signed else None,
            symmetric_cbar=style.signed, colorbar=False, bg_on_data=True,
        )
        ax.set_title(f"{hemi} hemisphere", fontsize=10)
    fig.subplots_adjust(left=0.0, right=1.0, wspace=0.0, top=0.9, bottom=0.12)
    _add_colorbar(fig, style)
    if title:
        fig.suptitle(title, fontsize=13)
    return fig
