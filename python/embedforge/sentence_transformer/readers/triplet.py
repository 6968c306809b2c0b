"""Reader for (anchor, positive, negative) triplets in a delimited file."""

from __future__ import annotations

import csv
import os
from typing import Any, cast

from embedforge.sentence_transformer.readers._files import column, open_text, reached
from embedforge.sentence_transformer.readers.input_example import InputExample


class TripletReader:
    """Read rows with (at least) an anchor, a positive and a negative column into three-text examples."""

    def __init__(
        self,
        dataset_folder: str,
        s1_col_idx: int = 0,
        s2_col_idx: int = 1,
        s3_col_idx: int = 2,
        has_header: bool = False,
        delimiter: str = "\t",
        quoting: int = csv.QUOTE_NONE,
    ) -> None:
        self.dataset_folder = dataset_folder
        self.s1_col_idx = s1_col_idx
        self.s2_col_idx = s2_col_idx
        self.s3_col_idx = s3_col_idx
        self.has_header = has_header
        self.delimiter = delimiter
        self.quoting = quoting

    def get_examples(self, filename: str, max_examples: int = 0) -> list[InputExample]:
        """Triplet examples (no id, label 0) from ``dataset_folder/filename``; at most ``max_examples`` if > 0."""
        examples: list[InputExample] = []
        with open_text(os.path.join(self.dataset_folder, filename)) as handle:
            rows = csv.reader(handle, delimiter=self.delimiter, quoting=cast(Any, self.quoting))
            if self.has_header:
                next(rows, None)
            for row_number, row in enumerate(rows):
                where = f"row {row_number} of {filename}"
                texts = [
                    column(row, self.s1_col_idx, "s1_col_idx", where),
                    column(row, self.s2_col_idx, "s2_col_idx", where),
                    column(row, self.s3_col_idx, "s3_col_idx", where),
                ]
                examples.append(InputExample(texts=texts))
                if reached(len(examples), max_examples):
                    break
        return examples
