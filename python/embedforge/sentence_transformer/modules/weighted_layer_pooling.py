"""WeightedLayerPooling: token embeddings as a learned weighted mean of a transformer's hidden layers."""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import torch
from torch import nn

from embedforge._internal.arguments import accept_renamed_kwargs, check_positive_int
from embedforge.base.modules.module import ModuleWithWeights
from embedforge.exceptions import InvalidArgumentError

__all__ = ["WeightedLayerPooling"]


class WeightedLayerPooling(ModuleWithWeights):
    """Replaces ``token_embeddings`` by ``sum_l w_l * h_l / sum_l w_l`` over hidden layers ``layer_start..``.

    Reads ``all_layer_embeddings`` (the embedding output followed by each layer's output, as a Transformer with
    ``output_hidden_states`` gives); the ``num_hidden_layers + 1 - layer_start`` weights start at 1 and are trainable.
    """

    config_keys: ClassVar[list[str]] = ["embedding_dimension", "layer_start", "num_hidden_layers"]
    config_key_renames: ClassVar[dict[str, str]] = {"word_embedding_dimension": "embedding_dimension"}

    @accept_renamed_kwargs(word_embedding_dimension="embedding_dimension")
    def __init__(
        self,
        embedding_dimension: int,
        num_hidden_layers: int = 12,
        layer_start: int = 4,
        layer_weights: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        check_positive_int("embedding_dimension", embedding_dimension)
        check_positive_int("num_hidden_layers", num_hidden_layers)
        if (
            isinstance(layer_start, bool)
            or not isinstance(layer_start, int)
            or not 0 <= layer_start <= num_hidden_layers
        ):
            raise InvalidArgumentError(
                f"layer_start must be an integer in [0, num_hidden_layers={num_hidden_layers}], got {layer_start!r}"
            )
        self.embedding_dimension = embedding_dimension
        self.layer_start = layer_start
        self.num_hidden_layers = num_hidden_layers
        count = num_hidden_layers + 1 - layer_start
        if layer_weights is None:
            layer_weights = torch.ones(count, dtype=torch.float)
        elif not isinstance(layer_weights, nn.Parameter):
            layer_weights = torch.as_tensor(layer_weights, dtype=torch.float)
        if tuple(layer_weights.shape) != (count,):
            raise InvalidArgumentError(
                f"layer_weights must have shape ({count},) (num_hidden_layers + 1 - layer_start), "
                f"got {tuple(layer_weights.shape)}"
            )
        # Always a Parameter, so the weights are trained and saved even when the caller passed a plain tensor.
        self.layer_weights = layer_weights if isinstance(layer_weights, nn.Parameter) else nn.Parameter(layer_weights)

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Set ``token_embeddings`` to the weighted mean of the selected hidden layers."""
        all_layers = features.get("all_layer_embeddings")
        if all_layers is None:
            # sentence-transformers passes the features through unchanged here; keep that, but say so.
            warnings.warn(
                "WeightedLayerPooling found no 'all_layer_embeddings' in the features and left token_embeddings "
                "unchanged; load the Transformer with output_hidden_states=True",
                stacklevel=2,
            )
            return features
        selected = torch.stack(list(all_layers))[self.layer_start :]
        if selected.shape[0] != self.layer_weights.shape[0]:
            raise InvalidArgumentError(
                f"WeightedLayerPooling expects {self.num_hidden_layers + 1} hidden states (num_hidden_layers="
                f"{self.num_hidden_layers}, plus the embeddings), got {len(all_layers)}"
            )
        weights = self.layer_weights.view(-1, 1, 1, 1)
        features["token_embeddings"] = (weights * selected).sum(dim=0) / self.layer_weights.sum()
        return features

    def get_embedding_dimension(self) -> int:
        """Width of the token embeddings (unchanged by this module)."""
        return self.embedding_dimension
