"""NoDuplicatesDataLoader: batches of InputExamples in which no text appears twice."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from embedforge.exceptions import InvalidArgumentError
from embedforge.sentence_transformer.readers.input_example import InputExample


def _text_key(text: Any) -> str:
    """Texts count as duplicates when they match after str(), strip() and lower()."""
    return str(text).strip().lower()


class NoDuplicatesDataLoader:
    """Yield ``len(self)`` batches of ``batch_size`` examples with no text shared inside a batch.

    Meant for in-batch-negative losses such as MultipleNegativesRankingLoss, where a repeated text
    would be a false negative. Examples are drawn in a shuffled order (Python's ``random``), the order
    is reshuffled whenever it runs out, and an example clashing with the batch is passed over.
    ``model.fit`` turns this loader into the trainer's ``no_duplicates`` batch sampler.
    """

    def __init__(self, train_examples: Sequence[InputExample], batch_size: int) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidArgumentError(f"batch_size={batch_size!r}: expected a positive integer")
        self.batch_size = batch_size
        self.data_pointer = 0
        self.collate_fn: Callable[[list[InputExample]], Any] | None = None
        # A copy: shuffling must not reorder the caller's list.
        self.train_examples = list(train_examples)
        random.shuffle(self.train_examples)

    def __iter__(self) -> Iterator[Any]:
        for _ in range(len(self)):
            batch = self._next_batch()
            yield self.collate_fn(batch) if self.collate_fn is not None else batch

    def _next_batch(self) -> list[InputExample]:
        batch: list[InputExample] = []
        seen: set[str] = set()
        skipped_in_a_row = 0
        count = len(self.train_examples)
        while len(batch) < self.batch_size:
            example = self.train_examples[self.data_pointer]
            keys = [_text_key(text) for text in example.texts or []]
            if seen.isdisjoint(keys):
                batch.append(example)
                seen.update(keys)
                skipped_in_a_row = 0
            else:
                skipped_in_a_row += 1
                # 2 * count consecutive skips cover one whole shuffled order: nothing left can fit.
                if skipped_in_a_row >= 2 * count:
                    raise InvalidArgumentError(
                        f"NoDuplicatesDataLoader cannot fill a batch of batch_size={self.batch_size}: "
                        f"only {len(batch)} of the {count} examples have no text in common; "
                        "use a smaller batch_size or more distinct examples"
                    )
            self.data_pointer += 1
            if self.data_pointer >= count:
                self.data_pointer = 0
                random.shuffle(self.train_examples)
        return batch

    def __len__(self) -> int:
        return math.floor(len(self.train_examples) / self.batch_size)
