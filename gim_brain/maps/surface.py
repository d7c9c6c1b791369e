"""MNI volumes -> fsaverage surfaces, and the four-view inflated-surface figure.

fsaverage meshes and sulcal depth ship with nilearn (``load_fsaverage``), so nothing is
downloaded.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np

from .style import MapStyle, style_for

__all__ = ["HEMIS", "fsaverage_meshes", "fsaverage_sulcal", "mni_to_fsaverage",
           "surface_values", "plot_surface"]

HEMIS = ("left", "right")
#: (hemisphere, view) for each panel of :func:`plot_surface`, row by row.
SURFACE_PANELS = (("left", "lateral"), ("right", "lateral"), ("left", "medial"), ("right", "medial"))


def fsaverage_meshes(mesh: str = "fsaverage5"):
    """nilearn's bundled fsaverage meshes: Bunch with pial, white_matter, inflated, sphere, flat.

    Raises
    ------
    FileNotFoundError
        When the mesh is not bundled with nilearn and cannot be downloaded (offline).
    """
    from nilearn import datasets

    try:
        return datasets.load_fsaverage(mesh)
    except Exception as exc:  # nilearn raises various errors when a fetch fails offline
        raise FileNotFoundError(
            f"fsaverage mesh {mesh!r} is not available offline ({type(exc).__name__}: {exc}); "
            "use 'fsaverage5', which ships with nilearn"
        ) from exc


def fsaverage_sulcal(mesh: str = "fsaverage5", mesh_type: str = "inflated"):
    """Sulcal depth on a bundled fsaverage mesh, as a ``SurfaceImage`` (for shading)."""
    from nilearn import datasets

    try:
        return datasets.load_fsaverage_data(mesh=mesh, mesh_type=mesh_type, data_type="sulcal")
    except Exception as exc:
        raise FileNotFoundError(
            f"sulcal depth of {mesh!r} is not available offline ({type(exc).__name__}: {exc})"
        ) from exc


def mni_to_fsaverage(img: nib.Nifti1Image, mesh: str = "fsaverage5", radius: float = 3.0,
                     interpolation: str = "linear", n_samples: int = 10):
    """Sample an MNI-space volume on fsaverage (``vol_to_surf`` between white and pial).

    Parameters
    ----------
    img : Nifti1Image
        Values in MNI152 space (0 outside the mask; NaN/inf are sampled as 0).
    mesh : str
        fsaverage resolution (``"fsaverage5"``: 10,242 vertices per hemisphere).
    radius : float
        Sampling radius in mm.
    interpolation : {"linear", "nearest", "nearest_most_frequent"}
    n_samples : int
        Points sampled along each white->pial segment and averaged.

    Returns
    -------
    SurfaceImage
        Data ``{"left": (n_vertices,), "right": (n_vertices,)}`` on the pial mesh; use
        :func:`plot_surface` to draw it on the inflated mesh.
    """
    from nilearn.surface import PolyMesh, SurfaceImage, vol_to_surf

    meshes = fsaverage_meshes(mesh)
    pial, white = meshes["pial"], meshes["white_matter"]
    data_3d = np.asarray(img.dataobj, dtype=np.float32)
    if not np.isfinite(data_3d).all():  # NaN voxels (e.g. constant targets) would spread
        img = nib.Nifti1Image(np.nan_to_num(data_3d, nan=0.0, posinf=0.0, neginf=0.0), img.affine)
    data = {}
    for hemi in HEMIS:
        data[hemi] = vol_to_surf(
            img, pial.parts[hemi], inner_mesh=white.parts[hemi], radius=radius,
            interpolation=interpolation, n_samples=n_samples,
        ).astype(np.float32)
    return SurfaceImage(mesh=PolyMesh(left=pial.parts["left"], right=pial.parts["right"]),
                        data=data)


def surface_values(surf_img) -> dict[str, np.ndarray]:
    """``{"left": (n,), "right": (n,)}`` float arrays of a single-sample ``SurfaceImage``."""
    return {hemi: np.asarray(surf_img.data.parts[hemi], dtype=float).reshape(-1)
            for hemi in HEMIS}


def _bg_array(bg_map, hemi: str):
    if bg_map is None:
        return None
    if isinstance(bg_map, dict):
        return np.asarray(bg_map[hemi], dtype=float)
    return np.asarray(bg_map.data.parts[hemi], dtype=float).reshape(-1)


def plot_surface(surf_img, kind: str = "r", title: str = "", style: MapStyle | None = None,
                 mesh=None, bg_map=None, panels=SURFACE_PANELS) -> plt.Figure:
    """Lateral and medial views of both hemispheres in one figure.

    Parameters
    ----------
    surf_img : SurfaceImage
        Values per vertex (e.g. from :func:`mni_to_fsaverage`).
    kind : str
        Value kind (colours, threshold).
    title : str
        Figure title (what, which subject).
    style : MapStyle, optional
    mesh : PolyMesh, optional
        Mesh to draw on (same vertices as ``surf_img``); default: fsaverage inflated of
        the matching resolution.
    bg_map : SurfaceImage or dict of arrays, optional
        Shading (sulcal depth / curvature); default: fsaverage sulcal depth.

    Returns
    -------
    matplotlib Figure
    """
    from nilearn import plotting

    values = surface_values(surf_img)
    if mesh is None or bg_map is None:
        name = _fsaverage_name(values["left"].size)
        mesh = mesh if mesh is not None else fsaverage_meshes(name)["inflated"]
        bg_map = bg_map if bg_map is not None else fsaverage_sulcal(name)
    all_values = np.concatenate([values[h] for h in HEMIS])
    style = style or style_for(kind, all_values[all_values != 0])
    ncols = 2
    nrows = int(np.ceil(len(panels) / ncols))
    fig = plt.figure(figsize=(5.2 * ncols, 3.6 * nrows + 0.6))
    for n, (hemi, view) in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, n + 1, projection="3d")
        plotting.plot_surf_stat_map(
            mesh.parts[hemi], stat_map=style.for_display(values[hemi]),
            bg_map=_bg_array(bg_map, hemi), hemi=hemi, view=view, axes=ax, figure=fig,
            cmap=style.cmap, threshold=style.nilearn_threshold, vmax=style.vmax,
            vmin=style.vmin if not style.signed else None,
            symmetric_cbar=style.signed, colorbar=False, bg_on_data=True,
        )
        ax.set_title(f"{hemi} {view}", fontsize=10)
    _add_colorbar(fig, style)
    if title:
        fig.suptitle(title, fontsize=13)
    return fig


def _add_colorbar(fig: plt.Figure, style: MapStyle) -> None:
    from matplotlib import cm, colors

    norm = colors.Normalize(vmin=style.vmin, vmax=style.vmax)
    mappable = cm.ScalarMappable(norm=norm, cmap=style.cmap)
    cax = fig.add_axes([0.35, 0.08, 0.3, 0.022])
    bar = fig.colorbar(mappable, cax=cax, orientation="horizontal")
    bar.set_label(style.label)


def _fsaverage_name(n_vertices: int) -> str:
    sizes = {642: "fsaverage3", 2562: "fsaverage4", 10242: "fsaverage5",
             40962: "fsaverage6", 163842: "fsaverage"}
    if n_vertices not in sizes:
        raise ValueError(
            f"{n_vertices} vertices per hemisphere is no fsaverage mesh; pass mesh= and bg_map="
        )
    return sizes[n_vertices]
