"""TOML run configs: now :class:`gim_brain.experiment.Experiment` (kept as aliases).

``gim-brain fit CONFIG.toml`` reads the file with :meth:`Experiment.read`; flags given on the
command line override its values (see :mod:`gim_brain.cli.fit`). The format is documented in
:mod:`gim_brain.experiment.config`.
"""

from __future__ import annotations

from .experiment.config import DATA_ROOT_ENV, Experiment, ExperimentError

__all__ = ["RunConfigError", "load_run_config", "DATA_ROOT_ENV"]

#: The error a malformed run config raises (names the file, the key and the fix).
RunConfigError = ExperimentError


def load_run_config(path) -> Experiment:
    """Read and validate a run-config TOML file: :meth:`Experiment.read`."""
    return Experiment.read(path)
