"""Transformer: a Hugging Face model and its processor as the input module of a model.

It covers sentence-transformers 6's tasks (token embeddings, cross-encoder scores, next-token logits,
masked-LM logits, late-interaction retrieval) and its modalities: text, images, audio, video, chat
messages and combinations of them, each routed to a model method by ``modality_config``. Plain text
batches are tokenised by the Rust core; everything else goes through the transformers processor.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.metadata
import inspect
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar, cast, get_args, get_type_hints

import numpy as np
import numpy.typing as npt
import torch
from packaging.version import parse as parse_version
from torch import Tensor

from embedforge._internal.local_path import require_local_dir
from embedforge.base.modality import InputFormatter, format_modality, raise_unsupported_modality_error
from embedforge.base.modality_types import Modality
from embedforge.base.modules.chat_template_suffix import FILLERS, common_tail, message_skeleton, write_suffix
from embedforge.base.modules.input_module import InputModule
from embedforge.base.modules.module import known_arguments
from embedforge.base.modules.query_expansion import QueryExpansionConfig, normalize_query_expansion
from embedforge.base.modules.transformer_processing import (
    CHAT_TEMPLATE_TOP_LEVEL_KWARGS,
    apply_chat_template,
    call_processor,
    count_media_per_sample,
    processor_kinds,
)
from embedforge.base.modules.transformer_tasks import (
    CAUSAL_TASKS,
    EDGE_CASE_MODALITY_CONFIGS,
    TRANSFORMER_TASK_DEFAULTS,
    TRANSFORMER_TASKS,
    ModalityConfig,
    ModalityParams,
    TransformerTask,
    auto_model_class,
    default_modality_config,
    encoder_only_class,
)
from embedforge.exceptions import InvalidArgumentError, ModelFormatError
from embedforge.util.decorators import transformer_kwargs_decorator

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel
    from typing_extensions import Self

logger = logging.getLogger(__name__)

_TRANSFORMERS_VERSION = parse_version(importlib.metadata.version("transformers"))
# Attention settings older transformers releases silently ignore.
_TRANSFORMERS_SUPPORTS_USE_BIDIRECTIONAL_ATTENTION = parse_version("4.56.2") <= _TRANSFORMERS_VERSION
_TRANSFORMERS_SUPPORTS_IS_CAUSAL_FALSE = parse_version("5.2.0") <= _TRANSFORMERS_VERSION

#: Names under which older sentence-transformers releases saved this module's config.
LEGACY_CONFIG_NAMES = (
    "sentence_bert_config.json",
    "sentence_roberta_config.json",
    "sentence_distilbert_config.json",
    "sentence_camembert_config.json",
    "sentence_albert_config.json",
    "sentence_xlm-roberta_config.json",
    "sentence_xlnet_config.json",
)
_SINGLE_MODALITIES = frozenset({"text", "image", "audio", "video", "message"})
# Features that are embedforge's bookkeeping (or tokenizer extras), never model inputs.
_NON_MODEL_FEATURE_KEYS = frozenset(
    {
        "modality",
        "num_images_per_sample",
        "num_videos_per_sample",
        "prompt_length",
        "query_expansion_positions",
        "task",
        "offset_mapping",
        "overflow_to_sample_mapping",
        "special_tokens_mask",
    }
)
# Always passed to a model whose forward lists its parameters explicitly.
_FORWARD_SAFETY_NET_KEYS = frozenset({"input_ids", "attention_mask", "token_type_ids", "inputs_embeds", "return_dict"})
# Conversation layouts whose closing tokens are remembered.
_CHAT_TEMPLATE_SUFFIX_CACHE_SIZE = 256
# Options only for a local load: embedforge never reaches a hub.
_HUB_ONLY_KWARGS = ("token", "revision", "cache_dir", "local_files_only", "subfolder", "trust_remote_code")
# The keys of sentence_bert_config.json that may hold old argument names.
_OLD_KWARG_NAMES = {"model_args": "model_kwargs", "tokenizer_args": "processor_kwargs", "config_args": "config_kwargs"}


def _warning_once(message: str) -> None:
    """Log ``message`` once (transformers' lru-cached ``Logger.warning_once`` when it is there)."""
    warn = getattr(logger, "warning_once", None)
    (warn or logger.warning)(message)


def find_adapter_config_file(model_name_or_path: str, **kwargs: Any) -> str | None:
    """The PEFT ``adapter_config.json`` of a local folder, or None (transformers' helper, imported lazily)."""
    from transformers.utils import find_adapter_config_file as find

    return find(model_name_or_path, **kwargs)


def is_peft_available() -> bool:
    """Whether the ``peft`` package can be imported."""
    from transformers.utils import is_peft_available as available

    return available()


@contextmanager
def set_temporary_class_attrs(cls: type, **overrides: Any) -> Iterator[None]:
    """Set class attributes for the duration of a ``with`` block, restoring them afterwards (even on error)."""
    saved = {name: getattr(cls, name, None) for name in overrides}
    try:
        for name, value in overrides.items():
            setattr(cls, name, value)
        yield
    finally:
        for name, value in saved.items():
            setattr(cls, name, value)


def _count_media_per_sample(messages: list[list[dict[str, Any]]]) -> tuple[list[int], list[int]]:
    """sentence-transformers' name of :func:`count_media_per_sample`."""
    return count_media_per_sample(messages)


class Transformer(InputModule):
    """A Hugging Face model with its processor (tokenizer, image processor, ...), as a model's input module.

    Args:
        model_name_or_path: A local model folder (embedforge never downloads).
        transformer_task: ``"feature-extraction"`` (token embeddings, the default),
            ``"sequence-classification"`` (a cross-encoder's ``scores``), ``"text-generation"`` and
            ``"any-to-any"`` (next-token ``causal_logits``, left-padded), ``"fill-mask"`` (masked-LM
            logits) or ``"retrieval"`` (a ``*ForRetrieval`` model's token embeddings).
        model_kwargs: Options for the model's ``from_pretrained`` (``torch_dtype``, ``attn_implementation``, ...).
        processor_kwargs: Options for ``AutoProcessor.from_pretrained`` (``model_max_length``, ...).
        config_kwargs: Options for ``AutoConfig.from_pretrained``.
        processing_kwargs: Options for every processor call, under ``"common"``, a modality
            (``"text"``, ``"image"``, ``"audio"``, ``"video"``) or ``"chat_template"``.
        backend: Only ``"torch"``.
        modality_config: Modality -> ``{"method", "method_output_name"}``: the model method each input
            kind runs through and the output it reads. Inferred from the model and processor when None.
        module_output_name: The feature the output is written to; required with ``modality_config``.
        unpad_inputs: Whether text batches are packed without padding (needs flash attention);
            None decides from the model.
        query_length: Truncation length for ``task="query"`` batches.
        document_length: Truncation length for ``task="document"`` batches.
        query_expansion: ColBERT-style query expansion (see :class:`QueryExpansionConfig`).
        max_seq_length: Truncate inputs to this many tokens.
        do_lower_case: Lowercase the text before tokenising.
        tokenizer_name_or_path: Deprecated: a separate tokenizer folder.
        tokenizer_kwargs: embedforge's earlier name of ``processor_kwargs``.
    """

    config_file_name: ClassVar[str] = "sentence_bert_config.json"
    config_keys: ClassVar[list[str]] = [
        "transformer_task",
        "modality_config",
        "module_output_name",
        "processing_kwargs",
        "unpad_inputs",
        "query_length",
        "document_length",
        "query_expansion",
    ]
    # Multi-vector options left out of the saved config while at their defaults.
    _DEFAULT_CONFIG_VALUES: ClassVar[dict[str, Any]] = {
        "query_length": None,
        "document_length": None,
        "query_expansion": None,
    }
    _VALID_PROCESSING_KWARGS_KEYS: ClassVar[frozenset[str]] = frozenset(
        {"common", "text", "audio", "image", "video", "chat_template"}
    )

    @transformer_kwargs_decorator
    def __init__(
        self,
        model_name_or_path: str,
        *,
        transformer_task: TransformerTask = "feature-extraction",
        model_kwargs: dict[str, Any] | None = None,
        processor_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        processing_kwargs: dict[str, Any] | None = None,
        backend: str = "torch",
        modality_config: ModalityConfig | None = None,
        module_output_name: str | None = None,
        unpad_inputs: bool | None = None,
        query_length: int | None = None,
        document_length: int | None = None,
        query_expansion: QueryExpansionConfig | None = None,
        max_seq_length: int | None = None,
        do_lower_case: bool = False,
        tokenizer_name_or_path: str | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if transformer_task not in TRANSFORMER_TASKS:
            raise ValueError(
                f"Unsupported transformer_task '{transformer_task}'. Supported tasks are: {list(TRANSFORMER_TASKS)}"
            )
        self.transformer_task = transformer_task
        model_kwargs = _local_only(model_kwargs)
        processor_kwargs = _local_only({**(tokenizer_kwargs or {}), **(processor_kwargs or {})})
        config_kwargs = _local_only(config_kwargs)

        self.processing_kwargs: dict[str, Any] = dict(processing_kwargs or {})
        unknown = set(self.processing_kwargs) - self._VALID_PROCESSING_KWARGS_KEYS
        if unknown:
            logger.warning(
                f"Unknown keys in `processing_kwargs`: {unknown}. Valid keys are: "
                f"{sorted(self._VALID_PROCESSING_KWARGS_KEYS)}. Unknown keys will be ignored; did you mean to nest "
                "them under 'common' or a modality key ('text', 'audio', 'image', 'video')?"
            )
        if transformer_task in CAUSAL_TASKS:
            _check_logits_to_keep(self.processing_kwargs.get("text", {}).get("logits_to_keep", 1))
        self.backend = backend
        self.do_lower_case = do_lower_case
        self.query_length = query_length
        self.document_length = document_length
        self.data_collator: Any = None
        self._flatten_position_offset = 0
        self._prompt_length_mapping: dict[tuple, int | None] = {}
        self._method_signature_cache: dict[str, set[str]] = {}
        self._chat_template_suffix_cache: dict[Any, list[int]] = {}

        model_dir = require_local_dir(model_name_or_path, "model_name_or_path")
        config, is_peft_model = self._load_config(model_dir, backend, config_kwargs)
        self._configure_use_cache(config, config_kwargs)
        self._warn_on_unsupported_attention_config(config)
        if (
            transformer_task == "sequence-classification"
            and "num_labels" not in config_kwargs
            and not any(name.endswith("ForSequenceClassification") for name in config.architectures or [])
        ):
            # A bare encoder turned into a cross-encoder scores with one label unless told otherwise.
            config.num_labels = 1
        self.model = self._load_model(model_dir, transformer_task, config, backend, is_peft_model, **model_kwargs)

        signature = inspect.signature(self.model.forward)
        self._declared_forward_params = set(signature.parameters)
        # None: forward takes **kwargs, so every feature but embedforge's bookkeeping goes through.
        self.model_forward_params: set[str] | None = None
        if not any(param.kind is inspect.Parameter.VAR_KEYWORD for param in signature.parameters.values()):
            self.model_forward_params = self._declared_forward_params | _FORWARD_SAFETY_NET_KEYS

        if max_seq_length is not None:
            processor_kwargs.setdefault("model_max_length", max_seq_length)
        processor_dir = require_local_dir(tokenizer_name_or_path or model_name_or_path, "tokenizer_name_or_path")
        self.processor = self._load_processor(processor_dir, processor_kwargs)
        tokenizer = self.tokenizer
        if tokenizer is not None:
            max_positions = getattr(self.config, "max_position_embeddings", None)
            # xlnet says -1 for "no limit"; tokenizers often claim an effectively infinite model_max_length.
            if "model_max_length" not in processor_kwargs and isinstance(max_positions, int) and max_positions != -1:
                tokenizer.model_max_length = min(tokenizer.model_max_length, max_positions)
            if do_lower_case:
                _add_lowercase(tokenizer)

        if transformer_task in CAUSAL_TASKS:
            if modality_config is None and getattr(tokenizer, "chat_template", None):
                raise ModelFormatError(
                    f"The tokenizer in {processor_dir!r} has a chat template: sentence-transformers renders each input "
                    "of a text-generation Transformer through it, which embedforge does not support for causal "
                    "rerankers yet. To score the plain text instead (as a folder saved with a text-only "
                    "modality_config does), pass modality_config={'text': {'method': 'forward', "
                    "'method_output_name': 'logits'}} and module_output_name='causal_logits' to Transformer"
                )
            # The score is read at the last position, which must be a real token in every row.
            for padder in (self.processor, getattr(self.processor, "tokenizer", None)):
                if padder is not None and hasattr(padder, "padding_side"):
                    padder.padding_side = "left"

        message_params: Any = (modality_config or {}).get("message") or {}
        message_format: Any = message_params.get("format", "auto")
        self.input_formatter = InputFormatter(
            model_type=self.config.model_type, message_format=message_format, processor=self.processor
        )
        if modality_config is not None:
            if module_output_name is None:
                raise ValueError(
                    "A custom modality_config needs module_output_name too: the name of the feature this module "
                    'writes, for example "token_embeddings" or "sentence_embedding".'
                )
            for key, params in modality_config.items():
                if not isinstance(params, dict) or "method" not in params or "method_output_name" not in params:
                    raise ValueError(
                        f"Invalid modality_config entry for {key!r}: each entry must be a dict with 'method' and "
                        f"'method_output_name' keys, but got {params!r}"
                    )
            self.modality_config: ModalityConfig = modality_config
            self.module_output_name = module_output_name
        else:
            self.modality_config, self.module_output_name = self.infer_modalities(self.model, self.processor)
        self.input_formatter.supported_modalities = list(self.modality_config)

        if tokenizer_name_or_path is not None:
            logger.warning(
                "The `tokenizer_name_or_path` argument is deprecated and will be removed in a future version; "
                "keep the tokenizer in the model folder instead."
            )
            self.model.config.tokenizer_class = type(self.processor).__name__

        # Made on first use by _current_rust_tokenizer, and again whenever the tokenizer changes.
        self._rust_tokenizer: Any = None
        self._rust_fingerprint: tuple | None = None
        self.unpad_inputs = unpad_inputs
        self.query_expansion = query_expansion

    # -- loading -----------------------------------------------------------------------------------

    def _load_config(
        self, model_dir: str, backend: str, config_kwargs: dict[str, Any]
    ) -> tuple[PretrainedConfig, bool]:
        """The model's transformers config (the base model's for a PEFT adapter folder) and whether it is PEFT."""
        from transformers import AutoConfig

        try:
            adapter_file = find_adapter_config_file(model_dir, local_files_only=True)
            if adapter_file is not None:
                if backend != "torch":
                    raise ValueError(
                        "PEFT models can currently only be loaded with the `torch` backend; merge the adapter "
                        "(`merge_and_unload()`), save the merged model and load that with another backend."
                    )
                if not is_peft_available():
                    raise ImportError("Loading a PEFT adapter folder needs the `peft` package: pip install peft")
                from peft import PeftConfig  # type: ignore[import-not-found]

                peft_config = PeftConfig.from_pretrained(model_dir, **config_kwargs)
                base_dir = require_local_dir(peft_config.base_model_name_or_path, "the adapter's base model")
                return AutoConfig.from_pretrained(base_dir, local_files_only=True, **config_kwargs), True
            return AutoConfig.from_pretrained(model_dir, local_files_only=True, **config_kwargs), False
        except OSError as error:
            raise ModelFormatError(f"Cannot read the transformers config in {model_dir!r}: {error}") from error

    @staticmethod
    def _configure_use_cache(config: Any, config_kwargs: dict[str, Any] | Any, use_cache: bool = False) -> None:
        """Turn the key/value cache off (embedding and scoring never decode) unless ``config_kwargs`` asks for it.

        Sub-configs (a multimodal model's text config, ...) follow, with their own ``config_kwargs`` entry winning.
        """
        if not isinstance(config_kwargs, dict):
            config_kwargs = config_kwargs.to_dict()
        use_cache = config_kwargs.get("use_cache", use_cache)
        if hasattr(config, "use_cache"):
            config.use_cache = use_cache
        for name in getattr(config, "sub_configs", {}) or {}:
            sub_config = getattr(config, name, None)
            if sub_config is not None and not isinstance(sub_config, type):
                Transformer._configure_use_cache(sub_config, config_kwargs.get(name) or {}, use_cache)

    @staticmethod
    def _warn_on_unsupported_attention_config(config: Any) -> None:
        """Warn when the config asks for bidirectional attention that this transformers release would ignore."""
        configs = [config]
        for name in getattr(config, "sub_configs", {}) or {}:
            sub_config = getattr(config, name, None)
            if sub_config is not None and hasattr(sub_config, "to_dict"):
                configs.append(sub_config)
        checks = (
            ("use_bidirectional_attention", True, _TRANSFORMERS_SUPPORTS_USE_BIDIRECTIONAL_ATTENTION, "4.56.2"),
            ("is_causal", False, _TRANSFORMERS_SUPPORTS_IS_CAUSAL_FALSE, "5.2.0"),
        )
        for param, wanted, supported, min_version in checks:
            if supported or not any(getattr(each, param, None) is wanted for each in configs):
                continue
            logger.warning(
                f"The model config specifies `{param}={wanted}`, but the installed transformers "
                f"({_TRANSFORMERS_VERSION}) may ignore it and fall back to its default (often causal) attention, "
                f'which degrades the outputs. Upgrade with `pip install -U "transformers>={min_version}"`.'
            )

    def _load_model(
        self,
        model_dir: str,
        transformer_task: str,
        config: PretrainedConfig,
        backend: str,
        is_peft_model: bool,
        **model_kwargs: Any,
    ) -> PreTrainedModel:
        """The transformers model for the task (the encoder alone for encoder-decoder embedding models)."""
        if backend != "torch":
            raise ValueError(
                f"Unsupported backend '{backend}'. embedforge runs transformers models with the 'torch' backend only."
            )
        model_dir_to_load = model_dir
        if is_peft_model:
            model_dir_to_load = require_local_dir(config.name_or_path or model_dir, "the adapter's base model")
        try:
            model_class = self._model_class(transformer_task, config)
            model = model_class.from_pretrained(model_dir_to_load, config=config, local_files_only=True, **model_kwargs)
        except OSError as error:
            raise ModelFormatError(f"Cannot load the transformers model in {model_dir!r}: {error}") from error
        if is_peft_model:
            model.load_adapter(model_dir)
        return model

    @staticmethod
    def _model_class(transformer_task: str, config: PretrainedConfig) -> Any:
        if transformer_task == "feature-extraction" and (encoder := encoder_only_class(config)) is not None:
            return encoder
        if transformer_task == "retrieval":
            import transformers

            for name in getattr(config, "architectures", None) or []:
                if (found := getattr(transformers, name, None)) is not None:
                    return found
            raise ValueError(
                f"Cannot find a retrieval model class for model_type {config.model_type!r}: "
                'transformer_task="retrieval" expects a `*ForRetrieval` architecture in config.json'
            )
        return auto_model_class(transformer_task)

    @staticmethod
    def _load_processor(processor_dir: str, processor_kwargs: dict[str, Any]) -> Any:
        from transformers import AutoProcessor

        try:
            return AutoProcessor.from_pretrained(processor_dir, local_files_only=True, **processor_kwargs)
        except (OSError, ValueError) as error:
            raise ModelFormatError(f"Cannot load the processor (tokenizer) in {processor_dir!r}: {error}") from error

    # -- properties ---------------------------------------------------------------------------------

    @property
    def auto_model(self) -> PreTrainedModel:
        """The wrapped transformers model (the name earlier releases used for :attr:`model`)."""
        return self.model

    @property
    def config(self) -> PretrainedConfig:
        """The transformers model config."""
        return self.model.config

    @property
    def modalities(self) -> list[Modality]:
        """The input modalities this module accepts (keys of :attr:`modality_config`)."""
        return list(self.modality_config)

    @property
    def tokenizer(self) -> Any:
        """The tokenizer: the processor itself, or the processor's ``tokenizer``; None without text support."""
        from transformers import PreTrainedTokenizerBase

        if isinstance(self.processor, PreTrainedTokenizerBase):
            return self.processor
        return getattr(self.processor, "tokenizer", None)

    @tokenizer.setter
    def tokenizer(self, value: Any) -> None:
        from transformers import PreTrainedTokenizerBase

        if self.processor is None or isinstance(self.processor, PreTrainedTokenizerBase):
            self.processor = value
            self.input_formatter.processor = value
        else:
            self.processor.tokenizer = value
        self._prompt_length_mapping.clear()

    @property
    def hf_tokenizer(self) -> Any:
        """embedforge's earlier name of :attr:`tokenizer`."""
        return self.tokenizer

    @property
    def max_seq_length(self) -> int | None:
        """Inputs are truncated to this many tokens (the model's position limit when there is no tokenizer)."""
        if self.tokenizer is not None:
            return self.tokenizer.model_max_length
        text_config = self.config.get_text_config() if hasattr(self.config, "get_text_config") else self.config
        return getattr(text_config, "max_position_embeddings", None)

    @max_seq_length.setter
    def max_seq_length(self, value: int | None) -> None:
        if self.tokenizer is not None:
            self.tokenizer.model_max_length = value
            self._prompt_length_mapping.clear()

    @property
    def unpad_inputs(self) -> bool | None:
        """Whether text batches are packed into one unpadded sequence (flash attention's variable-length kernels).

        None decides from the model, False always pads, True asks for packing (with a warning when the
        model cannot); setting it again re-decides.
        """
        return self._unpad_inputs

    @unpad_inputs.setter
    def unpad_inputs(self, value: bool | None) -> None:
        self._unpad_inputs = value
        self.can_flatten_inputs = False if value is False else self._can_flatten_inputs()
        if value is True and not self.can_flatten_inputs:
            logger.warning(
                "unpad_inputs=True was set, but this model cannot skip padding (it needs the feature-extraction or "
                "fill-mask task, forward-only modalities and flash attention 2); falling back to padded inputs."
            )

    @property
    def query_expansion(self) -> QueryExpansionConfig | None:
        """ColBERT-style query expansion (see :class:`QueryExpansionConfig`), checked on every assignment."""
        return self._query_expansion

    @query_expansion.setter
    def query_expansion(self, value: QueryExpansionConfig | None) -> None:
        expansion = normalize_query_expansion(value)
        if expansion is not None and "model" in self._modules:
            self._check_expansion_token(expansion)
            if not expansion["attend"] and self._is_flash_attention_requested():
                raise ValueError(
                    "FlashAttention-2 is incompatible with query_expansion attend=False: it drops the positions "
                    "with attention_mask=0, so the expansion tokens MaxSim scores would never be encoded. Load with "
                    "attn_implementation='sdpa', or set attend=True (which changes the model's semantics)."
                )
        query_length = getattr(self, "query_length", None)
        if expansion is not None and query_length is not None and query_length < expansion["length"]:
            raise ValueError(
                f"query_length={query_length} is smaller than query_expansion['length']={expansion['length']}: the "
                "expansion length is the least query width, so it cannot exceed the query length cap."
            )
        self._query_expansion = expansion

    def _check_expansion_token(self, expansion: QueryExpansionConfig) -> None:
        tokenizer = self.tokenizer
        if tokenizer is None:
            return
        token = expansion["token"]
        if token is None:
            if tokenizer.mask_token_id is None and tokenizer.eos_token_id is None:
                raise ValueError(
                    f"query_expansion strategy={expansion['strategy']!r} with token=None uses the tokenizer's "
                    "mask token, else its end-of-sequence token, but this tokenizer has neither: set "
                    "query_expansion['token'] explicitly."
                )
            return
        token_id = tokenizer.convert_tokens_to_ids(token)
        if token_id is None or (token_id == tokenizer.unk_token_id and token != tokenizer.unk_token):
            raise ValueError(
                f"query_expansion token={token!r} is not in this tokenizer's vocabulary; pick the expansion token "
                "of your model family (e.g. '[MASK]', '<pad>', '<eos>')."
            )

    # -- unpadded inputs ------------------------------------------------------------------------------

    def _is_flash_attention_requested(self) -> bool:
        try:
            from transformers.utils.generic import is_flash_attention_requested
        except ImportError:
            return False
        implementation = getattr(self.config, "_attn_implementation", None)
        if implementation is None:
            return False
        return bool(is_flash_attention_requested(requested_attention_implementation=implementation))

    def _can_flatten_inputs(self) -> bool:
        """Whether text batches can be packed without padding, and if so, set up the packing collator.

        Needs a position-wise head (feature extraction or fill-mask), text support through ``forward``
        only, a model on transformers' attention interface, and flash attention with variable-length kernels.
        """
        if (
            self.transformer_task not in ("feature-extraction", "fill-mask")
            or "text" not in self.modality_config
            or self.backend != "torch"
            or not getattr(self.model, "is_backend_compatible", lambda: False)()
            or any(params.get("method") != "forward" for params in self.modality_config.values())
        ):
            return False
        try:
            from transformers import DataCollatorWithFlattening
            from transformers.modeling_flash_attention_utils import lazy_import_flash_attention
        except ImportError:
            return False
        if not self._is_flash_attention_requested():
            return False
        (_, varlen_function, *_), _ = lazy_import_flash_attention(self.config._attn_implementation)
        if varlen_function is None:
            return False
        self.data_collator = DataCollatorWithFlattening(
            return_seq_idx=True, return_flash_attn_kwargs=True, return_position_ids=True
        )
        if self.model_forward_params is not None:
            # The attention layers read these through the model's **kwargs plumbing.
            self.model_forward_params |= {"cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k", "seq_idx"}
        self._flatten_position_offset = self._infer_flatten_position_offset()
        return True

    def _infer_flatten_position_offset(self) -> int:
        """Where position ids start: RoBERTa-style embeddings count from ``padding_idx + 1``, others from 0.

        The packing collator writes 0-based positions, so this offset is added to them.
        """
        for module in self.model.modules():
            padding_idx = getattr(module, "padding_idx", None)
            if isinstance(padding_idx, int) and isinstance(
                getattr(module, "position_embeddings", None), torch.nn.Embedding
            ):
                return padding_idx + 1
        return 0

    def _should_flatten_inputs(self, modality: Modality, processor_inputs: dict[str, Any], **kwargs: Any) -> bool:
        # Query expansion writes into the padding, which packing would remove.
        if kwargs.get("task") == "query" and self.query_expansion is not None:
            return False
        if not self.can_flatten_inputs:
            return False
        return modality == "text" or (
            modality == "message" and self.input_formatter.is_text_only_messages(processor_inputs["message"])
        )

    # -- preprocessing ---------------------------------------------------------------------------------

    def tokenize(self, texts: list[Any], padding: str | bool = True, **kwargs: Any) -> dict[str, Any]:
        """Old name of :meth:`preprocess` (``padding`` is kept for old callers; batches are always padded)."""
        return self.preprocess(list(texts), **kwargs)

    def _merge_processing_kwargs(self, per_call: dict[str, Any] | None) -> dict[str, Any]:
        """The module's ``processing_kwargs`` with a call's overrides merged in, one level deep per key."""
        if not per_call:
            return self.processing_kwargs
        unknown = set(per_call) - self._VALID_PROCESSING_KWARGS_KEYS
        if unknown:
            _warning_once(
                f"Unknown keys in per-call `processing_kwargs`: {unknown}. Valid keys are: "
                f"{sorted(self._VALID_PROCESSING_KWARGS_KEYS)}. Unknown keys will be ignored."
            )
        merged: dict[str, Any] = {}
        for key in sorted(self._VALID_PROCESSING_KWARGS_KEYS):
            combined = {**self.processing_kwargs.get(key, {}), **per_call.get(key, {})}
            if combined:
                merged[key] = combined
        return merged

    def _task_max_length(self, task: str | None, override: int | None) -> int | None:
        if override is not None:
            return override
        return {"query": self.query_length, "document": self.document_length}.get(task) if task else None

    def preprocess(
        self,
        inputs: Sequence[Any],
        prompt: str | None = None,
        processing_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Turn a batch of inputs (texts, text pairs, images, audio, video, chat messages, multimodal dicts)
        into model inputs, with a ``modality`` key saying which ``modality_config`` entry applies.

        Args:
            inputs: The batch.
            prompt: Text put in front of each text input (or a system message for chat inputs).
            processing_kwargs: Per-call processor options, merged over the module's ``processing_kwargs``.
            **kwargs: ``task`` (``"query"``/``"document"``: picks ``query_length``/``document_length``
                and query expansion) and ``max_length`` (a truncation length that wins over those).

        Returns:
            The processor's output, plus ``modality`` and, for a text prompt, ``prompt_length``.
        """
        if not inputs:
            return {}
        task = kwargs.get("task")
        max_length_override = kwargs.get("max_length")
        common_kwargs: dict[str, Any] = {"return_tensors": "pt"}
        modality_kwargs: dict[str, dict[str, Any]] = {
            "text": {"padding": True, "truncation": "longest_first"},
            # Whisper needs its 30-second windows, which its feature extractor pads to by default.
            "audio": {"padding": "max_length" if self.config.model_type == "whisper" else True},
            "image": {},
            "video": {},
        }
        expansion = self.query_expansion if task == "query" else None
        if expansion is None:
            task_max_length = self._task_max_length(task, max_length_override)
            if task_max_length is not None:
                modality_kwargs["text"]["max_length"] = task_max_length
        elif expansion["strategy"] == "fixed" and max_length_override not in (None, expansion["length"]):
            _warning_once(
                f"query_expansion fixes queries to {expansion['length']} tokens, so the max_length="
                f"{max_length_override} override is ignored for query batches."
            )

        effective = self._merge_processing_kwargs(processing_kwargs)
        common_kwargs.update(effective.get("common", {}))
        for key, options in modality_kwargs.items():
            options.update(effective.get(key, {}))
        logits_to_keep = modality_kwargs["text"].pop("logits_to_keep", 1)
        if expansion is not None:
            self._apply_expansion_width(
                expansion, modality_kwargs["text"], effective.get("text") or {}, task, max_length_override
            )

        chat_template_kwargs = dict(effective.get("chat_template", {}))
        if task is not None and self._chat_template_declares_task():
            chat_template_kwargs = {"task": task, **chat_template_kwargs}

        modality, processor_inputs, extra_modality_kwargs = self.input_formatter.parse_inputs(inputs)
        if self.transformer_task == "retrieval" and modality == "text" and task not in (None, "query"):
            _warning_once(
                f"This retrieval model's processor always renders text as a query, but task={task!r} was asked "
                "for: these inputs get the query formatting. *ForRetrieval models expect image documents."
            )
        for key, extra in extra_modality_kwargs.items():
            modality_kwargs.setdefault(key, {}).update(extra)

        should_flatten = self._should_flatten_inputs(modality, processor_inputs, **kwargs)
        if should_flatten:
            common_kwargs.pop("return_tensors", None)
            modality_kwargs["text"].pop("padding", None)
            modality_kwargs["text"]["return_attention_mask"] = False

        if "message" in self.modality_config and modality != "message":
            if expansion is not None and modality == "text":
                raise ValueError(
                    f"query_expansion strategy={expansion['strategy']!r} cannot be combined with a chat-template "
                    "(message) model: the rendered chat would be cut to the expansion length. Let the chat template "
                    "augment queries itself (it receives task='query'), or set modality_config to plain text."
                )
            # The chat format is the most general one a model supports, so every input goes through it.
            modality, processor_inputs = self.input_formatter.batch_to_message(modality, processor_inputs)
        elif modality not in self.modality_config:
            raise_unsupported_modality_error(inputs, modality, list(self.modality_config), "Transformer module")
        if modality == "message":
            self._verify_pair_roles_supported(processor_inputs["message"], chat_template_kwargs)

        prompt_length = None
        if prompt and modality == "message":
            processor_inputs["message"] = self.input_formatter.prepend_prompt_to_messages(
                processor_inputs["message"], prompt
            )
        elif prompt and modality == "text":
            processor_inputs["text"] = self.input_formatter.prepend_prompt_to_texts(processor_inputs["text"], prompt)
            prompt_length = self._get_prompt_length(prompt, **kwargs)

        features = self._rust_tokenize(modality, processor_inputs, modality_kwargs, common_kwargs, should_flatten)
        if features is None:
            features = self._call_processor(
                modality, processor_inputs, modality_kwargs, common_kwargs, chat_template_kwargs=chat_template_kwargs
            )
        features = dict(features)

        if modality == "message" and ("pixel_values" in features or "video_grid_thw" in features):
            images, videos = count_media_per_sample(processor_inputs["message"])
            if "pixel_values" in features:
                features["num_images_per_sample"] = torch.tensor(images, dtype=torch.long)
            if "video_grid_thw" in features:
                features["num_videos_per_sample"] = torch.tensor(videos, dtype=torch.long)
        if should_flatten:
            rows = [dict(zip(features, values)) for values in zip(*features.values())]
            features = dict(self.data_collator(rows))
            features.pop("labels", None)
            if self._flatten_position_offset:
                features["position_ids"] = features["position_ids"] + self._flatten_position_offset

        features["modality"] = modality
        if prompt_length is not None:
            features["prompt_length"] = prompt_length
        if self.transformer_task in CAUSAL_TASKS:
            _check_logits_to_keep(logits_to_keep)
            self._verify_left_padding(features, modality_kwargs, common_kwargs)
            features["logits_to_keep"] = logits_to_keep
        if expansion is not None:
            self._expand_queries(features, expansion)
        return features

    def _apply_expansion_width(
        self,
        expansion: QueryExpansionConfig,
        text_kwargs: dict[str, Any],
        text_overrides: dict[str, Any],
        task: str | None,
        max_length_override: int | None,
    ) -> None:
        """Set the text options a query expansion needs, after the user's options (which must not break it)."""
        if expansion["strategy"] == "fixed":
            if "padding" in text_overrides or "max_length" in text_overrides:
                _warning_once(
                    "processing_kwargs overrides the text padding or max_length, but query expansion needs a fixed "
                    "width: padding='max_length' with the expansion length is applied to query batches."
                )
            text_kwargs["max_length"] = expansion["length"]
            text_kwargs["padding"] = "max_length"
            return
        ceiling = self._task_max_length(task, max_length_override)
        if ceiling is not None and "max_length" not in text_overrides:
            if ceiling < expansion["length"]:
                _warning_once(
                    f"query_expansion keeps at least {expansion['length']} query tokens, so the max_length={ceiling} "
                    "override is raised to it for query batches."
                )
            text_kwargs["max_length"] = max(ceiling, expansion["length"])

    def _expand_queries(self, features: dict[str, Any], expansion: QueryExpansionConfig) -> None:
        """Turn the padding inside the expansion width into expansion tokens, marked in ``query_expansion_positions``."""
        if "attention_mask" not in features or "input_ids" not in features:
            return
        width = expansion["length"]
        input_ids, attention_mask = features["input_ids"], features["attention_mask"]
        missing = width - input_ids.shape[1]
        if missing > 0:
            # "min" pads to the longest query, which can be narrower than the expansion width.
            for key in ("input_ids", "attention_mask", "token_type_ids"):
                if key in features:
                    features[key] = torch.nn.functional.pad(features[key], (0, missing), value=0)
            input_ids, attention_mask = features["input_ids"], features["attention_mask"]
        within_width = torch.arange(input_ids.shape[1], device=attention_mask.device) < width
        positions = (attention_mask == 0) & within_width
        if expansion["strategy"] == "fixed" and not bool(positions.any(dim=-1).all()):
            _warning_once(
                f"One or more queries filled the whole query_expansion length of {width} tokens: anything beyond it "
                "was truncated, as this model reads queries at exactly that width."
            )
        tokenizer = self.tokenizer
        if tokenizer is not None:
            if expansion["token"] is not None:
                token_id = tokenizer.convert_tokens_to_ids(expansion["token"])
            else:
                token_id = tokenizer.mask_token_id if tokenizer.mask_token_id is not None else tokenizer.eos_token_id
            if token_id is not None:
                features["input_ids"] = input_ids.masked_fill(positions, token_id)
        features["query_expansion_positions"] = positions
        if expansion["attend"]:
            features["attention_mask"] = attention_mask.masked_fill(positions, 1)

    def _rust_tokenize(
        self,
        modality: Modality,
        processor_inputs: dict[str, list],
        modality_kwargs: dict[str, dict[str, Any]],
        common_kwargs: dict[str, Any],
        should_flatten: bool,
    ) -> dict[str, Any] | None:
        """Plain text with the default options, tokenised by the Rust core; None when the processor must do it.

        The Rust tokenizer is a copy of the fast tokenizer's backend, so both give the same ids.
        """
        text_kwargs = modality_kwargs["text"]
        if (
            modality != "text"
            or should_flatten
            or self.processor is not self.tokenizer
            or common_kwargs != {"return_tensors": "pt"}
            or text_kwargs.get("padding") is not True
            or text_kwargs.get("truncation") not in (True, "longest_first")
            or set(text_kwargs) - {"padding", "truncation", "max_length"}
        ):
            return None
        split = _split_pairs(processor_inputs["text"])
        if split is None:
            return None
        firsts, seconds = split
        max_length = _finite_length(text_kwargs.get("max_length", self.tokenizer.model_max_length))
        rust = self._current_rust_tokenizer()
        if rust is None:
            return None
        arrays = rust.encode_padded(firsts, pairs=seconds, max_length=max_length, prompt=None)
        names = getattr(self.tokenizer, "model_input_names", ["input_ids", "attention_mask"])
        return {name: torch.from_numpy(arrays[name]) for name in names if name in arrays}

    def text_token_counts(self, texts: list[str], prompt: str | None = None) -> npt.NDArray[np.int64] | None:
        """Each text's token count (prompt and special tokens included, truncated to ``max_seq_length``).

        A batching key for encode: sorted by it, each batch holds texts of about one token length and
        pads less than with a character-length sort. None where this module does not tokenise plain
        text with its own tokenizer (chat-template and multimodal processors).
        """
        if self.processor is not self.tokenizer or "message" in self.modality_config:
            return None
        rust = self._current_rust_tokenizer()
        if rust is None:
            return None
        max_length = _finite_length(self.tokenizer.model_max_length)
        return rust.token_counts(texts, max_length=max_length, prompt=prompt or None)

    def _current_rust_tokenizer(self) -> Any:
        """The Rust copy of the tokenizer, remade when the tokenizer changed since it was copied.

        Users edit tokenizers after loading (a new post-processor or normalizer, added tokens, another
        padding side); comparing the small serialised parts keeps the copy from going stale.
        """
        tokenizer = self.tokenizer
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is None:
            return None
        fingerprint = (
            *(_state(getattr(backend, part, None)) for part in ("normalizer", "pre_tokenizer", "post_processor")),
            len(tokenizer),
            getattr(tokenizer, "padding_side", "right"),
            tokenizer.pad_token_id,
        )
        # getattr: a module unpickled from an older embedforge has no fingerprint yet.
        if fingerprint != getattr(self, "_rust_fingerprint", None):
            self._rust_tokenizer = _rust_tokenizer_for(tokenizer)
            self._rust_fingerprint = fingerprint
        return self._rust_tokenizer

    def _chat_template_declares_task(self) -> bool:
        """Whether the chat template reads a ``task`` variable (e.g. to add query-only tokens)."""
        try:
            from transformers.utils.chat_template_utils import _get_template_variables
        except ImportError:
            return True  # without transformers' routing an extra template variable is harmless
        template = getattr(self.processor, "chat_template", None)
        if template is None and self.tokenizer is not None:
            template = getattr(self.tokenizer, "chat_template", None)
        templates = template.values() if isinstance(template, dict) else [template]
        return any(isinstance(each, str) and "task" in _get_template_variables(each) for each in templates)

    def _verify_pair_roles_supported(
        self, messages_batch: list[list[dict[str, Any]]], chat_template_kwargs: dict[str, Any]
    ) -> None:
        """Refuse query/document pairs when the chat template would drop either half."""
        if not self.input_formatter.has_pair_roles(messages_batch):
            return
        render_kwargs = {
            key: value
            for key, value in chat_template_kwargs.items()
            if key not in CHAT_TEMPLATE_TOP_LEVEL_KWARGS and key != "restore_suffix"
        }
        failure = self.input_formatter.pair_roles_failure(render_kwargs)
        if failure is None:
            return
        model_name = getattr(self.config, "name_or_path", None) or "this model"
        if self.input_formatter.message_format == "structured":
            read = '(messages | selectattr("role", "eq", "{role}") | first).content[0].text'
        else:
            read = 'messages | selectattr("role", "eq", "{role}") | map(attribute="content") | first'
        example = "".join(
            f"    <{role.title()}>: {{{{ {read.format(role=role)} }}}}\n" for role in ("query", "document")
        )
        raise ValueError(
            f"The chat template of {model_name} cannot carry a 'query'/'document' pair ({failure}). Each half of a "
            "pair becomes a message with that role, so set a chat template that renders both, e.g.:\n"
            f"{example}with `processor_kwargs={{'chat_template': ...}}` when loading, "
            "`model.processor.chat_template = ...` afterwards, or a `chat_template.jinja` file in the model folder."
        )

    def _verify_left_padding(
        self, features: dict[str, Any], modality_kwargs: dict[str, dict[str, Any]], common_kwargs: dict[str, Any]
    ) -> None:
        """A causal model is read at the last position, which must hold a real token in every row."""
        attention_mask = features.get("attention_mask")
        if not isinstance(attention_mask, Tensor) or attention_mask.ndim != 2 or bool(attention_mask[:, -1].all()):
            return
        requested = [modality_kwargs["text"].get("padding_side"), common_kwargs.get("padding_side")]
        wrong = next((side for side in requested if side not in (None, "left")), None)
        if wrong is not None:
            fix = f'Your ``processing_kwargs`` set the padding side to {wrong!r}. Remove it or set it to "left".'
        else:
            padder = "processor.tokenizer" if hasattr(self.processor, "tokenizer") else "processor"
            fix = (
                f'The module sets ``{padder}.padding_side`` to "left" on load, so it was changed afterwards. '
                f'Restore it with ``{padder}.padding_side = "left"``.'
            )
        raise InvalidArgumentError(
            "At least one sample ends in a padding token, but a causal model needs left-padded inputs so that the "
            "last position is always a real token (logits_to_keep=1 and LogitScore read it). " + fix
        )

    def _get_prompt_length(self, prompt: str, **kwargs: Any) -> int | None:
        """How many tokens ``prompt`` takes at the start of an input (a trailing special token not counted)."""
        # Measured without the task: a query expansion would pad the lone prompt to its width.
        kwargs = {key: value for key, value in kwargs.items() if key != "task"}
        key = (prompt, *sorted(kwargs.items()))
        if key not in self._prompt_length_mapping:
            encoded = self.preprocess([prompt], **kwargs)
            length = None
            if "input_ids" in encoded:
                ids = encoded["input_ids"]
                length = int(ids.shape[-1])
                special_ids = getattr(self.tokenizer, "all_special_ids", None) or []
                if int(ids[..., -1].reshape(-1)[0]) in special_ids:
                    length -= 1
            self._prompt_length_mapping[key] = length
        return self._prompt_length_mapping[key]

    # -- processors ------------------------------------------------------------------------------------

    def _call_processor(
        self,
        modality: Modality,
        processor_inputs: dict[str, list],
        modality_kwargs: dict[str, dict[str, Any]],
        common_kwargs: dict[str, Any],
        chat_template_kwargs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Run the processor on a batch of one modality (chat messages through the chat template)."""
        if modality == "message":
            return self._process_chat_messages(
                processor_inputs["message"], modality_kwargs, common_kwargs, chat_template_kwargs=chat_template_kwargs
            )
        return call_processor(
            self.processor, self.config.model_type, modality, processor_inputs, modality_kwargs, common_kwargs
        )

    def _process_chat_messages(
        self,
        messages: list[list[dict[str, Any]]],
        modality_kwargs: dict[str, dict[str, Any]],
        common_kwargs: dict[str, Any],
        chat_template_kwargs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Render and tokenise conversations through the processor's chat template.

        When truncation is on, the template's closing tokens that truncation cut off are written back
        (``chat_template_kwargs["restore_suffix"] = False`` turns that off).
        """
        if "message" not in self.modality_config:
            raise ValueError(
                "The model does not support 'message' modality, but the input looks like a chat message. "
                f"Supported modalities: {list(self.modality_config)}"
            )
        chat_template_kwargs = dict(chat_template_kwargs or {})
        # embedforge's own switch, not an apply_chat_template option.
        restore_suffix = chat_template_kwargs.pop("restore_suffix", True)
        text_kwargs = modality_kwargs["text"]
        # The chat-template options win over the text options, which win over the common ones.
        truncation, max_length = (
            chat_template_kwargs.get(key, text_kwargs.get(key, common_kwargs.get(key)))
            for key in ("truncation", "max_length")
        )
        # A tokenizer truncates at max_length unless truncation is switched off explicitly.
        truncates = bool(truncation) or (truncation is None and max_length is not None)
        features = self._apply_chat_template(messages, modality_kwargs, common_kwargs, chat_template_kwargs)
        if restore_suffix and truncates and truncation != "do_not_truncate":
            self._restore_chat_template_suffix(
                features,
                messages,
                chat_template_kwargs,
                text_kwargs,
                common_kwargs,
                max_length if max_length is not None else self.max_seq_length,
            )
        return features

    def _apply_chat_template(
        self,
        messages: list[list[dict[str, Any]]],
        modality_kwargs: dict[str, dict[str, Any]],
        common_kwargs: dict[str, Any],
        chat_template_kwargs: dict[str, Any],
    ) -> Any:
        return apply_chat_template(self.processor, messages, modality_kwargs, common_kwargs, chat_template_kwargs)

    def _restore_chat_template_suffix(
        self,
        features: dict[str, Any],
        messages: list[list[dict[str, Any]]],
        chat_template_kwargs: dict[str, Any],
        tokenizer_kwargs: dict[str, Any],
        common_kwargs: dict[str, Any] | None = None,
        max_length: int | None = None,
    ) -> None:
        """Write the template's closing tokens back over the tail of every row truncation reached (in place)."""
        write_suffix(
            features,
            len(messages),
            max_length,
            lambda index: self._chat_template_suffix_ids(
                messages[index], chat_template_kwargs, tokenizer_kwargs, common_kwargs
            ),
        )

    def _chat_template_suffix_ids(
        self,
        conversation: list[Any],
        chat_template_kwargs: dict[str, Any],
        tokenizer_kwargs: dict[str, Any],
        common_kwargs: dict[str, Any] | None = None,
    ) -> list[int]:
        """The closing tokens the chat template puts after this conversation's content (cached per layout).

        Empty for conversations with media (cutting placeholder tokens would misalign them with the
        media features) or of a shape that cannot be inspected.
        """
        try:
            if not conversation or not self.input_formatter.is_text_only_messages([conversation]):
                return []
        except (AttributeError, TypeError):
            return []
        # Size options must reach neither the untruncated renders nor the cache key.
        chat_template_kwargs, tokenizer_kwargs, common_kwargs = (
            {key: value for key, value in options.items() if key not in CHAT_TEMPLATE_TOP_LEVEL_KWARGS}
            for options in (chat_template_kwargs, tokenizer_kwargs, common_kwargs or {})
        )
        # Everything the renders see except the replaced content; repr() keeps list values hashable.
        key = (
            repr(sorted(chat_template_kwargs.items())),
            repr(sorted(tokenizer_kwargs.items())),
            repr(sorted(common_kwargs.items())),
            repr(message_skeleton(conversation, "")),
        )
        cache = self._chat_template_suffix_cache
        if key in cache:
            return cache[key]
        suffix: list[int] = []
        try:
            renders = [
                self._render_message_skeleton(
                    conversation, filler, chat_template_kwargs, tokenizer_kwargs, common_kwargs
                )
                for filler in FILLERS
            ]
            suffix = common_tail(*renders)
        except Exception as error:  # noqa: BLE001 - a failed derivation must never break tokenisation
            logger.debug(f"Could not find the chat template's closing tokens: {error}")
        cache[key] = suffix
        while len(cache) > _CHAT_TEMPLATE_SUFFIX_CACHE_SIZE:
            # Oldest first; encode() calls from several threads may race here, so this is best effort.
            try:
                cache.pop(next(iter(cache)))
            except (KeyError, RuntimeError, StopIteration):
                break
        return suffix

    def _render_message_skeleton(
        self,
        conversation: list[Any],
        filler: str,
        chat_template_kwargs: dict[str, Any],
        tokenizer_kwargs: dict[str, Any],
        common_kwargs: dict[str, Any],
    ) -> list[int]:
        """Token ids of the conversation with its content replaced by ``filler``: unpadded, untruncated."""
        output = self._apply_chat_template(
            [message_skeleton(conversation, filler)],
            {
                "text": {**tokenizer_kwargs, "padding": False, "truncation": False},
                "audio": {},
                "image": {},
                "video": {},
            },
            common_kwargs,
            chat_template_kwargs,
        )
        ids = output["input_ids"]
        if isinstance(ids, Tensor):
            ids = ids.tolist()
        return ids[0] if ids and isinstance(ids[0], list) else ids

    # -- forward ---------------------------------------------------------------------------------------

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Run the model method the batch's modality names and write its output to ``module_output_name``.

        ``kwargs`` override features of the same name. ``all_layer_embeddings`` is added when the model
        config asks for hidden states.
        """
        modality = features.get("modality", "text")
        params = self.modality_config[modality]
        method_name = params["method"]
        output_path = params["method_output_name"]
        if isinstance(output_path, (str, int)):
            output_path = (output_path,)
        method = getattr(self.model, method_name, None)
        if method is None:
            raise ValueError(f"Model does not have the requested '{method_name}' method")

        arguments = {**features, **kwargs, "return_dict": True}
        if method_name != "forward":
            accepted = self._method_signature_cache.get(method_name)
            if accepted is None:
                accepted = self._method_signature_cache[method_name] = set(inspect.signature(method).parameters)
            arguments = {key: value for key, value in arguments.items() if key in accepted}
        elif self.model_forward_params is None:
            # A **kwargs forward swallows anything: keep out embedforge's bookkeeping unless forward names it.
            arguments = {
                key: value
                for key, value in arguments.items()
                if key not in _NON_MODEL_FEATURE_KEYS or key in self._declared_forward_params
            }
        else:
            arguments = {key: value for key, value in arguments.items() if key in self.model_forward_params}
        if output_path is not None and "hidden_states" in output_path:
            arguments["output_hidden_states"] = True

        output = method(**arguments)
        embedding = output
        for part in output_path or ():
            embedding = _output_field(embedding, part)
        if isinstance(embedding, Tensor) and embedding.ndim == 4:
            # Convolutional image models give (batch, channels, height, width): make it a token sequence.
            embedding = embedding.flatten(2).transpose(1, 2)
        features[self.module_output_name] = embedding
        if getattr(self.model.config, "output_hidden_states", False) and _has_field(output, "hidden_states"):
            features["all_layer_embeddings"] = output["hidden_states"]
        return features

    def get_embedding_dimension(self) -> int:
        """Width of this module's output embeddings, read from the model config.

        Raises:
            ValueError: If no config entry gives it.
        """
        config = self.model.config
        if type(config).__name__ == "TimmWrapperConfig":
            return config.num_features
        if self.transformer_task == "retrieval" and getattr(config, "embedding_dim", None) is not None:
            return config.embedding_dim
        candidates: list[Any] = [config]
        if hasattr(config, "text_config"):
            candidates.append(config.text_config)
        candidates.extend(getattr(config, name, None) for name in getattr(config, "sub_configs", {}) or {})
        for candidate in candidates:
            if candidate is not None and (width := self._width_in_config(candidate)) is not None:
                return width
        raise ValueError(
            f"Could not determine embedding dimension from model config. Config type: {type(config).__name__}."
        )

    def _width_in_config(self, config: Any) -> int | None:
        # A projected sentence embedding (e.g. CLIP's get_*_features) has the projection's width.
        if self.module_output_name == "sentence_embedding" and hasattr(config, "projection_dim"):
            return config.projection_dim
        if hasattr(config, "hidden_size"):
            return config.hidden_size
        for name in ("neck_hidden_sizes", "hidden_sizes", "embed_dims"):
            if hasattr(config, name):
                value = getattr(config, name)
                if not isinstance(value, list):
                    return value
                if value:
                    return value[-1]
        return getattr(config, "hidden_dim", None)

    # -- modality inference ----------------------------------------------------------------------------

    def infer_modalities(self, model: Any, processor: Any) -> tuple[ModalityConfig, str]:
        """The modality config and output feature for ``model`` and ``processor``, when none was given.

        Known special cases first; otherwise every modality the processor handles runs through
        ``forward`` if it returns the task's default output, else (feature extraction) through the
        model's ``get_<modality>_features`` methods.
        """
        defaults, default_output_feature = default_modality_config(self.transformer_task)
        default_output = defaults["text"]["method_output_name"]
        has_chat_template = getattr(processor, "chat_template", None) is not None

        special = self.infer_modalities_edge_cases(model, processor)
        if special is not None:
            modality_config, output_feature = special
            if has_chat_template and "message" not in modality_config:
                text: dict[str, Any] = dict(
                    modality_config.get("text") or {"method": "forward", "method_output_name": default_output}
                )
                modality_config["message"] = cast(
                    "ModalityParams", {**text, "format": self.input_formatter.message_format}
                )
            return modality_config, output_feature

        modalities = self.infer_modalities_from_processor(processor)
        if has_chat_template:
            modalities.append("message")
        output_fields = self._get_method_output_fields(model.forward)
        if output_fields is None or default_output in output_fields:
            modality_config = {}
            for modality in modalities:
                entry: ModalityParams = {"method": "forward", "method_output_name": default_output}
                if modality == "message":
                    entry["format"] = self.input_formatter.message_format
                modality_config[modality] = entry
            return modality_config, default_output_feature
        if self.transformer_task == "feature-extraction":
            modality_config = {}
            for modality in modalities:
                method_name = f"get_{modality}_features"
                if modality == "message" or not hasattr(model, method_name):
                    continue
                fields = self._get_method_output_fields(getattr(model, method_name))
                output = "pooler_output" if fields and "pooler_output" in fields else None
                modality_config[modality] = {"method": method_name, "method_output_name": output}
            return modality_config, "sentence_embedding"
        return (
            {modality: {"method": "forward", "method_output_name": default_output} for modality in modalities},
            default_output_feature,
        )

    def infer_modalities_edge_cases(self, model: Any, processor: Any) -> tuple[ModalityConfig, str] | None:
        """The known modality config of a model type the general inference gets wrong, or None."""
        entry = EDGE_CASE_MODALITY_CONFIGS.get(self.transformer_task, {}).get(model.config.model_type)
        if entry is None:
            return None
        raw_config, output_feature, check_outputs = entry
        raw_config = copy.deepcopy(raw_config)
        if not check_outputs:
            return raw_config, output_feature
        modality_config: ModalityConfig = {}
        for modality, params in raw_config.items():
            method = getattr(model, params["method"], None)
            if method is None:
                _warning_once(f"Model does not have method {params['method']!r} for modality {modality!r}. Skipping.")
                continue
            modality_config[modality] = {
                "method": params["method"],
                "method_output_name": self._infer_method_output_name(params["method_output_name"], method),
            }
        return modality_config, output_feature

    def infer_modalities_from_processor(self, processor: Any) -> list[Modality]:
        """The modalities ``processor`` handles, from its parts (tokenizer, image processor, ...) or its type."""
        from transformers import ProcessorMixin

        parts = {
            "tokenizer": "text",
            "image_processor": "image",
            "feature_extractor": "audio",
            "video_processor": "video",
        }
        if isinstance(processor, ProcessorMixin):
            attributes = self._get_processor_attributes() or []
            return [cast("Modality", modality) for part, modality in parts.items() if part in attributes]
        for modality, processor_class in processor_kinds():
            if isinstance(processor, processor_class):
                return [cast("Modality", modality)]
        logger.warning(
            f"Could not determine modalities from processor of type {type(processor).__name__}; "
            "returning an empty modality list."
        )
        return []

    def _get_processor_attributes(self) -> list[str] | None:
        """The parts a multimodal processor is made of (``tokenizer``, ``image_processor``, ...), or None."""
        if hasattr(self.processor, "get_attributes"):
            return self.processor.get_attributes()
        return getattr(self.processor, "attributes", None)

    @staticmethod
    def _get_method_output_fields(method: Callable) -> list[str] | None:
        """The fields of the ``ModelOutput`` a method's return annotation names, or None when it names none."""
        from transformers.utils import ModelOutput

        def output_class(annotation: Any) -> type | None:
            if isinstance(annotation, type) and issubclass(annotation, ModelOutput):
                return annotation
            for inner in get_args(annotation):
                if (found := output_class(inner)) is not None:
                    return found
            return None

        try:
            annotation = get_type_hints(method).get("return")
        except Exception:  # noqa: BLE001 - unresolvable annotations just mean "unknown"
            return None
        found = output_class(annotation)
        return None if found is None else [field.name for field in dataclasses.fields(found)]

    @staticmethod
    def _infer_method_output_name(method_output_name: str, method: Callable) -> str | None:
        """``method_output_name`` if the method's return type has that field, else None."""
        return (
            method_output_name if method_output_name in (Transformer._get_method_output_fields(method) or []) else None
        )

    # -- persistence -----------------------------------------------------------------------------------

    def get_config_dict(self) -> dict[str, Any]:
        """``sentence_bert_config.json``: sentence-transformers 6's keys (tuple modality keys written as
        ``"image+text"``), without options at their defaults, plus ``max_seq_length``/``do_lower_case``
        for older readers."""
        config = {key: getattr(self, key) for key in self.config_keys}
        config["modality_config"] = {format_modality(key): params for key, params in self.modality_config.items()}
        if not self.processing_kwargs:
            config.pop("processing_kwargs")
        if self.unpad_inputs is None:
            config.pop("unpad_inputs")
        for key, default in self._DEFAULT_CONFIG_VALUES.items():
            if config.get(key) == default:
                config.pop(key, None)
        max_seq_length = self.max_seq_length
        config["max_seq_length"] = None if max_seq_length is None or max_seq_length > 10**9 else int(max_seq_length)
        config["do_lower_case"] = self.do_lower_case
        return config

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        """Write the transformers model, its processor and ``sentence_bert_config.json``."""
        self.model.save_pretrained(output_path, safe_serialization=safe_serialization)
        self.processor.save_pretrained(output_path)
        self.save_config(output_path)

    @classmethod
    def load_config(
        cls, model_name_or_path: str, subfolder: str = "", config_filename: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Read the module config under any name sentence-transformers has used.

        Modality keys written as ``"image+text"`` become tuples; ``trust_remote_code`` is dropped from
        every options dict; a config without ``modality_config`` (saved when Transformer was text-only)
        gets the task's text-only default.
        """
        config: dict[str, Any] = {}
        for name in (config_filename,) if config_filename else LEGACY_CONFIG_NAMES:
            config = super().load_config(model_name_or_path, subfolder, name)
            if config:
                break
        for key in ("model_args", "model_kwargs", "tokenizer_args", "processor_kwargs", "config_args", "config_kwargs"):
            if isinstance(config.get(key), dict):
                config[key].pop("trust_remote_code", None)
        if "modality_config" in config:
            config["modality_config"] = _read_modality_keys(config["modality_config"])
        else:
            config["modality_config"], config["module_output_name"] = cls._get_default_modality_config(config)
        return config

    @staticmethod
    def _get_default_modality_config(config: dict[str, Any]) -> tuple[ModalityConfig, str]:
        """The text-only (modality_config, module_output_name) of the config's task (feature extraction by default)."""
        return default_modality_config(config.get("transformer_task", "feature-extraction"))

    @classmethod
    def _load_init_kwargs(
        cls,
        model_name_or_path: str,
        subfolder: str = "",
        token: bool | str | None = None,
        cache_folder: str | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        trust_remote_code: bool = False,
        model_kwargs: dict[str, Any] | None = None,
        processor_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        backend: str = "torch",
        **kwargs: Any,
    ) -> dict[str, Any]:
        """The constructor arguments: the saved config, then the loading options, then the caller's overrides."""
        config = cls.load_config(model_name_or_path, subfolder)
        for old, new in _OLD_KWARG_NAMES.items():
            if old in config:
                config[new] = config.pop(old)
            config[new] = dict(config.get(new) or {})
        loading = {
            "subfolder": subfolder,
            "token": token,
            "cache_dir": cache_folder,
            "revision": revision,
            "local_files_only": local_files_only,
            "trust_remote_code": trust_remote_code,
        }
        for key, overrides in (
            ("model_kwargs", model_kwargs),
            ("processor_kwargs", processor_kwargs),
            ("config_kwargs", config_kwargs),
        ):
            config[key].update(loading)
            config[key].update(overrides or {})
        return {**config, "backend": backend}

    @classmethod
    def load(
        cls,
        model_name_or_path: str,
        subfolder: str = "",
        token: bool | str | None = None,
        cache_folder: str | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        trust_remote_code: bool = False,
        model_kwargs: dict[str, Any] | None = None,
        processor_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        backend: str = "torch",
        init_defaults: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Self:
        """Load a saved Transformer folder; the options override what the folder saved.

        ``init_defaults`` (and embedforge's older ``transformer_task`` keyword) fill in what the
        folder's config does not say; ``tokenizer_kwargs`` is the older name of ``processor_kwargs``.
        """
        processor_kwargs = {**(kwargs.pop("tokenizer_kwargs", None) or {}), **(processor_kwargs or {})}
        init_kwargs = cls._load_init_kwargs(
            model_name_or_path,
            subfolder=subfolder,
            token=token,
            cache_folder=cache_folder,
            revision=revision,
            local_files_only=local_files_only,
            trust_remote_code=trust_remote_code,
            model_kwargs=model_kwargs,
            processor_kwargs=processor_kwargs,
            config_kwargs=config_kwargs,
            backend=backend,
        )
        defaults = dict(init_defaults or {})
        if kwargs.get("transformer_task") is not None:
            defaults.setdefault("transformer_task", kwargs["transformer_task"])
        saved_task = "transformer_task" in init_kwargs and init_kwargs.get("transformer_task") is not None
        for key, value in defaults.items():
            init_kwargs.setdefault(key, value)
        if not saved_task and "transformer_task" in defaults:
            # The default modality config load_config filled in was the feature-extraction one.
            init_kwargs["modality_config"], init_kwargs["module_output_name"] = cls._get_default_modality_config(
                init_kwargs
            )
        folder = os.path.join(model_name_or_path, subfolder)
        return cls(folder, **known_arguments(cls, init_kwargs))

    def __repr__(self) -> str:
        return f"Transformer({dict(self.get_config_dict(), architecture=type(self.model).__name__)})"


# -- helpers -------------------------------------------------------------------------------------------


def _local_only(options: dict[str, Any] | None) -> dict[str, Any]:
    """A copy of ``options`` without the hub options a saved config or old call may carry."""
    return {key: value for key, value in (options or {}).items() if key not in _HUB_ONLY_KWARGS}


def _check_logits_to_keep(value: Any) -> None:
    """``processing_kwargs["text"]["logits_to_keep"]`` must count positions: 0 keeps them all."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgumentError(
            f"processing_kwargs['text']['logits_to_keep']={value!r}; logits_to_keep must be a non-negative integer "
            "(the number of last positions to compute logits for, 0 for all)"
        )


def _read_modality_keys(saved: dict[str, Any]) -> ModalityConfig:
    """A saved modality_config with ``"image+text"`` keys turned back into tuples; unknown names are skipped."""
    config: dict[Any, Any] = {}
    for key, params in saved.items():
        parts = tuple(key.split("+")) if "+" in key else (key,)
        unknown = [part for part in parts if part not in _SINGLE_MODALITIES]
        if unknown:
            logger.warning(f"Ignoring unknown modality {unknown!r} in the modality_config key {key!r}.")
            continue
        config[parts if len(parts) > 1 else key] = params
    return config


def _output_field(output: Any, part: Any) -> Any:
    """``output[part]``, or ``output.part`` for outputs that only expose attributes."""
    try:
        return output[part]
    except (KeyError, TypeError, IndexError):
        if isinstance(part, str) and hasattr(output, part):
            return getattr(output, part)
        raise AttributeError(
            f"Could not access output key {part!r} via indexing or attribute access on {type(output).__name__}."
        ) from None


def _has_field(output: Any, name: str) -> bool:
    try:
        return name in output and output[name] is not None
    except TypeError:
        return getattr(output, name, None) is not None


def _add_lowercase(tokenizer: Any) -> None:
    """Make the tokenizer lowercase its input, putting ``Lowercase`` first in its normalizer (once)."""
    from tokenizers.normalizers import Lowercase
    from tokenizers.normalizers import Sequence as NormalizerSequence

    if not getattr(tokenizer, "is_fast", False):
        try:
            tokenizer.do_lower_case = True
        except AttributeError:
            tokenizer.basic_tokenizer.do_lower_case = True
        return
    backend = tokenizer.backend_tokenizer
    current = backend.normalizer
    if isinstance(current, Lowercase) or (
        isinstance(current, NormalizerSequence) and any(isinstance(each, Lowercase) for each in cast(Any, current))
    ):
        return
    rest: list[Any] = [] if current is None else [current]
    if isinstance(current, NormalizerSequence):
        rest = list(cast(Any, current))
    backend.normalizer = NormalizerSequence([Lowercase(), *rest])


def _state(component: Any) -> bytes | None:
    """A tokenizers component (normalizer, pre-tokenizer, post-processor) serialised, to notice changes."""
    return None if component is None else component.__getstate__()


def _rust_tokenizer_for(tokenizer: Any) -> Any:
    """A Rust batch tokenizer equal to a fast tokenizer's backend, or None (slow tokenizer, no tokenizer)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    from embedforge import _core

    # The backend as transformers configured it (normalizer tweaks included), minus its own padding and
    # truncation: the Rust side applies the batch's settings per call.
    rust = _core.Tokenizer.from_str(backend.to_str())
    pad_id = tokenizer.pad_token_id
    rust.set_padding(
        pad_id=0 if pad_id is None else int(pad_id),
        pad_type_id=int(getattr(tokenizer, "pad_token_type_id", 0) or 0),
        padding_left=getattr(tokenizer, "padding_side", "right") == "left",
    )
    return rust


def _finite_length(max_length: int | None) -> int | None:
    """A tokenizer length limit, with transformers' huge "no limit" sentinel (``int(1e30)``) as None."""
    if max_length is not None and max_length > 10**9:
        return None
    return max_length


def _split_pairs(texts: list[Any]) -> tuple[list[str], list[str] | None] | None:
    """First and second texts of a batch of strings or of string pairs; None for anything else."""
    if all(isinstance(text, str) for text in texts):
        return list(texts), None
    if all(
        isinstance(text, (tuple, list)) and len(text) == 2 and all(isinstance(p, str) for p in text) for text in texts
    ):
        return [text[0] for text in texts], [text[1] for text in texts]
    return None


__all__ = ["TRANSFORMER_TASK_DEFAULTS", "QueryExpansionConfig", "Transformer", "set_temporary_class_attrs"]
