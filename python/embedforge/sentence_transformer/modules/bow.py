"""BoW: a bag-of-words (optionally tf-idf weighted) sentence vector as wide as the vocabulary."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import torch

from embedforge.base.modules.input_module import InputModule
from embedforge.exceptions import InvalidArgumentError
from embedforge.sentence_transformer.modules.tokenizer import WhitespaceTokenizer
from embedforge.sentence_transformer.modules.word_weights import check_vocab_and_weights, word_weight_table

__all__ = ["BoW"]

logger = logging.getLogger(__name__)


class BoW(InputModule):
    """Counts vocabulary words per text (whitespace tokenised), each count scaled by the word's weight.

    The output is ``sentence_embedding`` directly, one column per vocabulary word; the module has no weights.
    With ``cumulative_term_frequency=False`` a word present several times counts once.
    """

    # sentence-transformers keeps BoW in its own numbered folder even as the first module.
    save_in_root: ClassVar[bool] = False
    config_keys: ClassVar[list[str]] = ["vocab", "word_weights", "unknown_word_weight", "cumulative_term_frequency"]

    def __init__(
        self,
        vocab: list[str],
        word_weights: dict[str, float] | None = None,
        unknown_word_weight: float = 1,
        cumulative_term_frequency: bool = True,
    ) -> None:
        super().__init__()
        word_weights = {} if word_weights is None else word_weights
        check_vocab_and_weights(vocab, word_weights, unknown_word_weight)
        # Repeated words would get two columns but only one id; keep the first occurrence of each.
        self.vocab = list(dict.fromkeys(vocab))
        self.word_weights = word_weights
        self.unknown_word_weight = unknown_word_weight
        self.cumulative_term_frequency = cumulative_term_frequency
        self.weights, misses = word_weight_table(self.vocab, word_weights, unknown_word_weight)
        logger.info("%d of %d words have no weight; they get %s", misses, len(self.vocab), unknown_word_weight)
        # No stop words and no lower-casing: every vocabulary word is its own column.
        self.tokenizer = WhitespaceTokenizer(self.vocab, stop_words=set(), do_lower_case=False)
        self.sentence_embedding_dimension = len(self.vocab)

    @property
    def modalities(self) -> list[str]:
        """Input kinds the module accepts."""
        return ["text"]

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Nothing to compute: :meth:`preprocess` already built ``sentence_embedding``."""
        return features

    def preprocess(self, inputs: list[str], prompt: str | None = None, **kwargs: Any) -> dict[str, torch.Tensor]:
        """Turn ``inputs`` (after prepending ``prompt``) into weighted bag-of-words vectors."""
        if isinstance(inputs, str):
            raise InvalidArgumentError(f"inputs must be a list of texts, got the string {inputs!r}")
        if prompt:
            inputs = [prompt + text for text in inputs]
        return self.get_sentence_features([self.tokenizer.tokenize(text, **kwargs) for text in inputs])

    def tokenize(self, texts: list[str], **kwargs: Any) -> dict[str, torch.Tensor]:
        """Old name of :meth:`preprocess`."""
        return self.preprocess(texts, **kwargs)

    def get_sentence_features(
        self, tokenized_texts: list[list[int]], pad_seq_length: int = 0
    ) -> dict[str, torch.Tensor]:
        """Weighted bag-of-words vectors of already tokenised texts (``pad_seq_length`` is unused)."""
        weights = torch.tensor(self.weights, dtype=torch.float32)
        vectors = torch.zeros((len(tokenized_texts), self.sentence_embedding_dimension), dtype=torch.float32)
        for row, ids in enumerate(tokenized_texts):
            if not ids:
                continue
            index = torch.tensor(ids, dtype=torch.long)
            if self.cumulative_term_frequency:
                vectors[row].index_add_(0, index, weights[index])
            else:
                vectors[row, index] = weights[index]
        return {"sentence_embedding": vectors}

    def get_embedding_dimension(self) -> int:
        """Width of the output: the vocabulary size."""
        return self.sentence_embedding_dimension

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        """Write the config; BoW has no weights."""
        self.save_config(output_path)
