"""Word tokenizers for WordEmbeddings and BoW models, under the names sentence-transformers uses."""

from __future__ import annotations

from embedforge.sentence_transformer.modules.tokenizer.phrase import PhraseTokenizer
from embedforge.sentence_transformer.modules.tokenizer.stop_words import ENGLISH_STOP_WORDS
from embedforge.sentence_transformer.modules.tokenizer.whitespace import WhitespaceTokenizer
from embedforge.sentence_transformer.modules.tokenizer.word import TransformersTokenizerWrapper, WordTokenizer

__all__ = [
    "ENGLISH_STOP_WORDS",
    "PhraseTokenizer",
    "TransformersTokenizerWrapper",
    "WhitespaceTokenizer",
    "WordTokenizer",
]
