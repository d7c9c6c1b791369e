"""``flat``: a flattened view of the cortex (fsaverage5 for MNI data, or the subject's own)."""

from __future__ import annotations

from pathlib import Path

from ..render import MapJob, register_map_kind


@register_map_kind("flat", order=30, needs_surface=True, description="flattened cortex (PNG)")
def draw(job: MapJob) -> list[Path]:
    from .. import flat, native

    if job.subject is not None:
        fig = native.plot_native_flat(job.values, job.subject, job.kind, job.title, job.style)
    else:
        fig = flat.plot_flat(job.surf_img, job.kind, job.title, job.style)
    return [job.save_png(fig, f"{job.slug}_flat.png")]
