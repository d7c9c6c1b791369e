"""Writers for small data files used by the data-layer tests (TextGrids, ds003020-layout trees)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def textgrid_text(tiers: list[tuple[str, str, list[tuple]]], short: bool = False) -> str:
    """Praat TextGrid text. ``tiers``: (class, name, items) with items (xmin, xmax, text) for
    ``IntervalTier`` and (time, mark) for ``TextTier``."""
    xmax = max((it[1] if cls == "IntervalTier" else it[0]) for cls, _, items in tiers for it in items)
    q = lambda s: '"' + s.replace('"', '""') + '"'
    if short:
        out = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "0", str(xmax), "<exists>", str(len(tiers))]
        for cls, name, items in tiers:
            out += [q(cls), q(name), "0", str(xmax), str(len(items))]
            for it in items:
                out += [str(v) if not isinstance(v, str) else q(v) for v in it]
        return "\n".join(out) + "\n"
    out = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "xmin = 0 ", f"xmax = {xmax} ",
           "tiers? <exists> ", f"size = {len(tiers)} ", "item []: "]
    for i, (cls, name, items) in enumerate(tiers, start=1):
        out += [f"    item [{i}]:", f'        class = "{cls}" ', f"        name = {q(name)} ",
                "        xmin = 0 ", f"        xmax = {xmax} "]
        if cls == "IntervalTier":
            out.append(f"        intervals: size = {len(items)} ")
            for j, (a, b, text) in enumerate(items, start=1):
                out += [f"        intervals [{j}]:", f"            xmin = {a} ", f"            xmax = {b} ",
                        f"            text = {q(text)} "]
        else:
            out.append(f"        points: size = {len(items)} ")
            for j, (t, mark) in enumerate(items, start=1):
                out += [f"        points [{j}]:", f"            number = {t} ", f"            mark = {q(mark)} "]
    return "\n".join(out) + "\n"


def word_intervals(words: list[str], start: float = 0.0, step: float = 0.4) -> list[tuple]:
    """Back-to-back intervals, one per word."""
    return [(round(start + i * step, 4), round(start + (i + 1) * step, 4), w) for i, w in enumerate(words)]


def write_ds003020_tree(root: Path, stories: dict[str, int], subjects: list[str], n_voxels: int = 7,
                        seed: int = 0, test_story: str | None = None) -> dict:
    """A tiny dataset in the official OpenNeuro ds003020 layout.

    ``stories`` maps story -> raw TRs. Writes ``derivative/TextGrids/{story}.TextGrid`` (phone
    and word tiers, silences ``sp``), ``derivative/respdict.json`` (all stories but ``test_story``)
    and ``derivative/preprocessed_data/{subject}/{story}.hf5`` (dataset ``data``,
    float64 ``(n_trs - 20, n_voxels)``). Returns ``{story: list of spoken words}``.
    """
    import h5py

    rng = np.random.default_rng(seed)
    vocab = ["the", "cat", "sat", "on", "mat", "and", "i", "laughed", "{BR}", "sp"]
    spoken = {}
    d = root / "derivative"
    (d / "TextGrids").mkdir(parents=True, exist_ok=True)
    for story, n_trs in stories.items():
        duration = (n_trs - 10) * 2.0  # audio starts 10 s after the first volume
        t, items, words = 0.0, [], []
        while t < duration - 1.0:
            w = vocab[rng.integers(len(vocab))]
            dt = float(rng.uniform(0.15, 0.6))
            items.append((round(t, 4), round(t + dt, 4), w.upper() if w not in ("sp", "{BR}") else w))
            if w not in ("sp", "{BR}"):
                words.append(w)
            t += dt
        phones = [(a, b, "AH0") for a, b, _ in items]
        (d / "TextGrids" / f"{story}.TextGrid").write_text(
            textgrid_text([("IntervalTier", "phone", phones), ("IntervalTier", "word", items)]))
        spoken[story] = words
    (d / "respdict.json").write_text(json.dumps({s: n for s, n in stories.items() if s != test_story}))
    for subject in subjects:
        folder = d / "preprocessed_data" / subject
        folder.mkdir(parents=True, exist_ok=True)
        for story, n_trs in stories.items():
            with h5py.File(folder / f"{story}.hf5", "w") as f:
                f.create_dataset("data", data=rng.standard_normal((n_trs - 20, n_voxels)))
    return spoken
