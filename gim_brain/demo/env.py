"""Choose the dataset of a notebook or script from environment variables: the demo by default.

=============================  =============================================================
``GIM_BRAIN_DATA_ROOT``        folder of a real dataset; unset: the embedded demo dataset
``GIM_BRAIN_MANIFEST``         its manifest name or path (default ``lebel2023_pca``)
``GIM_BRAIN_SUBJECT``          subject (default: the dataset's first)
``GIM_BRAIN_LM``               LM of the LM-based spaces: hub id, folder or .gguf
                               (default: the offline SmolLM2-135M)
``GIM_BRAIN_DEMO_RESOLUTION``  voxel size of the demo brain in mm (default 8)
``GIM_BRAIN_MAX_TRAIN``        use at most this many training stories (default: all)
``GIM_BRAIN_OUT``              where notebooks write run folders (default ``runs/notebooks``)
=============================  =============================================================
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Setup", "setup_from_env"]


@dataclass
class Setup:
    """The dataset and choices a notebook works with.

    Attributes
    ----------
    dataset : gim_brain.data.Dataset
    subject : str
    is_demo : bool
    lm_model : str or None
        LM for LM-based spaces (None: the offline default).
    space_params : dict space -> parameters
        Parameters to use for ``llm``/``gim-stats``/... (the demo's simulation parameters).
    train_stories, test_stories : list of str
    out : Path
        Folder for run directories.
    """

    dataset: Any
    subject: str
    is_demo: bool
    lm_model: str | None
    space_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    train_stories: list[str] = field(default_factory=list)
    test_stories: list[str] = field(default_factory=list)
    out: Path = Path("runs/notebooks")

    def spec(self, space: str) -> str:
        """SPEC of a space with this setup's parameters (e.g. ``llm[model=...]``)."""
        params = self.space_params.get(space, {})
        if not params:
            return space
        return space + "[" + ";".join(f"{k}={v}" for k, v in params.items()) + "]"

    def experiment(self, sets, name: str, **encoding):
        """An :class:`~gim_brain.experiment.Experiment` of this setup's dataset and subject.

        Parameters
        ----------
        sets : list of str
            Feature SPECs (use :meth:`spec` for the setup's space parameters).
        name : str
            Names the experiment and its run directory ``out/name``.
        **encoding
            :class:`~gim_brain.experiment.EncodingSpec` options (alphas, n_folds, score, ...);
            ``n_folds`` defaults to one fold per training story, at most 5.
        """
        from ..experiment import DatasetSpec, EncodingSpec, Experiment, FeatureSpec, OutputSpec

        encoding.setdefault("n_folds", max(2, min(5, len(self.train_stories))))
        return Experiment(
            name=name,
            dataset=DatasetSpec(manifest=str(self.dataset.manifest_path or self.dataset.name),
                                data_root=str(self.dataset.root),
                                train_stories=tuple(self.train_stories)),
            subjects=(self.subject,), features=FeatureSpec(sets=tuple(sets)),
            encoding=EncodingSpec(**encoding),
            outputs=OutputSpec(out=str(self.out / name), progress=False))

    @property
    def stories(self) -> list[str]:
        return self.train_stories + self.test_stories

    @property
    def mask(self) -> Path | None:
        """The NIfTI mask of volume targets (the demo's MNI mask), else None."""
        mask = self.dataset.manifest["responses"].get("mask")
        return self.dataset._mask_path(self.subject) if mask else None


def _int_env(name: str, default: int | None) -> int | None:
    text = os.environ.get(name, "")
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"environment variable {name}={text!r} must be a whole number") from None


def setup_from_env(progress: bool = False) -> Setup:
    """The demo dataset, or the real dataset named by ``GIM_BRAIN_DATA_ROOT`` (see module doc).

    Raises
    ------
    FileNotFoundError
        ``GIM_BRAIN_DATA_ROOT`` is set but not a folder.
    ValueError
        Unknown subject or a malformed numeric variable (the message names the variable).
    """
    root = os.environ.get("GIM_BRAIN_DATA_ROOT", "")
    lm_model = os.environ.get("GIM_BRAIN_LM") or None
    out = Path(os.environ.get("GIM_BRAIN_OUT", "runs/notebooks"))
    if root:
        from ..data import load_dataset

        if not Path(root).expanduser().is_dir():
            raise FileNotFoundError(f"GIM_BRAIN_DATA_ROOT={root!r} is not a folder; unset it to "
                                    "use the demo dataset")
        ds = load_dataset(os.environ.get("GIM_BRAIN_MANIFEST", "lebel2023_pca"), root)
        is_demo = False
        params = {s: ({"model": lm_model} if lm_model else {})
                  for s in ("llm", "gim-stats", "embedding", "gim-next")}
        params["wordrate"] = {}
    else:
        from .dataset import DemoParams, demo_dataset

        lm = {"model": lm_model} if lm_model else {}
        params = {"wordrate": {}, "llm": dict(lm), "gim-stats": dict(lm)}
        data = DemoParams(resolution_mm=_int_env("GIM_BRAIN_DEMO_RESOLUTION", 8),
                          space_params=params)
        ds = demo_dataset(params=data, progress=progress)
        is_demo = True
    subject = os.environ.get("GIM_BRAIN_SUBJECT") or ds.subjects()[0]
    if subject not in ds.subjects():
        raise ValueError(f"GIM_BRAIN_SUBJECT={subject!r} is not a subject of {ds.name!r} "
                         f"({', '.join(ds.subjects())})")
    split = ds.split(subject)  # the dataset decides the test stories, as for `gim-brain fit`
    train, test = list(split.train), list(split.test)
    limit = _int_env("GIM_BRAIN_MAX_TRAIN", None)
    if limit:
        train = train[:limit]
    return Setup(dataset=ds, subject=subject, is_demo=is_demo, lm_model=lm_model,
                 space_params=params, train_stories=train, test_stories=test, out=out)
