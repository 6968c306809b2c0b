"""SentenceTransformer models: the model kind that maps inputs to one embedding each.

Its model, model card and collator load with the package; the trainer and training arguments,
which import transformers' Trainer, load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from embedforge._internal.lazy import lazy_attributes
from embedforge.sentence_transformer.data_collator import SentenceTransformerDataCollator
from embedforge.sentence_transformer.model import SentenceTransformer
from embedforge.sentence_transformer.model_card import SentenceTransformerModelCardData

if TYPE_CHECKING:
    from embedforge.sentence_transformer.trainer import SentenceTransformerTrainer
    from embedforge.sentence_transformer.training_args import SentenceTransformerTrainingArguments

__getattr__, __dir__ = lazy_attributes(
    __name__,
    {
        "SentenceTransformerTrainer": "embedforge.sentence_transformer.trainer",
        "SentenceTransformerTrainingArguments": "embedforge.sentence_transformer.training_args",
    },
    globals(),
)

__all__ = [
    "SentenceTransformer",
    "SentenceTransformerDataCollator",
    "SentenceTransformerModelCardData",
    "SentenceTransformerTrainer",
    "SentenceTransformerTrainingArguments",
]
