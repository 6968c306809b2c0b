"""Dense: a linear layer with an activation, applied to the sentence embedding."""

from __future__ import annotations

import importlib
import logging
import os
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor, nn

from embedforge.base.modules.module import ModuleWithWeights, known_arguments, load_state_dict_strict
from embedforge.exceptions import ModelFormatError

if TYPE_CHECKING:
    # typing.Self is Python 3.11+; annotations are never evaluated at runtime here.
    from typing_extensions import Self

logger = logging.getLogger(__name__)


class Dense(ModuleWithWeights):
    """``activation(linear(x))`` (plus an optional residual) on ``features[module_input_name]``."""

    config_keys: ClassVar[list[str]] = [
        "in_features",
        "out_features",
        "bias",
        "activation_function",
        "module_input_name",
        "module_output_name",
        "use_residual",
    ]

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        activation_function: nn.Module | None = nn.Tanh(),  # noqa: B008 - the documented default
        init_weight: Tensor | None = None,
        init_bias: Tensor | None = None,
        module_input_name: str = "sentence_embedding",
        module_output_name: str | None = None,
        use_residual: bool = False,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.bias = bias
        self.activation_function = nn.Identity() if activation_function is None else activation_function
        self.linear = nn.Linear(in_features, out_features, bias=bias)
        self.module_input_name = module_input_name
        self.module_output_name = module_input_name if module_output_name is None else module_output_name
        self.use_residual = use_residual
        if use_residual and in_features != out_features:
            # The input cannot be added as is: project it to the output width, without a bias.
            self.residual = nn.Linear(in_features, out_features, bias=False)
        if init_weight is not None:
            self.linear.weight = nn.Parameter(init_weight)
        if init_bias is not None and bias:
            self.linear.bias = nn.Parameter(init_bias)

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Project ``features[module_input_name]`` into ``features[module_output_name]``."""
        x = features[self.module_input_name]
        if x.is_floating_point() and x.dtype != self.linear.weight.dtype:
            # A Dense kept in its saved precision (float64, float16) may follow a float32 module.
            x = x.to(self.linear.weight.dtype)
        out = self.activation_function(self.linear(x))
        if self.use_residual:
            out = out + (x if self.in_features == self.out_features else self.residual(x))
        features[self.module_output_name] = out
        return features

    def get_embedding_dimension(self) -> int:
        """The output width, ``out_features``."""
        return self.out_features

    def get_config_dict(self) -> dict[str, Any]:
        """The config, with the activation stored by its import path as sentence-transformers does."""
        config = super().get_config_dict()
        activation = type(self.activation_function)
        config["activation_function"] = f"{activation.__module__}.{activation.__name__}"
        if not self.use_residual:
            config.pop("use_residual")
        return config

    @classmethod
    def load(
        cls,
        model_name_or_path: str,
        subfolder: str = "",
        trust_remote_code: bool = False,
        **kwargs: Any,
    ) -> Self:
        """Rebuild the layer from its folder; activations outside ``torch`` need ``trust_remote_code``."""
        config = cls.load_config(model_name_or_path, subfolder)
        for key in ("in_features", "out_features"):
            if key not in config:
                raise ModelFormatError(f"Dense config in {model_name_or_path!r}/{subfolder} lacks {key!r}")
        if "activation_function" in config:
            config["activation_function"] = _activation_from_path(config["activation_function"], trust_remote_code)
        arguments = known_arguments(cls, config)
        unknown = sorted(set(config) - set(arguments))
        if unknown:
            # A newer or foreign save (another library's Dense) may record options this class lacks.
            logger.warning(
                "Dense config in %r ignores keys that Dense does not accept: %s",
                os.path.join(model_name_or_path, subfolder),
                unknown,
            )
        model = cls(**arguments)
        state = cls.load_torch_weights(model_name_or_path, subfolder)
        # Keep the saved precision (a float64 or float16 save stays so), as sentence-transformers does.
        saved_dtype = next((tensor.dtype for tensor in state.values() if tensor.is_floating_point()), None)
        if saved_dtype is not None:
            model = model.to(saved_dtype)
        load_state_dict_strict(model, state, os.path.join(model_name_or_path, subfolder))
        return model


def _activation_from_path(path: str, trust_remote_code: bool) -> nn.Module:
    """Instantiate an activation stored as ``module.Class``; untrusted non-torch paths fall back to Tanh."""
    if not (trust_remote_code or path.startswith("torch.")):
        logger.warning(
            "Activation %r is not a torch class and trust_remote_code is False: using Tanh instead.",
            path,
        )
        return nn.Tanh()
    module_name, _, class_name = path.rpartition(".")
    try:
        activation_class = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as error:
        raise ModelFormatError(f"Dense activation_function {path!r} cannot be imported: {error}") from error
    if not (isinstance(activation_class, type) and issubclass(activation_class, torch.nn.Module)):
        raise ModelFormatError(f"Dense activation_function {path!r} is not a torch.nn.Module class")
    return activation_class()
