"""``volume``: the values as NIfTI, a slice view, and for MNI data a glass brain and ROI table."""

from __future__ import annotations

from pathlib import Path

from ..html import readable
from ..render import MapJob, _nifti_bytes, register_map_kind


@register_map_kind("volume", order=10, description="NIfTI + slices (+ glass brain, ROI csv on MNI)")
def draw(job: MapJob) -> list[Path]:
    from ..._cache import atomic_write_bytes
    from .. import compare, volume

    nii = job.out / f"{job.slug}.nii.gz"
    atomic_write_bytes(nii, _nifti_bytes(job.img))
    written = [readable(nii), job.save_png(
        volume.plot_volume(job.img, job.kind, job.title, job.style, bg_img=job.bg),
        f"{job.slug}_volume.png")]
    if job.targets.is_mni:
        written.append(job.save_png(volume.plot_glass(job.img, job.kind, job.title, job.style),
                                    f"{job.slug}_glass.png"))
        coords = compare.voxel_coordinates_mm(volume.load_mask(job.targets.mask), job.targets.order)
        table = compare.roi_summary(job.values, compare.seitzman_labels(coords, job.roi_radius))
        csv = job.out / f"{job.slug}_rois.csv"
        atomic_write_bytes(csv, table.to_csv(index_label="region").encode())
        written.append(readable(csv))
    return written
