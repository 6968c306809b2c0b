"""What each ``transformer_task`` of :class:`~embedforge.base.modules.Transformer` loads and outputs.

A task picks the transformers auto class (``AutoModel`` for embeddings, ``...ForSequenceClassification``
for cross-encoders, ``...ForCausalLM`` for generative rerankers, ``...ForMaskedLM`` for sparse models),
the model output each modality reads by default, and the feature the module writes.
"""

from __future__ import annotations

import copy
import importlib
from typing import Any, Literal, TypedDict

from typing_extensions import NotRequired

from embedforge.base.modality_types import Modality

__all__ = [
    "CAUSAL_TASKS",
    "EDGE_CASE_MODALITY_CONFIGS",
    "TRANSFORMER_TASKS",
    "TRANSFORMER_TASK_DEFAULTS",
    "ModalityConfig",
    "ModalityParams",
    "TransformerTask",
    "auto_model_class",
    "encoder_only_class",
]

TransformerTask = Literal[
    "feature-extraction", "sequence-classification", "text-generation", "any-to-any", "fill-mask", "retrieval"
]


class ModalityParams(TypedDict):
    """How one modality runs: the model ``method`` to call and the output field(s) to read from its result.

    ``method_output_name`` may be a path (``["hidden_states", -1]``) or None (the method returns the
    tensor itself). ``format`` (message modality only) is ``"structured"`` or ``"flat"``.
    """

    method: str
    method_output_name: Any
    format: NotRequired[Literal["structured", "flat"]]


ModalityConfig = dict[Modality, ModalityParams]

# The auto class name per task; "retrieval" resolves the class from the checkpoint itself.
_AUTO_CLASS_NAMES: dict[str, str | None] = {
    "feature-extraction": "AutoModel",
    "sequence-classification": "AutoModelForSequenceClassification",
    "text-generation": "AutoModelForCausalLM",
    "fill-mask": "AutoModelForMaskedLM",
    "retrieval": None,
    "any-to-any": "AutoModelForMultimodalLM",
}
TRANSFORMER_TASKS: tuple[str, ...] = tuple(_AUTO_CLASS_NAMES)
# Tasks scored at the last position, so their inputs are padded on the left.
CAUSAL_TASKS = frozenset({"text-generation", "any-to-any"})


def _text_only(method_output_name: str, module_output_name: str) -> tuple[ModalityConfig, str]:
    return {"text": {"method": "forward", "method_output_name": method_output_name}}, module_output_name


# (modality_config, module_output_name) per task: what a folder saved before modality_config existed
# meant, and the defaults modality inference starts from.
TRANSFORMER_TASK_DEFAULTS: dict[str, tuple[ModalityConfig, str]] = {
    "feature-extraction": _text_only("last_hidden_state", "token_embeddings"),
    "sequence-classification": _text_only("logits", "scores"),
    "text-generation": _text_only("logits", "causal_logits"),
    "any-to-any": _text_only("logits", "causal_logits"),
    "fill-mask": _text_only("logits", "token_embeddings"),
    # *ForRetrieval heads already project and normalise their token embeddings.
    "retrieval": (
        {
            "text": {"method": "forward", "method_output_name": "embeddings"},
            "image": {"method": "forward", "method_output_name": "embeddings"},
        },
        "token_embeddings",
    ),
}


def auto_model_class(task: str) -> Any:
    """The transformers auto class that loads a model for ``task``.

    Raises:
        ImportError: For ``"any-to-any"`` on a transformers release without ``AutoModelForMultimodalLM``.
    """
    import transformers

    name = _AUTO_CLASS_NAMES[task]
    if name is None:
        return None
    auto_class = getattr(transformers, name, None)
    if auto_class is None:
        raise ImportError(f"transformer_task={task!r} needs transformers.{name}, which this transformers release lacks")
    return auto_class


# Encoder-decoder models whose encoder is loaded alone for embeddings: config class -> (module, encoder class).
_ENCODER_ONLY = (
    ("T5Config", "transformers", "T5EncoderModel"),
    ("MT5Config", "transformers", "MT5EncoderModel"),
    ("UMT5Config", "transformers", "UMT5EncoderModel"),
    ("UdopConfig", "transformers", "UdopEncoderModel"),
    ("LongT5Config", "transformers", "LongT5EncoderModel"),
    ("ProphetNetConfig", "transformers", "ProphetNetEncoder"),
    ("SwitchTransformersConfig", "transformers", "SwitchTransformersEncoderModel"),
    ("BlenderbotConfig", "transformers.models.blenderbot.modeling_blenderbot", "BlenderbotEncoder"),
    (
        "BlenderbotSmallConfig",
        "transformers.models.blenderbot_small.modeling_blenderbot_small",
        "BlenderbotSmallEncoder",
    ),
    ("M2M100Config", "transformers.models.m2m_100.modeling_m2m_100", "M2M100Encoder"),
    ("PegasusConfig", "transformers.models.pegasus.modeling_pegasus", "PegasusEncoder"),
    ("PegasusXConfig", "transformers.models.pegasus_x.modeling_pegasus_x", "PegasusXEncoder"),
    ("MoonshineConfig", "transformers.models.moonshine.modeling_moonshine", "MoonshineEncoder"),
    ("WhisperConfig", "transformers.models.whisper.modeling_whisper", "WhisperEncoder"),
    ("MarianConfig", "transformers.models.marian.modeling_marian", "MarianEncoder"),
)


def encoder_only_class(config: Any) -> Any:
    """The encoder class to load for an encoder-decoder ``config`` (embeddings use the encoder alone), or None."""
    config_class_name = type(config).__name__
    for name, module_path, encoder_name in _ENCODER_ONLY:
        if config_class_name == name:
            return getattr(importlib.import_module(module_path), encoder_name, None)
    return None


def _entry(modalities: dict[Any, tuple[str, str]], module_output_name: str, check_outputs: bool) -> tuple:
    config = {key: {"method": method, "method_output_name": output} for key, (method, output) in modalities.items()}
    return config, module_output_name, check_outputs


_FORWARD_HIDDEN = ("forward", "last_hidden_state")
_FORWARD_LOGITS = ("forward", "logits")
_AUDIO_ENCODER = _entry({"audio": _FORWARD_HIDDEN, ("audio", "text"): _FORWARD_HIDDEN}, "token_embeddings", False)

# Model types the general inference gets wrong, per task: model_type -> (modality_config,
# module_output_name, whether to check each method_output_name against the method's return type).
EDGE_CASE_MODALITY_CONFIGS: dict[str, dict[str, tuple[ModalityConfig, str, bool]]] = {
    "feature-extraction": {
        "blip": _entry(
            {
                "text": ("get_text_features", "pooler_output"),
                "image": ("get_image_features", "pooler_output"),
                ("image", "text"): ("get_multimodal_features", "pooler_output"),
            },
            "sentence_embedding",
            True,
        ),
        "blip-2": _entry(
            {"text": ("get_text_features", "last_hidden_state"), "image": ("get_image_features", "last_hidden_state")},
            "token_embeddings",
            True,
        ),
        "sam3": _entry(
            {"text": ("get_text_features", "last_hidden_state"), "image": ("get_vision_features", "last_hidden_state")},
            "token_embeddings",
            True,
        ),
        "flava": _entry(
            {"text": ("get_text_features", "pooler_output"), "image": ("get_image_features", "pooler_output")},
            "token_embeddings",
            True,
        ),
        "git": _entry({"text": _FORWARD_HIDDEN, ("image", "text"): _FORWARD_HIDDEN}, "token_embeddings", False),
        "visual_bert": _entry({"text": _FORWARD_HIDDEN, ("image", "text"): _FORWARD_HIDDEN}, "token_embeddings", False),
        "kosmos-2": _entry({("image", "text"): _FORWARD_HIDDEN}, "token_embeddings", False),
        "grounding-dino": _entry({("image", "text"): _FORWARD_HIDDEN}, "token_embeddings", False),
        "paligemma": _entry({("image", "text"): _FORWARD_HIDDEN}, "token_embeddings", False),
        "vilt": _entry({("image", "text"): _FORWARD_HIDDEN}, "token_embeddings", False),
        "layoutlmv3": _entry({"image": _FORWARD_HIDDEN, ("image", "text"): _FORWARD_HIDDEN}, "token_embeddings", False),
        "idefics": _entry(
            {"text": _FORWARD_HIDDEN, "image": _FORWARD_HIDDEN, ("image", "text"): _FORWARD_HIDDEN},
            "token_embeddings",
            False,
        ),
        **{
            model_type: _AUDIO_ENCODER
            for model_type in (
                "hubert",
                "moonshine",
                "sew",
                "sew-d",
                "unispeech-sat",
                "unispeech",
                "wav2vec2",
                "wav2vec2-conformer",
                "wavlm",
                "whisper",
                "voxtral_realtime",
            )
        },
    },
    "text-generation": {
        "git": _entry({"text": _FORWARD_LOGITS, ("image", "text"): _FORWARD_LOGITS}, "causal_logits", False),
        "whisper": _entry({"text": _FORWARD_LOGITS}, "causal_logits", False),
    },
    "any-to-any": {
        "git": _entry({"text": _FORWARD_LOGITS, ("image", "text"): _FORWARD_LOGITS}, "causal_logits", False),
        **{
            model_type: _entry({("image", "text"): _FORWARD_LOGITS}, "causal_logits", False)
            for model_type in ("blip", "blip-2", "kosmos-2", "paligemma")
        },
        "voxtral_realtime": _entry(
            {"audio": _FORWARD_LOGITS, ("audio", "text"): _FORWARD_LOGITS}, "causal_logits", False
        ),
    },
    "fill-mask": {
        "wav2vec2": _entry({"audio": _FORWARD_LOGITS}, "token_embeddings", False),
    },
}


def default_modality_config(task: str) -> tuple[ModalityConfig, str]:
    """A fresh copy of ``task``'s default (modality_config, module_output_name)."""
    return copy.deepcopy(TRANSFORMER_TASK_DEFAULTS[task])
