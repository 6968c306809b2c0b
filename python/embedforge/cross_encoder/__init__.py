"""Cross-encoders: models that score a text pair jointly (``sentence_transformers.cross_encoder``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from embedforge._internal.lazy import lazy_attributes
from embedforge.cross_encoder.data_collator import CrossEncoderDataCollator
from embedforge.cross_encoder.model import CrossEncoder
from embedforge.cross_encoder.model_card import CrossEncoderModelCardData

if TYPE_CHECKING:
    from embedforge.cross_encoder.trainer import CrossEncoderTrainer
    from embedforge.cross_encoder.training_args import CrossEncoderTrainingArguments

# The trainer and its arguments import transformers' Trainer machinery: loaded on first use.
__getattr__, __dir__ = lazy_attributes(
    __name__,
    {
        "CrossEncoderTrainer": "embedforge.cross_encoder.trainer",
        "CrossEncoderTrainingArguments": "embedforge.cross_encoder.training_args",
    },
    globals(),
)

__all__ = [
    "CrossEncoder",
    "CrossEncoderDataCollator",
    "CrossEncoderModelCardData",
    "CrossEncoderTrainer",
    "CrossEncoderTrainingArguments",
]
