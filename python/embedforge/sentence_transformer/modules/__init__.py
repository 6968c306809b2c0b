"""The building blocks of a ``SentenceTransformer``, under the names sentence-transformers uses."""

from __future__ import annotations

from embedforge.base.modules.dense import Dense
from embedforge.base.modules.input_module import InputModule
from embedforge.base.modules.module import Module
from embedforge.base.modules.normalize import Normalize
from embedforge.base.modules.router import Asym, Router
from embedforge.base.modules.transformer import Transformer
from embedforge.sentence_transformer.modules.bow import BoW
from embedforge.sentence_transformer.modules.cnn import CNN
from embedforge.sentence_transformer.modules.dropout import Dropout
from embedforge.sentence_transformer.modules.layer_norm import LayerNorm
from embedforge.sentence_transformer.modules.lstm import LSTM
from embedforge.sentence_transformer.modules.pooling import Pooling
from embedforge.sentence_transformer.modules.static_embedding import StaticEmbedding
from embedforge.sentence_transformer.modules.weighted_layer_pooling import WeightedLayerPooling
from embedforge.sentence_transformer.modules.word_embeddings import WordEmbeddings
from embedforge.sentence_transformer.modules.word_weights import WordWeights

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
