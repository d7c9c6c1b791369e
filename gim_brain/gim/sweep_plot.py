"""PNG plot of a paper-protocol sweep (``gim-brain lm-eval --tau 4,6,8,10 ...``)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["plot_sweep"]

_STYLE = {"gim": ("GIM", "C0", "o-"), "fuzzy": ("fuzzy-only", "C1", "s--"),
          "exact": ("exact-only", "C2", "^:"), "reference": ("reference-only", "C3", "v:"),
          "lm": ("LM", "C7", "-")}


def plot_sweep(result: dict, axis: str, path, metric: str = "top1") -> Path:
    """Write ``metric`` (%, strict top-1 by default) of every method against the swept ``axis``.

    ``axis`` is ``"tau"``, ``"temperature"``, ``"window"`` or ``"fuzzy"`` (categorical);
    ``result`` is :func:`gim_brain.gim.paper_eval.evaluate_paper`'s output with one point per
    value (``point["sweep_value"]``). Returns the path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .._cache import atomic_write_bytes

    points = result["points"]
    labels = [str(p["sweep_value"]) for p in points]
    categorical = axis == "fuzzy"
    xs = list(range(len(points))) if categorical else [float(p["sweep_value"]) for p in points]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for m, (name, color, style) in _STYLE.items():
        ys = [100 * p["methods"][m][metric] if m in p["methods"] else None for p in points]
        if all(y is None for y in ys):
            continue
        ax.plot(xs, ys, style, color=color, label=name)
    if categorical:
        ax.set_xticks(xs, labels, rotation=15)
    ax.set_xlabel({"tau": "tau (exact-match threshold, tokens)", "temperature": "T (fuzzy temperature)",
                   "window": "W (fuzzy window, tokens)", "fuzzy": "fuzzy backend"}.get(axis, axis))
    ax.set_ylabel(f"{metric} (%)")
    ax.set_title(f"protocol {result['protocol']}, L = {result['context']}, "
                 f"{result['n_windows']} windows", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)
