"""Transformer: a Hugging Face model producing token embeddings (or a cross-encoder's scores or next-token
logits), tokenised in Rust."""

from __future__ import annotations

import inspect
import os
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor

from embedforge._internal.local_path import require_local_dir
from embedforge.base.modules.input_module import InputModule
from embedforge.exceptions import InvalidArgumentError, ModelFormatError

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel

if TYPE_CHECKING:
    # typing.Self is Python 3.11+; annotations are never evaluated at runtime here.
    from typing_extensions import Self

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


#: The supported ``transformer_task`` values: the transformers output each reads (the
#: ``method_output_name`` sentence-transformers 6 records) and the feature it writes.
TASK_OUTPUTS: dict[str, tuple[str, str]] = {
    "feature-extraction": ("last_hidden_state", "token_embeddings"),
    "sequence-classification": ("logits", "scores"),
    "text-generation": ("logits", "causal_logits"),
}
#: Tasks whose model reads the last position, so inputs are padded on the left.
CAUSAL_TASKS = frozenset({"text-generation"})


class Transformer(InputModule):
    """Wrap a local Hugging Face transformer; outputs ``token_embeddings`` (the last hidden state),
    ``scores`` (the logits) when ``transformer_task="sequence-classification"``, or ``causal_logits``
    (next-token logits of a causal language model, for a reranker's LogitScore) when
    ``transformer_task="text-generation"``.

    For text generation the tokenizer pads on the left, so every row ends in a real token, and the
    model computes logits for the last ``logits_to_keep`` positions only (default 1, 0 for all),
    set with ``processing_kwargs={"text": {"logits_to_keep": n}}``.
    """

    config_file_name: ClassVar[str] = "sentence_bert_config.json"
    config_keys: ClassVar[list[str]] = ["max_seq_length", "do_lower_case"]

    def __init__(
        self,
        model_name_or_path: str,
        max_seq_length: int | None = None,
        model_args: dict[str, Any] | None = None,
        tokenizer_args: dict[str, Any] | None = None,
        config_args: dict[str, Any] | None = None,
        cache_dir: str | None = None,
        do_lower_case: bool = False,
        tokenizer_name_or_path: str | None = None,
        backend: str = "torch",
        *,
        transformer_task: str = "feature-extraction",
        model_kwargs: dict[str, Any] | None = None,
        processor_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        modality_config: dict[str, Any] | None = None,
        module_output_name: str | None = None,
        processing_kwargs: dict[str, Any] | None = None,
        **unused_config: Any,
    ) -> None:
        super().__init__()
        if backend != "torch":
            raise InvalidArgumentError(f"backend={backend!r} is not supported; embedforge runs models with 'torch'")
        if transformer_task not in TASK_OUTPUTS:
            raise InvalidArgumentError(
                f"transformer_task={transformer_task!r} is not supported; expected one of {sorted(TASK_OUTPUTS)}"
            )
        self.transformer_task = transformer_task
        self.module_output_name = TASK_OUTPUTS[transformer_task][1]
        self.processing_kwargs: dict[str, Any] = {}
        if transformer_task in CAUSAL_TASKS:
            _check_causal_modality_config(modality_config)
            if module_output_name is not None:
                if not isinstance(module_output_name, str) or not module_output_name:
                    raise InvalidArgumentError(f"module_output_name={module_output_name!r}; expected a feature name")
                self.module_output_name = module_output_name
            self.processing_kwargs = _checked_processing_kwargs(processing_kwargs, "processing_kwargs")
        model_dir = require_local_dir(model_name_or_path, "model_name_or_path")
        tokenizer_dir = require_local_dir(tokenizer_name_or_path or model_name_or_path, "tokenizer_name_or_path")
        model_kwargs = {**(model_args or {}), **(model_kwargs or {})}
        tokenizer_kwargs = {
            **(tokenizer_args or {}),
            **(processor_kwargs or {}),
            **(tokenizer_kwargs or {}),
        }
        config_kwargs = {**(config_args or {}), **(config_kwargs or {})}
        for kwargs in (model_kwargs, tokenizer_kwargs, config_kwargs):
            # Everything is local: drop hub options a sentence-transformers config may carry.
            for key in (
                "trust_remote_code",
                "token",
                "revision",
                "cache_dir",
                "local_files_only",
                "subfolder",
            ):
                kwargs.pop(key, None)
        self.do_lower_case = do_lower_case
        # transformers takes seconds to import: only models that use it pay for it.
        from transformers import AutoConfig, AutoTokenizer

        try:
            config = AutoConfig.from_pretrained(model_dir, local_files_only=True, **config_kwargs)
            if transformer_task == "sequence-classification" and "num_labels" not in config_kwargs:
                architectures = getattr(config, "architectures", None) or []
                if not any(name.endswith("ForSequenceClassification") for name in architectures):
                    # A bare encoder turned into a cross-encoder scores with one label unless told otherwise.
                    config.num_labels = 1
            if transformer_task in CAUSAL_TASKS and hasattr(config, "use_cache"):
                # Scoring and training never decode, so a key/value cache is only memory spent;
                # sentence-transformers turns it off the same way unless config_kwargs asks for it.
                config.use_cache = bool(config_kwargs.get("use_cache", False))
            self.auto_model: PreTrainedModel = _load_model(model_dir, config, model_kwargs, transformer_task)
        except OSError as error:
            raise ModelFormatError(f"Cannot load the transformer in {model_dir!r}: {error}") from error
        if max_seq_length is not None and "model_max_length" not in tokenizer_kwargs:
            tokenizer_kwargs["model_max_length"] = max_seq_length
        try:
            self.hf_tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True, **tokenizer_kwargs)
        except (OSError, ValueError) as error:
            raise ModelFormatError(f"Cannot load the tokenizer in {tokenizer_dir!r}: {error}") from error
        max_positions = getattr(self.auto_model.config, "max_position_embeddings", None)
        if max_seq_length is None and max_positions not in (None, -1):
            # Tokenizers often claim an effectively infinite model_max_length; the model's positions are the limit.
            self.hf_tokenizer.model_max_length = min(self.hf_tokenizer.model_max_length, max_positions)
        if do_lower_case:
            _add_lowercase(self.hf_tokenizer)
        self._forwards_logits_to_keep = False
        if transformer_task in CAUSAL_TASKS:
            if modality_config is None and getattr(self.hf_tokenizer, "chat_template", None):
                raise ModelFormatError(
                    f"The tokenizer in {tokenizer_dir!r} has a chat template: sentence-transformers renders "
                    "each input of a text-generation Transformer through it, which embedforge does not support "
                    "yet. To score the plain text instead (as a folder saved with a text-only modality_config "
                    "does), pass modality_config={'text': {'method': 'forward', 'method_output_name': 'logits'}} "
                    "to Transformer"
                )
            # The score is read at the last position, which must be a real token in every row.
            self.hf_tokenizer.padding_side = "left"
            self._forwards_logits_to_keep = "logits_to_keep" in inspect.signature(self.auto_model.forward).parameters
        self._rust_tokenizer = _rust_tokenizer_for(self.hf_tokenizer)
        self._special_ids = set(getattr(self.hf_tokenizer, "all_special_ids", []))
        self._prompt_lengths: dict[tuple[str, int | None], int] = {}

    # -- properties ------------------------------------------------------------------------------

    @property
    def model(self) -> PreTrainedModel:
        """The wrapped transformers model (sentence-transformers 6 name of ``auto_model``)."""
        return self.auto_model

    @property
    def tokenizer(self) -> Any:
        """The Hugging Face tokenizer (used for saving and as fallback when no fast tokenizer exists)."""
        return self.hf_tokenizer

    @property
    def max_seq_length(self) -> int | None:
        """Inputs are truncated to this many tokens, special tokens included."""
        return self.hf_tokenizer.model_max_length

    @max_seq_length.setter
    def max_seq_length(self, value: int | None) -> None:
        self.hf_tokenizer.model_max_length = value
        self._prompt_lengths.clear()

    @property
    def config(self) -> PretrainedConfig:
        """The transformers model config."""
        return self.auto_model.config

    def get_embedding_dimension(self) -> int:
        """Width of the token embeddings."""
        config = self.auto_model.config
        for key in ("hidden_size", "d_model", "dim", "n_embd"):
            value = getattr(config, key, None)
            if isinstance(value, int):
                return value
        raise ModelFormatError(f"Cannot tell the hidden size of a {type(config).__name__}")

    # -- tokenisation ----------------------------------------------------------------------------

    def _truncation_length(self) -> int | None:
        length = self.max_seq_length
        # transformers uses a huge sentinel (int(1e30)) for "no limit".
        return None if length is None or length > 10**9 else int(length)

    def tokenize(
        self,
        texts: list[str] | list[tuple[str, str]] | list[list[str]],
        padding: str | bool = True,
        **kwargs: Any,
    ) -> dict[str, Tensor]:
        """Tokenise a batch of texts or text pairs into padded tensors."""
        return self.preprocess(list(texts), prompt=kwargs.get("prompt"))

    def preprocess(
        self,
        inputs: list[Any],
        prompt: str | None = None,
        processing_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Tokenise ``inputs`` (texts or text pairs), prepending ``prompt``, into model inputs.

        For text generation, ``processing_kwargs={"text": {"logits_to_keep": n}}`` overrides the
        module's setting for this call.
        """
        firsts, seconds = _split_pairs(inputs)
        max_length = self._truncation_length()
        if self._rust_tokenizer is not None:
            self._sync_padding_side()
            arrays = self._rust_tokenizer.encode_padded(
                firsts, pairs=seconds, max_length=max_length, prompt=prompt or None
            )
            features: dict[str, Any] = {
                name: torch.from_numpy(arrays[name]) for name in self._input_names() if name in arrays
            }
        else:
            texts = [prompt + text for text in firsts] if prompt else firsts
            encoded = self.hf_tokenizer(
                texts,
                seconds,
                padding=True,
                truncation="longest_first",
                max_length=max_length,
                return_tensors="pt",
            )
            features = dict(encoded)
        if prompt:
            length = self._prompt_length(prompt, max_length)
            if length:
                features["prompt_length"] = length
        if self.transformer_task in CAUSAL_TASKS:
            _check_left_padded(features.get("attention_mask"))
            call_kwargs = _checked_processing_kwargs(processing_kwargs, "processing_kwargs")
            text_kwargs = {**self.processing_kwargs.get("text", {}), **call_kwargs.get("text", {})}
            features["logits_to_keep"] = text_kwargs.get("logits_to_keep", 1)
        return features

    def _sync_padding_side(self) -> None:
        """Follow a change of the Hugging Face tokenizer's ``padding_side`` since the Rust copy was made,
        so both tokenisers pad alike (and a causal model's check sees what the user asked for)."""
        rust = self._rust_tokenizer
        padding_left = getattr(self.hf_tokenizer, "padding_side", "right") == "left"
        if rust is not None and padding_left != rust.padding_left:
            pad_id = self.hf_tokenizer.pad_token_id
            rust.set_padding(
                pad_id=0 if pad_id is None else int(pad_id),
                pad_type_id=int(getattr(self.hf_tokenizer, "pad_token_type_id", 0) or 0),
                padding_left=padding_left,
            )

    def _input_names(self) -> list[str]:
        return list(getattr(self.hf_tokenizer, "model_input_names", ["input_ids", "attention_mask"]))

    def _prompt_length(self, prompt: str, max_length: int | None) -> int:
        """Positions the prompt takes at the start of each input, not counting a trailing special token."""
        key = (prompt, max_length)
        if key not in self._prompt_lengths:
            ids = self.hf_tokenizer(prompt, truncation=True, max_length=max_length)["input_ids"]
            length = len(ids)
            if ids and ids[-1] in self._special_ids:
                length -= 1
            self._prompt_lengths[key] = length
        return self._prompt_lengths[key]

    # -- forward and persistence -----------------------------------------------------------------

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Run the model: its last hidden state becomes ``token_embeddings`` (feature extraction), its
        logits ``scores`` (sequence classification, as a cross-encoder uses it), or its next-token logits
        ``causal_logits`` (text generation), of shape ``(batch, logits_to_keep or positions, vocab)``."""
        inputs: dict[str, Any] = {
            key: features[key] for key in ("input_ids", "attention_mask", "token_type_ids") if key in features
        }
        if self.transformer_task in CAUSAL_TASKS:
            if self._forwards_logits_to_keep:
                inputs["logits_to_keep"] = features.get("logits_to_keep", 1)
            features[self.module_output_name] = self.auto_model(**inputs, return_dict=True).logits
            return features
        output = self.auto_model(**inputs, return_dict=True)
        if self.transformer_task == "sequence-classification":
            features["scores"] = output.logits
            return features
        features["token_embeddings"] = output[0]
        if getattr(self.auto_model.config, "output_hidden_states", False) and "hidden_states" in output:
            features["all_layer_embeddings"] = output["hidden_states"]
        return features

    def get_config_dict(self) -> dict[str, Any]:
        """``sentence_bert_config.json``: the keys every sentence-transformers release reads, plus the
        task keys of sentence-transformers 6 for a task other than feature extraction."""
        config: dict[str, Any] = {
            "max_seq_length": self._truncation_length(),
            "do_lower_case": self.do_lower_case,
        }
        if self.transformer_task != "feature-extraction":
            method_output_name, module_output_name = TASK_OUTPUTS[self.transformer_task]
            config["transformer_task"] = self.transformer_task
            config["modality_config"] = {"text": {"method": "forward", "method_output_name": method_output_name}}
            config["module_output_name"] = (
                self.module_output_name if self.transformer_task in CAUSAL_TASKS else module_output_name
            )
        if self.processing_kwargs:
            config["processing_kwargs"] = self.processing_kwargs
        return config

    def save(
        self,
        output_path: str,
        *args: Any,
        safe_serialization: bool = True,
        **kwargs: Any,
    ) -> None:
        """Write the transformers model, its tokenizer and ``sentence_bert_config.json``."""
        self.auto_model.save_pretrained(output_path, safe_serialization=safe_serialization)
        self.hf_tokenizer.save_pretrained(output_path)
        self.save_config(output_path)

    @classmethod
    def load_config(
        cls,
        model_name_or_path: str,
        subfolder: str = "",
        config_filename: str | None = None,
    ) -> dict:
        """Read the first config file found among the names sentence-transformers has used."""
        for name in (config_filename,) if config_filename else LEGACY_CONFIG_NAMES:
            config = super().load_config(model_name_or_path, subfolder, name)
            if config:
                return config
        return {}

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", **kwargs: Any) -> Self:
        """Load from a saved module folder; ``model_kwargs``/``tokenizer_kwargs``/``config_kwargs`` override,
        and ``transformer_task`` is the task when the saved config names none."""
        folder = os.path.join(model_name_or_path, subfolder)
        config = cls.load_config(model_name_or_path, subfolder)
        for key in (
            "model_kwargs",
            "tokenizer_kwargs",
            "processor_kwargs",
            "config_kwargs",
        ):
            if kwargs.get(key):
                config[key] = {**config.get(key, {}), **kwargs[key]}
        if kwargs.get("transformer_task") is not None:
            config.setdefault("transformer_task", kwargs["transformer_task"])
        task = config.get("transformer_task", "feature-extraction")
        if task in CAUSAL_TASKS:
            # A folder saved before sentence-transformers recorded modality_config read plain text,
            # whatever chat template its tokenizer has; __init__ checks what a saved one asks for.
            method_output_name, _ = TASK_OUTPUTS[task]
            config.setdefault(
                "modality_config", {"text": {"method": "forward", "method_output_name": method_output_name}}
            )
            config.pop("unpad_inputs", None)
        else:
            # sentence-transformers 6 keys that describe multimodal routing: for text they follow from the task.
            for key in ("modality_config", "module_output_name", "processing_kwargs", "unpad_inputs"):
                config.pop(key, None)
        return cls(folder, **config)

    def __repr__(self) -> str:
        return f"Transformer({self.get_config_dict()}) with {type(self.auto_model).__name__}"


def _load_model(
    model_dir: str, config: PretrainedConfig, model_kwargs: dict[str, Any], transformer_task: str
) -> PreTrainedModel:
    """Load the encoder (encoder-decoder T5 models keep only their encoder, as sentence-transformers
    does), the sequence-classification model for a cross-encoder, or the causal language model
    (with its LM head) for a text-generation reranker."""
    from transformers import (
        AutoModel,
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        T5Config,
        T5EncoderModel,
    )

    if transformer_task == "sequence-classification":
        return AutoModelForSequenceClassification.from_pretrained(
            model_dir, config=config, local_files_only=True, **model_kwargs
        )
    if transformer_task == "text-generation":
        return AutoModelForCausalLM.from_pretrained(model_dir, config=config, local_files_only=True, **model_kwargs)
    if isinstance(config, T5Config):
        return T5EncoderModel.from_pretrained(model_dir, config=config, local_files_only=True, **model_kwargs)
    return AutoModel.from_pretrained(model_dir, config=config, local_files_only=True, **model_kwargs)


def _check_causal_modality_config(modality_config: Any) -> None:
    """A text-generation Transformer reads plain text through ``forward``'s logits; anything else (chat
    messages, images) is sentence-transformers' multimodal routing, which embedforge does not have."""
    if modality_config is None:
        return
    text = modality_config.get("text") if isinstance(modality_config, dict) else None
    if (
        not isinstance(text, dict)
        or set(modality_config) != {"text"}
        or text.get("method", "forward") != "forward"
        or text.get("method_output_name") not in ("logits", ["logits"], ("logits",))
    ):
        raise ModelFormatError(
            f"modality_config={modality_config!r} is not supported for transformer_task='text-generation'; "
            "expected {'text': {'method': 'forward', 'method_output_name': 'logits'}} (plain text inputs; "
            "chat-message and multimodal inputs are not supported yet)"
        )


def _checked_processing_kwargs(value: Any, name: str) -> dict[str, Any]:
    """``{"text": {"logits_to_keep": n}}`` (or empty): the one processing option of a causal Transformer."""
    if value is None:
        return {}
    text = value.get("text", {}) if isinstance(value, dict) else None
    if not isinstance(text, dict) or set(value) - {"text"} or set(text) - {"logits_to_keep"}:
        raise InvalidArgumentError(
            f"{name}={value!r}: embedforge's text-generation Transformer takes only "
            "{'text': {'logits_to_keep': n}}; other tokenizer or chat-template options are not supported"
        )
    keep = text.get("logits_to_keep", 1)
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
        raise InvalidArgumentError(
            f"{name}['text']['logits_to_keep']={keep!r}; expected a non-negative integer (0 keeps every position)"
        )
    return {"text": dict(text)} if text else {}


def _check_left_padded(attention_mask: Any) -> None:
    """A causal model is scored at the last position, which must hold a real token in every row."""
    if isinstance(attention_mask, Tensor) and attention_mask.ndim == 2 and not bool(attention_mask[:, -1].all()):
        raise InvalidArgumentError(
            "A text-generation Transformer needs left-padded inputs, so that the last position of every row is "
            "a real token, but at least one row ends in padding: the tokenizer's padding_side was changed after "
            'loading; set it back with transformer.tokenizer.padding_side = "left"'
        )


def _add_lowercase(tokenizer: Any) -> None:
    """Make a fast tokenizer lowercase its input (``do_lower_case=True``)."""
    from tokenizers import normalizers

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        tokenizer.do_lower_case = True
        return
    current = backend.normalizer
    if current is not None and "Lowercase" in current.__getstate__().decode("utf-8", "ignore"):
        return
    parts = [normalizers.Lowercase()] + ([current] if current is not None else [])
    backend.normalizer = normalizers.Sequence(parts)


def _rust_tokenizer_for(hf_tokenizer: Any) -> Any:
    """A Rust batch tokenizer equal to the fast tokenizer's backend, or None for slow tokenizers."""
    backend = getattr(hf_tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    from embedforge import _core

    # The backend as transformers configured it (normalizer tweaks included), minus its own padding and
    # truncation: the Rust side applies the batch's settings per call.
    rust = _core.Tokenizer.from_str(backend.to_str())
    pad_id = hf_tokenizer.pad_token_id
    rust.set_padding(
        pad_id=0 if pad_id is None else int(pad_id),
        pad_type_id=int(getattr(hf_tokenizer, "pad_token_type_id", 0) or 0),
        padding_left=getattr(hf_tokenizer, "padding_side", "right") == "left",
    )
    return rust


def _split_pairs(inputs: list[Any]) -> tuple[list[str], list[str] | None]:
    """Split a batch into first texts and, for pairs, second texts; reject anything else by index."""
    if inputs and all(isinstance(item, str) for item in inputs):
        return inputs, None
    firsts: list[str] = []
    seconds: list[str] = []
    for index, item in enumerate(inputs):
        if isinstance(item, (tuple, list)) and len(item) == 2 and all(isinstance(part, str) for part in item):
            firsts.append(item[0])
            seconds.append(item[1])
        elif isinstance(item, (tuple, list)) and len(item) == 1 and isinstance(item[0], str):
            firsts.append(item[0])
        else:
            raise InvalidArgumentError(
                f"inputs[{index}] is {type(item).__name__} ({item!r:.60}); expected str or a pair of str"
            )
    if seconds and len(seconds) != len(firsts):
        raise InvalidArgumentError("inputs mixes single texts and text pairs; a batch must be all one or the other")
    return firsts, (seconds or None)


__all__ = ["Transformer"]
