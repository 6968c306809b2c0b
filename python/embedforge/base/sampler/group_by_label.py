"""Batches in which every label present has at least two rows, for in-batch triplet mining."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from embedforge.base.sampler.default import DefaultBatchSampler
from embedforge.exceptions import InvalidArgumentError


class GroupByLabelBatchSampler(DefaultBatchSampler):
    """Interleaves labels two rows at a time, so every batch holds at least two labels with two rows each.

    Each epoch, rows are shuffled within their label (an odd row out is left aside). Then, round after
    round, the labels that still have rows take turns in a freshly shuffled order, each giving two rows;
    the stream is cut into batches of ``batch_size``. The rounds stop once fewer than two labels have
    rows left, so the largest label's surplus is not used.

    Args:
        dataset: A ``datasets.Dataset`` with a label column.
        batch_size: Rows per batch; an even number of at least 4.
        drop_last: Drop the last batch when it is smaller than ``batch_size`` (a last batch of fewer
            than 4 rows is always dropped).
        valid_label_columns: Column names that may hold the label; the first one present is used.
        generator: Random number generator for the shuffles.
        seed: The generator is reseeded with ``seed + epoch`` at the start of every epoch.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int,
        drop_last: bool,
        valid_label_columns: list[str] | None = None,
        generator: torch.Generator | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(
            dataset,
            batch_size=batch_size,
            drop_last=drop_last,
            valid_label_columns=valid_label_columns,
            generator=generator,
            seed=seed,
        )
        self.dataset = dataset
        if self.batch_size < 4 or self.batch_size % 2 == 1:
            raise InvalidArgumentError(f"batch_size must be an even number >= 4, got {self.batch_size}")

        groups: dict[Any, list[int]] = {}
        for row, label in enumerate(self._determine_labels_to_use(dataset, self.valid_label_columns)):
            groups.setdefault(label, []).append(row)
        # A label with a single row can never form a positive pair, so it takes no part.
        self.groups = {label: rows for label, rows in groups.items() if len(rows) >= 2}
        if len(self.groups) < 2:
            raise InvalidArgumentError(
                "GroupByLabelBatchSampler needs at least 2 labels with at least 2 rows each, "
                f"got {len(self.groups)} such label(s)"
            )
        self._group_rows = [np.asarray(rows, dtype=np.int64) for rows in self.groups.values()]

        # Rounds stop when one label is left: every label contributes at most as many pairs as
        # the second-largest one has.
        pairs = sorted((len(rows) // 2 for rows in self.groups.values()), reverse=True)
        self._stream_length = 2 * sum(min(count, pairs[1]) for count in pairs)

    @staticmethod
    def _determine_labels_to_use(dataset: Any, valid_label_columns: list[str] | None) -> list[Any]:
        """The values of the first of ``valid_label_columns`` that ``dataset`` has."""
        for column in valid_label_columns or []:
            if column in dataset.column_names:
                return list(dataset[column])
        raise InvalidArgumentError(
            f"valid_label_columns {valid_label_columns} name no column of the dataset, "
            f"whose columns are {dataset.column_names}"
        )

    def __iter__(self) -> Iterator[list[int]]:
        if self.generator and self.seed is not None:
            self.generator.manual_seed(self.seed + self.epoch)

        # Shuffle within every label and keep an even number of rows; queues are read front to back.
        queues: list[list[int]] = []
        for rows in self._group_rows:
            order = torch.randperm(len(rows), generator=self.generator)[: len(rows) // 2 * 2].numpy()
            queues.append(rows[order].tolist())
        heads = [0] * len(queues)

        remaining = list(range(len(queues)))
        batch: list[int] = []
        last_label = -1
        while len(remaining) >= 2:
            shuffled = torch.randperm(len(remaining), generator=self.generator).tolist()
            remaining = [remaining[i] for i in shuffled]
            # Two consecutive pairs of one batch should not share their label.
            if batch and remaining[0] == last_label:
                remaining[0], remaining[1] = remaining[1], remaining[0]
            for label in remaining:
                head = heads[label]
                batch.extend(queues[label][head : head + 2])
                heads[label] = head + 2
                if len(batch) >= self.batch_size:
                    yield batch[: self.batch_size]
                    batch = batch[self.batch_size :]
            last_label = remaining[-1]
            remaining = [label for label in remaining if heads[label] < len(queues[label])]

        # The round-robin order makes any 4 leftover rows span two labels with two rows each.
        if not self.drop_last and len(batch) >= 4:
            yield batch

    def __len__(self) -> int:
        batches = self._stream_length // self.batch_size
        if not self.drop_last and self._stream_length % self.batch_size >= 4:
            batches += 1
        return batches


__all__ = ["GroupByLabelBatchSampler"]
