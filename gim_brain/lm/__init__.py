"""Language-model layer: load a causal LM, align words to tokens, extract per-word features."""

from .loading import LanguageModelNotFoundError, load_lm
from .model import LanguageModel

__all__ = ["LanguageModel", "LanguageModelNotFoundError", "load_lm"]
