"""Reader for parallel text files: line i of every file together forms example i."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from embedforge.exceptions import InvalidArgumentError
from embedforge.sentence_transformer.readers._files import open_text, reached
from embedforge.sentence_transformer.readers.input_example import InputExample


class PairedFilesReader:
    """Read aligned lines from several files (gzip by suffix) into examples labelled 1, up to the shortest file."""

    def __init__(self, filepaths: Sequence[str]) -> None:
        if isinstance(filepaths, str) or len(filepaths) == 0:
            raise InvalidArgumentError(f"filepaths={filepaths!r}: expected a non-empty list of file paths")
        self.filepaths = filepaths

    def get_examples(self, max_examples: int = 0) -> list[InputExample]:
        """One example per line index, texts kept as read (with their line ends); at most ``max_examples`` if > 0."""
        examples: list[InputExample] = []
        with contextlib.ExitStack() as stack:
            handles = [stack.enter_context(open_text(path)) for path in self.filepaths]
            while True:
                texts = []
                for handle in handles:
                    line = handle.readline()
                    if line == "":
                        return examples
                    texts.append(line)
                examples.append(InputExample(guid=str(len(examples)), texts=texts, label=1))
                if reached(len(examples), max_examples):
                    return examples
