"""A short, self-contained ``report.html`` for a run directory.

The report shows what a run did and found: the comparison table of its feature sets (from
``summary.json``), glass-brain maps of each feature set's held-out r and of each band's unique
variance when the targets are voxels of a volume (``targets.json`` of kind ``volume``), any PNG
already in ``RUN/maps/``, and the run's parameters, versions and timings. Images are inlined
(base64), so the file can be mailed or opened offline.

A run directory (written by ``gim-brain fit`` / ``gim-brain demo``)::

    RUN/summary.json             parameters, versions, timings, per-feature-set scores
    RUN/results/<slug>/          one saved EncodingResult per feature set
    RUN/targets.json             what the targets are (volume mask, pycortex db, components)
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from .encoding.run import RunDirError, load_results, read_summary, read_targets

__all__ = ["make_volume_maps", "write_report", "plot_subjects"]


def _fig_png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def make_volume_maps(run: str | Path, results: dict[str, Any] | None = None,
                     out_dir: str | Path | None = None) -> dict[str, Path]:
    """Glass-brain PNGs of r (each feature set) and unique variance (each band of banded fits).

    Only for runs whose ``targets.json`` is ``{"kind": "volume", "mask": ...}``; otherwise an
    empty dict. PNGs go to ``out_dir`` (default ``RUN/maps``).

    Returns
    -------
    dict title -> PNG path
    """
    from .maps import plot_glass, values_to_img
    from .maps.render import TargetsError, parse_targets

    run = Path(run)
    try:
        targets = parse_targets(read_targets(run), base=run)
    except (RunDirError, TargetsError):
        return {}  # no targets.json, or targets that are not voxels: nothing to draw
    if targets.kind != "volume" or not targets.mask.is_file():
        return {}
    mask, order, subject = targets.mask, targets.order, targets.subject
    results = load_results(run) if results is None else results
    out_dir = Path(out_dir) if out_dir is not None else run / "maps"
    out_dir.mkdir(parents=True, exist_ok=True)
    made: dict[str, Path] = {}
    for i, (spec, res) in enumerate(results.items()):
        jobs = [(f"held-out r: {spec}", "r", np.asarray(res.scores["r"]), f"r_{i}")]
        for j, (space, uv) in enumerate(res.unique_variance.items()):
            jobs.append((f"unique variance of {space} in {spec}", "unique", np.asarray(uv),
                         f"unique_{i}_{j}"))
        for title, kind, values, stem in jobs:
            full = f"{title} ({subject})" if subject else title
            img = values_to_img(np.nan_to_num(values.astype(np.float32)), mask, order=order)
            path = out_dir / f"{stem}.png"
            path.write_bytes(_fig_png(plot_glass(img, kind=kind, title=full)))
            made[full] = path
    return made


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    if v is None:
        return "–"
    return html.escape(str(v))


def _table(rows: list[dict], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(r.get(c))}</td>" for c in columns) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;
text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}img{max-width:100%}
pre{background:#f7f7f7;padding:1em;overflow-x:auto;font-size:85%}"""


def plot_subjects(rows: list[dict], metric: str = "mean_r"):
    """Per feature set, ``metric`` of every subject (dots) and their mean (bar).

    Parameters
    ----------
    rows : list of dict
        ``summary.json["per_subject"]``: subject, feature_set, mean_r, median_r, top10_mean_r.

    Returns
    -------
    matplotlib Figure
    """
    import matplotlib.pyplot as plt

    specs = list(dict.fromkeys(r["feature_set"] for r in rows))
    subjects = list(dict.fromkeys(r["subject"] for r in rows))
    fig, ax = plt.subplots(figsize=(1.2 + 1.3 * len(specs), 3.6))
    for i, spec in enumerate(specs):
        vals = [r[metric] for r in rows if r["feature_set"] == spec and r[metric] is not None]
        if vals:
            ax.bar(i, float(np.mean(vals)), color="#c9d6ea", width=0.7)
    for k, subject in enumerate(subjects):
        xs, ys = [], []
        for i, spec in enumerate(specs):
            for r in rows:
                if r["subject"] == subject and r["feature_set"] == spec and r[metric] is not None:
                    xs.append(i + (k - (len(subjects) - 1) / 2) * 0.08)
                    ys.append(r[metric])
        ax.plot(xs, ys, "o", ms=5, label=subject)
    ax.set_xticks(range(len(specs)))
    ax.set_xticklabels(specs, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(metric.replace("_", " "))
    ax.axhline(0, color="k", lw=0.6)
    ax.legend(fontsize=7, ncol=min(4, len(subjects)), frameon=False)
    ax.set_title(f"{metric.replace('_', ' ')} per subject (bars: mean over subjects)")
    fig.tight_layout()
    return fig


def _subjects_report(run: Path, summary: dict) -> str:
    """Body of the report of a several-subject run (``OUT/<subject>/`` hold the subjects)."""
    rows = summary.get("per_subject", [])
    parts = [f"<h1>gim-brain run: {html.escape(run.name)} ({len(summary['subjects'])} subjects)</h1>"]
    cross = [{"feature set": spec, **v} for spec, v in summary.get("cross_subject", {}).items()]
    parts.append("<h2>Across subjects (mean over subjects; SD)</h2>" + _table(
        [{**c, "mean r": c.get("mean_r"), "SD mean r": c.get("mean_r_sd"),
          "median r": c.get("median_r"), "top-10% r": c.get("top10_mean_r"),
          "subjects": c.get("n_subjects")} for c in cross],
        ["feature set", "subjects", "mean r", "SD mean r", "median r", "top-10% r"]))
    parts.append("<h2>Per subject</h2>" + _table(
        [{"subject": r["subject"], "feature set": r["feature_set"], "mean r": r["mean_r"],
          "median r": r["median_r"], "top-10% r": r["top10_mean_r"],
          "significant": r.get("n_significant"), "targets": r.get("n_targets")} for r in rows],
        ["subject", "feature set", "mean r", "median r", "top-10% r", "significant", "targets"]))
    if rows:
        data = base64.b64encode(_fig_png(plot_subjects(rows))).decode()
        parts.append(f"<img alt='mean r per subject' src='data:image/png;base64,{data}'>")
    links = "".join(f"<li><a href='{html.escape(p)}/report.html'>{html.escape(s)}</a></li>"
                    for s, p in summary.get("runs", {}).items())
    parts.append(f"<h2>Subjects' own reports</h2><ul>{links}</ul>")
    details = {k: v for k, v in summary.items() if k not in ("per_subject", "cross_subject")}
    parts.append("<h2>Parameters</h2><pre>"
                 + html.escape(json.dumps(details, indent=1, default=str)) + "</pre>")
    return "\n".join(parts)


def write_report(run: str | Path, maps: bool = True, extra_images: dict[str, Path] | None = None
                 ) -> Path:
    """Write ``RUN/report.html`` and return its path.

    Parameters
    ----------
    run : path
        A run directory (must have ``summary.json``).
    maps : bool
        Draw glass-brain maps (volume targets only) with :func:`make_volume_maps` when
        ``RUN/maps`` holds no PNG yet (``gim-brain map RUN --out RUN/maps`` makes richer ones);
        every PNG under ``RUN/maps`` is included.
    extra_images : dict title -> PNG path, optional
        More figures to include (e.g. the demo's planted-vs-recovered map).
    """
    run = Path(run)
    summary = read_summary(run)
    if "runs" in summary and "subjects" in summary:  # several subjects: OUT/<subject>/
        return _write_page(run, _subjects_report(run, summary))
    parts = [f"<h1>gim-brain run: {html.escape(run.name)}</h1>"]
    sets = summary.get("feature_sets", {})
    if sets:
        rows = [{"feature set": spec, **vals} for spec, vals in sets.items()]
        columns = ["feature set", "mean_r", "median_r", "top10_mean_r", "n_targets", "n_significant"]
        parts.append("<h2>Feature sets (held-out test stories)</h2>" + _table(rows, columns))
    for key in ("subject", "test_stories", "planted_recovery"):
        if key in summary:
            parts.append(f"<p><b>{key}</b>: {_fmt(summary[key])}</p>")
    if "planted" in summary:
        prs = [{"space": s, **v} for s, v in summary["planted"].get("per_space", {}).items()]
        if prs:
            parts.append("<h2>Planted structure recovered</h2>"
                         + _table(prs, ["space", "n_voxels", "recovered", "fraction"]))
    images: dict[str, Path] = dict(extra_images or {})
    has_pngs = (run / "maps").is_dir() and any((run / "maps").rglob("*.png"))
    if maps and not has_pngs and (run / "results").is_dir():
        try:
            images.update(make_volume_maps(run))
        except (ImportError, OSError, ValueError) as exc:
            parts.append(f"<p>Maps could not be drawn: {html.escape(str(exc))}</p>")
    for png in sorted((run / "maps").rglob("*.png")) if (run / "maps").is_dir() else []:
        if png not in images.values():
            images[str(png.relative_to(run / "maps").with_suffix(""))] = png
    if images:
        parts.append("<h2>Maps</h2>")
        for title, path in images.items():
            data = base64.b64encode(Path(path).read_bytes()).decode()
            parts.append(f"<h3>{html.escape(title)}</h3><img alt='{html.escape(title)}' "
                         f"src='data:image/png;base64,{data}'>")
    details = {k: v for k, v in summary.items() if k not in ("feature_sets",)}
    parts.append("<h2>Parameters, versions, timings</h2><pre>"
                 + html.escape(json.dumps(details, indent=1, default=str)) + "</pre>")
    return _write_page(run, "\n".join(parts))


def _write_page(run: Path, body: str) -> Path:
    from ._cache import atomic_write_bytes

    page = ("<!doctype html><html><head><meta charset='utf-8'><title>gim-brain report: "
            f"{html.escape(run.name)}</title><style>{_CSS}</style></head><body>"
            + body + "</body></html>")
    return atomic_write_bytes(run / "report.html", page.encode("utf-8"))
