"""The word-tokenizer interface used by WordEmbeddings, and the wrapper that lets a transformers tokenizer play it."""

from __future__ import annotations

import collections
import json
import os
import string
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from embedforge.exceptions import InvalidArgumentError, ModelFormatError, ModelNotFoundError
from embedforge.sentence_transformer.modules.tokenizer.stop_words import ENGLISH_STOP_WORDS

if TYPE_CHECKING:
    # typing.Self is Python 3.11+; annotations are never evaluated at runtime here.
    from typing_extensions import Self

__all__ = ["ENGLISH_STOP_WORDS", "TransformersTokenizerWrapper", "WordTokenizer"]


class WordTokenizer(ABC):
    """Turns a text into a list of vocabulary indices; subclasses define how words are found."""

    #: Name of the JSON file ``save`` writes and ``load`` reads (None for tokenizers with their own format).
    config_file_name: str | None = None
    #: Dotted class name written as ``tokenizer_class`` so sentence-transformers can load the folder too.
    st_class_name: str | None = None

    @abstractmethod
    def set_vocab(self, vocab: Iterable[str]) -> None:
        """Replace the vocabulary; a word's index is its position in ``vocab``."""

    @abstractmethod
    def get_vocab(self) -> Any:
        """The vocabulary."""

    @abstractmethod
    def tokenize(self, text: str, **kwargs: Any) -> list[int]:
        """Vocabulary indices of the words of ``text`` (words not in the vocabulary are left out)."""

    @abstractmethod
    def save(self, output_path: str) -> None:
        """Write the tokenizer's files into the folder ``output_path``."""

    @staticmethod
    @abstractmethod
    def load(input_path: str) -> WordTokenizer:
        """Read a tokenizer written by ``save`` from the folder ``input_path``."""


class VocabWordTokenizer(WordTokenizer):
    """Shared state and persistence of the vocabulary-list tokenizers (whitespace and phrase)."""

    #: Constructor arguments stored in ``config_file_name`` besides ``vocab`` and ``stop_words``.
    extra_config_keys: tuple[str, ...] = ()

    def __init__(self, vocab: Iterable[str], stop_words: Iterable[str], do_lower_case: bool) -> None:
        if isinstance(stop_words, str):
            # A bare string would silently become a set of single characters.
            raise InvalidArgumentError(f"stop_words must be an iterable of words, got the string {stop_words!r}")
        self.stop_words = set(stop_words)
        self.do_lower_case = do_lower_case
        self.set_vocab(vocab)

    def get_vocab(self) -> Any:
        """The vocabulary, as given to the constructor or ``set_vocab``."""
        return self.vocab

    def set_vocab(self, vocab: Iterable[str]) -> None:
        """Replace the vocabulary; a word's index is its position (the last one, for a repeated word)."""
        if isinstance(vocab, str):
            raise InvalidArgumentError(f"vocab must be an iterable of words, got the string {vocab!r}")
        # Materialise once: a generator would be exhausted by building the index below.
        self.vocab = vocab if isinstance(vocab, (list, tuple)) else list(vocab)
        self.word2idx = collections.OrderedDict((word, idx) for idx, word in enumerate(self.vocab))

    def _lookup(self, token: str, steps: tuple[str, ...]) -> int | None:
        """Index of ``token`` trying each normalisation in ``steps`` in turn; None if it is a stop word or unknown."""
        for step in steps:
            if step == "strip":
                token = token.strip(string.punctuation)
            elif step == "lower":
                token = token.lower()
            if token in self.stop_words:
                return None
            # Stripping can leave an empty string, which a vocabulary may contain but never means a word.
            if token in self.word2idx and (step != "strip" or token):
                return self.word2idx[token]
        return None

    def get_config_dict(self) -> dict[str, Any]:
        """The content of ``config_file_name``."""
        config: dict[str, Any] = {
            # The full list, repeats included, so indices stay aligned with the embedding rows after a reload.
            "vocab": list(self.vocab),
            # Sorted so that saving twice gives identical files (set order changes between runs).
            "stop_words": sorted(self.stop_words),
            "do_lower_case": self.do_lower_case,
        }
        for key in self.extra_config_keys:
            config[key] = getattr(self, key)
        return config

    def save(self, output_path: str) -> None:
        """Write the vocabulary, stop words and options into ``output_path/<config_file_name>``."""
        assert self.config_file_name is not None
        with open(os.path.join(output_path, self.config_file_name), "w", encoding="utf-8") as f:
            json.dump(self.get_config_dict(), f)

    @classmethod
    def _read_config(cls, input_path: str) -> dict[str, Any]:
        """Read ``input_path/<config_file_name>`` with errors that name the file."""
        assert cls.config_file_name is not None
        path = os.path.join(input_path, cls.config_file_name)
        if not os.path.isfile(path):
            raise ModelNotFoundError(f"{cls.__name__} needs {path!r}, which does not exist")
        try:
            with open(path, encoding="utf-8") as f:
                config = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ModelFormatError(f"{cls.__name__} config {path!r} is not valid JSON: {error}") from error
        if not isinstance(config, dict) or not isinstance(config.get("vocab"), list):
            raise ModelFormatError(f"{cls.__name__} config {path!r} must be a JSON object with a 'vocab' list")
        return config

    @classmethod
    def load(cls, input_path: str) -> Self:
        """Read a tokenizer written by ``save`` (by embedforge or sentence-transformers)."""
        config = cls._read_config(input_path)
        known = {"vocab", "stop_words", "do_lower_case", *cls.extra_config_keys}
        return cls(**{key: value for key, value in config.items() if key in known})


class TransformersTokenizerWrapper(WordTokenizer):
    """Lets a Hugging Face tokenizer stand in for a word tokenizer: its token ids become embedding rows."""

    st_class_name = "sentence_transformers.models.tokenizer.TransformersTokenizerWrapper"

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def tokenize(self, text: str, **kwargs: Any) -> list[int]:
        """Token ids of ``text``, special tokens included, as the wrapped tokenizer produces them."""
        return list(self.tokenizer(text)["input_ids"])

    def set_vocab(self, vocab: Iterable[str]) -> None:
        """The wrapped tokenizer owns its vocabulary; nothing to do."""

    def get_vocab(self) -> dict[str, int]:
        """The wrapped tokenizer's token -> id mapping."""
        return self.tokenizer.get_vocab()

    def save(self, output_path: str) -> None:
        """Write the wrapped tokenizer's files with ``save_pretrained``."""
        self.tokenizer.save_pretrained(output_path)

    @staticmethod
    def load(input_path: str) -> TransformersTokenizerWrapper:
        """Load the tokenizer files in ``input_path`` (local only) with ``AutoTokenizer``."""
        from transformers import AutoTokenizer

        return TransformersTokenizerWrapper(
            AutoTokenizer.from_pretrained(input_path, use_fast=True, local_files_only=True)
        )
