"""What every model kind shares: the model base, modules, trainer, training arguments, collator and samplers.

The trainer and training arguments import transformers' Trainer and load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from embedforge._internal.lazy import lazy_attributes
from embedforge.base.data_collator import BaseDataCollator
from embedforge.base.model import BaseModel
from embedforge.base.sampler import (
    BatchSamplers,
    DefaultBatchSampler,
    GroupByLabelBatchSampler,
    MultiDatasetBatchSamplers,
    MultiDatasetDefaultBatchSampler,
    NoDuplicatesBatchSampler,
    ProportionalBatchSampler,
    RoundRobinBatchSampler,
)

if TYPE_CHECKING:
    from embedforge.base.trainer import BaseTrainer
    from embedforge.base.training_args import BaseTrainingArguments

__getattr__, __dir__ = lazy_attributes(
    __name__,
    {"BaseTrainer": "embedforge.base.trainer", "BaseTrainingArguments": "embedforge.base.training_args"},
    globals(),
)

__all__ = [
    "BaseDataCollator",
    "BaseModel",
    "BaseTrainer",
    "BaseTrainingArguments",
    "BatchSamplers",
    "DefaultBatchSampler",
    "GroupByLabelBatchSampler",
    "MultiDatasetBatchSamplers",
    "MultiDatasetDefaultBatchSampler",
    "NoDuplicatesBatchSampler",
    "ProportionalBatchSampler",
    "RoundRobinBatchSampler",
]
