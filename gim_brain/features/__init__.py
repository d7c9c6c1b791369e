"""Feature spaces: where text meets time.

Word-level features are resampled to the response rows (``downsample``), z-scored per story and
FIR-delayed within each story (``preprocess``); named, parameterised spaces (``registry``) are
combined into per-story design matrices (``design``). The induction head over brain responses and
its leakage-safe controls live in ``induction`` (mechanism) and ``induction_spaces``; GIM's
token-level match of a query (exact >= tau, else fuzzy) in ``gim_matching``, used there and by
``gim_copy_spaces`` (``gim-copy``: the ``llm`` features of the word GIM copies).
The field's standard baselines: ``wordrate``, ``phonemes`` (``phonemerate``, ``articulation``)
and ``word_vectors`` (``eng1000``, ``static``).

>>> from gim_brain.data import load_dataset
>>> from gim_brain.features import SpaceContext, build_design
>>> ds = load_dataset("lebel2023_pca", "../shared/data/lebel2023")     # doctest: +SKIP
>>> design = build_design(SpaceContext(ds, subject="UTS03"), "wordrate")  # doctest: +SKIP
>>> design.X["wheretheressmoke"].shape                                  # doctest: +SKIP
(291, 4)
"""

from .context import EmptyStoryError, SpaceContext
from .design import Design, build_design, build_space, parse_spec
from .downsample import Downsampler, downsample, lanczos_kernel
from .preprocess import DEFAULT_DELAYS, FIRDelayer, StoryZScore, Trim, make_delayed, zscore
from .registry import (FeatureParameterError, FeatureSpace, Param, UnknownFeatureSpaceError,
                       get_space, list_spaces, register_space, resolve_params)

__all__ = [
    "DEFAULT_DELAYS", "Design", "Downsampler", "EmptyStoryError", "FIRDelayer",
    "FeatureParameterError", "FeatureSpace", "Param", "SpaceContext", "StoryZScore", "Trim",
    "UnknownFeatureSpaceError", "build_design", "build_space", "downsample", "get_space",
    "lanczos_kernel", "list_spaces", "make_delayed", "parse_spec", "register_space",
    "resolve_params", "zscore",
]
