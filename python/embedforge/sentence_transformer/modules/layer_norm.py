"""LayerNorm: layer normalisation of the sentence embedding."""

from __future__ import annotations

from typing import Any, ClassVar

from torch import nn

from embedforge._internal.arguments import check_positive_int
from embedforge.base.modules.module import ModuleWithWeights

__all__ = ["LayerNorm"]


class LayerNorm(ModuleWithWeights):
    """Applies ``torch.nn.LayerNorm(dimension)`` (learned scale and shift) to ``sentence_embedding``."""

    config_keys: ClassVar[list[str]] = ["dimension"]

    def __init__(self, dimension: int) -> None:
        super().__init__()
        check_positive_int("dimension", dimension)
        self.dimension = dimension
        self.norm = nn.LayerNorm(dimension)

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Normalise ``sentence_embedding`` in place of the old one."""
        features["sentence_embedding"] = self.norm(features["sentence_embedding"])
        return features

    def get_embedding_dimension(self) -> int:
        """Width of the sentence embedding."""
        return self.dimension
