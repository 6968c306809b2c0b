"""Readers for sentence pairs with a similarity score: generic STS files and the STS benchmark layout."""

from __future__ import annotations

import csv
import os
from typing import Any, cast

from embedforge.exceptions import InvalidArgumentError
from embedforge.sentence_transformer.readers._files import column, open_text, reached
from embedforge.sentence_transformer.readers.input_example import InputExample


class STSDataReader:
    """Read delimited rows ``(sentence1, sentence2, score)`` into pair examples whose label is the score.

    Scores are rescaled from ``min_score..max_score`` to ``0..1`` unless ``normalize_scores`` is False.
    """

    def __init__(
        self,
        dataset_folder: str,
        s1_col_idx: int = 0,
        s2_col_idx: int = 1,
        score_col_idx: int = 2,
        delimiter: str = "\t",
        quoting: int = csv.QUOTE_NONE,
        normalize_scores: bool = True,
        min_score: float = 0,
        max_score: float = 5,
    ) -> None:
        if normalize_scores and max_score == min_score:
            raise InvalidArgumentError(
                f"min_score and max_score are both {min_score}; normalising scores needs a non-empty range"
            )
        self.dataset_folder = dataset_folder
        self.s1_col_idx = s1_col_idx
        self.s2_col_idx = s2_col_idx
        self.score_col_idx = score_col_idx
        self.delimiter = delimiter
        self.quoting = quoting
        self.normalize_scores = normalize_scores
        self.min_score = min_score
        self.max_score = max_score

    def get_examples(self, filename: str, max_examples: int = 0) -> list[InputExample]:
        """Examples from ``dataset_folder/filename`` (gzip when it ends in .gz); at most ``max_examples`` if > 0."""
        examples: list[InputExample] = []
        with open_text(os.path.join(self.dataset_folder, filename)) as handle:
            for row_number, row in enumerate(
                csv.reader(handle, delimiter=self.delimiter, quoting=cast(Any, self.quoting))
            ):
                where = f"row {row_number} of {filename}"
                raw_score = column(row, self.score_col_idx, "score_col_idx", where)
                try:
                    score = float(raw_score)
                except ValueError:
                    raise InvalidArgumentError(
                        f"{where}: the score column (score_col_idx={self.score_col_idx}) holds {raw_score!r}, "
                        "expected a number"
                    ) from None
                if self.normalize_scores:
                    score = (score - self.min_score) / (self.max_score - self.min_score)
                first = column(row, self.s1_col_idx, "s1_col_idx", where)
                second = column(row, self.s2_col_idx, "s2_col_idx", where)
                # The id is the file name with the row number glued on, as sentence-transformers writes it.
                examples.append(InputExample(guid=f"{filename}{row_number}", texts=[first, second], label=score))
                if reached(len(examples), max_examples):
                    break
        return examples


class STSBenchmarkDataReader(STSDataReader):
    """STSDataReader with the STS benchmark's columns: score in column 4, the sentences in columns 5 and 6."""

    def __init__(
        self,
        dataset_folder: str,
        s1_col_idx: int = 5,
        s2_col_idx: int = 6,
        score_col_idx: int = 4,
        delimiter: str = "\t",
        quoting: int = csv.QUOTE_NONE,
        normalize_scores: bool = True,
        min_score: float = 0,
        max_score: float = 5,
    ) -> None:
        super().__init__(
            dataset_folder=dataset_folder,
            s1_col_idx=s1_col_idx,
            s2_col_idx=s2_col_idx,
            score_col_idx=score_col_idx,
            delimiter=delimiter,
            quoting=quoting,
            normalize_scores=normalize_scores,
            min_score=min_score,
            max_score=max_score,
        )
