"""The building blocks of a ``SentenceTransformer``, under the names sentence-transformers uses."""

from __future__ import annotations

from embedforge.models.dense import Dense
from embedforge.models.module import InputModule, Module
from embedforge.models.normalize import Normalize
from embedforge.models.pooling import Pooling
from embedforge.models.static_embedding import StaticEmbedding
from embedforge.models.transformer import Transformer

__all__ = [
    "Dense",
    "InputModule",
    "Module",
    "Normalize",
    "Pooling",
    "StaticEmbedding",
    "Transformer",
]
