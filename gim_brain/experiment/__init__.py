"""The experiment layer: one typed :class:`Experiment` that ``gim-brain fit``, the demo and the
notebooks all run with :func:`run_experiment` (split, targets, subjects x SPECs, resume, run
directory, ``summary.json``, ``report.html``).

Names are loaded on first use (PEP 562), so that ``gim_brain.experiment.config`` — all that
building the command-line parser needs — imports without the fitting stack (torch, sklearn).
"""

from importlib import import_module

_WHERE = {
    "config": ("DATA_ROOT_ENV", "DatasetSpec", "EncodingSpec", "Experiment", "ExperimentError",
               "FeatureSpec", "OutputSpec", "ResponseSpec"),
    "data": ("data_fingerprint", "open_dataset", "preprocess_responses"),
    "fit": ("fit_feature_set",),
    "params": ("check_delays", "parse_alphas", "parse_delays", "parse_kv", "route_params"),
    "runner": ("ExperimentRun", "RunLockedError", "run_experiment"),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}

__all__ = ["Experiment", "ExperimentError", "DatasetSpec", "FeatureSpec", "ResponseSpec",
           "EncodingSpec", "OutputSpec", "DATA_ROOT_ENV", "fit_feature_set",
           "run_experiment", "ExperimentRun", "RunLockedError", "route_params", "parse_kv",
           "parse_delays", "parse_alphas", "check_delays", "open_dataset", "preprocess_responses",
           "data_fingerprint"]


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
