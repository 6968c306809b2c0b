"""WordWeights: scale each token embedding by a per-word weight (idf values, for instance)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from embedforge.base.modules.module import Module, load_state_dict_strict
from embedforge.exceptions import InvalidArgumentError, ModelFormatError

if TYPE_CHECKING:
    # typing.Self is Python 3.11+; annotations are never evaluated at runtime here.
    from typing_extensions import Self

__all__ = ["WordWeights"]

logger = logging.getLogger(__name__)


def word_weight_table(
    vocab: list[str], word_weights: Mapping[str, float], unknown_word_weight: float
) -> tuple[list[float], int]:
    """Weight of each vocabulary entry (exact match, then lower-cased, then the unknown weight) and the miss count."""
    weights = []
    misses = 0
    for word in vocab:
        if word in word_weights:
            weights.append(float(word_weights[word]))
        elif word.lower() in word_weights:
            weights.append(float(word_weights[word.lower()]))
        else:
            weights.append(float(unknown_word_weight))
            misses += 1
    return weights, misses


def check_vocab_and_weights(vocab: Any, word_weights: Any, unknown_word_weight: Any) -> None:
    """Validate the arguments shared by WordWeights and BoW."""
    if isinstance(vocab, str) or not isinstance(vocab, (list, tuple)):
        raise InvalidArgumentError(f"vocab must be a list of words, got {type(vocab).__name__}")
    if not isinstance(word_weights, Mapping):
        raise InvalidArgumentError(f"word_weights must be a dict of word -> weight, got {type(word_weights).__name__}")
    if isinstance(unknown_word_weight, bool) or not isinstance(unknown_word_weight, (int, float)):
        raise InvalidArgumentError(f"unknown_word_weight must be a number, got {unknown_word_weight!r}")


class WordWeights(Module):
    """Multiplies token embeddings by a weight per vocabulary word and records the sum of the weights per text.

    Place it between a WordEmbeddings and a Pooling module; ``Pooling`` with mean pooling then divides by
    ``token_weights_sum``, giving a weighted average.
    """

    config_keys: ClassVar[list[str]] = ["vocab", "word_weights", "unknown_word_weight"]

    def __init__(self, vocab: list[str], word_weights: dict[str, float], unknown_word_weight: float = 1) -> None:
        super().__init__()
        check_vocab_and_weights(vocab, word_weights, unknown_word_weight)
        self.vocab = vocab
        self.word_weights = word_weights
        self.unknown_word_weight = unknown_word_weight

        weights, misses = word_weight_table(list(vocab), word_weights, unknown_word_weight)
        logger.info("%d of %d words have no weight; they get %s", misses, len(vocab), unknown_word_weight)
        self.emb_layer = nn.Embedding(len(vocab), 1)
        with torch.no_grad():
            self.emb_layer.weight.copy_(torch.tensor(weights, dtype=torch.float32).unsqueeze(1))

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Scale ``token_embeddings`` by their words' weights (padding counts as 0); add ``token_weights_sum``."""
        token_embeddings = features["token_embeddings"]
        weights = self.emb_layer(features["input_ids"]).squeeze(-1) * features["attention_mask"].float()
        features["token_embeddings"] = token_embeddings * weights.unsqueeze(-1).expand(token_embeddings.size())
        features["token_weights_sum"] = weights.sum(1)
        return features

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        """Write the config (vocabulary and weight table) and the weight column."""
        self.save_config(output_path)
        self.save_torch_weights(output_path, safe_serialization=safe_serialization)

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", **kwargs: Any) -> Self:
        """Rebuild from the config, then load the saved weight column (which keeps fine-tuned weights) if present."""
        config = cls.load_config(model_name_or_path, subfolder)
        missing = [key for key in ("vocab", "word_weights") if key not in config]
        folder = os.path.join(model_name_or_path, subfolder)
        if missing:
            raise ModelFormatError(f"WordWeights config in {folder!r} lacks {missing}")
        model = cls(**{key: config[key] for key in cls.config_keys if key in config})
        if any(os.path.isfile(os.path.join(folder, name)) for name in ("model.safetensors", "pytorch_model.bin")):
            load_state_dict_strict(model, cls.load_torch_weights(model_name_or_path, subfolder), folder)
        return model
