"""``surface``: the values on fsaverage5 (MNI data) or the subject's own surfaces (pycortex db)."""

from __future__ import annotations

from pathlib import Path

from ..html import readable
from ..render import MapJob, register_map_kind


@register_map_kind("surface", order=20, needs_surface=True,
                   description="cortical surface views + per-vertex values (.npz)")
def draw(job: MapJob) -> list[Path]:
    from ..._cache import atomic_save_npz
    from .. import native, surface

    if job.subject is not None:
        vertex = native.voxels_to_vertices(job.values, job.subject)
        fig = native.plot_native_surface(job.values, job.subject, job.kind, job.title, job.style)
    else:
        vertex = surface.surface_values(job.surf_img)
        fig = surface.plot_surface(job.surf_img, job.kind, job.title, job.style)
    npz = job.out / f"{job.slug}_surface.npz"
    atomic_save_npz(npz, left=vertex["left"], right=vertex["right"])
    return [readable(npz), job.save_png(fig, f"{job.slug}_surface.png")]
