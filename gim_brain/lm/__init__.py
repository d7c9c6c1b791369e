"""Language-model layer: load a causal LM, align words to tokens, extract per-word features.

``load_lm`` / ``LanguageModel`` (loading.py, model.py), ``align_words`` (alignment.py) and
``word_features`` / ``word_features_per_word`` (extraction.py, with the definition of a word's
context). transformers is imported only when a model is loaded.
"""

from .alignment import UnencodableWordError, WordAlignment, align_words
from .extraction import WordFeatures, word_features, word_features_per_word
from .loading import LanguageModelNotFoundError, load_lm
from .model import LanguageModel

__all__ = ["LanguageModel", "LanguageModelNotFoundError", "UnencodableWordError", "WordAlignment",
           "WordFeatures", "align_words", "load_lm", "word_features", "word_features_per_word"]
