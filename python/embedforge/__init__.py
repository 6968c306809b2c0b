"""embedforge: train and run sentence-embedding models, a drop-in for sentence-transformers with a Rust core."""

from __future__ import annotations

from typing import TYPE_CHECKING

from embedforge._internal.lazy import lazy_attributes
from embedforge._internal.openmp_team import share_torch_openmp_team
from embedforge._version import __version__
from embedforge.exceptions import (
    EmbedforgeError,
    InvalidArgumentError,
    ModelFormatError,
    ModelNotFoundError,
    TokenizerError,
)
from embedforge.sentence_transformer.datasets import ParallelSentencesDataset, SentencesDataset
from embedforge.sentence_transformer.model import SentenceTransformer
from embedforge.sentence_transformer.model_card import SentenceTransformerModelCardData
from embedforge.sentence_transformer.readers import InputExample
from embedforge.util.deprecated_import import install_deprecated_paths

if TYPE_CHECKING:
    from embedforge.base.sampler import DefaultBatchSampler, MultiDatasetDefaultBatchSampler
    from embedforge.cross_encoder import (
        CrossEncoder,
        CrossEncoderModelCardData,
        CrossEncoderTrainer,
        CrossEncoderTrainingArguments,
    )
    from embedforge.sentence_transformer.trainer import SentenceTransformerTrainer
    from embedforge.sentence_transformer.training_args import SentenceTransformerTrainingArguments
    from embedforge.util.dataset import resolve_ids
    from embedforge.util.hard_negatives import mine_hard_negatives
    from embedforge.util.logging import LoggingHandler
    from embedforge.util.quantization import quantize_embeddings
    from embedforge.util.similarity import SimilarityFunction

# Old module paths (embedforge.models, embedforge.losses, ...) keep importing, with a DeprecationWarning.
install_deprecated_paths()

# The Rust core's parallel loops alternate with torch operations (tokenisation between forward
# passes, the training kernels between matrix products): run them on torch's OpenMP threads.
share_torch_openmp_team()

# Training imports transformers.Trainer, accelerate and datasets: load them (and the other names
# sentence-transformers exports at its top level) on first use only.
__getattr__, __dir__ = lazy_attributes(
    __name__,
    {
        "SentenceTransformerTrainer": "embedforge.sentence_transformer.trainer",
        "SentenceTransformerTrainingArguments": "embedforge.sentence_transformer.training_args",
        "CrossEncoder": "embedforge.cross_encoder",
        "CrossEncoderModelCardData": "embedforge.cross_encoder",
        "CrossEncoderTrainer": "embedforge.cross_encoder.trainer",
        "CrossEncoderTrainingArguments": "embedforge.cross_encoder.training_args",
        "DefaultBatchSampler": "embedforge.base.sampler",
        "MultiDatasetDefaultBatchSampler": "embedforge.base.sampler",
        "LoggingHandler": "embedforge.util.logging",
        "SimilarityFunction": "embedforge.util.similarity",
        "mine_hard_negatives": "embedforge.util.hard_negatives",
        "quantize_embeddings": "embedforge.util.quantization",
        "resolve_ids": "embedforge.util.dataset",
    },
    globals(),
)

__all__ = [
    "CrossEncoder",
    "CrossEncoderModelCardData",
    "CrossEncoderTrainer",
    "CrossEncoderTrainingArguments",
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
    "resolve_ids",
]
