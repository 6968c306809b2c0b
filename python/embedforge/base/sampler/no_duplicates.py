"""Batches in which no value occurs twice, across all input columns."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import numpy as np
import torch

from embedforge.base.sampler import _engine
from embedforge.base.sampler.default import DefaultBatchSampler
from embedforge.base.sampler.row_values import read_string_columns

logger = logging.getLogger(__name__)

# Extra reshuffled passes an epoch may take to reach the advertised number of batches.
MAX_RESAMPLE_PASSES = 2

_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        logger.warning(message)


class NoDuplicatesBatchSampler(DefaultBatchSampler):
    """Batches whose rows share no value, in any pair of input columns.

    Each pass walks the rows in a random order and fills a batch with every row that shares no value
    with the rows already in it; a row that conflicts waits, in order, for a later batch. If a whole
    pass gives fewer batches than ``len(self)`` (possible with ``drop_last=True`` and many duplicates),
    up to two more shuffled passes top the epoch up, repeating some rows (a warning says so).

    The values are read from the dataset once, as whole columns, and cached as per-row value ids; the
    passes themselves run in Rust.

    Args:
        dataset: A ``datasets.Dataset``. Label columns (see ``valid_label_columns``) and
            ``dataset_name`` are not compared.
        batch_size: Rows per batch.
        drop_last: Drop the last, incomplete batch of every pass.
        valid_label_columns: Column names that may hold labels; they are left out of the comparison.
        generator: Random number generator for the shuffles.
        seed: The generator is reseeded with ``seed + epoch`` at the start of every epoch.
        precompute_hashes: Accepted for compatibility; values are always read once and cached.
        precompute_num_proc: Accepted for compatibility; unused.
        precompute_batch_size: Accepted for compatibility; unused.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int,
        drop_last: bool,
        valid_label_columns: list[str] | None = None,
        generator: torch.Generator | None = None,
        seed: int = 0,
        precompute_hashes: bool = False,
        precompute_num_proc: int | None = None,
        precompute_batch_size: int = 1000,
    ) -> None:
        super().__init__(
            dataset,
            batch_size=batch_size,
            drop_last=drop_last,
            valid_label_columns=valid_label_columns,
            generator=generator,
            seed=seed,
        )
        label_columns = [column for column in dataset.column_names if column in set(valid_label_columns or [])]
        if label_columns:
            dataset = dataset.remove_columns(label_columns)
        self.dataset = dataset
        self.precompute_hashes = precompute_hashes
        self.precompute_num_proc = precompute_num_proc
        self.precompute_batch_size = precompute_batch_size
        self._value_ids: np.ndarray | None = None

    def _row_value_ids(self) -> np.ndarray:
        """Per-row value ids ``[rows, columns]``: equal ids mean equal values. Built once."""
        if self._value_ids is None:
            self._value_ids = _engine.value_ids(read_string_columns(self.dataset), len(self.dataset))
        return self._value_ids

    def __iter__(self) -> Iterator[list[int]]:
        if self.generator and self.seed is not None:
            self.generator.manual_seed(self.seed + self.epoch)
        if len(self.dataset) == 0:
            return
        value_ids = self._row_value_ids()
        expected = len(self)
        yielded = 0
        # The first pass is never cut short: without drop_last it may give more, smaller batches.
        for batch in self._one_pass(value_ids):
            yield batch
            yielded += 1
        if yielded >= expected:
            return
        if yielded > 0:
            shortfall = expected - yielded
            _warn_once(
                f"NoDuplicatesBatchSampler filled only {yielded} of {expected} batches in one pass over the "
                f"dataset; the other {shortfall} are drawn from a reshuffled pass, so up to "
                f"{shortfall / expected:.1%} of this epoch's rows repeat earlier ones."
            )
            for _ in range(MAX_RESAMPLE_PASSES):
                for batch in self._one_pass(value_ids):
                    yield batch
                    yielded += 1
                    if yielded >= expected:
                        return
        _warn_once(
            f"NoDuplicatesBatchSampler gave only {yielded} of {expected} batches: the dataset has too few "
            "distinct values for this batch size. Consider a smaller batch size."
        )

    def _one_pass(self, value_ids: np.ndarray) -> Iterator[list[int]]:
        """The batches of one shuffled walk over all rows."""
        num_rows = len(self.dataset)
        index_dtype = torch.int32 if num_rows <= np.iinfo(np.int32).max else torch.int64
        # Drawn lazily, when the pass's first batch is asked for, as other samplers may share the generator.
        order = torch.randperm(num_rows, generator=self.generator, dtype=index_dtype).numpy()
        flat, bounds = _engine.no_duplicates_pass(value_ids, order, self.batch_size, self.drop_last)
        rows = flat.tolist()
        bounds_list = bounds.tolist()
        for start, end in pairwise(bounds_list):
            yield rows[start:end]

    def __len__(self) -> int:
        """Batches per epoch, from the sizes alone (a pass that falls short is topped up)."""
        if self.drop_last:
            return len(self.dataset) // self.batch_size
        return (len(self.dataset) + self.batch_size - 1) // self.batch_size


__all__ = ["MAX_RESAMPLE_PASSES", "NoDuplicatesBatchSampler"]
