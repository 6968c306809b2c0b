"""Batch samplers: the same batches as sentence-transformers' samplers, with the row work in Rust."""

from __future__ import annotations

# sentence-transformers keeps its samplers in one module that also holds these names; scripts import
# SubsetRandomSampler from there and patch numpy/torch through it (``sampler.np.iinfo``), so the
# package offers the same names. Patching them reaches the shared numpy/torch modules our samplers use.
import numpy as np  # noqa: F401
import torch  # noqa: F401
from torch.utils.data import SubsetRandomSampler

from embedforge.base.sampler.default import DefaultBatchSampler, SetEpochMixin
from embedforge.base.sampler.enums import BatchSamplers, MultiDatasetBatchSamplers
from embedforge.base.sampler.group_by_label import GroupByLabelBatchSampler
from embedforge.base.sampler.multi_dataset import (
    MultiDatasetDefaultBatchSampler,
    ProportionalBatchSampler,
    RoundRobinBatchSampler,
)
from embedforge.base.sampler.no_duplicates import NoDuplicatesBatchSampler
from embedforge.base.sampler.row_values import value_key

#: sentence-transformers' name for the key a value is compared under in NoDuplicatesBatchSampler.
_sample_value_str = value_key

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
    "SubsetRandomSampler",
]
