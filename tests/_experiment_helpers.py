"""Small demo datasets and the ``gim-brain`` command for experiment-level tests."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

#: The ``gim-brain`` console script, run with this interpreter (and the inherited PYTHONPATH).
CLI = [sys.executable, "-c", "import sys; from gim_brain.cli.main import main; sys.exit(main())"]


def small_demo(root, subjects=("sim01",)):
    """The demo generator's data at 12 mm with text-rate regions only (no LM: seconds)."""
    from gim_brain.demo.brain import DEFAULT_REGIONS, PlantedRegion
    from gim_brain.demo.dataset import DemoParams, build_demo_dataset

    regions = tuple(PlantedRegion(space, r.centers_mm, r.radius_mm, r.label)
                    for space, r in zip(("wordrate", "letterrate", "wordrate"), DEFAULT_REGIONS))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GIM_BRAIN_CACHE", str(root / "cache"))
        build_demo_dataset(root / "data", DemoParams(subjects=subjects, resolution_mm=12,
                                                     regions=regions, space_params={}),
                           progress=False)
    return root


def fit_cmd(root, out, *extra, features=("wordrate",)):
    """``gim-brain fit`` on the small demo: few folds, alphas and permutations, one BLAS thread."""
    feats = [a for f in features for a in ("--features", f)]
    return [*CLI, "fit", "--manifest", str(root / "data" / "manifest.toml"), "--data-root",
            str(root / "data"), "--subject", "sim01", *feats, "--n-folds", "2",
            "--n-permutations", "20", "--backend", "numpy", "--alphas", "logspace:0:6:7",
            "--blas-threads", "1", "--no-progress", "--no-report", "--out", str(out), *extra]


def run_cli(cmd, root, timeout=300):
    env = dict(os.environ, GIM_BRAIN_CACHE=str(root / "cache"))
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
