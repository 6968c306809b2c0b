"""BaseModel: what every model kind shares (a sequence of modules, prompts, device, the folder layout).

SentenceTransformer and CrossEncoder are thin kinds on this class. It owns the parts of the
sentence-transformers folder that do not depend on the kind: ``modules.json`` (through the module
registry), ``config_sentence_transformers.json`` (model type, library versions, prompts) and the
atomic save; the kinds add their own config entries, inputs and outputs.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, ClassVar, Literal, cast

import torch
from torch import nn

from embedforge._internal.atomic import atomic_directory
from embedforge._internal.multi_process import MultiProcessMixin
from embedforge._version import __version__
from embedforge.base.modality import (
    infer_batch_modality,
    infer_modality,
    is_non_text_pair,
    raise_unsupported_modality_error,
)
from embedforge.base.modality_types import MULTIMODAL_DICT_KEYS
from embedforge.base.modules.registry import read_json, save_modules
from embedforge.base.modules.router import Router
from embedforge.base.modules.transformer import Transformer
from embedforge.exceptions import InvalidArgumentError

logger = logging.getLogger(__name__)

#: Name of the model-level configuration file in a sentence-transformers folder.
MODEL_CONFIG_FILE = "config_sentence_transformers.json"


class BaseModel(MultiProcessMixin, nn.Sequential):
    """A sequence of modules with prompts, a device and the sentence-transformers folder layout."""

    #: Written as ``model_type`` in ``config_sentence_transformers.json``.
    model_type: ClassVar[str] = "BaseModel"
    #: Prompts every instance starts with. None means "filled from the saved config, else empty": a
    #: SentenceTransformer always has a query and a document prompt, as in sentence-transformers 6.
    _default_prompts: ClassVar[dict[str, str | None]] = {}

    def _init_prompts(self, prompts: dict[str, str] | None, default_prompt_name: str | None) -> None:
        """The kind's default prompts, overridden by the given ones; saved prompts fill the gaps on load."""
        self.prompts: dict[str, Any] = {**self._default_prompts, **(prompts or {})}
        self.default_prompt_name = default_prompt_name

    def _init_modules(self, modules: Iterable[nn.Module] | OrderedDict | None) -> None:
        """Initialise the ``nn.Sequential`` with ``modules`` (a list is named "0", "1", ...)."""
        if modules is not None and not isinstance(modules, OrderedDict):
            modules = OrderedDict((str(index), module) for index, module in enumerate(modules))
        super().__init__(modules or OrderedDict())

    def _post_init(self) -> None:
        """The last construction step: tell every module the model is ready (``Module.on_model_ready``)."""
        for module in self._modules.values():
            hook = getattr(module, "on_model_ready", None)
            if callable(hook):
                hook(self)

    # -- configuration -----------------------------------------------------------------------------

    def _read_model_config(self, folder: str) -> dict[str, Any]:
        """``config_sentence_transformers.json`` of ``folder`` ({} when absent); its prompts fill in ours.

        Prompts given to the constructor win over saved ones of the same name (a default prompt left at
        None is filled by the saved one), and a saved default prompt name applies only when none was given.
        """
        config_path = os.path.join(folder, MODEL_CONFIG_FILE)
        if not os.path.isfile(config_path):
            return {}
        config = read_json(config_path, dict)
        for name, text in (config.get("prompts") or {}).items():
            if self.prompts.get(name) is None:
                self.prompts[name] = text
        if self.default_prompt_name is None:
            self.default_prompt_name = config.get("default_prompt_name")
        return config

    def _check_prompts(self) -> None:
        """Unfilled prompts become empty (nothing is prepended); the default prompt name must exist."""
        for name, text in self.prompts.items():
            if text is None:
                self.prompts[name] = ""
        if self.default_prompt_name is not None and self.default_prompt_name not in self.prompts:
            raise InvalidArgumentError(
                f"Default prompt name '{self.default_prompt_name}' not found in the configured prompts dictionary "
                f"with keys {list(self.prompts)!r}. Set default_prompt_name to one of them, or add that prompt."
            )

    def _resolve_prompt(self, prompt: str | None, prompt_name: str | None) -> str | None:
        return resolve_prompt(self.prompts, self.default_prompt_name, prompt, prompt_name)

    @property
    def device(self) -> torch.device:
        """Device of the model's parameters (CPU when it has none)."""
        parameter = next(self.parameters(), None)
        return torch.device("cpu") if parameter is None else parameter.device

    @property
    def dtype(self) -> torch.dtype | None:
        """The dtype of the first parameter (None for a model without parameters)."""
        parameter = next(self.parameters(), None)
        return None if parameter is None else parameter.dtype

    @property
    def modalities(self) -> list[Any]:
        """The input modalities the model takes: its first module's, or ``["text"]``.

        Entries are names (``"text"``, ``"image"``, ``"audio"``, ``"video"``, ``"message"``) or tuples
        of names for combined inputs the model lists explicitly.
        """
        modules = list(self._modules.values())
        return list(getattr(modules[0], "modalities", ["text"])) if modules else ["text"]

    def supports(self, modality: str | tuple[str, ...]) -> bool:
        """Whether the model takes ``modality``: a listed one, or a tuple of listed ones when it takes messages.

        A tuple such as ``("image", "text")`` is one input combining several modalities; a model that
        takes chat messages can carry any combination of modalities it takes one by one.
        """
        supported = self.modalities
        if modality in supported:
            return True
        if isinstance(modality, tuple) and "message" in supported:
            return all(part in supported for part in modality)
        return False

    @property
    def transformers_model(self) -> nn.Module | None:
        """The first transformers model inside the modules, or None (for example a static model)."""
        for module in self.modules():
            if isinstance(module, Transformer):
                return module.auto_model
        return None

    @property
    def config(self) -> Any:
        """The transformers config of :attr:`transformers_model` (None without one).

        Integrations such as DeepSpeed and ``transformers.Trainer`` read ``model.config`` directly.
        """
        return getattr(self.transformers_model, "config", None)

    @config.setter
    def config(self, value: Any) -> None:
        underlying = self.transformers_model
        if underlying is None:
            raise InvalidArgumentError("config: this model has no transformers model to hold a config")
        underlying.config = value

    @property
    def _target_device(self) -> torch.device:
        """Deprecated name of :attr:`device`."""
        logger.warning("%s._target_device is deprecated; use .device instead", type(self).__name__)
        return self.device

    def _first_module(self) -> Any:
        # Any, not nn.Module: callers use the input module's duck-typed interface (tokenizer, preprocess,
        # max_seq_length), which embedforge's modules and users' own modules provide without a common base.
        return next(iter(self._modules.values()))

    def _last_module(self) -> nn.Module:
        return list(self._modules.values())[-1]

    def _can_flatten_inputs(self) -> bool:
        """Whether text batches can be packed without padding: the input Transformer says so, or for a
        Router, the Transformer starting every route does (which route a batch takes is not known yet)."""
        first = self._first_module()
        if isinstance(first, Transformer):
            return bool(first.can_flatten_inputs)
        if isinstance(first, Router) and len(first.sub_modules):
            firsts = [cast(nn.Sequential, route)[0] for route in first.sub_modules.values()]
            return all(isinstance(module, Transformer) and module.can_flatten_inputs for module in firsts)
        return False

    def preprocess(self, inputs: list[Any], prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """Turn a batch into features with the first module, after checking the model supports its modality.

        Raises:
            ValueError: If the batch's modality (or a mix of modalities) is one the model cannot encode.
        """
        if not inputs:
            return {}
        try:
            modality = infer_batch_modality(inputs, supported_modalities=self.modalities)
        except (ValueError, TypeError):
            modality = None  # the input module reports what it cannot read
        if modality is not None and not self.supports(modality):
            raise_unsupported_modality_error(inputs, modality, self.modalities, f"{type(self).__name__} model")
        first = self._first_module()
        accepted = accepted_kwargs(first.preprocess, kwargs) if hasattr(first, "preprocess") else {}
        if hasattr(first, "preprocess"):
            return first.preprocess(inputs, prompt=prompt, **accepted)
        texts = [prompt + text for text in inputs] if prompt else inputs
        return first.tokenize(texts)

    def tokenize(self, texts: list[Any], **kwargs: Any) -> dict[str, Any]:
        """Tokenise a batch with the first module (deprecated old name of :meth:`preprocess`)."""
        logger.warning("tokenize() is deprecated and will be removed; use preprocess() instead")
        return self.preprocess(texts, **kwargs)

    def evaluate(self, evaluator: Any, output_path: str | None = None) -> Any:
        """Run ``evaluator`` on this model (creating ``output_path`` first when given); its results."""
        if output_path is not None:
            os.makedirs(output_path, exist_ok=True)
        return evaluator(self, output_path)

    def push_to_hub(self, repo_id: str, *args: Any, **kwargs: Any) -> str:
        """Not available: embedforge has no hub access. Save with :meth:`save_pretrained` and upload the folder."""
        raise InvalidArgumentError(
            f"push_to_hub(repo_id={repo_id!r}): embedforge never contacts a model hub; save the model with "
            "save_pretrained(folder) and upload that folder with your own tools"
        )

    def get_backend(self) -> Literal["torch"]:
        """The inference backend: always ``"torch"`` (ONNX and OpenVINO backends are not supported)."""
        return "torch"

    save_to_hub = push_to_hub

    # -- saving ------------------------------------------------------------------------------------

    def _model_config_dict(self) -> dict[str, Any]:
        """The content of ``config_sentence_transformers.json``; kinds add their own entries."""
        return {
            "model_type": self.model_type,
            "__version__": library_versions(),
            "prompts": self.prompts,
            "default_prompt_name": self.default_prompt_name,
        }

    def _write_model_card(self, folder: str, model_name: str | None, train_datasets: list[str] | None) -> None:
        """Write ``README.md`` into ``folder``; kinds without a card keep this no-op."""

    def save(
        self,
        path: str,
        model_name: str | None = None,
        create_model_card: bool = True,
        train_datasets: list[str] | None = None,
        safe_serialization: bool = True,
        **kwargs: Any,
    ) -> None:
        """Save the model folder (sentence-transformers layout) atomically: a crash leaves no half-written folder."""
        if path is None:
            # sentence-transformers returns without saving; say so instead of staying silent.
            logger.warning("save(path=None): no folder given, nothing was saved")
            return
        with atomic_directory(os.fspath(path)) as staging:
            with open(os.path.join(staging, MODEL_CONFIG_FILE), "w", encoding="utf-8") as f:
                json.dump(self._model_config_dict(), f, indent=2, sort_keys=True)
            save_modules(self, staging, getattr(self, "module_kwargs", {}), safe_serialization)
            if create_model_card:
                self._write_model_card(staging, model_name, train_datasets)

    def save_pretrained(self, path: str, *args: Any, **kwargs: Any) -> None:
        """Same as :meth:`save` (same arguments, positional or by name)."""
        self.save(path, *args, **kwargs)

    def __repr__(self) -> str:
        lines = [f"  ({name}): {module!r}" for name, module in self._modules.items()]
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"


def resolve_prompt(
    prompts: dict[str, str], default_prompt_name: str | None, prompt: str | None, prompt_name: str | None
) -> str | None:
    """The prompt text to use: ``prompt`` itself, else the named prompt, else the default prompt (or None)."""
    if prompt is not None:
        if prompt_name is not None:
            logger.warning(
                "Provide either a `prompt`, a `prompt_name`, or neither, but not both. "
                "Ignoring the `prompt_name` in favor of `prompt`."
            )
        return prompt
    if prompt_name is not None:
        if prompt_name not in prompts:
            raise InvalidArgumentError(
                f"Prompt name '{prompt_name}' not found in the configured prompts dictionary with keys "
                f"{list(prompts)!r}. Pass one of them as prompt_name, or a prompt text as prompt."
            )
        return prompts[prompt_name]
    if default_prompt_name is not None:
        return prompts.get(default_prompt_name)
    return None


def library_versions() -> dict[str, str]:
    """The ``__version__`` entry of ``config_sentence_transformers.json``: the libraries that saved the model."""
    import transformers

    return {"embedforge": __version__, "transformers": transformers.__version__, "pytorch": torch.__version__}


def accepted_kwargs(function: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``kwargs`` that ``function`` takes (all of them when it has ``**kwargs``)."""
    parameters = inspect.signature(function).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return kwargs
    return {key: value for key, value in kwargs.items() if key in parameters}


def pick_device(device: str | None) -> str:
    """``device`` itself, else CUDA when available, else the CPU."""
    if device is not None:
        return device
    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


def _is_task_dict(item: Any) -> bool:
    """An old Asym-style input, ``{task: text}``: one non-modality key holding a string."""
    return (
        isinstance(item, dict)
        and len(item) == 1
        and next(iter(item)) not in MULTIMODAL_DICT_KEYS | {"role", "content", "array"}
        and isinstance(next(iter(item.values())), str)
    )


def check_texts(inputs: list[Any]) -> None:
    """Reject inputs of no accepted form (text, text pairs, media, chat messages, modality dicts), naming
    the first bad index, its type and the reason."""
    for index, item in enumerate(inputs):
        if isinstance(item, str):
            continue
        if isinstance(item, (tuple, list)) and item and all(isinstance(part, str) for part in item):
            continue
        if is_non_text_pair(item) or _is_task_dict(item):
            continue
        try:
            infer_modality(item)
        except ValueError as error:
            raise InvalidArgumentError(f"inputs[{index}] is {type(item).__name__} ({item!r:.60}): {error}") from None


__all__ = ["BaseModel", "accepted_kwargs", "check_texts", "library_versions", "pick_device", "resolve_prompt"]
