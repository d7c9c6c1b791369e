"""The experiment layer: one typed :class:`Experiment` that ``gim-brain fit``, the demo and the
notebooks all run with :func:`run_experiment` (split, targets, subjects x SPECs, resume, run
directory, ``summary.json``, ``report.html``)."""

from .config import (DATA_ROOT_ENV, DatasetSpec, EncodingSpec, Experiment, ExperimentError,
                     FeatureSpec, OutputSpec, ResponseSpec)
from .data import data_fingerprint, open_dataset, preprocess_responses
from .fit import fit_feature_set
from .params import check_delays, parse_alphas, parse_delays, parse_kv, route_params
from .runner import ExperimentRun, RunLockedError, run_experiment

__all__ = ["Experiment", "ExperimentError", "DatasetSpec", "FeatureSpec", "ResponseSpec",
           "EncodingSpec", "OutputSpec", "DATA_ROOT_ENV", "fit_feature_set",
           "run_experiment", "ExperimentRun", "RunLockedError", "route_params", "parse_kv",
           "parse_delays", "parse_alphas", "check_delays", "open_dataset", "preprocess_responses",
           "data_fingerprint"]
