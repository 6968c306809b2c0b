"""Reader for (label, sentence) rows, e.g. for the batch triplet losses."""

from __future__ import annotations

import os

from embedforge.sentence_transformer.readers._files import column, open_text, reached
from embedforge.sentence_transformer.readers.input_example import InputExample


class LabelSentenceReader:
    """Read one sentence and its label per line; label names become ids in order of first appearance.

    ``label_map`` keeps the ids across calls, so train and dev files share them.
    """

    def __init__(self, folder: str, label_col_idx: int = 0, sentence_col_idx: int = 1, separator: str = "\t") -> None:
        self.folder = folder
        self.label_map: dict[str, int] = {}
        self.label_col_idx = label_col_idx
        self.sentence_col_idx = sentence_col_idx
        self.separator = separator

    def get_examples(self, filename: str, max_examples: int = 0) -> list[InputExample]:
        """Single-text examples labelled with label ids; at most ``max_examples`` if > 0."""
        examples: list[InputExample] = []
        with open_text(os.path.join(self.folder, filename)) as handle:
            for line_number, line in enumerate(handle):
                fields = line.strip().split(self.separator)
                where = f"line {line_number} of {filename}"
                label = column(fields, self.label_col_idx, "label_col_idx", where)
                sentence = column(fields, self.sentence_col_idx, "sentence_col_idx", where)
                label_id = self.label_map.setdefault(label, len(self.label_map))
                examples.append(InputExample(guid=f"{filename}-{line_number}", texts=[sentence], label=label_id))
                if reached(len(examples), max_examples):
                    break
        return examples
