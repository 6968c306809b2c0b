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
from embedforge.model_card import SentenceTransformerModelCardData
from embedforge.readers import InputExample
from embedforge.sentence_transformer import SentenceTransformer

# Training imports transformers.Trainer, accelerate and datasets: load them (and the other names
# sentence-transformers exports at its top level) on first use only.
_LAZY_TRAINING = {
    "SentenceTransformerTrainer": "embedforge.trainer",
    "SentenceTransformerTrainingArguments": "embedforge.training_args",
    "CrossEncoder": "embedforge.cross_encoder",
    "DefaultBatchSampler": "embedforge.sampler",
    "MultiDatasetDefaultBatchSampler": "embedforge.sampler",
    "LoggingHandler": "embedforge.util.logging",
    "SimilarityFunction": "embedforge.util.similarity",
    "mine_hard_negatives": "embedforge.util.hard_negatives",
    "quantize_embeddings": "embedforge.util.quantization",
}


def __getattr__(name: str) -> object:
    module_name = _LAZY_TRAINING.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


__all__ = [
    "CrossEncoder",
    "DefaultBatchSampler",
    "EmbedforgeError",
    "InputExample",
    "InvalidArgumentError",
    "LoggingHandler",
    "ModelFormatError",
    "ModelNotFoundError",
    "MultiDatasetDefaultBatchSampler",
    "ParallelSentencesDataset",
    "SentenceTransformer",
    "SentenceTransformerModelCardData",
    "SentenceTransformerTrainer",
    "SentenceTransformerTrainingArguments",
    "SentencesDataset",
    "SimilarityFunction",
    "TokenizerError",
    "__version__",
    "mine_hard_negatives",
    "quantize_embeddings",
]
