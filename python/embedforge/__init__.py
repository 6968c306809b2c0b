"""embedforge: train and run sentence-embedding models, a drop-in for sentence-transformers with a Rust core."""

from __future__ import annotations

__version__ = "0.1.0"

from embedforge.exceptions import (
    EmbedforgeError,
    InvalidArgumentError,
    ModelFormatError,
    ModelNotFoundError,
    TokenizerError,
)
from embedforge.sentence_transformer import SentenceTransformer

__all__ = [
    "EmbedforgeError",
    "InvalidArgumentError",
    "ModelFormatError",
    "ModelNotFoundError",
    "SentenceTransformer",
    "TokenizerError",
    "__version__",
]
