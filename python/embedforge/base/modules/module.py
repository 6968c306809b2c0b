"""The base classes every embedforge module derives from.

A module is a ``torch.nn.Module`` that reads and writes a ``features`` dict, and knows how
to save itself into, and load itself from, one folder of a sentence-transformers model
folder (its config JSON plus optional ``model.safetensors``).
"""

from __future__ import annotations

import functools
import json
import logging
import os
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from embedforge._internal.weights import load_state_dict_file, save_state_dict_file
from embedforge.exceptions import ModelFormatError

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    # typing.Self is Python 3.11+; annotations are never evaluated at runtime here.
    from typing_extensions import Self


class Module(ABC, nn.Module):
    """Base class of all modules of a ``SentenceTransformer``.

    Subclasses list the constructor arguments that make up their configuration in
    ``config_keys``; ``save``/``load`` then round-trip through ``config_file_name``.
    """

    #: Name of the JSON file holding the module's configuration.
    config_file_name: ClassVar[str] = "config.json"
    #: Constructor arguments stored in the configuration file.
    config_keys: ClassVar[list[str]] = []
    #: Old configuration keys accepted on load, mapped to their current names.
    config_key_renames: ClassVar[dict[str, str]] = {}
    #: Whether the module is saved in the model folder's root (input modules are).
    save_in_root: ClassVar[bool] = False
    #: Whether the module's features are one flat token stream plus offsets (no batch axis to slice).
    flat_token_inputs: ClassVar[bool] = False

    @abstractmethod
    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Read inputs from ``features``, add this module's outputs to it, and return it."""

    @classmethod
    def st_type(cls) -> str:
        """The class reference written to ``modules.json``.

        embedforge's own modules write their sentence-transformers name (``sentence_transformers.models.X``),
        which every release of either library reads; a subclass defined elsewhere writes its own import path.
        """
        if cls.__module__.startswith("embedforge."):
            return f"sentence_transformers.models.{cls.__name__}"
        return f"{cls.__module__}.{cls.__qualname__}"

    def get_config_dict(self) -> dict[str, Any]:
        """The configuration saved to ``config_file_name``."""
        return {key: getattr(self, key) for key in self.config_keys}

    def on_model_ready(self, model: Any) -> None:
        """Called once the owning model is built (all modules and the tokenizer in place); a no-op by default.

        Override it to resolve state that depends on the whole model. A module appended to a model after
        construction does not get the call.
        """

    def get_embedding_dimension(self) -> int | None:
        """Width of the embeddings this module outputs, or None when it does not change or know it."""
        return None

    def get_sentence_embedding_dimension(self) -> int | None:
        """Old name of :meth:`get_embedding_dimension`, kept for sentence-transformers 5 scripts."""
        return self.get_embedding_dimension()

    def get_word_embedding_dimension(self) -> int | None:
        """Old name of :meth:`get_embedding_dimension` for token-level modules."""
        return self.get_embedding_dimension()

    def save_config(self, output_path: str, filename: str | None = None) -> None:
        """Write the configuration JSON into ``output_path``."""
        with open(
            os.path.join(output_path, filename or self.config_file_name),
            "w",
            encoding="utf-8",
        ) as f:
            json.dump(self.get_config_dict(), f, indent=4)

    def save_torch_weights(self, output_path: str, safe_serialization: bool = True) -> None:
        """Write the module's ``state_dict`` as ``model.safetensors`` (or ``pytorch_model.bin``)."""
        save_state_dict_file(self.state_dict(), output_path, safe_serialization=safe_serialization)

    def save(
        self,
        output_path: str,
        *args: Any,
        safe_serialization: bool = True,
        **kwargs: Any,
    ) -> None:
        """Save the module into the folder ``output_path`` (which exists)."""
        self.save_config(output_path)

    @classmethod
    def load_config(
        cls,
        model_name_or_path: str,
        subfolder: str = "",
        config_filename: str | None = None,
    ) -> dict:
        """Read the module's configuration; an absent file gives an empty dict."""
        path = os.path.join(model_name_or_path, subfolder, config_filename or cls.config_file_name)
        if not os.path.isfile(path):
            return {}
        try:
            with open(path, encoding="utf-8") as f:
                config = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ModelFormatError(f"{cls.__name__} config {path!r} is not valid JSON: {error}") from error
        if not isinstance(config, dict):
            raise ModelFormatError(
                f"{cls.__name__} config {path!r} must hold a JSON object, got {type(config).__name__}"
            )
        for old, new in cls.config_key_renames.items():
            if old in config:
                config.setdefault(new, config.pop(old))
        return config

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", **kwargs: Any) -> Self:
        """Build the module from the folder ``model_name_or_path/subfolder``."""
        config = cls.load_config(model_name_or_path, subfolder)
        return cls(**known_arguments(cls, config))

    @classmethod
    def load_torch_weights(
        cls,
        model_name_or_path: str,
        subfolder: str = "",
        model: nn.Module | None = None,
    ) -> Any:
        """Load ``model.safetensors`` (or ``pytorch_model.bin``) into ``model``, strictly, or return the dict."""
        folder = os.path.join(model_name_or_path, subfolder)
        state = load_state_dict_file(folder)
        if model is None:
            return state
        load_state_dict_strict(model, state, folder)
        return model


class ModuleWithWeights(Module):
    """A module saved as its config file plus ``model.safetensors`` (or ``pytorch_model.bin``)."""

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        """Write the config and the weights into ``output_path``."""
        self.save_config(output_path)
        self.save_torch_weights(output_path, safe_serialization=safe_serialization)

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", **kwargs: Any) -> Self:
        """Build from the config, then load the weights strictly (a mismatch raises ModelFormatError)."""
        config = cls.load_config(model_name_or_path, subfolder)
        folder = os.path.join(model_name_or_path, subfolder)
        try:
            model = cls(**known_arguments(cls, config))
        except (TypeError, ValueError) as error:
            raise ModelFormatError(f"Invalid {cls.__name__} config in {folder!r}: {error}") from error
        return cls.load_torch_weights(model_name_or_path, subfolder, model=model)


class InputModule(Module):
    """A module that turns raw inputs into tensors (it owns a tokenizer or processor) and is saved in the root folder.

    Subclasses implement :meth:`preprocess`. Older ones implementing only :meth:`tokenize` still work.
    """

    save_in_root: ClassVar[bool] = True

    @property
    def modalities(self) -> list[Any]:
        """The input modalities the module accepts (``["text"]`` unless a subclass says otherwise)."""
        return ["text"]

    @staticmethod
    def _prepend_prompt(inputs: list[str], prompt: str) -> list[str]:
        """Each text input with ``prompt`` in front."""
        return [prompt + text for text in inputs]

    def preprocess(self, inputs: list[Any], prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """Turn a batch of inputs into the features ``forward`` expects.

        Raises:
            NotImplementedError: If the subclass implements neither this nor the older :meth:`tokenize`.
        """
        # An old-style subclass implements tokenize() only; calling the base tokenize() here would recurse.
        if type(self).tokenize is not InputModule.tokenize:
            _warning_once(
                f"{type(self).__name__} overrides `tokenize` instead of `preprocess`. `tokenize` is deprecated, "
                "please override `preprocess` instead."
            )
            if prompt:
                inputs = self._prepend_prompt(inputs, prompt)
            return self.tokenize(inputs, **kwargs)
        raise NotImplementedError(f"{type(self).__name__} must implement the `preprocess` method.")

    def tokenize(self, texts: list[Any], **kwargs: Any) -> dict[str, Any]:
        """Deprecated name of :meth:`preprocess`."""
        _warning_once("The `tokenize` method is deprecated, please use `preprocess` instead.")
        return self.preprocess(texts, **kwargs)

    def save_tokenizer(self, output_path: str, **kwargs: Any) -> None:
        """Save the module's ``tokenizer`` (a transformers tokenizer or a ``tokenizers.Tokenizer``) into ``output_path``."""
        tokenizer: Any = getattr(self, "tokenizer", None)
        if tokenizer is None:
            return
        if hasattr(tokenizer, "save_pretrained"):
            tokenizer.save_pretrained(output_path, **kwargs)
        elif hasattr(tokenizer, "save"):
            tokenizer.save(os.path.join(output_path, "tokenizer.json"), **kwargs)


def _warning_once(message: str) -> None:
    """Log ``message`` once per process (transformers' cached ``Logger.warning_once`` when loaded)."""
    warn = getattr(logger, "warning_once", None)
    if warn is not None:
        warn(message)
    else:
        _warn_once_fallback(message)


@functools.cache
def _warn_once_fallback(message: str) -> None:
    logger.warning(message)


def load_state_dict_strict(model: nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Copy ``state`` into ``model``, failing with ModelFormatError on any missing, extra or misshapen tensor."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    problems = []
    if missing:
        problems.append(f"missing tensors {missing}")
    if unexpected:
        problems.append(f"unexpected tensors {unexpected}")
    for key in sorted(set(expected) & set(state)):
        if tuple(expected[key].shape) != tuple(state[key].shape):
            problems.append(
                f"tensor {key!r} has shape {tuple(state[key].shape)} but the config needs {tuple(expected[key].shape)}"
            )
    if problems:
        raise ModelFormatError(
            f"The weights in {where!r} do not match {type(model).__name__}'s configuration: " + "; ".join(problems)
        )
    model.load_state_dict(state, strict=True)


def known_arguments(cls: type, config: dict[str, Any]) -> dict[str, Any]:
    """Keep only the config entries ``cls.__init__`` accepts, so newer config keys do not break loading."""
    import inspect

    parameters = inspect.signature(cls).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return dict(config)
    return {key: value for key, value in config.items() if key in parameters}
