"""Maps in a ds003020 subject's own space, read from a pycortex filestore without pycortex.

A pycortex filestore ("pycortex-db") holds, per subject::

    {db}/{subject}/transforms/{xfm}/matrices.xfm        JSON {"coord": 4x4, "magnet": 4x4}
    {db}/{subject}/transforms/{xfm}/mask_thick.nii.gz   voxel mask in the functional grid
    {db}/{subject}/transforms/{xfm}/reference.nii.gz    functional reference volume (optional here)
    {db}/{subject}/surfaces/{name}_{hemi}.gii           GIfTI: pointset (mm) + triangles;
                                                        name in wm, pia, inflated, flat, ...

``coord`` maps surface coordinates (mm, FreeSurfer surface RAS) to voxel coordinates
``(i, j, k)`` of the functional grid. pycortex reads volumes transposed, so its voxel order
is C order over ``(k, j, i)``: the mask as ``get_fdata().T != 0``. ds003020's preprocessed
responses use that order, for ``xfm = "{subject}_auto"`` and the ``thick`` mask.

A vertex takes the mean of the in-mask voxels met along the segment from its white-matter
to its pial position (``n_samples`` points, nearest voxel; one sample: mid-depth), or the
voxel at its fiducial position when only one surface exists; vertices that meet no in-mask voxel get NaN.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np
from scipy import sparse

from .style import MapStyle, style_for
from .surface import HEMIS
from .volume import MaskShapeError, values_to_img

__all__ = [
    "PycortexSubject",
    "load_pycortex_subject",
    "read_surface",
    "vertex_voxel_matrix",
    "voxels_to_vertices",
    "native_surface_image",
    "native_volume_img",
    "curvature_shading",
    "plot_native_surface",
    "plot_native_flat",
    "native_flat_raster",
    "curvature_underlay",
    "subject_overlays",
    "roi_outlines",
    "roi_label_positions",
    "subject_vertex_rois",
]

_PYCORTEX_HEMI = {"left": "lh", "right": "rh"}


def read_surface(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a pycortex surface file: GIfTI (pointset + triangle arrays) or npz (pts, polys).

    Returns
    -------
    coordinates : float64 (n_vertices, 3), mm
    faces : int64 (n_faces, 3)
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"surface file {path} does not exist")
    if path.suffix == ".npz":
        with np.load(path) as npz:
            if "pts" not in npz or "polys" not in npz:
                raise ValueError(f"surface file {path} lacks the 'pts'/'polys' arrays")
            return np.asarray(npz["pts"], float), np.asarray(npz["polys"], np.int64)
    gii = nib.load(str(path))
    points = gii.get_arrays_from_intent("NIFTI_INTENT_POINTSET")
    triangles = gii.get_arrays_from_intent("NIFTI_INTENT_TRIANGLE")
    if not points or not triangles:
        raise ValueError(f"GIfTI surface {path} needs a POINTSET and a TRIANGLE data array")
    return np.asarray(points[0].data, float), np.asarray(triangles[0].data, np.int64)


@dataclass
class PycortexSubject:
    """One subject of a pycortex filestore, read with nibabel only.

    Attributes
    ----------
    folder : Path
        ``{db}/{subject}``.
    subject, xfm_name : str
    coord : ndarray (4, 4)
        Surface mm -> functional voxel coordinates ``(i, j, k)``.
    mask_img : Nifti1Image
        Functional-grid mask; voxel order ``mask_img.get_fdata().T != 0``.
    reference_img : Nifti1Image or None
        Functional reference volume if the filestore has one.
    surfaces : dict
        ``{name: {"left": path, "right": path}}`` of the surface files found.
    mask_source : {"filestore", "built", "cache"}
        Where the mask came from (see :func:`gim_brain.maps.masks.find_or_build_mask`).
    """

    folder: Path
    subject: str
    xfm_name: str
    coord: np.ndarray
    mask_img: nib.Nifti1Image
    reference_img: nib.Nifti1Image | None
    surfaces: dict[str, dict[str, Path]]
    mask_source: str = "filestore"
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def mask(self) -> np.ndarray:
        """Boolean mask in pycortex's transposed layout ``(nk, nj, ni)`` (read once)."""
        key = ("mask", id(self.mask_img))
        if key not in self._cache:
            self._cache[key] = np.asanyarray(self.mask_img.dataobj).T != 0
        return self._cache[key]

    @property
    def n_voxels(self) -> int:
        return int(self.mask.sum())

    def surface(self, name: str, hemi: str) -> tuple[np.ndarray, np.ndarray]:
        """``(coordinates (n, 3) mm, faces (f, 3))`` of surface ``name`` for ``hemi``.

        ``"fiducial"`` falls back to the mean of ``wm`` and ``pia``, as in pycortex.
        """
        key = (name, hemi)
        if key not in self._cache:
            if name == "fiducial" and "fiducial" not in self.surfaces:
                wm, faces = self.surface("wm", hemi)
                pia, _ = self.surface("pia", hemi)
                self._cache[key] = ((wm + pia) / 2.0, faces)
            else:
                if name not in self.surfaces or hemi not in self.surfaces[name]:
                    raise FileNotFoundError(
                        f"surface {name!r} ({hemi}) not found under {self.folder / 'surfaces'}; "
                        f"found: {sorted(self.surfaces)}"
                    )
                self._cache[key] = read_surface(self.surfaces[name][hemi])
        return self._cache[key]

    def polymesh(self, name: str):
        """nilearn ``PolyMesh`` of surface ``name`` (flat meshes turned to face +z)."""
        from nilearn.surface import InMemoryMesh, PolyMesh

        parts = {}
        for hemi in HEMIS:
            coords, faces = self.surface(name, hemi)
            if name == "flat":
                coords = _flat_to_xy(coords)
            parts[hemi] = InMemoryMesh(coordinates=coords, faces=faces)
        return PolyMesh(**parts)


def _flat_to_xy(coords: np.ndarray) -> np.ndarray:
    """Reorder a flat mesh's axes so that its flat (least varying) axis is z."""
    used = np.isfinite(coords).all(1)
    normal_axis = int(np.argmin(coords[used].std(0)))
    order = [a for a in range(3) if a != normal_axis] + [normal_axis]
    return coords[:, order]


def load_pycortex_subject(db: str | Path, subject: str, xfm: str | None = None,
                          mask_type: str = "thick") -> PycortexSubject:
    """Read a subject's transform, mask and surface list from a pycortex filestore.

    Parameters
    ----------
    db : path
        Filestore root (ds003020: ``derivative/pycortex-db``).
    subject : str
        e.g. ``"UTS03"``.
    xfm : str, optional
        Transform name; default ``"{subject}_auto"``.
    mask_type : {"thick", "thin", "cortical"}
        Mask file ``mask_{mask_type}.nii.gz`` (ds003020 responses use ``thick``). When the
        filestore lacks it, it is built from the wm/pia surfaces with pycortex's definition
        (:mod:`gim_brain.maps.masks`) and saved beside the transform, or in the gim-brain
        cache when the filestore is read-only.

    Raises
    ------
    FileNotFoundError
        Naming the missing subject folder, transform folder, matrices.xfm, surfaces, or a
        mask that cannot be built (no reference volume, no wm/pia surfaces).
    ValueError
        A malformed transform, or a mask whose grid differs from the transform's reference.
    """
    folder = Path(db) / subject
    if not folder.is_dir():
        raise FileNotFoundError(f"pycortex subject folder {folder} does not exist")
    xfm = xfm or f"{subject}_auto"
    xfm_dir = folder / "transforms" / xfm
    if not xfm_dir.is_dir():
        present = sorted(p.name for p in (folder / "transforms").glob("*")) \
            if (folder / "transforms").is_dir() else []
        raise FileNotFoundError(
            f"transform {xfm!r} of subject {subject} not found: {xfm_dir} is missing "
            f"(transforms present: {present or 'none'})"
        )
    matrices = xfm_dir / "matrices.xfm"
    if not matrices.is_file():
        raise FileNotFoundError(f"transform file {matrices} is missing")
    try:
        coord = np.asarray(json.loads(matrices.read_text())["coord"], dtype=float)
    except (KeyError, json.JSONDecodeError) as exc:
        raise ValueError(f"{matrices} is not a pycortex transform (JSON with 'coord'): {exc}") \
            from exc
    if coord.shape != (4, 4):
        raise ValueError(f"'coord' in {matrices} must be 4x4, got shape {coord.shape}")
    ref_path = xfm_dir / "reference.nii.gz"
    reference = nib.load(str(ref_path)) if ref_path.is_file() else None
    surfaces: dict[str, dict[str, Path]] = {}
    surf_dir = folder / "surfaces"
    for path in sorted(surf_dir.glob("*_[lr]h.*")) if surf_dir.is_dir() else []:
        stem = path.name.split(".")[0]
        name, _, hemi = stem.rpartition("_")
        hemi = {"lh": "left", "rh": "right"}[hemi]
        surfaces.setdefault(name, {})[hemi] = path
    surfaces = {name: parts for name, parts in surfaces.items() if set(parts) == set(HEMIS)}
    if not surfaces:
        raise FileNotFoundError(
            f"subject {subject} has no surfaces: no {{name}}_lh/rh.gii pair in {surf_dir}")
    mask_path, mask_source = _find_mask(xfm_dir, mask_type, reference, surfaces, coord, subject)
    mask_img = nib.load(str(mask_path))
    if reference is not None and tuple(mask_img.shape[:3]) != tuple(reference.shape[:3]):
        raise ValueError(
            f"transform {xfm!r} of subject {subject}: mask {mask_path} has grid "
            f"{tuple(mask_img.shape[:3])} but the transform's reference {ref_path} has grid "
            f"{tuple(reference.shape[:3])}; the mask belongs to another transform")
    files = [mask_path, matrices, folder / "overlays.svg",
             *(p for parts in surfaces.values() for p in parts.values())]
    return PycortexSubject(folder, subject, xfm, coord, mask_img, reference, surfaces,
                           mask_source=mask_source, _cache=_shared_cache(files, mask_type))


#: derived data (vertex mappings, flat rasters, ROIs...) of recently loaded subjects, keyed by
#: their files' paths, sizes and modification times, so that loading the same unchanged
#: subject again (e.g. for the maps and then the ROI table of one run) reuses it
_RECENT: dict = {}
_RECENT_MAX = 2


def _shared_cache(files: list[Path], mask_type: str) -> dict:
    signature = [mask_type]
    for path in files:
        try:
            st = path.stat()
            signature.append((str(path.resolve()), st.st_size, st.st_mtime_ns))
        except OSError:
            signature.append((str(path), None, None))
    key = tuple(signature)
    if key not in _RECENT:
        while len(_RECENT) >= _RECENT_MAX:
            _RECENT.pop(next(iter(_RECENT)))
        _RECENT[key] = {}
    return _RECENT[key]


def _find_mask(xfm_dir: Path, mask_type: str, reference, surfaces: dict, coord: np.ndarray,
               subject: str) -> tuple[Path, str]:
    """The transform's mask file, built from the surfaces when the filestore lacks it."""
    from .masks import find_or_build_mask

    if {"wm", "pia"} <= set(surfaces):
        names = ["wm", "pia"]
    elif "fiducial" in surfaces:
        names = ["fiducial"]
    else:
        names = []
    if not names and not (xfm_dir / f"mask_{mask_type}.nii.gz").is_file():
        raise FileNotFoundError(
            f"mask {xfm_dir / f'mask_{mask_type}.nii.gz'} is missing and cannot be built: "
            f"subject {subject} has no wm+pia (or fiducial) surfaces, only {sorted(surfaces)}")

    def load() -> tuple[np.ndarray, np.ndarray | None]:
        stacked = [np.vstack([read_surface(surfaces[n][h])[0] for h in HEMIS]) for n in names]
        return stacked[0], (stacked[1] if len(stacked) > 1 else None)

    files = [surfaces[n][h] for n in names for h in HEMIS]
    return find_or_build_mask(xfm_dir, mask_type, reference, files, load, coord)


def _voxel_lookup(subject: PycortexSubject) -> np.ndarray:
    """(nk*nj*ni,) int: column of each voxel of the transposed grid in result order, or -1."""
    mask = subject.mask
    lookup = np.full(mask.size, -1, dtype=np.int64)
    lookup[np.flatnonzero(mask)] = np.arange(int(mask.sum()))
    return lookup


def vertex_voxel_matrix(subject: PycortexSubject, hemi: str, n_samples: int = 8) -> sparse.csr_matrix:
    """Sparse averaging matrix from result voxels to one hemisphere's vertices.

    Returns
    -------
    csr_matrix, shape (n_vertices, n_voxels)
        Row ``v`` averages the in-mask voxels sampled for vertex ``v`` (rows of vertices that
        meet none are empty).
    """
    key = ("matrix", hemi, n_samples)
    if key in subject._cache:
        return subject._cache[key]
    if "wm" in subject.surfaces and "pia" in subject.surfaces:
        wm, _ = subject.surface("wm", hemi)
        pia, _ = subject.surface("pia", hemi)
        # one sample: mid-depth (the fiducial point), as pycortex's depth-0.5 sampler
        fractions = np.linspace(0.0, 1.0, n_samples) if n_samples > 1 else np.array([0.5])
        segments = [wm + f * (pia - wm) for f in fractions]
    else:
        segments = [subject.surface("fiducial", hemi)[0]]
    n_vertices = segments[0].shape[0]
    shape = subject.mask.shape  # (nk, nj, ni)
    lookup = _voxel_lookup(subject)
    rows, cols = [], []
    for points in segments:
        ijk = points @ subject.coord[:3, :3].T + subject.coord[:3, 3]
        ijk = np.floor(ijk + 0.5).astype(np.int64)
        inside = ((ijk >= 0) & (ijk < np.array(shape[::-1]))).all(1)
        flat = np.full(n_vertices, -1, dtype=np.int64)
        flat[inside] = np.ravel_multi_index(
            (ijk[inside, 2], ijk[inside, 1], ijk[inside, 0]), shape)
        col = np.where(flat >= 0, lookup[np.maximum(flat, 0)], -1)
        hit = col >= 0
        rows.append(np.flatnonzero(hit))
        cols.append(col[hit])
    rows_a, cols_a = np.concatenate(rows), np.concatenate(cols)
    counts = sparse.coo_matrix((np.ones(rows_a.size), (rows_a, cols_a)),
                               shape=(n_vertices, subject.n_voxels)).tocsr()
    counts.sum_duplicates()
    totals = np.asarray(counts.sum(1)).ravel()
    scale = np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0)
    matrix = sparse.diags(scale) @ counts
    subject._cache[key] = matrix.tocsr()
    return subject._cache[key]


def voxels_to_vertices(values: np.ndarray, subject: PycortexSubject,
                       n_samples: int = 8) -> dict[str, np.ndarray]:
    """Per-voxel values (pycortex order) -> per-vertex values on the subject's surfaces.

    Parameters
    ----------
    values : array, shape (n_voxels,)
    subject : PycortexSubject

    Returns
    -------
    dict {"left": (n_vertices_lh,), "right": (n_vertices_rh,)} float64, NaN where a vertex
    meets no in-mask voxel.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or values.size != subject.n_voxels:
        raise MaskShapeError(
            f"{values.size} values do not match the {subject.n_voxels} voxels of subject "
            f"{subject.subject}'s mask ({subject.xfm_name})"
        )
    out = {}
    for hemi in HEMIS:
        matrix = vertex_voxel_matrix(subject, hemi, n_samples)
        finite = np.isfinite(values)
        summed = matrix @ np.where(finite, values, 0.0)
        weight = matrix @ finite.astype(float)
        out[hemi] = np.divide(summed, weight, out=np.full(summed.shape, np.nan), where=weight > 0)
    return out


def native_surface_image(values: np.ndarray, subject: PycortexSubject, surface: str = "inflated",
                         n_samples: int = 8):
    """``SurfaceImage`` of per-voxel values on one of the subject's meshes (NaN -> 0)."""
    from nilearn.surface import SurfaceImage

    vertex_values = voxels_to_vertices(values, subject, n_samples)
    data = {h: np.nan_to_num(v, nan=0.0).astype(np.float32) for h, v in vertex_values.items()}
    return SurfaceImage(mesh=subject.polymesh(surface), data=data)


def native_volume_img(values: np.ndarray, subject: PycortexSubject) -> nib.Nifti1Image:
    """Per-voxel values in the subject's functional grid (pycortex voxel order)."""
    return values_to_img(values, subject.mask_img, order="pycortex")


def curvature_shading(coordinates: np.ndarray, faces: np.ndarray, n_smooth: int = 10) -> np.ndarray:
    """Sulcus/gyrus shading of a folded mesh (positive in sulci, like FreeSurfer ``sulc``).

    The umbrella Laplacian (mean neighbour position minus position) projected on the
    outward vertex normal, smoothed ``n_smooth`` times over neighbours and scaled to [-1, 1].

    Returns
    -------
    float64 (n_vertices,)
    """
    n = coordinates.shape[0]
    i = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2]])
    j = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0]])
    adjacency = sparse.coo_matrix((np.ones(2 * i.size), (np.r_[i, j], np.r_[j, i])),
                                  shape=(n, n)).tocsr()
    adjacency.data[:] = 1.0
    degree = np.asarray(adjacency.sum(1)).ravel()
    average = sparse.diags(np.divide(1.0, degree, out=np.zeros(n), where=degree > 0)) @ adjacency
    tri = coordinates[faces]
    face_normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals = np.zeros_like(coordinates)
    for corner in range(3):
        np.add.at(normals, faces[:, corner], face_normals)
    # orient normals outward: they should point away from the mesh centre on average
    centred = coordinates - coordinates.mean(0)
    if np.sum(normals * centred) < 0:
        normals = -normals
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    shade = np.sum((average @ coordinates - coordinates) * normals, axis=1)
    for _ in range(n_smooth):
        shade = average @ shade
    top = np.percentile(np.abs(shade[degree > 0]), 98) if np.any(degree > 0) else 1.0
    return np.clip(shade / (top or 1.0), -1.0, 1.0)


def _subject_shading(subject: PycortexSubject) -> dict[str, np.ndarray]:
    key = ("shading",)
    if key not in subject._cache:
        name = "fiducial" if ("fiducial" in subject.surfaces or
                              {"wm", "pia"} <= set(subject.surfaces)) else "inflated"
        subject._cache[key] = {h: curvature_shading(*subject.surface(name, h)) for h in HEMIS}
    return subject._cache[key]


def plot_native_surface(values: np.ndarray, subject: PycortexSubject, kind: str = "r",
                        title: str = "", style: MapStyle | None = None,
                        surface: str = "inflated") -> plt.Figure:
    """Lateral and medial views of the subject's own (inflated) surfaces."""
    from .surface import plot_surface

    surf_img = native_surface_image(values, subject, surface)
    style = style or style_for(kind, np.asarray(values)[np.isfinite(values)])
    return plot_surface(surf_img, kind, title, style, mesh=subject.polymesh(surface),
                        bg_map=_subject_shading(subject))


def curvature_underlay(subject: PycortexSubject) -> dict[str, np.ndarray]:
    """Gray level per vertex in [0, 1] for flatmaps: gyri light, sulci dark (soft two-tone)."""
    return {h: 0.52 - 0.17 * np.tanh(4.0 * v) for h, v in _subject_shading(subject).items()}


def native_flat_raster(subject: PycortexSubject, height: int = 1024):
    """``(FlatLayout, FlatRaster)`` of the subject's flat surfaces (cached per subject)."""
    from .flat import flat_layout, rasterize_flat

    key = ("flat_raster", height)
    if key not in subject._cache:
        layout = flat_layout({h: subject.surface("flat", h) for h in HEMIS})
        subject._cache[key] = (layout, rasterize_flat(layout, height))
    return subject._cache[key]


def subject_overlays(subject: PycortexSubject):
    """The subject's parsed ``overlays.svg``, or None when it has none."""
    from .overlays import read_overlays

    path = subject.folder / "overlays.svg"
    if ("overlays",) not in subject._cache:
        subject._cache[("overlays",)] = read_overlays(path) if path.is_file() else None
    return subject._cache[("overlays",)]


def roi_outlines(subject: PycortexSubject, layer: str = "rois") -> list:
    """``[(name, [outline (n, 2) in flat mm, ...]), ...]`` of the subject's ROIs.

    Raises
    ------
    OverlayError
        The subject's overlays.svg has no ``layer`` with outlined shapes.
    FileNotFoundError
        The subject has no overlays.svg.
    """
    from .overlays import svg_to_flat

    overlays = subject_overlays(subject)
    if overlays is None:
        raise FileNotFoundError(f"subject {subject.subject} has no {subject.folder / 'overlays.svg'}")
    layout, _ = native_flat_raster(subject)
    return [(shape.name, [svg_to_flat(p, overlays, layout.extent) for p in shape.paths])
            for shape in overlays.shapes(layer)]


def roi_label_positions(subject: PycortexSubject, layer: str = "rois") -> list:
    """``[(name, (x, y) in flat mm), ...]`` of the labels placed in overlays.svg (may be empty)."""
    from .overlays import svg_to_flat

    overlays = subject_overlays(subject)
    if overlays is None:
        return []
    layout, _ = native_flat_raster(subject)
    return [(name, tuple(svg_to_flat(np.array([xy]), overlays, layout.extent)[0]))
            for name, xy in overlays.labels.get(layer, [])]


def subject_vertex_rois(subject: PycortexSubject, layer: str = "rois") -> dict[str, np.ndarray]:
    """ROI membership of the stacked (left then right) vertices, from overlays.svg."""
    from .overlays import vertex_rois

    key = ("vertex_rois", layer)
    if key not in subject._cache:
        overlays = subject_overlays(subject)
        if overlays is None:
            raise FileNotFoundError(
                f"subject {subject.subject} has no {subject.folder / 'overlays.svg'}")
        layout, _ = native_flat_raster(subject)
        drawn = np.zeros(layout.n_vertices, dtype=bool)
        for h in HEMIS:
            drawn[np.unique(layout.faces[h]) + layout.offsets[h]] = True
        subject._cache[key] = vertex_rois(overlays.shapes(layer), overlays, layout.stacked(),
                                          layout.extent, drawn)
    return subject._cache[key]


def plot_native_flat(values: np.ndarray, subject: PycortexSubject, kind: str = "r",
                     title: str = "", style: MapStyle | None = None, height: int = 1024,
                     with_rois: bool = True) -> plt.Figure:
    """Publication flatmap of per-voxel values on the subject's flat surfaces.

    Pixel-interpolated (see :func:`gim_brain.maps.flat.plot_flat_image`): both hemispheres
    side by side, curvature underlay, one colour range, colour bar; medial wall and NaN
    transparent; ROI outlines and labels from ``overlays.svg`` when it has a ``rois`` layer.

    Parameters
    ----------
    values : (n_voxels,)
        Per-voxel values in pycortex order.
    height : int
        Image height in pixels (pycortex's quickflat default: 1024).
    with_rois : bool
        Draw ROI outlines when the subject has them.
    """
    from .flat import plot_flat_image
    from .overlays import OverlayError

    vertex = voxels_to_vertices(values, subject)
    values = np.asarray(values, dtype=float)
    style = style or style_for(kind, values[np.isfinite(values)])
    _, raster = native_flat_raster(subject, height)
    outlines = positions = None
    if with_rois and subject_overlays(subject) is not None:
        try:
            outlines = roi_outlines(subject)
            positions = roi_label_positions(subject)
        except OverlayError:
            outlines = None  # an overlays.svg without ROIs: draw the map without outlines
    return plot_flat_image(raster, vertex, style, title, underlay=curvature_underlay(subject),
                           outlines=outlines, label_positions=positions)
