"""ParallelSentencesDataset: translations of a sentence, each labelled with a teacher's embedding of the source."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from embedforge.sentence_transformer.readers._files import open_text
from embedforge.sentence_transformer.readers.input_example import InputExample

logger = logging.getLogger(__name__)


def _too_long(sentences: Sequence[str], max_sentence_length: int | None) -> bool:
    """Whether any sentence has more characters than the limit (None or <= 0: no limit)."""
    return (
        max_sentence_length is not None and max_sentence_length > 0 and max(map(len, sentences)) > max_sentence_length
    )


class ParallelSentencesDataset(Dataset):
    """Multilingual distillation data: ``texts=[sentence]``, ``label=teacher.encode(source sentence)``.

    Each loaded row holds a source sentence (column 0) and its translations. Every sentence of a
    row, the source included, becomes an example whose label is the teacher's embedding of the
    source, so a student trained with MSELoss maps all languages onto the teacher's space.
    Several datasets can be loaded; ``weight`` sets how many rows each contributes per refill.
    Items come from an internal cache that is refilled and shuffled (Python's ``random``) when it
    runs empty, so the index passed to ``__getitem__`` is ignored, as in sentence-transformers.
    """

    def __init__(
        self,
        student_model: Any,
        teacher_model: Any,
        batch_size: int = 8,
        use_embedding_cache: bool = True,
    ) -> None:
        self.student_model = student_model
        self.teacher_model = teacher_model
        self.datasets: list[list[tuple[str, set[str]]]] = []
        self.datasets_iterator: list[int] = []
        self.datasets_tokenized: list[Any] = []
        self.dataset_indices: list[int] = []
        self.copy_dataset_indices: list[int] = []
        self.cache: list[InputExample] = []
        self.batch_size = batch_size
        self.use_embedding_cache = use_embedding_cache
        self.embedding_cache: dict[str, np.ndarray] = {}
        self.num_sentences = 0

    def load_data(
        self, filepath: str, weight: int = 100, max_sentences: int | None = None, max_sentence_length: int = 128
    ) -> None:
        """Add the tab-separated rows of ``filepath`` (gzip when it ends in .gz) as one dataset.

        Rows with a sentence longer than ``max_sentence_length`` characters are skipped; at most
        ``max_sentences`` rows are read when it is > 0.
        """
        logger.info("Loading %s", filepath)
        rows: list[list[str]] = []
        with open_text(filepath) as handle:
            for line in handle:
                sentences = line.strip().split("\t")
                if _too_long(sentences, max_sentence_length):
                    continue
                rows.append(sentences)
                if max_sentences is not None and 0 < max_sentences <= len(rows):
                    break
        self.add_dataset(rows, weight=weight, max_sentences=max_sentences, max_sentence_length=max_sentence_length)

    def add_dataset(
        self,
        parallel_sentences: Sequence[Sequence[str]],
        weight: int = 100,
        max_sentences: int | None = None,
        max_sentence_length: int = 128,
    ) -> None:
        """Add rows ``[source, translation, ...]`` as one dataset; rows sharing a source are merged."""
        targets_by_source: dict[str, set[str]] = {}
        for sentences in parallel_sentences:
            if _too_long(sentences, max_sentence_length):
                continue
            targets_by_source.setdefault(sentences[0], set()).update(sentences)
            if max_sentences is not None and 0 < max_sentences <= len(targets_by_source):
                break
        if not targets_by_source:
            return
        self.num_sentences += sum(len(targets) for targets in targets_by_source.values())
        dataset_id = len(self.datasets)
        self.datasets.append(list(targets_by_source.items()))
        self.datasets_iterator.append(0)
        self.dataset_indices.extend([dataset_id] * weight)

    def generate_data(self) -> None:
        """Refill the cache: the next row of each dataset (``weight`` times), embedded by the teacher, shuffled."""
        rows = [self.next_entry(dataset_id) for dataset_id in self.dataset_indices]
        source_embeddings = self.get_embeddings([source for source, _ in rows])
        for embedding, (_, targets) in zip(source_embeddings, rows):
            for target in targets:
                self.cache.append(InputExample(texts=[target], label=embedding))
        random.shuffle(self.cache)

    def next_entry(self, data_idx: int) -> tuple[str, set[str]]:
        """The next (source, sentences) row of dataset ``data_idx``; the dataset is reshuffled when it wraps."""
        entry = self.datasets[data_idx][self.datasets_iterator[data_idx]]
        self.datasets_iterator[data_idx] += 1
        if self.datasets_iterator[data_idx] >= len(self.datasets[data_idx]):
            self.datasets_iterator[data_idx] = 0
            random.shuffle(self.datasets[data_idx])
        return entry

    def get_embeddings(self, sentences: list[str]) -> list[np.ndarray] | np.ndarray:
        """Teacher embeddings of ``sentences``, encoding each distinct sentence once when the cache is on."""
        if not self.use_embedding_cache:
            return self._encode(sentences)
        missing = [sentence for sentence in sentences if sentence not in self.embedding_cache]
        if missing:
            for sentence, embedding in zip(missing, self._encode(missing)):
                self.embedding_cache[sentence] = embedding
        return [self.embedding_cache[sentence] for sentence in sentences]

    def _encode(self, sentences: list[str]) -> np.ndarray:
        return self.teacher_model.encode(
            sentences, batch_size=self.batch_size, show_progress_bar=False, convert_to_numpy=True
        )

    def __len__(self) -> int:
        return self.num_sentences

    def __getitem__(self, idx: int) -> InputExample:
        if not self.cache:
            self.generate_data()
        return self.cache.pop()
