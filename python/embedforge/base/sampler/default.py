"""The epoch-aware base batch sampler every embedforge sampler derives from."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch.utils.data import BatchSampler

from embedforge.exceptions import InvalidArgumentError


class SetEpochMixin:
    """Remembers the epoch the trainer announces, so a sampler can reseed per epoch."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by the trainer at the start of every epoch."""
        self.epoch = epoch


def check_batch_arguments(batch_size: object, drop_last: object) -> None:
    """Reject a batch size that is not a positive int and a drop_last that is not a bool."""
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
        raise InvalidArgumentError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not isinstance(drop_last, bool):
        raise InvalidArgumentError(f"drop_last must be a bool, got {drop_last!r}")


class DefaultBatchSampler(SetEpochMixin, BatchSampler):
    """PyTorch's ``BatchSampler`` over ``dataset`` (usually a ``RandomSampler``), plus ``set_epoch``.

    Args:
        dataset: What to batch: a sampler of row indices, or any sized iterable of them.
        batch_size: Rows per batch.
        drop_last: Drop the last batch when it is smaller than ``batch_size``.
        valid_label_columns: Column names that may hold the label; the first one present is used.
        generator: Random number generator the subclasses shuffle with.
        seed: Base seed; subclasses reseed ``generator`` with ``seed + epoch`` at every epoch.
    """

    def __init__(
        self,
        dataset: Iterable[Any],
        batch_size: int,
        drop_last: bool,
        valid_label_columns: list[str] | None = None,
        generator: torch.Generator | None = None,
        seed: int = 0,
    ) -> None:
        check_batch_arguments(batch_size, drop_last)
        super().__init__(dataset, batch_size=batch_size, drop_last=drop_last)
        self.valid_label_columns = valid_label_columns
        self.generator = generator
        self.seed = seed


__all__ = ["DefaultBatchSampler", "SetEpochMixin"]
