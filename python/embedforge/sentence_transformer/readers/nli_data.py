"""Reader for NLI data (SNLI / MultiNLI) stored as three parallel gzip files: s1, s2 and labels."""

from __future__ import annotations

import os

from embedforge.exceptions import InvalidArgumentError
from embedforge.sentence_transformer.readers._files import open_text, reached
from embedforge.sentence_transformer.readers.input_example import InputExample

_LABELS = {"contradiction": 0, "entailment": 1, "neutral": 2}


class NLIDataReader:
    """Read ``s1.<split>``, ``s2.<split>`` and ``labels.<split>`` from one folder into labelled pair examples."""

    def __init__(self, dataset_folder: str) -> None:
        self.dataset_folder = dataset_folder

    def get_examples(self, filename: str, max_examples: int = 0) -> list[InputExample]:
        """Examples of one split, e.g. ``filename="train.gz"`` reads s1.train.gz, s2.train.gz and labels.train.gz.

        Lines are kept as read (with their line ends), as sentence-transformers does.
        """
        columns = []
        for prefix in ("s1.", "s2.", "labels."):
            with open_text(os.path.join(self.dataset_folder, prefix + filename)) as handle:
                columns.append(handle.readlines())
        firsts, seconds, labels = columns
        examples: list[InputExample] = []
        # Files of different lengths pair up to the shortest one, like zip.
        for row_number, (first, second, label) in enumerate(zip(firsts, seconds, labels)):
            examples.append(
                InputExample(guid=f"{filename}-{row_number}", texts=[first, second], label=self.map_label(label))
            )
            if reached(len(examples), max_examples):
                break
        return examples

    @staticmethod
    def get_labels() -> dict[str, int]:
        """The label names and their ids."""
        return dict(_LABELS)

    def get_num_labels(self) -> int:
        """How many labels there are (3)."""
        return len(_LABELS)

    def map_label(self, label: str) -> int:
        """The id of a label name (case and surrounding whitespace ignored)."""
        key = label.strip().lower()
        if key not in _LABELS:
            raise InvalidArgumentError(f"NLI label {label!r} is not one of {sorted(_LABELS)}")
        return _LABELS[key]
