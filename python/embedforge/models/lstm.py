"""LSTM: a (bi-directional) LSTM run over token embeddings."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from embedforge.exceptions import InvalidArgumentError
from embedforge.models.cnn import accept_renamed_kwargs, check_positive_int, load_with_weights
from embedforge.models.module import Module

try:
    from typing import Self
except ImportError:  # Python 3.10
    from typing_extensions import Self

__all__ = ["LSTM"]


class LSTM(Module):
    """Replaces ``token_embeddings`` by the hidden states of an LSTM; padding is skipped via packed sequences.

    Reads ``sentence_lengths`` (made by WordEmbeddings) to know each text's length. The output width is
    ``hidden_dim``, doubled when ``bidirectional``.
    """

    config_file_name = "lstm_config.json"
    config_keys: ClassVar[list[str]] = ["embedding_dimension", "hidden_dim", "num_layers", "dropout", "bidirectional"]
    config_key_renames: ClassVar[dict[str, str]] = {"word_embedding_dimension": "embedding_dimension"}

    @accept_renamed_kwargs(word_embedding_dimension="embedding_dimension")
    def __init__(
        self,
        embedding_dimension: int,
        hidden_dim: int,
        num_layers: int = 1,
        dropout: float = 0,
        bidirectional: bool = True,
    ) -> None:
        super().__init__()
        check_positive_int("embedding_dimension", embedding_dimension)
        check_positive_int("hidden_dim", hidden_dim)
        check_positive_int("num_layers", num_layers)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1:
            raise InvalidArgumentError(f"dropout must be a probability in [0, 1], got {dropout!r}")
        self.embedding_dimension = embedding_dimension
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.dropout = dropout
        self.bidirectional = bidirectional
        self.embeddings_dimension = hidden_dim * 2 if bidirectional else hidden_dim
        self.encoder = nn.LSTM(
            embedding_dimension,
            hidden_dim,
            num_layers=num_layers,
            dropout=dropout,
            bidirectional=bidirectional,
            batch_first=True,
        )

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Run the LSTM over ``token_embeddings`` up to each text's ``sentence_lengths``."""
        if "sentence_lengths" not in features:
            raise InvalidArgumentError(
                "LSTM needs features['sentence_lengths'] (made by WordEmbeddings.preprocess); "
                f"got keys {sorted(features)}"
            )
        # An empty text still needs one step: packing rejects zero lengths.
        lengths = torch.clamp(features["sentence_lengths"], min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(
            features["token_embeddings"], lengths, batch_first=True, enforce_sorted=False
        )
        outputs, _ = self.encoder(packed)
        features["token_embeddings"] = nn.utils.rnn.pad_packed_sequence(outputs, batch_first=True)[0]
        return features

    def get_embedding_dimension(self) -> int:
        """Width of the output token embeddings."""
        return self.embeddings_dimension

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        """Write ``lstm_config.json`` and the LSTM weights."""
        self.save_config(output_path)
        # The weight helper copies tensors to the CPU itself, so the module can stay on its device.
        self.save_torch_weights(output_path, safe_serialization=safe_serialization)

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", **kwargs: Any) -> Self:
        """Build from ``lstm_config.json`` and load the weights strictly."""
        return load_with_weights(cls, model_name_or_path, subfolder)  # type: ignore[return-value]
