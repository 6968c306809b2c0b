"""The building blocks of a ``SentenceTransformer``, under the names sentence-transformers uses."""

from __future__ import annotations

from embedforge.models.bow import BoW
from embedforge.models.cnn import CNN
from embedforge.models.dense import Dense
from embedforge.models.dropout import Dropout
from embedforge.models.layer_norm import LayerNorm
from embedforge.models.lstm import LSTM
from embedforge.models.module import InputModule, Module
from embedforge.models.normalize import Normalize
from embedforge.models.pooling import Pooling
from embedforge.models.router import Asym, Router
from embedforge.models.static_embedding import StaticEmbedding
from embedforge.models.transformer import Transformer
from embedforge.models.weighted_layer_pooling import WeightedLayerPooling
from embedforge.models.word_embeddings import WordEmbeddings
from embedforge.models.word_weights import WordWeights

__all__ = [
    "CNN",
    "LSTM",
    "Asym",
    "BoW",
    "Dense",
    "Dropout",
    "InputModule",
    "LayerNorm",
    "Module",
    "Normalize",
    "Pooling",
    "Router",
    "StaticEmbedding",
    "Transformer",
    "WeightedLayerPooling",
    "WordEmbeddings",
    "WordWeights",
]
