"""Dropout: dropout on the sentence embedding during training."""

from __future__ import annotations

from typing import Any, ClassVar

from torch import nn

from embedforge.base.modules.module import Module
from embedforge.exceptions import InvalidArgumentError

__all__ = ["Dropout"]


class Dropout(Module):
    """Applies ``torch.nn.Dropout(dropout)`` to ``sentence_embedding`` (a no-op in eval mode)."""

    config_keys: ClassVar[list[str]] = ["dropout"]

    def __init__(self, dropout: float = 0.2) -> None:
        super().__init__()
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1:
            raise InvalidArgumentError(f"dropout must be a probability in [0, 1], got {dropout!r}")
        self.dropout = dropout
        self.dropout_layer = nn.Dropout(dropout)

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Drop out entries of ``sentence_embedding`` while training."""
        features["sentence_embedding"] = self.dropout_layer(features["sentence_embedding"])
        return features

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        """Write the config; Dropout has no weights."""
        self.save_config(output_path)
