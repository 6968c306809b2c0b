"""Readers of the pre-v3 ``model.fit`` API: files in, lists of :class:`InputExample` out.

New code should build a ``datasets.Dataset`` and use ``SentenceTransformerTrainer``; these exist
so that older training scripts keep running.
"""

from __future__ import annotations

from embedforge.readers._legacy_paths import register_legacy_modules
from embedforge.readers.input_example import InputExample
from embedforge.readers.label_sentence import LabelSentenceReader
from embedforge.readers.nli_data import NLIDataReader
from embedforge.readers.paired_files import PairedFilesReader
from embedforge.readers.sts_data import STSBenchmarkDataReader, STSDataReader
from embedforge.readers.triplet import TripletReader

__all__ = [
    "InputExample",
    "LabelSentenceReader",
    "NLIDataReader",
    "PairedFilesReader",
    "STSBenchmarkDataReader",
    "STSDataReader",
    "TripletReader",
]

register_legacy_modules(
    __name__,
    {
        "InputExample": "input_example",
        "LabelSentenceReader": "label_sentence",
        "NLIDataReader": "nli_data",
        "PairedFilesReader": "paired_files",
        "STSDataReader": "sts_data",
        "TripletReader": "triplet",
    },
)
