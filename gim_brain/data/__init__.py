"""Data layer: transcripts, token cleaning, TR grids, responses, manifests and datasets.

Typical use::

    from gim_brain.data import load_dataset
    ds = load_dataset("lebel2023_pca", "../shared/data/lebel2023")
    story = ds.load_story("avatar")          # Story: cleaned words, TR grid, cleaning report
    Y = ds.load_responses("UTS03", "avatar")  # float32 (n_rows, n_targets)
"""

from .cleaning import DEFAULT_DROP, CleaningReport, TokenCleaner, clean_transcript
from .dataset import Dataset, Story, StoryNotFoundError, load_dataset
from .manifest import ManifestError, find_manifest, list_manifests, load_manifest
from .responses import ResponseError, ResponseProblems, inspect_responses, read_responses, validate_responses
from .timing import TimingError, TRGrid
from .transcripts import (
    TextGridError,
    Transcript,
    TranscriptError,
    read_textgrid,
    read_transcript,
    read_word_arrays,
    read_word_table,
)

__all__ = [
    "CleaningReport", "DEFAULT_DROP", "Dataset", "ManifestError", "ResponseError", "ResponseProblems",
    "Story", "StoryNotFoundError", "TRGrid", "TextGridError", "TimingError", "TokenCleaner", "Transcript",
    "TranscriptError", "clean_transcript", "find_manifest", "inspect_responses", "list_manifests",
    "load_dataset", "load_manifest", "read_responses", "read_textgrid", "read_transcript",
    "read_word_arrays", "read_word_table", "validate_responses",
]
