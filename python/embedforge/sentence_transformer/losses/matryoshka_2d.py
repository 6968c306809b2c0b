"""Matryoshka2dLoss (2DMSE): AdaptiveLayerLoss over a MatryoshkaLoss, so both layers and dims can be cut."""

from __future__ import annotations

from typing import Any

from torch import nn

from embedforge.sentence_transformer.losses.adaptive_layer import CITATION, AdaptiveLayerLoss, LayerWeighting
from embedforge.sentence_transformer.losses.matryoshka import MatryoshkaLoss


class Matryoshka2dLoss(AdaptiveLayerLoss):
    """Trains sampled (layer, dimension) pairs: a MatryoshkaLoss wrapped in an AdaptiveLayerLoss."""

    citation = CITATION

    def __init__(
        self,
        model: nn.Module,
        loss: nn.Module,
        matryoshka_dims: list[int],
        matryoshka_weights: list[float | int] | None = None,
        n_layers_per_step: int = 1,
        n_dims_per_step: int = 1,
        last_layer_weight: float = 1.0,
        prior_layers_weight: float = 1.0,
        kl_div_weight: float = 1.0,
        kl_temperature: float = 0.3,
        layer_weighting: LayerWeighting = "uniform",
    ) -> None:
        """Wrap ``loss`` in MatryoshkaLoss(dims) and that in AdaptiveLayerLoss; one layer and one dim per step by default."""
        matryoshka_loss = MatryoshkaLoss(
            model,
            loss,
            matryoshka_dims,
            matryoshka_weights=matryoshka_weights,
            n_dims_per_step=n_dims_per_step,
        )
        super().__init__(
            model,
            matryoshka_loss,
            n_layers_per_step=n_layers_per_step,
            last_layer_weight=last_layer_weight,
            prior_layers_weight=prior_layers_weight,
            kl_div_weight=kl_div_weight,
            kl_temperature=kl_temperature,
            layer_weighting=layer_weighting,
        )

    def get_config_dict(self) -> dict[str, Any]:
        """AdaptiveLayerLoss's settings merged with the MatryoshkaLoss's (whose ``loss`` entry wins)."""
        inner: Any = self.loss
        return {**super().get_config_dict(), **inner.get_config_dict()}
