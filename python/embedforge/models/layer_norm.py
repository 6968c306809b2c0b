"""LayerNorm: layer normalisation of the sentence embedding."""

from __future__ import annotations

from typing import Any, ClassVar

from torch import nn

from embedforge.models.cnn import check_positive_int, load_with_weights
from embedforge.models.module import Module

try:
    from typing import Self
except ImportError:  # Python 3.10
    from typing_extensions import Self

__all__ = ["LayerNorm"]


class LayerNorm(Module):
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

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        """Write the config and the scale/shift weights."""
        self.save_config(output_path)
        self.save_torch_weights(output_path, safe_serialization=safe_serialization)

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", **kwargs: Any) -> Self:
        """Build from ``config.json`` and load the weights strictly."""
        return load_with_weights(cls, model_name_or_path, subfolder)  # type: ignore[return-value]
