"""Datasets and the data loader of the pre-v3 ``model.fit`` API.

New code should build a ``datasets.Dataset`` and use ``SentenceTransformerTrainer`` (with
``batch_sampler="no_duplicates"`` or ``"group_by_label"`` in the training arguments); these exist so
that older training scripts keep running.
"""

from __future__ import annotations

from embedforge.datasets.denoising_auto_encoder import DenoisingAutoEncoderDataset
from embedforge.datasets.no_duplicates_dataloader import NoDuplicatesDataLoader
from embedforge.datasets.parallel_sentences import ParallelSentencesDataset
from embedforge.datasets.sentence_label import SentenceLabelDataset
from embedforge.datasets.sentences import SentencesDataset
from embedforge.readers._legacy_paths import register_legacy_modules

__all__ = [
    "DenoisingAutoEncoderDataset",
    "NoDuplicatesDataLoader",
    "ParallelSentencesDataset",
    "SentenceLabelDataset",
    "SentencesDataset",
]

register_legacy_modules(
    __name__,
    {
        "DenoisingAutoEncoderDataset": "denoising_auto_encoder",
        "NoDuplicatesDataLoader": "no_duplicates_dataloader",
        "ParallelSentencesDataset": "parallel_sentences",
        "SentenceLabelDataset": "sentence_label",
        "SentencesDataset": "sentences",
    },
)
