"""The whole demo chain: demo dataset -> features -> fits (single spaces and banded) -> maps ->
planted-structure recovery -> ``summary.json`` and ``report.html``.

The fit goes through the same path as a user's experiment: the demo builds an
:class:`~gim_brain.experiment.Experiment`, writes it as a TOML run config (``OUT/demo.toml``) and
runs it with :func:`~gim_brain.experiment.run_experiment` — what ``gim-brain fit OUT/demo.toml``
does, so that command reproduces the demo's scores exactly. The run directory is an ordinary one
(``OUT/summary.json``, ``OUT/results/<slug>/``, ``OUT/targets.json``) with the demo's own keys added
to ``summary.json``: ``planted_recovery`` (fraction of planted voxels whose largest share of the
banded fit's held-out R² belongs to the space that drives them), ``planted`` (per space) and
``timings``.
"""

from __future__ import annotations

import io
import json
import platform
import re
import time
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._cache import atomic_write_bytes
from .dataset import MANIFEST_NAME, DemoParams, build_demo_dataset, load_planted

__all__ = ["DemoConfig", "planted_recovery", "run_demo", "demo_experiment", "write_demo_config",
           "band_space"]


@dataclass(frozen=True)
class DemoConfig:
    """What the demo fits and how.

    Attributes
    ----------
    data : DemoParams
        The simulated dataset.
    n_folds : int
        Story-grouped CV folds over the training stories.
    n_permutations : int
        Block permutations for p-values (0: none). With ~35 planted voxels among 3,666, the
        Benjamini-Hochberg threshold needs p < 5e-4, so fewer than ~2,000 permutations cannot
        declare any voxel of a single space significant.
    alphas : tuple of float
        Ridge grid (coarser than the fit command's 17 values, for speed).
    n_iter : int
        Random-search draws of the banded fit's space weights.
    variance_partitioning : bool
        Fit the leave-one-space-out models too (unique variance per space).
    single_spaces : bool
        Also fit each planted space alone (for the comparison table); the banded fit alone
        suffices for ``planted_recovery``.
    maps : str
        Map kinds drawn by ``gim-brain map`` for each space's unique variance (or split R²)
        in the banded fit (comma-separated; "" for none).
    surface_map : bool
        Also draw the banded fit's held-out r on the fsaverage5 surface.
    backend : str
    score : {"r2", "correlation"}
        Validation score that chooses alphas and space weights. R² keeps the predictions of
        noise voxels near zero (correlation ignores their scale, so their held-out R² and
        variance shares can be hugely negative), which keeps the maps readable.
    blas_threads : int or None
        Threads of the BLAS library during the fit (None: leave as is). One thread is much faster
        for the many small decompositions of the banded random search on a busy 2-core machine.
    """

    data: DemoParams = DemoParams()
    n_folds: int = 4
    n_permutations: int = 5000
    alphas: tuple[float, ...] = tuple(float(a) for a in np.logspace(0, 8, 9))
    n_iter: int = 10
    variance_partitioning: bool = True
    single_spaces: bool = True
    maps: str = "volume"
    surface_map: bool = True
    backend: str = "numpy"
    score: str = "r2"
    blas_threads: int | None = 1

    @property
    def spaces(self) -> list[str]:
        seen: list[str] = []
        for region in self.data.regions:
            if region.space not in seen:
                seen.append(region.space)
        return seen

    def spec(self, space: str) -> str:
        """The SPEC of one space with the parameters the simulation used (``llm[layer=3]``)."""
        params = self.data.space_params.get(space, {})
        if not params:
            return space
        return space + "[" + ";".join(f"{k}={v}" for k, v in params.items()) + "]"

    @property
    def banded_spec(self) -> str:
        return ",".join(self.spec(s) for s in self.spaces)

    @property
    def feature_sets(self) -> list[str]:
        singles = [self.spec(s) for s in self.spaces] if self.single_spaces else []
        return singles + [self.banded_spec]


def band_space(label: str) -> str:
    """Space name of a band label: ``"llm[layer=3]"`` -> ``"llm"`` (one-space bands only)."""
    return re.sub(r"\[.*\]$", "", label.strip())


def planted_recovery(split_scores: dict[str, np.ndarray], labels: np.ndarray,
                     region_spaces: list[str]) -> dict[str, Any]:
    """How many planted voxels are best explained by their driving space in a banded fit.

    Parameters
    ----------
    split_scores : dict band label -> (n_voxels,)
        Each band's share of the held-out R² (``EncodingResult.split_scores``).
    labels : int (n_voxels,)
        Planted region of each voxel (-1: none).
    region_spaces : list of str
        Driving space of each region.

    Returns
    -------
    dict with ``fraction`` (over all planted voxels), ``per_space`` ({space: n_voxels,
    recovered, fraction}) and ``best_space`` (n_voxels,) str of the winning band's space.
    """
    bands = list(split_scores)
    spaces = [band_space(b) for b in bands]
    missing = sorted(set(region_spaces) - set(spaces))
    if missing:
        raise ValueError(f"the banded fit has no band for planted space(s) {missing}; bands: {bands}")
    stack = np.stack([np.nan_to_num(np.asarray(split_scores[b], np.float64), nan=-np.inf)
                      for b in bands])
    best = np.array(spaces, dtype=object)[np.argmax(stack, axis=0)]
    labels = np.asarray(labels)
    per_space: dict[str, dict[str, Any]] = {}
    hits = total = 0
    for k, space in enumerate(region_spaces):
        vox = labels == k
        n = int(vox.sum())
        ok = int(np.sum(best[vox] == space))
        entry = per_space.setdefault(space, {"n_voxels": 0, "recovered": 0})
        entry["n_voxels"] += n
        entry["recovered"] += ok
        hits += ok
        total += n
    for entry in per_space.values():
        entry["fraction"] = entry["recovered"] / entry["n_voxels"] if entry["n_voxels"] else float("nan")
    return {"fraction": hits / total if total else float("nan"), "per_space": per_space,
            "best_space": best}


def demo_experiment(config: DemoConfig, data_root: Path, out: Path,
                    subjects: tuple[str, ...] | None = None, progress: bool = True):
    """The demo's fit as an :class:`~gim_brain.experiment.Experiment` (what ``demo.toml`` holds).

    Parameters
    ----------
    config : DemoConfig
    data_root : Path
        The demo dataset folder (absolute).
    out : Path
        The run directory.
    subjects : tuple of str, optional
        Default: the first simulated subject.
    progress : bool
    """
    from ..experiment import DatasetSpec, EncodingSpec, Experiment, FeatureSpec, OutputSpec

    return Experiment(
        name="demo",
        description="the experiment `gim-brain demo` ran (planted ground truth)",
        dataset=DatasetSpec(manifest=str(data_root / MANIFEST_NAME), data_root=str(data_root)),
        subjects=tuple(subjects or config.data.subjects[:1]),
        features=FeatureSpec(sets=tuple(config.feature_sets)),
        encoding=EncodingSpec(alphas=tuple(config.alphas), n_folds=config.n_folds,
                              backend=config.backend, score=config.score, n_iter=config.n_iter,
                              variance_partitioning=config.variance_partitioning,
                              n_permutations=config.n_permutations,
                              blas_threads=config.blas_threads),
        outputs=OutputSpec(out=str(out), progress=progress))


def write_demo_config(path: Path, experiment) -> Path:
    """The demo's experiment as a TOML run config: ``gim-brain fit demo.toml --out X`` reruns it
    and gives exactly the same scores."""
    return experiment.write(path, header=(
        f"The experiment `gim-brain demo` ran, as a run config for `gim-brain fit`:\n"
        f"  gim-brain fit {path.name} --out runs/demo_refit\n"
        "gives exactly the demo's scores (same split, preprocessing, alphas, folds, seeds and "
        "BLAS threads)."))


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("gim-brain", "numpy", "scipy", "torch", "transformers", "himalaya", "nilearn",
                "scikit-learn"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def _planted_figure(labels: np.ndarray, best: np.ndarray, region_spaces: list[str], mask_path: Path):
    """Per space: glass brains of the voxels planted with it, and of the planted voxels the
    banded fit attributes to it (top and bottom rows; identical rows = perfect recovery)."""
    import matplotlib.pyplot as plt
    from nilearn import plotting

    from ..maps import values_to_img

    spaces = list(dict.fromkeys(region_spaces))
    driver = np.array([region_spaces[k] if k >= 0 else "" for k in labels], dtype=object)
    planted = driver != ""
    fig, axes = plt.subplots(2, len(spaces), figsize=(3.3 * len(spaces), 5.2))
    axes = np.asarray(axes).reshape(2, len(spaces))
    for j, space in enumerate(spaces):
        rows = ((driver == space).astype(np.float32), f"planted: {space}"), \
               ((planted & (best == space)).astype(np.float32), f"recovered: {space}")
        for i, (values, title) in enumerate(rows):
            plotting.plot_glass_brain(values_to_img(values, mask_path), axes=axes[i, j],
                                      display_mode="z", cmap="autumn", vmin=0, vmax=1,
                                      threshold=0.5, colorbar=False, title=title,
                                      resampling_interpolation="nearest")
    return fig


def _maps(out: Path, config: DemoConfig) -> None:
    """Brain maps of the banded fit (what ``gim-brain map`` draws)."""
    from ..maps import render_run

    value = "unique" if config.variance_partitioning else "split"
    jobs = []
    if config.maps:
        for space in config.spaces:
            jobs.append((out / "maps" / f"{value}_{space}", config.maps,
                         f"{value}:{config.spec(space)}"))
    if config.surface_map:
        jobs.append((out / "maps" / "r_banded", "surface", "r"))
    for folder, kinds, value_name in jobs:
        render_run(out, folder, kinds.split(","), value=value_name, feature_set=config.banded_spec)


def run_demo(out: str | Path, config: DemoConfig = DemoConfig(), progress: bool = True,
             data_root: str | Path | None = None) -> dict:
    """Run the whole demo into ``out`` and return its ``summary.json`` as a dict.

    Parameters
    ----------
    out : path
        Run directory (created). The demo dataset goes to ``out/data`` unless ``data_root``.
    config : DemoConfig
    progress : bool
    data_root : path, optional
        Where to build (or find, if already built with the same parameters) the demo dataset.
    """
    from ..report import write_report

    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    root = Path(data_root).resolve() if data_root is not None else out / "data"
    marker = root / ".complete.json"
    fresh = not (marker.is_file() and json.loads(marker.read_text()).get("key") == config.data.key())
    if fresh:
        build_demo_dataset(root, config.data, progress=progress)
    timings["dataset_s"] = time.perf_counter() - t0
    planted = load_planted(root)
    subject = config.data.subjects[0]

    t = time.perf_counter()
    experiment = demo_experiment(config, root, out, (subject,), progress=progress)
    cfg_path = write_demo_config(out / "demo.toml", experiment)
    from ..experiment import run_experiment

    run = run_experiment(experiment.replace(**{"outputs.report": False}), log=None)
    results = run.results[subject]
    timings["features_and_fit_s"] = time.perf_counter() - t

    banded = results[config.banded_spec]
    region_spaces = [r["space"] for r in planted["regions"]]
    rec = planted_recovery(banded.split_scores, planted["labels"], region_spaces)

    t = time.perf_counter()
    extra_images: dict[str, Path] = {}
    with redirect_stdout(io.StringIO()):  # `gim-brain map` lists every file; keep output short
        _maps(out, config)
    import matplotlib.pyplot as plt

    fig = _planted_figure(planted["labels"], rec["best_space"], region_spaces, root / "mask.nii.gz")
    png = out / "planted_vs_recovered.png"
    fig.savefig(png, dpi=90, bbox_inches="tight")
    plt.close(fig)
    extra_images["planted regions and the space that best explains them"] = png
    timings["maps_s"] = time.perf_counter() - t

    summary = json.loads((out / "summary.json").read_text())
    summary["planted_recovery"] = rec["fraction"]
    summary["planted"] = {
        "definition": "fraction of planted voxels whose largest split R² share in the banded fit "
                      f"({config.banded_spec}) belongs to the space that drives them",
        "banded_feature_set": config.banded_spec,
        "per_space": rec["per_space"],
        "regions": planted["regions"],
        "simulation": planted["simulation"],
        "data_root": str(root),
        "dataset_built_now": fresh,
    }
    summary["demo"] = {"config": str(cfg_path), "n_folds": config.n_folds,
                       "n_permutations": config.n_permutations, "resolution_mm": config.data.resolution_mm,
                       "snr": config.data.snr, "seed": config.data.seed}
    summary.setdefault("versions", {}).update({k: v for k, v in _versions().items()
                                               if k not in summary.get("versions", {})})
    timings["total_before_report_s"] = time.perf_counter() - t0
    summary["demo_timings"] = {k: round(v, 2) for k, v in timings.items()}
    atomic_write_bytes(out / "summary.json", json.dumps(summary, indent=2).encode())
    t = time.perf_counter()
    write_report(out, extra_images=extra_images)
    summary["demo_timings"]["report_s"] = round(time.perf_counter() - t, 2)
    summary["demo_timings"]["total_s"] = round(time.perf_counter() - t0, 2)
    atomic_write_bytes(out / "summary.json", json.dumps(summary, indent=2).encode())
    return summary
