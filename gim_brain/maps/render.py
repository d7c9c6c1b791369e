"""Write every requested kind of map of one value array, with the data behind each figure.

The targets description is the one a run directory keeps in ``targets.json``:

* ``{"kind": "volume", "mask": PATH, "subject": S, "space": "MNI152" | "native",
  "order": "nifti" | "pycortex"}`` — voxels of a NIfTI mask (order defaults to nifti;
  without "space", the mask counts as MNI152 when >= 90% of its voxels lie inside the
  MNI152 head). Surface, flat and surface-HTML maps need MNI152.
* ``{"kind": "pycortex_db", "db": FOLDER, "subject": "UTS03", "xfm": NAME, "mask_type": "thick"}``
  — ds003020 native voxels, mapped on the subject's own surfaces.
* ``{"kind": "components", ...}`` — not voxels: no brain map can be drawn.

Relative paths are resolved against ``base`` (the run directory) when they exist there,
else against the working directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import matplotlib.pyplot as plt
import numpy as np

from .._cache import atomic_save_npz, atomic_write_bytes
from .html import readable
from .style import style_for
from .values import SelectedValues, select_values

__all__ = ["MAP_KINDS", "TargetsError", "MapTargets", "parse_targets", "render_maps", "render_run"]

MAP_KINDS = ("volume", "surface", "flat", "html")
#: a volume mask without a recorded "space" counts as MNI152 when at least this fraction of
#: its voxels lies inside the MNI152 head
MNI_OVERLAP_MIN = 0.9


class TargetsError(ValueError):
    """targets.json does not describe voxels that can be mapped."""


@dataclass
class MapTargets:
    """Where the values of a result live in the brain (parsed ``targets.json``)."""

    kind: str  # "volume" or "pycortex_db"
    subject: str
    mask: Path | None = None
    space: str = "MNI152"
    order: str = "nifti"
    db: Path | None = None
    xfm: str | None = None
    mask_type: str = "thick"
    extra: dict = field(default_factory=dict)

    @property
    def is_mni(self) -> bool:
        return self.kind == "volume" and self.space.upper().startswith("MNI")


def parse_targets(spec: Mapping, base: str | Path = ".", source: str = "targets.json") -> MapTargets:
    """Check and resolve a targets description (see module docstring).

    Raises
    ------
    TargetsError
        Unknown or unmappable kind, or a missing key (named, with ``source``).
    """
    base = Path(base)
    kind = spec.get("kind")

    def resolve(key: str) -> Path:
        if not spec.get(key):
            raise TargetsError(f"{source}: kind {kind!r} needs a {key!r} entry")
        path = Path(spec[key])
        if path.is_absolute() or not (base / path).exists():
            return path  # absolute, or relative to the working directory
        return base / path  # relative to the run directory

    subject = str(spec.get("subject") or "")
    if kind == "volume":
        order = spec.get("order", "nifti")
        if order not in ("nifti", "pycortex"):
            raise TargetsError(f"{source}: order must be 'nifti' or 'pycortex', got {order!r}")
        mask = resolve("mask")
        space = spec.get("space")
        if space is None:  # not recorded: decide from where the mask lies in world space
            from .volume import mni_overlap

            space = "MNI152" if mni_overlap(mask) >= MNI_OVERLAP_MIN else "native"
        return MapTargets("volume", subject or "MNI", mask=mask, space=str(space), order=order)
    if kind == "pycortex_db":
        if not subject:
            raise TargetsError(f"{source}: kind 'pycortex_db' needs a 'subject' entry")
        return MapTargets("pycortex_db", subject, db=resolve("db"), xfm=spec.get("xfm"),
                          mask_type=str(spec.get("mask_type", "thick")))
    if kind == "components":
        reason = spec.get("reason", "")
        raise TargetsError(
            f"{source}: the targets are components ({reason}), not voxels, so there is no "
            "brain map to draw; fit on voxel responses to map results")
    raise TargetsError(f"{source}: unknown targets kind {kind!r}; expected 'volume', "
                       "'pycortex_db' or 'components'")


def _save_png(fig: plt.Figure, path: Path, dpi: int) -> Path:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return readable(path)


def render_maps(selected: SelectedValues, targets: MapTargets, out_dir: str | Path,
                kinds=MAP_KINDS, dpi: int = 100, roi_radius: float = 8.0) -> dict[str, list[Path]]:
    """Draw ``kinds`` of maps of ``selected`` and save them, with their data, in ``out_dir``.

    Files (``{slug}`` = ``selected.slug``):

    * volume: ``{slug}.nii.gz`` (values in the mask grid), ``{slug}_volume.png``, and for
      MNI data ``{slug}_glass.png`` and ``{slug}_rois.csv`` (Seitzman network summary).
    * surface: ``{slug}_surface.png`` and ``{slug}_surface.npz`` (``left``/``right``
      per-vertex values: fsaverage5 for MNI data, the subject's vertices for pycortex-db).
    * flat: ``{slug}_flat.png``.
    * html: ``{slug}_surface.html`` and ``{slug}_volume.html``.

    Returns
    -------
    dict kind -> list of written paths
    """
    from . import compare, flat, html, native, surface, volume

    kinds = tuple(kinds)
    unknown = [k for k in kinds if k not in MAP_KINDS]
    if unknown:
        raise ValueError(f"unknown map kind(s) {unknown}; expected some of {MAP_KINDS}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    slug, kind = selected.slug, selected.kind
    values = np.asarray(selected.values, dtype=float)
    style = style_for(kind, values[np.isfinite(values)])
    title = f"{selected.label} — subject {targets.subject}"
    written: dict[str, list[Path]] = {k: [] for k in kinds}

    subject = None
    if targets.kind == "pycortex_db":
        subject = native.load_pycortex_subject(targets.db, targets.subject, targets.xfm,
                                               targets.mask_type)
        img = native.native_volume_img(values, subject)
        bg = subject.reference_img if subject.reference_img is not None else None
    else:
        img = volume.values_to_img(values, targets.mask, order=targets.order)
        bg = "MNI152" if targets.is_mni else None
    if not targets.is_mni and subject is None and set(kinds) & {"surface", "flat"}:
        raise TargetsError(
            f"surface and flat maps need MNI152 voxels or a pycortex-db subject; the mask "
            f"{targets.mask} is in {targets.space!r} space (use --kind volume,html)")

    surf_img = None
    if targets.is_mni and set(kinds) & {"surface", "flat", "html"}:
        surf_img = surface.mni_to_fsaverage(img)

    if "volume" in kinds:
        nii = out / f"{slug}.nii.gz"
        atomic_write_bytes(nii, _nifti_bytes(img))
        written["volume"].append(readable(nii))
        written["volume"].append(_save_png(
            volume.plot_volume(img, kind, title, style, bg_img=bg), out / f"{slug}_volume.png", dpi))
        if targets.is_mni:
            written["volume"].append(_save_png(
                volume.plot_glass(img, kind, title, style), out / f"{slug}_glass.png", dpi))
            coords = compare.voxel_coordinates_mm(volume.load_mask(targets.mask), targets.order)
            table = compare.roi_summary(values, compare.seitzman_labels(coords, roi_radius))
            csv = out / f"{slug}_rois.csv"
            atomic_write_bytes(csv, table.to_csv(index_label="region").encode())
            written["volume"].append(readable(csv))

    if "surface" in kinds:
        if subject is not None:
            vertex = native.voxels_to_vertices(values, subject)
            fig = native.plot_native_surface(values, subject, kind, title, style)
        else:
            vertex = surface.surface_values(surf_img)
            fig = surface.plot_surface(surf_img, kind, title, style)
        npz = out / f"{slug}_surface.npz"
        atomic_save_npz(npz, left=vertex["left"], right=vertex["right"])
        written["surface"] += [readable(npz), _save_png(fig, out / f"{slug}_surface.png", dpi)]

    if "flat" in kinds:
        if subject is not None:
            fig = native.plot_native_flat(values, subject, kind, title, style)
        else:
            fig = flat.plot_flat(surf_img, kind, title, style)
        written["flat"].append(_save_png(fig, out / f"{slug}_flat.png", dpi))

    if "html" in kinds:
        if subject is not None:
            page = html.surface_html(native.native_surface_image(values, subject), kind, title,
                                     style, mesh=subject.polymesh("inflated"),
                                     bg_map=native._subject_shading(subject))
            written["html"].append(html.save_html(page, out / f"{slug}_surface.html"))
        elif surf_img is not None:
            page = html.surface_html(surf_img, kind, title, style)
            written["html"].append(html.save_html(page, out / f"{slug}_surface.html"))
        page = html.volume_html(img, kind, title, style, bg_img=bg)
        written["html"].append(html.save_html(page, out / f"{slug}_volume.html"))
    return written


def _nifti_bytes(img) -> bytes:
    """Gzipped NIfTI-1 file content of ``img``."""
    import gzip

    import nibabel as nib

    single = nib.Nifti1Image(np.asarray(img.dataobj, dtype=np.float32), img.affine, img.header)
    return gzip.compress(single.to_bytes(), compresslevel=6)


def render_run(run_dir: str | Path, out_dir: str | Path, kinds=MAP_KINDS, value: str = "r",
               feature_set: str | None = None, dpi: int = 100) -> dict[str, list[Path]]:
    """Draw ``kinds`` of maps of ``value`` (see :mod:`.values`) for a run directory.

    Results are keyed by their folder name (the SPEC's slug), which names the output files;
    ``feature_set`` may be that folder name or the SPEC.

    Raises
    ------
    RunDirError (FileNotFoundError)
        ``run_dir`` lacks ``targets.json`` or saved results.
    UnknownValueError, TargetsError, MaskShapeError
        An unknown value or feature set, targets that are not voxels, a mask that does not fit.
    """
    from ..encoding.run import RunDirError, load_results, read_summary, read_targets, slugify

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"run directory {run_dir} does not exist")
    spec = read_targets(run_dir)
    results = {slugify(s): res for s, res in load_results(run_dir).items()}
    if "subject" not in spec:
        try:
            spec["subject"] = read_summary(run_dir).get("subject")
        except (RunDirError, ValueError):
            pass  # the subject only goes into titles
    selected = select_values(value, results, feature_set)
    targets = parse_targets(spec, base=run_dir, source=str(run_dir / "targets.json"))
    written = render_maps(selected, targets, out_dir, kinds, dpi=dpi)
    if targets.kind == "pycortex_db" and "flat" in kinds:  # overlays.svg ROIs, every feature set
        from .rois import run_roi_summary

        written["flat"] += run_roi_summary(results, value, targets.db, targets.subject,
                                           targets.xfm, targets.mask_type, out_dir, dpi)
    return written
