"""embedforge: train and run sentence-embedding models, a drop-in for sentence-transformers with a Rust core."""

from __future__ import annotations

__version__ = "0.1.0"

from embedforge.datasets import ParallelSentencesDataset, SentencesDataset
from embedforge.exceptions import (
    EmbedforgeError,
    InvalidArgumentError,
    ModelFormatError,
    ModelNotFoundError,
    TokenizerError,
)
from embedforge.readers import InputExample
from embedforge.sentence_transformer import SentenceTransformer

__all__ = [
    "EmbedforgeError",
    "InputExample",
    "InvalidArgumentError",
    "ModelFormatError",
    "ModelNotFoundError",
    "ParallelSentencesDataset",
    "SentenceTransformer",
    "SentencesDataset",
    "TokenizerError",
    "__version__",
]
