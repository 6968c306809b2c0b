"""SentencesDataset: a list of InputExamples as a torch Dataset (kept for old scripts)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch.utils.data import Dataset

from embedforge.sentence_transformer.readers.input_example import InputExample


class SentencesDataset(Dataset):
    """Index a list of :class:`InputExample`; ``model`` is accepted and unused, as in sentence-transformers.

    A plain list of examples works just as well in a ``DataLoader``; this wrapper only keeps old
    ``SentencesDataset(examples, model)`` calls working.
    """

    def __init__(self, examples: Sequence[InputExample], model: Any) -> None:
        self.examples = examples

    def __getitem__(self, item: int) -> InputExample:
        return self.examples[item]

    def __len__(self) -> int:
        return len(self.examples)
