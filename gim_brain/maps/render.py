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
from typing import Any, Callable, Mapping

import matplotlib.pyplot as plt
import numpy as np

from .._cache import atomic_write_bytes
from .html import readable
from .style import style_for
from .values import SelectedValues, select_values

__all__ = ["MAP_KINDS", "TargetsError", "MapTargets", "MapKind", "MapJob", "parse_targets",
           "register_map_kind", "map_kinds", "render_maps", "render_run"]

#: The built-in map kinds (every registered kind: :func:`map_kinds`).
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


@dataclass(frozen=True)
class MapKind:
    """A registered kind of map.

    Attributes
    ----------
    name : str
        What ``--kind`` calls it.
    draw : callable ``(job: MapJob) -> list of Path``
        Writes the kind's files for one value array into ``job.out`` and returns their paths.
    order : int
        Position in the default "every kind" list.
    needs_surface : bool
        Needs MNI152 voxels or a pycortex-db subject (a native volume cannot be drawn).
    description : str
    """

    name: str
    draw: Callable[["MapJob"], list]
    order: int = 100
    needs_surface: bool = False
    description: str = ""


_KINDS: dict[str, MapKind] = {}


def register_map_kind(name: str, order: int = 100, needs_surface: bool = False,
                      description: str = ""):
    """Decorator registering ``draw(job) -> [paths]`` as map kind ``name``.

    A new kind is one module in :mod:`gim_brain.maps.kinds` that defines its ``draw`` with this
    decorator; it is found there without being listed anywhere.
    """

    def wrap(draw):
        _KINDS[name] = MapKind(name, draw, order, needs_surface, description)
        return draw

    return wrap


def _load_kinds() -> None:
    import importlib
    import pkgutil

    from . import kinds

    for mod in pkgutil.iter_modules(kinds.__path__):
        importlib.import_module(f"{kinds.__name__}.{mod.name}")


def map_kinds() -> dict[str, MapKind]:
    """Every registered map kind, in default order."""
    _load_kinds()
    return dict(sorted(_KINDS.items(), key=lambda kv: (kv[1].order, kv[0])))


@dataclass
class MapJob:
    """Everything a map kind's ``draw`` needs for one value array.

    Attributes
    ----------
    selected : SelectedValues
    targets : MapTargets
    out : Path
        Output folder (exists).
    dpi : int
    roi_radius : float
        mm, for ROI summaries.
    values : float64 (n_targets,)
    style : MapStyle
    title : str
    img : Nifti1Image
        The values in the volume (MNI / native mask, or the subject's native grid).
    bg : background image (or "MNI152", or None)
    subject : native.PycortexSubject or None
        The ds003020 subject for pycortex-db targets.
    """

    selected: SelectedValues
    targets: MapTargets
    out: Path
    dpi: int
    roi_radius: float
    values: np.ndarray
    style: Any
    title: str
    img: Any
    bg: Any
    subject: Any = None
    _surf: Any = None

    @property
    def slug(self) -> str:
        return self.selected.slug

    @property
    def kind(self) -> str:
        """The value's style kind (r, unique, diff, ...)."""
        return self.selected.kind

    @property
    def surf_img(self):
        """The values on fsaverage5 (MNI targets only), computed once for all kinds."""
        if self._surf is None and self.targets.is_mni:
            from . import surface

            self._surf = surface.mni_to_fsaverage(self.img)
        return self._surf

    def save_png(self, fig, name: str) -> Path:
        """Save a figure as ``out/name`` (closed afterwards); returns the path."""
        return _save_png(fig, self.out / name, self.dpi)


def render_maps(selected: SelectedValues, targets: MapTargets, out_dir: str | Path,
                kinds=None, dpi: int = 100, roi_radius: float = 8.0) -> dict[str, list[Path]]:
    """Draw ``kinds`` of maps of ``selected`` and save them, with their data, in ``out_dir``.

    Files of the built-in kinds (``{slug}`` = ``selected.slug``):

    * volume: ``{slug}.nii.gz`` (values in the mask grid), ``{slug}_volume.png``, and for
      MNI data ``{slug}_glass.png`` and ``{slug}_rois.csv`` (Seitzman network summary).
    * surface: ``{slug}_surface.png`` and ``{slug}_surface.npz`` (``left``/``right``
      per-vertex values: fsaverage5 for MNI data, the subject's vertices for pycortex-db).
    * flat: ``{slug}_flat.png``.
    * html: ``{slug}_surface.html`` and ``{slug}_volume.html``.

    Parameters
    ----------
    kinds : sequence of str or None
        Registered kinds (:func:`map_kinds`); None: every kind.

    Returns
    -------
    dict kind -> list of written paths
    """
    from . import native, volume

    registry = map_kinds()
    kinds = tuple(registry) if kinds is None else tuple(kinds)
    unknown = [k for k in kinds if k not in registry]
    if unknown:
        raise ValueError(f"unknown map kind(s) {unknown}; expected some of {tuple(registry)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    values = np.asarray(selected.values, dtype=float)
    style = style_for(selected.kind, values[np.isfinite(values)])
    title = f"{selected.label} — subject {targets.subject}"

    subject = None
    if targets.kind == "pycortex_db":
        subject = native.load_pycortex_subject(targets.db, targets.subject, targets.xfm,
                                               targets.mask_type)
        img = native.native_volume_img(values, subject)
        bg = subject.reference_img if subject.reference_img is not None else None
    else:
        img = volume.values_to_img(values, targets.mask, order=targets.order)
        bg = "MNI152" if targets.is_mni else None
    needs = [k for k in kinds if registry[k].needs_surface]
    if not targets.is_mni and subject is None and needs:
        raise TargetsError(
            f"{' and '.join(needs)} maps need MNI152 voxels or a pycortex-db subject; the mask "
            f"{targets.mask} is in {targets.space!r} space (use --kind volume,html)")
    job = MapJob(selected, targets, out, dpi, roi_radius, values, style, title, img, bg, subject)
    return {k: list(registry[k].draw(job)) for k in kinds}


def _nifti_bytes(img) -> bytes:
    """Gzipped NIfTI-1 file content of ``img``."""
    import gzip

    import nibabel as nib

    single = nib.Nifti1Image(np.asarray(img.dataobj, dtype=np.float32), img.affine, img.header)
    return gzip.compress(single.to_bytes(), compresslevel=6)


def render_run(run_dir: str | Path, out_dir: str | Path, kinds=None, value: str = "r",
               feature_set: str | None = None, dpi: int = 100) -> dict[str, list[Path]]:
    """Draw ``kinds`` of maps of ``value`` (see :mod:`.values`) for a run directory.

    Results are keyed by their folder name (the SPEC's slug), which names the output files;
    ``feature_set`` may be that folder name or the SPEC. Without ``feature_set``, every feature
    set of the run that has ``value`` is mapped (file names carry the feature set). A run of
    several subjects (``RUN/<subject>/``) maps each subject into ``out_dir/<subject>/``.

    Raises
    ------
    RunDirError (FileNotFoundError)
        ``run_dir`` lacks ``targets.json`` or saved results.
    UnknownValueError, TargetsError, MaskShapeError
        An unknown value or feature set, targets that are not voxels, a mask that does not fit.
    """
    from ..encoding.run import RunDirError, load_results, read_summary, read_targets, slugify
    from .values import UnknownValueError, parse_value

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"run directory {run_dir} does not exist")
    if (run_dir / "summary.json").is_file():  # before targets.json, which an older fit may have left
        summary = read_summary(run_dir)
        if isinstance(summary.get("runs"), dict):  # several subjects
            written: dict[str, list[Path]] = {}
            for subject, sub in summary["runs"].items():
                for kind, paths in render_run(run_dir / sub, Path(out_dir) / subject, kinds,
                                              value, feature_set, dpi).items():
                    written.setdefault(kind, []).extend(paths)
            return written
    spec = read_targets(run_dir)
    results = {slugify(s): res for s, res in load_results(run_dir).items()}
    if "subject" not in spec:
        try:
            spec["subject"] = read_summary(run_dir).get("subject")
        except (RunDirError, ValueError):
            pass  # the subject only goes into titles
    if feature_set is None and len(results) > 1 and parse_value(value)[0] != "diff":
        selections = []
        for key in results:
            try:
                selections.append(select_values(value, results, key))
            except UnknownValueError:
                continue  # e.g. unique:gim for a feature set without a gim band
        if not selections:
            raise UnknownValueError(f"no feature set of the run ({', '.join(results)}) has "
                                    f"{value!r}")
    else:
        selections = [select_values(value, results, feature_set)]
    targets = parse_targets(spec, base=run_dir, source=str(run_dir / "targets.json"))
    written = {}
    for selected in selections:
        for kind, paths in render_maps(selected, targets, out_dir, kinds, dpi=dpi).items():
            written.setdefault(kind, []).extend(paths)
    if targets.kind == "pycortex_db" and "flat" in written:  # overlays.svg ROIs, every feature set
        from .rois import run_roi_summary

        written.setdefault("flat", []).extend(
            run_roi_summary(results, value, targets.db, targets.subject, targets.xfm,
                            targets.mask_type, out_dir, dpi))
    return written
