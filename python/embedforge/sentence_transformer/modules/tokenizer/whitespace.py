"""WhitespaceTokenizer: split on whitespace, then look words up with punctuation and case fallbacks."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from embedforge.sentence_transformer.modules.tokenizer.stop_words import ENGLISH_STOP_WORDS
from embedforge.sentence_transformer.modules.tokenizer.word import VocabWordTokenizer

__all__ = ["WhitespaceTokenizer"]


class WhitespaceTokenizer(VocabWordTokenizer):
    """Splits text on whitespace; each piece is looked up as is, then without edge punctuation, then lower-cased."""

    config_file_name = "whitespacetokenizer_config.json"
    st_class_name = "sentence_transformers.models.tokenizer.WhitespaceTokenizer.WhitespaceTokenizer"

    def __init__(
        self,
        vocab: Iterable[str] = (),
        stop_words: Iterable[str] = ENGLISH_STOP_WORDS,
        do_lower_case: bool = False,
    ) -> None:
        super().__init__(vocab, stop_words, do_lower_case)

    def tokenize(self, text: str, **kwargs: Any) -> list[int]:
        """Vocabulary indices of the known, non-stop-word pieces of ``text``."""
        if self.do_lower_case:
            text = text.lower()
        ids = []
        for token in text.split():
            index = self._lookup(token, ("raw", "strip", "lower"))
            if index is not None:
                ids.append(index)
        return ids
