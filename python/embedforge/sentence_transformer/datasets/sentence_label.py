"""SentenceLabelDataset: stream InputExamples so that each label comes in runs of ``samples_per_label``."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from torch.utils.data import IterableDataset

from embedforge.exceptions import InvalidArgumentError
from embedforge.sentence_transformer.readers.input_example import InputExample

logger = logging.getLogger(__name__)


class SentenceLabelDataset(IterableDataset):
    """Yield ``samples_per_label`` distinct random examples of one label, then of the next label, and so on.

    For the batch triplet losses, which need several examples per label in a batch. Labels with
    fewer than ``samples_per_label`` examples are left out. Without replacement an example is drawn
    at most once per pass over the labels; with replacement it may come back in a later draw of the
    same pass. Randomness comes from numpy's global generator (seed it with ``np.random.seed``).
    It does not check that the batch size is a multiple of ``samples_per_label``.
    """

    def __init__(
        self, examples: Iterable[InputExample], samples_per_label: int = 2, with_replacement: bool = False
    ) -> None:
        super().__init__()
        if isinstance(samples_per_label, bool) or not isinstance(samples_per_label, int) or samples_per_label < 1:
            raise InvalidArgumentError(f"samples_per_label={samples_per_label!r}: expected a positive integer")
        self.samples_per_label = samples_per_label
        self.with_replacement = with_replacement

        by_label: dict[object, list[InputExample]] = {}
        examples = list(examples)
        for example in examples:
            by_label.setdefault(example.label, []).append(example)

        # Examples stored label group after label group; groups_right_border[i] ends group i.
        self.grouped_inputs: list[InputExample] = []
        self.groups_right_border: list[int] = []
        for group in by_label.values():
            if len(group) >= samples_per_label:
                self.grouped_inputs.extend(group)
                self.groups_right_border.append(len(self.grouped_inputs))

        self.label_range = np.arange(len(self.groups_right_border))
        np.random.shuffle(self.label_range)
        logger.info(
            "SentenceLabelDataset: %d examples, %d usable (labels with at least %d examples), %d labels",
            len(examples),
            len(self.grouped_inputs),
            samples_per_label,
            len(self.groups_right_border),
        )

    def __iter__(self) -> Iterator[InputExample]:
        if not self.grouped_inputs:
            return
        position = 0
        emitted = 0
        drawn: dict[int, set[int]] = {}
        while emitted < len(self.grouped_inputs):
            label = int(self.label_range[position])
            start = self.groups_right_border[label - 1] if label > 0 else 0
            end = self.groups_right_border[label]
            taken = drawn.setdefault(label, set())
            candidates: Any = np.arange(start, end)
            if not self.with_replacement:
                candidates = [index for index in candidates if index not in taken]
            if len(candidates) >= self.samples_per_label:
                for index in np.random.choice(candidates, self.samples_per_label, replace=False):
                    emitted += 1
                    taken.add(int(index))
                    yield self.grouped_inputs[index]
            position += 1
            if position >= len(self.label_range):
                # A new pass over the labels: forget what was drawn and visit them in a new order.
                position = 0
                drawn = {}
                np.random.shuffle(self.label_range)

    def __len__(self) -> int:
        return len(self.grouped_inputs)
