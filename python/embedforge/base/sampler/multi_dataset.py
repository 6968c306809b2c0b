"""Batch samplers over a ``ConcatDataset``: which dataset each batch comes from."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from itertools import accumulate

import torch
from torch.utils.data import BatchSampler, ConcatDataset

from embedforge.base.sampler.default import SetEpochMixin
from embedforge.exceptions import InvalidArgumentError


class MultiDatasetDefaultBatchSampler(SetEpochMixin, BatchSampler, ABC):
    """Base class: yields the batches of one batch sampler per dataset, as ``ConcatDataset`` indices.

    Args:
        dataset: The concatenation of the datasets.
        batch_samplers: One batch sampler per dataset of ``dataset``, in the same order.
        generator: Random number generator (subclasses reseed it with ``seed + epoch`` per epoch).
        seed: Base seed.
    """

    def __init__(
        self,
        dataset: ConcatDataset,
        batch_samplers: list[BatchSampler],
        generator: torch.Generator | None = None,
        seed: int = 0,
    ) -> None:
        if len(dataset.datasets) != len(batch_samplers):
            raise InvalidArgumentError(
                "The number of batch samplers must match the number of datasets in the ConcatDataset: got "
                f"{len(batch_samplers)} batch_samplers for {len(dataset.datasets)} datasets"
            )
        super().__init__(dataset, batch_size=batch_samplers[0].batch_size, drop_last=batch_samplers[0].drop_last)
        self.dataset = dataset
        self.batch_samplers = batch_samplers
        self.generator = generator
        self.seed = seed

    def set_epoch(self, epoch: int) -> None:
        """Pass the epoch on to every per-dataset sampler too."""
        super().set_epoch(epoch)
        for sampler in self.batch_samplers:
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)

    def _offsets(self) -> list[int]:
        """Where each dataset starts in the concatenation."""
        # torch types Dataset without __len__; ConcatDataset itself requires sized datasets.
        return [0, *accumulate(len(dataset) for dataset in self.dataset.datasets)]  # type: ignore[arg-type]

    @abstractmethod
    def __iter__(self) -> Iterator[list[int]]:
        """Batches of ``ConcatDataset`` indices."""

    @abstractmethod
    def __len__(self) -> int:
        """Number of batches per epoch."""


class RoundRobinBatchSampler(MultiDatasetDefaultBatchSampler):
    """One batch of each dataset in turn, until one dataset runs out (so the others are not all used)."""

    def __iter__(self) -> Iterator[list[int]]:
        if self.generator and self.seed is not None:
            self.generator.manual_seed(self.seed + self.epoch)
        offsets = self._offsets()
        for batches in zip(*(iter(sampler) for sampler in self.batch_samplers)):
            for offset, batch in zip(offsets, batches):
                yield [index + offset for index in batch]

    def __len__(self) -> int:
        return min(len(sampler) for sampler in self.batch_samplers) * len(self.batch_samplers)


class ProportionalBatchSampler(MultiDatasetDefaultBatchSampler):
    """Every batch of every dataset, in a random order: larger datasets come up proportionally more often."""

    def __iter__(self) -> Iterator[list[int]]:
        if self.generator and self.seed is not None:
            self.generator.manual_seed(self.seed + self.epoch)
        offsets = self._offsets()
        # One ticket per advertised batch; a sampler that falls short just leaves tickets unused.
        tickets = [dataset for dataset, sampler in enumerate(self.batch_samplers) for _ in range(len(sampler))]
        iterators = [iter(sampler) for sampler in self.batch_samplers]
        for position in torch.randperm(len(tickets), generator=self.generator).tolist():
            dataset = tickets[position]
            batch = next(iterators[dataset], None)
            if batch is not None:
                yield [index + offsets[dataset] for index in batch]

    def __len__(self) -> int:
        return sum(len(sampler) for sampler in self.batch_samplers)


__all__ = ["MultiDatasetDefaultBatchSampler", "ProportionalBatchSampler", "RoundRobinBatchSampler"]
