"""Datasets and the data loader of the pre-v3 ``model.fit`` API.

New code should build a ``datasets.Dataset`` and use ``SentenceTransformerTrainer`` (with
``batch_sampler="no_duplicates"`` or ``"group_by_label"`` in the training arguments); these exist so
that older training scripts keep running.
"""

from __future__ import annotations

from embedforge.sentence_transformer.datasets.denoising_auto_encoder import DenoisingAutoEncoderDataset
from embedforge.sentence_transformer.datasets.no_duplicates_dataloader import NoDuplicatesDataLoader
from embedforge.sentence_transformer.datasets.parallel_sentences import ParallelSentencesDataset
from embedforge.sentence_transformer.datasets.sentence_label import SentenceLabelDataset
from embedforge.sentence_transformer.datasets.sentences import SentencesDataset

__all__ = [
    "DenoisingAutoEncoderDataset",
    "NoDuplicatesDataLoader",
    "ParallelSentencesDataset",
    "SentenceLabelDataset",
    "SentencesDataset",
]
