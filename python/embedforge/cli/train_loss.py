"""Build the loss of ``embedforge train`` from its name and keyword arguments (strings stand for callables)."""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from embedforge.exceptions import InvalidArgumentError
from embedforge.sentence_transformer import losses

#: Loss keyword arguments whose value is another model: a string there is a local model folder.
MODEL_KWARGS = ("guide", "teacher_model")

#: Classes whose attributes name distance functions, for a ``distance_metric`` given as a string.
DISTANCE_HOLDERS = ("TripletDistanceMetric", "SiameseDistanceMetric", "BatchHardTripletLossDistanceFunction")


def loss_names() -> list[str]:
    """Names of the losses a config may ask for (classes ending in ``Loss`` in embedforge.sentence_transformer.losses)."""
    return sorted(name for name in losses.LOSS_MODULES if name.endswith("Loss"))


def build_loss(model: nn.Module, loss_config: dict[str, Any]) -> nn.Module:
    """``loss_config['name'](model, **kwargs)``, wrapped in MatryoshkaLoss when ``matryoshka_dims`` is set."""
    name = loss_config.get("name", "MultipleNegativesRankingLoss")
    if name not in loss_names():
        raise InvalidArgumentError(f"loss name {name!r} is not a known loss; valid names are {loss_names()}")
    loss_class = getattr(losses, name)
    kwargs = {key: _resolve_kwarg(key, value, loss_class) for key, value in (loss_config.get("kwargs") or {}).items()}
    accepted = inspect.signature(loss_class.__init__).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    unknown = sorted(key for key in kwargs if key not in accepted or key in ("self", "model"))
    if unknown and not takes_any:
        valid = [key for key in accepted if key not in ("self", "model")]
        raise InvalidArgumentError(f"loss.kwargs {unknown} are not arguments of {name}; it accepts {valid}")
    loss = loss_class(model, **kwargs)
    dims = loss_config.get("matryoshka_dims")
    if dims:
        loss = losses.MatryoshkaLoss(
            model, loss, matryoshka_dims=list(dims), matryoshka_weights=loss_config.get("matryoshka_weights")
        )
    return loss


def _resolve_kwarg(key: str, value: Any, loss_class: type) -> Any:
    """Turn the strings a config file can hold into the objects the loss expects."""
    if not isinstance(value, str):
        return value
    if key in MODEL_KWARGS:
        from embedforge.sentence_transformer.model import SentenceTransformer

        return SentenceTransformer(value)
    if key == "similarity_fct":
        from embedforge import util

        function = getattr(util, value, None)
        if not callable(function):
            raise InvalidArgumentError(
                f"loss.kwargs.similarity_fct={value!r} is not a function of embedforge.util; "
                "expected e.g. 'cos_sim', 'dot_score', 'pairwise_cos_sim'"
            )
        return function
    if key == "distance_metric":
        # The loss's own metric class first: "euclidean" means its own variant.
        module = inspect.getmodule(loss_class)
        own = [getattr(module, name) for name in DISTANCE_HOLDERS if hasattr(module, name)]
        for holder in [*own, *(getattr(losses, name) for name in DISTANCE_HOLDERS)]:
            for attribute in (value, value.upper(), value.lower()):
                if hasattr(holder, attribute):
                    return getattr(holder, attribute)
    return value
