"""Voxelwise encoding models: ridge / banded ridge with story-grouped CV (himalaya underneath).

Public API: :func:`fit_encoding`, :class:`EncodingResult`, :func:`write_run`; building blocks in
``cv``, ``ridge``, ``fastpath``, ``banded``, ``noise_ceiling``, ``significance``, ``backend``.
"""

from .backend import resolve_backend, use_backend
from .chunking import MemoryBudgetError, merge_results, parse_bytes
from .cv import Fold, story_folds
from .estimators import StoryBandedRidgeCV, StoryRidgeCV
from .fit import DEFAULT_ALPHAS, fit_encoding
from .result import EncodingResult
from .run import RunDirError, load_results, read_summary, read_targets, slugify, write_run
from .significance import block_permutation_pvalues, fdr_bh

__all__ = [
    "fit_encoding", "EncodingResult", "write_run", "read_summary", "read_targets", "load_results", "RunDirError", "slugify", "story_folds",
    "Fold", "resolve_backend", "use_backend", "block_permutation_pvalues", "fdr_bh",
    "DEFAULT_ALPHAS", "StoryRidgeCV", "StoryBandedRidgeCV", "MemoryBudgetError", "merge_results",
    "parse_bytes",
]
