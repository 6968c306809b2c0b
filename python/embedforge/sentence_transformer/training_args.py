"""SentenceTransformerTrainingArguments: the training arguments of a SentenceTransformer."""

from __future__ import annotations

from dataclasses import dataclass

from embedforge.base.training_args import BaseTrainingArguments, BatchSamplers, MultiDatasetBatchSamplers


@dataclass
class SentenceTransformerTrainingArguments(BaseTrainingArguments):
    """transformers' TrainingArguments with the sentence-embedding options (see :class:`BaseTrainingArguments`)."""


__all__ = ["BatchSamplers", "MultiDatasetBatchSamplers", "SentenceTransformerTrainingArguments"]
