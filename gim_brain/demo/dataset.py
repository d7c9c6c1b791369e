"""Write the demo dataset to a folder and open it like any real dataset.

The folder has the layout of a user's own dataset, described by its own manifest, so every
command and notebook reads it through :func:`gim_brain.data.load_dataset`::

    ROOT/manifest.toml                 dataset manifest (TR 2 s, test story, paths)
    ROOT/words/{story}.tsv             onset, offset, word (synthetic timings, seconds)
    ROOT/n_trs.json                    raw TR count of each story
    ROOT/responses/{subject}/{story}.npz   array "responses", float32 (n_rows, n_voxels)
    ROOT/mask.nii.gz                   MNI152 brain mask at low resolution (voxel order: C order of mask > 0)
    ROOT/planted.json                  the ground truth: region and driving space of every voxel

Responses are simulated from the feature spaces named in the planted regions, built by
:mod:`gim_brain.features` on the demo stories themselves (the same code and parameters a fit
uses), so "voxels driven by a space" is exact ground truth for the fit to recover.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from .._cache import atomic_save_npz, atomic_write_bytes, cache_dir, content_key
from .brain import DEFAULT_REGIONS, PlantedRegion, demo_mask, plant_regions
from .simulate import SimulationParams, simulate_responses
from .stories import STORY_NAMES, story_text, story_words
from .timing import synthesize_timings

__all__ = ["DemoParams", "DEFAULT_SPACE_PARAMS", "build_demo_dataset", "demo_dataset",
           "load_planted", "TEST_STORY", "MANIFEST_NAME"]

MANIFEST_NAME = "manifest.toml"
TEST_STORY = STORY_NAMES[-1]
TR = 2.0
#: Seconds of silence recorded after the last word (the haemodynamic response lasts ~15 s).
TAIL = 12.0
_COMPLETE = ".complete.json"
#: Written first into a folder the demo builds in, so a later build may replace its files.
_OWNER = ".gim-brain-demo"


class DemoFolderError(ValueError):
    """A folder that the demo would write into holds something else (files it must not replace)."""


def _claim_folder(root: Path) -> None:
    """Mark ``root`` as a demo folder, refusing a non-empty folder that is not one."""
    if root.exists() and not root.is_dir():
        raise DemoFolderError(f"demo data root {root} is a file, not a folder")
    if root.is_dir() and not (root / _OWNER).exists() and not (root / _COMPLETE).exists():
        entries = sorted(p.name for p in root.iterdir())
        if entries:
            shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
            raise DemoFolderError(f"demo data root {root} is not empty and is not a demo folder "
                                  f"(holds {shown}); the demo would overwrite manifest.toml, "
                                  f"n_trs.json and words/*.tsv there: name an empty or new folder")
    root.mkdir(parents=True, exist_ok=True)
    (root / _OWNER).touch()

#: Parameters of the planted feature spaces: small and fast on a CPU, and used by the demo's fit.
DEFAULT_SPACE_PARAMS: dict[str, dict[str, Any]] = {
    "wordrate": {},
    "llm": {},
    "gim-stats": {},
}


@dataclass(frozen=True)
class DemoParams:
    """Everything the demo dataset depends on (part of its cache key).

    Attributes
    ----------
    subjects : tuple of str
        Simulated subjects (each with its own tuning weights and noise).
    resolution_mm : int
        Voxel size of the MNI brain mask.
    rate : float
        Words per second of the synthetic narration.
    snr : float
        Signal-to-noise variance ratio of planted voxels.
    seed : int
        Seed of the timings and the simulation (subject k uses ``seed + 1000 k``).
    regions : tuple of PlantedRegion
    space_params : dict space -> parameters
        Parameters of the driving feature spaces (the demo's fit uses the same).
    """

    subjects: tuple[str, ...] = ("sim01",)
    resolution_mm: int = 8
    rate: float = 2.5
    snr: float = 1.0
    seed: int = 0
    regions: tuple[PlantedRegion, ...] = DEFAULT_REGIONS
    space_params: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_SPACE_PARAMS.items()})

    def key(self) -> str:
        texts = [story_text(s) for s in STORY_NAMES]
        return content_key("gim_brain.demo", _jsonable(asdict(self)), texts)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def _manifest_text(params: DemoParams) -> str:
    return "\n".join([
        "# The gim-brain demo dataset: original stories, synthetic timings, simulated voxels.",
        'name = "demo"',
        'description = "gim-brain demo: 5 original stories, synthetic word timings (2.5 words/s), '
        f'{len(params.subjects)} simulated subject(s) on an MNI152 brain mask at '
        f'{params.resolution_mm} mm with planted feature-space regions"',
        'license = "BSD-3-Clause (stories and simulation written for gim-brain)"',
        "",
        "[words]",
        'path = "words/{story}.tsv"',
        "",
        "[cleaning]",
        "lowercase = true",
        "# the stories hold real words such as 'breath' that the default noise-mark list would drop",
        'drop = ["", "sp", "sil"]',
        "",
        "[timing]",
        f"tr = {TR}",
        "audio_start = 0.0",
        "trim_start = 1            # row r holds the words with onset in [2r, 2r + 2) s",
        "trim_end = 0",
        'n_trs = "n_trs.json"',
        "",
        "[responses]",
        'path = "responses/{subject}/{story}.npz"',
        'key = "responses"',
        'mask = "mask.nii.gz"       # the voxels are this mask\'s, in C order of mask > 0',
        "trimmed = true",
        "",
        "[stories]",
        f'names = {json.dumps(list(STORY_NAMES))}',
        f'test = ["{TEST_STORY}"]',
        "",
    ])


def _word_table(words: list[str], onsets: np.ndarray, offsets: np.ndarray) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t", lineterminator="\n")
    writer.writerow(["onset", "offset", "word"])
    for w, a, b in zip(words, onsets, offsets):
        writer.writerow([f"{a:.3f}", f"{b:.3f}", w])
    return buf.getvalue().encode("utf-8")


def _driver_rows(ctx, space: str, params: dict) -> list[np.ndarray]:
    """Row-level features of one space for every story (not yet z-scored, not delayed)."""
    from ..features import get_space, resolve_params  # features sit above data

    spec = get_space(space)
    resolved = resolve_params(spec, params)
    return [np.asarray(spec.build(ctx, resolved, s), dtype=np.float64) for s in STORY_NAMES]


def build_demo_dataset(root: str | Path, params: DemoParams = DemoParams(),
                       progress: bool = True) -> Path:
    """Write the demo dataset into ``root`` (created; existing demo files are replaced).

    Raises :class:`DemoFolderError` before writing anything when ``root`` is a non-empty folder
    that no demo build made (a user's own data is never overwritten).

    Parameters
    ----------
    root : path
        Destination folder.
    params : DemoParams
    progress : bool
        Show progress bars while the driving features are built.

    Returns
    -------
    Path
        ``root``, now loadable with ``load_dataset(root / "manifest.toml", root)``.
    """
    from ..data import load_dataset

    t0 = time.perf_counter()
    root = Path(root)
    _claim_folder(root)
    (root / _COMPLETE).unlink(missing_ok=True)
    n_trs = {}
    for k, name in enumerate(STORY_NAMES):
        words, bounds = story_words(name)
        onsets, offsets = synthesize_timings(words, bounds, rate=params.rate, seed=params.seed + k)
        atomic_write_bytes(root / "words" / f"{name}.tsv", _word_table(words, onsets, offsets))
        n_trs[name] = 1 + int(math.ceil((offsets[-1] + TAIL) / TR))
    atomic_write_bytes(root / "n_trs.json", json.dumps(n_trs, indent=1).encode())
    atomic_write_bytes(root / MANIFEST_NAME, _manifest_text(params).encode())
    mask = demo_mask(params.resolution_mm)
    nib.save(mask, root / "mask.nii.gz")
    labels = plant_regions(mask, params.regions)

    from ..features import SpaceContext

    ctx = SpaceContext(load_dataset(root / MANIFEST_NAME, root), progress=progress)
    spaces = sorted({r.space for r in params.regions})
    drivers = {s: _driver_rows(ctx, s, params.space_params.get(s, {})) for s in spaces}
    t_features = time.perf_counter() - t0
    region_spaces = [r.space for r in params.regions]
    for i, subject in enumerate(params.subjects):
        sim = SimulationParams(snr=params.snr, seed=params.seed + 1000 * i)
        ys = simulate_responses(drivers, labels, region_spaces, TR, sim)
        for name, y in zip(STORY_NAMES, ys):
            atomic_save_npz(root / "responses" / subject / f"{name}.npz", responses=y)
    planted = {
        "labels": labels.tolist(),
        "regions": [{"space": r.space, "centers_mm": [list(c) for c in r.centers_mm],
                     "radius_mm": r.radius_mm, "label": r.label,
                     "n_voxels": int((labels == k).sum())} for k, r in enumerate(params.regions)],
        "space_params": _jsonable(params.space_params),
        "simulation": {"snr": params.snr, "n_latent": SimulationParams.n_latent,
                       "noise_ar": SimulationParams.noise_ar, "seed": params.seed,
                       "hrf": "SPM canonical double gamma", "tr": TR},
        "subjects": list(params.subjects),
        "mask": "mask.nii.gz",
        "voxel_order": "C order of mask > 0 (numpy.nonzero)",
        "timings": {"rate_words_per_s": params.rate, "tail_s": TAIL},
        "build_seconds": {"features": round(t_features, 2),
                          "total": round(time.perf_counter() - t0, 2)},
    }
    atomic_write_bytes(root / "planted.json", json.dumps(planted, indent=1).encode())
    atomic_write_bytes(root / _COMPLETE, json.dumps({"key": params.key()}).encode())
    return root


def demo_dataset(root: str | Path | None = None, params: DemoParams = DemoParams(),
                 progress: bool = True):
    """The demo dataset as a :class:`gim_brain.data.Dataset`, built on first use.

    Parameters
    ----------
    root : path or None
        Where the dataset lives; None: the user cache (``<cache>/demo/<content key>``), so a
        changed parameter or story never reuses stale files.
    params : DemoParams
    progress : bool
    """
    from ..data import load_dataset

    root = Path(root) if root is not None else cache_dir("demo") / params.key()
    marker = root / _COMPLETE
    current = False
    if marker.is_file():
        try:
            current = json.loads(marker.read_text()).get("key") == params.key()
        except (OSError, ValueError):
            current = False
    if not current:
        build_demo_dataset(root, params, progress=progress)
    return load_dataset(root / MANIFEST_NAME, root)


def load_planted(root: str | Path) -> dict:
    """The ground truth of a demo dataset folder (``planted.json``), labels as an int array."""
    path = Path(root) / "planted.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {root} is not a demo dataset folder "
                                "(build one with gim_brain.demo.demo_dataset)")
    planted = json.loads(path.read_text())
    planted["labels"] = np.asarray(planted["labels"], dtype=np.int64)
    return planted
