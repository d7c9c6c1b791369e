"""ROI summaries of native (pycortex-db) results from the subject's ``overlays.svg`` ROIs.

A voxel belongs to a ROI of one hemisphere when a vertex inside that ROI's outline (on the
flat surface) samples it between its white-matter and pial positions (the vertex mapping
of :func:`gim_brain.maps.native.vertex_voxel_matrix`). Rows are ``"{ROI} L"`` /
``"{ROI} R"``; a voxel may count in two neighbouring ROIs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .native import PycortexSubject, subject_vertex_rois, vertex_voxel_matrix
from .surface import HEMIS

__all__ = ["roi_voxels", "native_roi_table", "plot_roi_table", "write_roi_summary"]

_SIDE = {"left": "L", "right": "R"}


def roi_voxels(subject: PycortexSubject, layer: str = "rois") -> dict[str, np.ndarray]:
    """``{"V1 L": voxel indices (pycortex order), ...}`` of each ROI and hemisphere.

    Raises
    ------
    FileNotFoundError, OverlayError
        The subject has no overlays.svg, or it has no ``layer`` of outlined shapes.
    """
    key = ("roi_voxels", layer)
    if key in subject._cache:
        return subject._cache[key]
    vertex_rois = subject_vertex_rois(subject, layer)
    n_left = subject.surface("flat", "left")[0].shape[0]
    out = {}
    for name, members in vertex_rois.items():
        for hemi in HEMIS:
            part = members[:n_left] if hemi == "left" else members[n_left:]
            if not part.any():
                continue
            matrix = vertex_voxel_matrix(subject, hemi)
            out[f"{name} {_SIDE[hemi]}"] = np.unique(matrix[np.flatnonzero(part)].indices)
    subject._cache[key] = out
    return out


def native_roi_table(values: Mapping[str, np.ndarray], subject: PycortexSubject,
                     layer: str = "rois") -> pd.DataFrame:
    """Mean value per ROI (rows) and feature set (columns), with each ROI's voxel count.

    Parameters
    ----------
    values : {feature set: (n_voxels,)}
        Per-voxel values in pycortex order (e.g. held-out r of each feature set).

    Returns
    -------
    DataFrame indexed by ROI (``"V1 L"``...), column ``n_voxels`` then one column per
    feature set (NaN-aware means).
    """
    voxels = roi_voxels(subject, layer)
    rows = {}
    for roi, idx in sorted(voxels.items(), key=lambda item: item[0].lower()):
        row = {"n_voxels": int(idx.size)}
        for name, vals in values.items():
            vals = np.asarray(vals, dtype=float)
            if vals.shape != (subject.n_voxels,):
                raise ValueError(f"{name}: {vals.size} values do not match the "
                                 f"{subject.n_voxels} voxels of subject {subject.subject}")
            chosen = vals[idx]
            row[name] = float(np.nanmean(chosen)) if np.isfinite(chosen).any() else np.nan
        rows[roi] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def plot_roi_table(table: pd.DataFrame, label: str = "mean r", title: str = "") -> plt.Figure:
    """Grouped horizontal bars: one group per ROI, one bar per feature set."""
    sets = [c for c in table.columns if c != "n_voxels"]
    n = len(table)
    fig, ax = plt.subplots(figsize=(7.5, 1.2 + 0.2 * n))
    height = 0.8 / max(1, len(sets))
    y = np.arange(n)
    for i, name in enumerate(sets):
        ax.barh(y + (i - (len(sets) - 1) / 2) * height, table[name].to_numpy(float), height,
                label=name)
    ax.set_yticks(y, [f"{roi} ({count})" for roi, count in zip(table.index, table["n_voxels"])],
                  fontsize=7)
    ax.invert_yaxis()
    ax.axvline(0, color="black", lw=0.6)
    ax.set_xlabel(label)
    if len(sets) > 1:
        ax.legend(fontsize=8, loc="lower right")
    if title:
        ax.set_title(title, fontsize=11)
    fig.tight_layout()
    return fig


def write_roi_summary(values: Mapping[str, np.ndarray], subject: PycortexSubject,
                      out_dir: str | Path, stem: str = "rois_r", label: str = "mean r",
                      title: str = "", dpi: int = 100) -> list[Path]:
    """Write ``{stem}.csv`` and ``{stem}.png`` (see :func:`native_roi_table`) in ``out_dir``."""
    import io

    from .._cache import atomic_write_bytes

    table = native_roi_table(values, subject)
    out = Path(out_dir)
    csv = atomic_write_bytes(out / f"{stem}.csv", table.to_csv(index_label="roi").encode())
    fig = plot_roi_table(table, label, title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    plt.close(fig)
    png = atomic_write_bytes(out / f"{stem}.png", buf.getvalue())
    return [csv, png]


def run_roi_summary(results: Mapping, value: str, db, subject_name: str, xfm: str | None,
                    mask_type: str, out_dir: str | Path, dpi: int = 100) -> list[Path]:
    """ROI table of ``value`` for every feature set of a native run (``rois_{value}.csv/png``).

    One column per result that has ``value`` (``diff:A-B``: one column). Returns no paths
    (writes nothing) when no result has it, or when the subject has no overlays.svg with a
    ``rois`` layer.
    """
    from .native import load_pycortex_subject, subject_overlays
    from .overlays import OverlayError
    from .values import UnknownValueError, _safe, parse_value, select_values

    subject = load_pycortex_subject(db, subject_name, xfm, mask_type)
    overlays = subject_overlays(subject)
    if overlays is None or "rois" not in overlays.layers:
        return []
    if parse_value(value)[0] == "diff":  # one map from two results
        try:
            chosen = {value: select_values(value, results, None)}
        except UnknownValueError:
            return []
    else:  # one column per result that has this value (unique:S only in banded fits)
        chosen = {}
        for name in results:
            try:
                chosen[name] = select_values(value, results, name)
            except UnknownValueError:
                continue
    if not chosen:
        return []
    first = next(iter(chosen.values()))
    try:
        return write_roi_summary({n: s.values for n, s in chosen.items()}, subject, out_dir,
                                 stem=f"rois_{_safe(value)}", label=f"mean {first.kind}",
                                 title=f"{value} per ROI — subject {subject.subject}", dpi=dpi)
    except OverlayError:
        return []
