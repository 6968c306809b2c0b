"""AdaptiveLayerLoss: also train the embeddings read off earlier transformer layers (2DMSE's layer axis).

The transformer runs once per batch with all hidden states kept. The inner loss is applied to the
final layer and then to a random sample of earlier layers, each re-pooled from the cached hidden
states; a KL term pulls each earlier layer's (softmaxed) embedding towards the final layer's.
"""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Callable, Iterable
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from embedforge.base.losses.base import Loss
from embedforge.base.losses.merged_forward import column_merging_disabled
from embedforge.exceptions import InvalidArgumentError
from embedforge.sentence_transformer.losses.matryoshka import restore_forward

CITATION = """
@misc{li20242d,
    title={2D Matryoshka Sentence Embeddings},
    author={Xianming Li and Zongxi Li and Jing Li and Haoran Xie and Qing Li},
    year={2024},
    eprint={2402.14776},
    archivePrefix={arXiv},
    primaryClass={cs.CL}
}
"""

LayerWeighting = Literal["uniform", "log", "linear"] | Callable[[int], float]


class _LayerCache:
    """Stands in for the Transformer module's forward: the first call per input keeps every hidden state.

    With ``layer_idx`` set, a call skips the transformer and hands the cached hidden state of that
    layer on as ``token_embeddings``, so pooling and later modules embed from that layer.
    """

    def __init__(self, transformer: Any, forward: Callable[..., dict[str, Any]]) -> None:
        self.transformer = transformer
        self.forward = forward
        self.layer_idx: int | None = None
        self.num_layers = 0

    def __call__(self, features: dict[str, Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        if self.layer_idx is not None:
            # A fresh dict: the caller's features keep the final layer for the next call.
            return {**features, "token_embeddings": features["all_layer_embeddings"][self.layer_idx]}
        config = self.transformer.auto_model.config
        previous = config.output_hidden_states
        config.output_hidden_states = True
        try:
            output = self.forward(features, *args, **kwargs)
        finally:
            config.output_hidden_states = previous
        self.num_layers = len(output["all_layer_embeddings"])
        return output


class _EmbeddingRecorder:
    """Stands in for the model's forward and records every ``sentence_embedding`` it returns (for the KL term)."""

    def __init__(self, forward: Callable[..., dict[str, Any]]) -> None:
        self.forward = forward
        self.embeddings: list[Tensor] = []

    def __call__(self, features: dict[str, Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        output = self.forward(features, *args, **kwargs)
        self.embeddings.append(output["sentence_embedding"])
        return output

    def take(self) -> Tensor:
        """All recorded embeddings, concatenated along the batch, and forget them."""
        embeddings = torch.cat(self.embeddings, dim=0)
        self.embeddings = []
        return embeddings


def unwrap_model(model: nn.Module, loss_name: str) -> Any:
    """The SentenceTransformer inside DistributedDataParallel (``.module``) / torch.compile (``._orig_mod``)."""
    from embedforge.sentence_transformer.model import SentenceTransformer

    inner: Any = model
    while not isinstance(inner, SentenceTransformer):
        if hasattr(inner, "_orig_mod"):
            inner = inner._orig_mod
        elif hasattr(inner, "module"):
            inner = inner.module
        else:
            # A TypeError, as sentence-transformers raises: the object is of the wrong kind, not a bad value.
            raise TypeError(
                f"{loss_name} could not unwrap {type(model).__name__} to a SentenceTransformer (stopped at "
                f"{type(inner).__name__}); expected a SentenceTransformer, DistributedDataParallel or torch.compile"
            )
    return inner


class AdaptiveLayerLoss(Loss):
    """Applies an inner loss to the final layer and to sampled earlier layers, plus a layer-to-final KL term."""

    input_columns = (1, None)
    requires_label = None
    citation = CITATION

    def __init__(
        self,
        model: nn.Module,
        loss: nn.Module,
        n_layers_per_step: int = 1,
        last_layer_weight: float = 1.0,
        prior_layers_weight: float = 1.0,
        kl_div_weight: float = 1.0,
        kl_temperature: float = 0.3,
        layer_weighting: LayerWeighting = "uniform",
    ) -> None:
        """Wrap ``loss``; ``n_layers_per_step`` earlier layers (-1: all) are trained each step besides the last.

        ``layer_weighting`` weights the earlier layers' losses: "uniform", "log" (``1 / (1 + ln(1 + i))``),
        "linear" (``1 / (1 + i)``) or a callable of the layer index (0 is the embedding layer's output).
        ``kl_temperature=0`` turns the KL term off.
        """
        super().__init__()
        from embedforge.sentence_transformer.modules import Transformer

        self.model = model
        self.loss = loss
        self.n_layers_per_step = n_layers_per_step
        self.last_layer_weight = last_layer_weight
        self.prior_layers_weight = prior_layers_weight
        self.kl_div_weight = kl_div_weight
        self.kl_temperature = kl_temperature
        if not callable(layer_weighting) and layer_weighting not in ("uniform", "log", "linear"):
            raise InvalidArgumentError(
                f"layer_weighting is {layer_weighting!r}; expected 'uniform', 'log', 'linear' or a callable"
            )
        self.layer_weighting = layer_weighting
        first = unwrap_model(model, type(self).__name__)[0]
        if not isinstance(first, Transformer):
            raise InvalidArgumentError(
                f"{type(self).__name__} needs a model whose first module is a Transformer (it re-pools earlier "
                f"layers' hidden states), but the first module is {type(first).__name__}"
            )
        if getattr(loss, "uses_gradient_cache", False):
            # Such losses back-propagate from a hook that fires after the layer cache has been removed.
            warnings.warn(f"AdaptiveLayerLoss is not compatible with {type(loss).__name__}.", stacklevel=2)

    def get_layer_weight(self, layer_idx: int) -> float:
        """Weight of earlier layer ``layer_idx``'s loss under ``layer_weighting``."""
        if not isinstance(self.layer_weighting, str):
            return self.layer_weighting(layer_idx)
        if self.layer_weighting == "log":
            return 1.0 / (1.0 + math.log(1 + layer_idx))
        if self.layer_weighting == "linear":
            return 1.0 / (1 + layer_idx)
        return 1.0

    # The layer cache hands hidden states from one inner-loss call to the next through the per-column
    # feature dicts; a merged forward would write them into a fresh dict the next call never sees.
    @column_merging_disabled()
    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        """Final-layer loss plus the weighted losses and KL terms of the sampled earlier layers."""
        features = self.check_features(sentence_features, labels)
        model = unwrap_model(self.model, type(self).__name__)
        transformer = model[0]
        original_transformer_forward = transformer.forward
        layer_cache = _LayerCache(transformer, original_transformer_forward)
        transformer.forward = layer_cache
        original_forward = model.forward
        recorder = _EmbeddingRecorder(original_forward)
        model.forward = recorder
        try:
            loss = self.loss(features, labels) * self.last_layer_weight
            if self.kl_temperature > 0:
                # The final layer is the teacher of the KL term: no gradient flows into it from there.
                teacher = F.softmax(recorder.take() / self.kl_temperature, dim=-1).detach()

            num_layers = layer_cache.num_layers
            layer_indices: list[int] = list(range(num_layers - 1))
            # Python's random (as sentence-transformers) so that seeding random reproduces its choice.
            if 0 < self.n_layers_per_step < num_layers - 1:
                layer_indices = random.sample(range(num_layers - 1), self.n_layers_per_step)
            for layer_idx in layer_indices:
                layer_cache.layer_idx = layer_idx
                layer_loss = self.loss(features, labels)
                weight = self.get_layer_weight(layer_idx)
                loss = loss + layer_loss * weight / len(layer_indices) * self.prior_layers_weight
                if self.kl_temperature > 0:
                    student = F.log_softmax(recorder.take() / self.kl_temperature, dim=-1)
                    kl = F.kl_div(student, teacher, reduction="batchmean")
                    loss = loss + kl * self.kl_temperature * self.kl_div_weight
        finally:
            restore_forward(transformer, layer_cache, original_transformer_forward)
            restore_forward(model, recorder, original_forward)
        return loss

    def get_config_dict(self) -> dict[str, Any]:
        """The wrapped loss's class name and the layer settings."""
        layer_weighting: str
        if isinstance(self.layer_weighting, str):
            layer_weighting = self.layer_weighting
        else:
            layer_weighting = str(getattr(self.layer_weighting, "__name__", "custom"))
        return {
            "loss": type(self.loss).__name__,
            "n_layers_per_step": self.n_layers_per_step,
            "last_layer_weight": self.last_layer_weight,
            "prior_layers_weight": self.prior_layers_weight,
            "kl_div_weight": self.kl_div_weight,
            "kl_temperature": self.kl_temperature,
            "layer_weighting": layer_weighting,
        }
