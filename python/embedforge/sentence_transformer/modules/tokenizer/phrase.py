"""PhraseTokenizer: NLTK word tokenisation that merges multi-word vocabulary entries such as ``New_York``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from embedforge.exceptions import InvalidArgumentError
from embedforge.sentence_transformer.modules.tokenizer.stop_words import ENGLISH_STOP_WORDS
from embedforge.sentence_transformer.modules.tokenizer.word import VocabWordTokenizer

__all__ = ["PhraseTokenizer"]

_NLTK_MISSING = "PhraseTokenizer needs the nltk package for word tokenisation; install it with `pip install nltk`."


def _require_nltk() -> None:
    """Fail early, at construction, rather than on the first text."""
    try:
        import nltk  # noqa: F401
    except ImportError as error:
        raise ImportError(_NLTK_MISSING) from error


class PhraseTokenizer(VocabWordTokenizer):
    """Word-tokenises with NLTK, joins runs of words that form a vocabulary phrase, then looks tokens up.

    Phrases are vocabulary entries whose words are joined by ``ngram_separator`` (word2vec's ``New_York``);
    longer phrases are matched first. Like sentence-transformers, ``do_lower_case`` is stored but the text is not
    lower-cased as a whole: each token is tried as is and then lower-cased.
    """

    config_file_name = "phrasetokenizer_config.json"
    st_class_name = "sentence_transformers.models.tokenizer.PhraseTokenizer.PhraseTokenizer"
    extra_config_keys = ("ngram_separator", "max_ngram_length")

    def __init__(
        self,
        vocab: Iterable[str] = (),
        stop_words: Iterable[str] = ENGLISH_STOP_WORDS,
        do_lower_case: bool = False,
        ngram_separator: str | None = "_",
        max_ngram_length: int = 5,
    ) -> None:
        _require_nltk()
        if ngram_separator is not None and (not isinstance(ngram_separator, str) or not ngram_separator):
            raise InvalidArgumentError(f"ngram_separator must be a non-empty string or None, got {ngram_separator!r}")
        self.ngram_separator = ngram_separator
        self.max_ngram_length = max_ngram_length
        super().__init__(vocab, stop_words, do_lower_case)

    def set_vocab(self, vocab: Iterable[str]) -> None:
        """Replace the vocabulary and rebuild the set of phrases (and their word counts) it contains."""
        super().set_vocab(vocab)
        self.ngram_lookup: set[str] = set()
        self.ngram_lengths: set[int] = set()
        separator = self.ngram_separator
        if separator is None:
            return
        for word in self.vocab:
            if separator not in word:
                continue
            # Entries with doubled separators are malformed in some word2vec dumps; they never form a phrase.
            length = word.count(separator) + 1
            if separator + separator not in word and length <= self.max_ngram_length:
                self.ngram_lookup.add(word)
                self.ngram_lengths.add(length)

    def tokenize(self, text: str, **kwargs: Any) -> list[int]:
        """Vocabulary indices of the known, non-stop-word tokens and phrases of ``text``."""
        from nltk import word_tokenize

        tokens = word_tokenize(text, preserve_line=True)
        if self.ngram_lookup:
            tokens = self._merge_phrases(tokens)
        ids = []
        for token in tokens:
            index = self._lookup(token, ("raw", "lower", "strip"))
            if index is not None:
                ids.append(index)
        return ids

    def _merge_phrases(self, tokens: list[str]) -> list[str]:
        """Replace each run of tokens that spells a vocabulary phrase by the phrase, longest phrases first."""
        separator = self.ngram_separator
        assert separator is not None
        for length in sorted(self.ngram_lengths, reverse=True):
            start = 0
            while start <= len(tokens) - length:
                candidate = separator.join(tokens[start : start + length])
                if candidate in self.ngram_lookup:
                    tokens[start : start + length] = [candidate]
                elif candidate.lower() in self.ngram_lookup:
                    tokens[start : start + length] = [candidate.lower()]
                start += 1
        return tokens
