"""Word tokenizers for WordEmbeddings and BoW models, under the names sentence-transformers uses."""

from __future__ import annotations

from embedforge.models.tokenizer.phrase import PhraseTokenizer
from embedforge.models.tokenizer.stop_words import ENGLISH_STOP_WORDS
from embedforge.models.tokenizer.whitespace import WhitespaceTokenizer
from embedforge.models.tokenizer.word import TransformersTokenizerWrapper, WordTokenizer

__all__ = [
    "ENGLISH_STOP_WORDS",
    "PhraseTokenizer",
    "TransformersTokenizerWrapper",
    "WhitespaceTokenizer",
    "WordTokenizer",
]
