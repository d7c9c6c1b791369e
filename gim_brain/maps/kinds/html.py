"""``html``: offline interactive pages of the surface (when there is one) and of the volume."""

from __future__ import annotations

from pathlib import Path

from ..render import MapJob, register_map_kind


@register_map_kind("html", order=40, description="interactive offline HTML (surface, volume)")
def draw(job: MapJob) -> list[Path]:
    from .. import html, native

    written = []
    if job.subject is not None:
        page = html.surface_html(native.native_surface_image(job.values, job.subject), job.kind,
                                 job.title, job.style, mesh=job.subject.polymesh("inflated"),
                                 bg_map=native._subject_shading(job.subject))
        written.append(html.save_html(page, job.out / f"{job.slug}_surface.html"))
    elif job.surf_img is not None:
        page = html.surface_html(job.surf_img, job.kind, job.title, job.style)
        written.append(html.save_html(page, job.out / f"{job.slug}_surface.html"))
    page = html.volume_html(job.img, job.kind, job.title, job.style, bg_img=job.bg)
    written.append(html.save_html(page, job.out / f"{job.slug}_volume.html"))
    return written
