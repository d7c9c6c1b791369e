"""Figures comparing two fits target by target: a scatter/histogram, and a glass-brain map of the
difference when both fits have the same volume targets."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

__all__ = ["plot_comparison", "difference_glass", "save_comparison_figures"]


def plot_comparison(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str, metric: str = "r"):
    """Scatter of per-target scores (A vs B, with the diagonal) and histogram of A - B.

    Returns
    -------
    matplotlib Figure
    """
    import matplotlib.pyplot as plt

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.2))
    ax1.scatter(b, a, s=6, alpha=0.5, lw=0)
    lo = float(np.nanmin([a.min(), b.min()]))
    hi = float(np.nanmax([a.max(), b.max()]))
    ax1.plot([lo, hi], [lo, hi], color="k", lw=0.8)
    ax1.set_xlabel(f"{metric}: {name_b}")
    ax1.set_ylabel(f"{metric}: {name_a}")
    ax1.set_title(f"per-target {metric} ({a.size} targets)")
    d = a - b
    ax2.hist(d[np.isfinite(d)], bins=50, color="tab:purple")
    ax2.axvline(0, color="k", lw=0.8)
    ax2.axvline(np.nanmean(d), color="tab:red", lw=1.2, label=f"mean {np.nanmean(d):+.4f}")
    ax2.set_xlabel(f"{metric}: {name_a} − {name_b}")
    ax2.set_ylabel("targets")
    ax2.legend()
    fig.tight_layout()
    return fig


def difference_glass(diff: np.ndarray, targets: Mapping, base: str | Path, title: str):
    """Glass brain of per-target differences when ``targets`` (a ``targets.json`` dict) are
    volume voxels whose mask exists; else None.

    Parameters
    ----------
    diff : (n_targets,) float
    targets : dict
    base : path
        The run directory (relative mask paths are resolved against it).
    title : str

    Returns
    -------
    matplotlib Figure or None
    """
    from .render import parse_targets
    from .volume import plot_glass, values_to_img

    if not targets or targets.get("kind") != "volume":
        return None
    parsed = parse_targets(targets, base=base)
    if parsed.mask is None or not Path(parsed.mask).is_file():
        return None
    img = values_to_img(np.nan_to_num(np.asarray(diff, np.float32)), parsed.mask, order=parsed.order)
    return plot_glass(img, kind="diff", title=title)


def save_comparison_figures(res_a, res_b, name_a: str, name_b: str, metric: str,
                            out_dir: str | Path, stem: str, targets_a: Mapping | None = None,
                            targets_b: Mapping | None = None, base: str | Path = ".") -> dict:
    """Write ``compare_{stem}.png`` (scatter + histogram) and, when both fits have the same
    volume targets, ``diffmap_{stem}.png`` (glass brain of A - B) into ``out_dir``.

    Returns
    -------
    dict with ``figure`` (and ``map``) paths as strings.
    """
    import matplotlib.pyplot as plt

    from .._cache import atomic_write_bytes

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    def save(fig, path: Path, dpi: int) -> str:
        import io

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        plt.close(fig)
        atomic_write_bytes(path, buf.getvalue())
        return str(path)

    a, b = res_a.scores[metric], res_b.scores[metric]
    written = {"figure": save(plot_comparison(a, b, name_a, name_b, metric),
                              out_dir / f"compare_{stem}.png", 100)}
    if targets_a and targets_a == targets_b:
        diff = np.asarray(a, np.float32) - np.asarray(b, np.float32)
        fig = difference_glass(diff, targets_a, base, f"{metric}: {name_a} − {name_b}")
        if fig is not None:
            written["map"] = save(fig, out_dir / f"diffmap_{stem}.png", 90)
    return written
