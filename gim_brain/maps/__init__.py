"""Brain maps of per-voxel results with nibabel and nilearn, offline and without pycortex.

* :mod:`~gim_brain.maps.volume` — values <-> NIfTI; stat-map and glass-brain figures.
* :mod:`~gim_brain.maps.surface` — MNI volume -> fsaverage; lateral/medial inflated views.
* :mod:`~gim_brain.maps.flat` — fsaverage (or subject) flat maps, hemispheres side by side.
* :mod:`~gim_brain.maps.native` — a ds003020 subject's own surfaces from its pycortex-db.
* :mod:`~gim_brain.maps.masks` — pycortex's thick/thin/cortical voxel masks from the surfaces.
* :mod:`~gim_brain.maps.overlays` — ROI outlines of a subject's ``overlays.svg``.
* :mod:`~gim_brain.maps.rois` — mean value per overlays.svg ROI and feature set (native runs).
* :mod:`~gim_brain.maps.html` — self-contained interactive HTML pages.
* :mod:`~gim_brain.maps.compare` — difference / unique-variance maps and ROI summaries.
* :mod:`~gim_brain.maps.style` — colour maps, ranges and thresholds per kind of value.
* :mod:`~gim_brain.maps.values` — the ``--value`` grammar (r, alpha, unique:S, diff:A-B...).
* :mod:`~gim_brain.maps.render` — every requested map of a run, with the data behind it.

Figures are returned as matplotlib Figures; the data behind them (Nifti1Image, SurfaceImage,
per-vertex arrays) come from the functions that build them, so they can be checked.
"""

from .style import MapStyle, style_for
from .volume import MaskShapeError, img_to_values, load_mask, plot_glass, plot_volume, values_to_img
from .surface import mni_to_fsaverage, plot_surface, surface_values
from .flat import plot_flat
from .native import (PycortexSubject, load_pycortex_subject, native_surface_image,
                     native_volume_img, plot_native_flat, plot_native_surface, voxels_to_vertices)
from .html import external_resources, surface_html, volume_html
from .compare import difference, roi_summary, seitzman_labels, unique_variance
from .values import SelectedValues, UnknownValueError, select_values
from .render import MAP_KINDS, MapTargets, TargetsError, parse_targets, render_maps, render_run

__all__ = [
    "MapStyle", "style_for", "MaskShapeError", "load_mask", "values_to_img", "img_to_values",
    "plot_volume", "plot_glass", "mni_to_fsaverage", "surface_values", "plot_surface",
    "plot_flat", "PycortexSubject", "load_pycortex_subject", "voxels_to_vertices",
    "native_surface_image", "native_volume_img", "plot_native_surface", "plot_native_flat",
    "surface_html", "volume_html", "external_resources", "difference", "unique_variance",
    "roi_summary", "seitzman_labels", "SelectedValues", "UnknownValueError", "select_values",
    "MAP_KINDS", "MapTargets", "TargetsError", "parse_targets", "render_maps",
    "render_run",
]
