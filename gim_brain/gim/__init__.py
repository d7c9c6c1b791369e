"""GIM next-token model: token ids in, distributions and explanations out (knows nothing of fMRI).

Main entry point: ``GIM(embedder, reference, tau).predict_document(ids) -> DocumentPrediction``.
The fuzzy embedder defaults to the shipped distilled model (``DistilledEmbedder(lm)``); train
another with ``gim-brain train-fuzzy`` (:mod:`gim_brain.gim.distill`).
"""

from .distributions import SparseDistributions
from .exact import ExactMatches, SuffixAutomaton, exact_matches
from .fuzzy import (DEFAULT_CHECKPOINT, DEFAULT_EMBEDDER, DistilledEmbedder, LMDistributionEmbedder,
                    LMHiddenEmbedder, PositionEmbedder, embed_document, fuzzy_distributions,
                    make_embedder)
from .student import CheckpointError, FuzzyStudent
from .model import BRANCHES, GIM, DocumentPrediction, Explanation
from .reference import ReferenceIndex, ReferenceIndexError, build_reference_index
from .reference_engines import ENGINES, build_reference, open_reference
from .tokenizers import Tokenizer, TokenizerNotFoundError, load_tokenizer

__all__ = ["BRANCHES", "GIM", "DocumentPrediction", "Explanation", "SparseDistributions",
           "ExactMatches", "SuffixAutomaton", "exact_matches", "PositionEmbedder",
           "LMHiddenEmbedder", "LMDistributionEmbedder", "DistilledEmbedder", "DEFAULT_CHECKPOINT",
           "DEFAULT_EMBEDDER", "CheckpointError", "FuzzyStudent", "make_embedder", "embed_document",
           "fuzzy_distributions", "ReferenceIndex", "ReferenceIndexError", "build_reference_index",
           "ENGINES", "build_reference", "open_reference", "Tokenizer", "TokenizerNotFoundError",
           "load_tokenizer"]
