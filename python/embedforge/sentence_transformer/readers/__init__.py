"""Readers of the pre-v3 ``model.fit`` API: files in, lists of :class:`InputExample` out.

New code should build a ``datasets.Dataset`` and use ``SentenceTransformerTrainer``; these exist
so that older training scripts keep running.
"""

from __future__ import annotations

from embedforge.sentence_transformer.readers.input_example import InputExample
from embedforge.sentence_transformer.readers.label_sentence import LabelSentenceReader
from embedforge.sentence_transformer.readers.nli_data import NLIDataReader
from embedforge.sentence_transformer.readers.paired_files import PairedFilesReader
from embedforge.sentence_transformer.readers.sts_data import STSBenchmarkDataReader, STSDataReader
from embedforge.sentence_transformer.readers.triplet import TripletReader

__all__ = [
    "InputExample",
    "LabelSentenceReader",
    "NLIDataReader",
    "PairedFilesReader",
    "STSBenchmarkDataReader",
    "STSDataReader",
    "TripletReader",
]
