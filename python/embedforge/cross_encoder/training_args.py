"""CrossEncoderTrainingArguments: the training arguments of a CrossEncoder."""

from __future__ import annotations

from dataclasses import dataclass

from embedforge.base.training_args import BaseTrainingArguments, BatchSamplers, MultiDatasetBatchSamplers


@dataclass
class CrossEncoderTrainingArguments(BaseTrainingArguments):
    """transformers' TrainingArguments with the sentence-transformers options (see :class:`BaseTrainingArguments`).

    A CrossEncoder pairs its input columns, so ``prompts`` and ``router_mapping`` take one string
    or one string per dataset name, not one per column (the collator rejects per-column values).
    """


__all__ = ["BatchSamplers", "CrossEncoderTrainingArguments", "MultiDatasetBatchSamplers"]
