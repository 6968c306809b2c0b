"""LSTM: a (bi-directional) LSTM run over token embeddings."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from embedforge._internal.arguments import accept_renamed_kwargs, check_positive_int
from embedforge.base.modules.module import ModuleWithWeights
from embedforge.exceptions import InvalidArgumentError

__all__ = ["LSTM"]


class LSTM(ModuleWithWeights):
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
