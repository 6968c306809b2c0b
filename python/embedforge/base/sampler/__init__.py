"""Batch samplers: the same batches as sentence-transformers' samplers, with the row work in Rust."""

from __future__ import annotations

from embedforge.base.sampler.default import DefaultBatchSampler, SetEpochMixin
from embedforge.base.sampler.enums import BatchSamplers, MultiDatasetBatchSamplers
from embedforge.base.sampler.group_by_label import GroupByLabelBatchSampler
from embedforge.base.sampler.multi_dataset import (
    MultiDatasetDefaultBatchSampler,
    ProportionalBatchSampler,
    RoundRobinBatchSampler,
)
from embedforge.base.sampler.no_duplicates import NoDuplicatesBatchSampler

__all__ = [
    "BatchSamplers",
    "DefaultBatchSampler",
    "GroupByLabelBatchSampler",
    "MultiDatasetBatchSamplers",
    "MultiDatasetDefaultBatchSampler",
    "NoDuplicatesBatchSampler",
    "ProportionalBatchSampler",
    "RoundRobinBatchSampler",
    "SetEpochMixin",
]
