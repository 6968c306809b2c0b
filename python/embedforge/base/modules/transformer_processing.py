"""Calling a transformers processor the way its type wants: tokenizers, feature extractors, image and
video processors, multimodal processors, and chat templates.

Every call gets the batch keyed by modality plus per-modality options (``text``, ``image``, ``audio``,
``video``) and options common to all (``return_tensors``). Single-modality processors take the merged
options; multimodal processors take them per modality; ``apply_chat_template`` wants the size options
at its top level when the processor is a bare tokenizer.
"""

from __future__ import annotations

import inspect
from typing import Any

from embedforge.base.modality import format_modality
from embedforge.base.modality_types import MODALITY_TO_PROCESSOR_ARG, Modality

__all__ = [
    "CHAT_TEMPLATE_TOP_LEVEL_KWARGS",
    "apply_chat_template",
    "call_processor",
    "count_media_per_sample",
    "processor_kinds",
    "processor_supports_modality_kwargs",
]

# Options a bare tokenizer's apply_chat_template takes at its top level, not inside tokenizer_kwargs.
CHAT_TEMPLATE_TOP_LEVEL_KWARGS = frozenset({"padding", "truncation", "max_length", "return_tensors"})
# Processors that still take their options flat rather than per modality.
_FLAT_KWARGS_MODEL_TYPES = frozenset({"clipseg", "whisper", "sam3"})


def processor_supports_modality_kwargs() -> bool:
    """Whether this transformers release's multimodal processors take ``text_kwargs=``/``images_kwargs=``/..."""
    from packaging.version import parse
    from transformers import __version__

    return parse(__version__) > parse("4.56.1")


def count_media_per_sample(messages: list[list[dict[str, Any]]]) -> tuple[list[int], list[int]]:
    """The number of images and of videos in each conversation of a batch.

    Some vision-language processors concatenate every sample's visual tokens into one tensor; these
    counts keep track of which sample each belongs to.
    """
    images: list[int] = []
    videos: list[int] = []
    for conversation in messages:
        kinds = [
            item.get("type")
            for message in conversation
            if isinstance(message.get("content"), list)
            for item in message["content"]
            if isinstance(item, dict)
        ]
        images.append(kinds.count("image"))
        videos.append(kinds.count("video"))
    return images, videos


def processor_kinds() -> list[tuple[str, type]]:
    """(modality, processor base class) for single-modality processors, video before image (video
    processors derive from the image processor base)."""
    from transformers import FeatureExtractionMixin, ImageProcessingMixin, PreTrainedTokenizerBase

    kinds: list[tuple[str, type]] = [("text", PreTrainedTokenizerBase), ("audio", FeatureExtractionMixin)]
    try:
        from transformers.video_processing_utils import BaseVideoProcessor

        kinds.append(("video", BaseVideoProcessor))
    except ImportError:  # older transformers have no video processors
        pass
    kinds.append(("image", ImageProcessingMixin))
    return kinds


def _call_single_modality(
    processor: Any,
    modality: Modality,
    inputs: dict[str, list],
    modality_kwargs: dict[str, dict[str, Any]],
    common_kwargs: dict[str, Any],
) -> Any:
    for kind, processor_class in processor_kinds():
        if isinstance(processor, processor_class):
            options = {**modality_kwargs[kind], **common_kwargs}
            inputs = dict(inputs)
            call: Any = processor
            if kind in inputs:
                # Tokenizers and feature extractors take their main input positionally.
                return call(inputs.pop(kind), **inputs, **options)
            return call(**inputs, **options)
    raise RuntimeError(
        f"Cannot tell how to call a processor of type {type(processor).__name__} "
        f"for modality '{format_modality(modality)}'"
    )


def _call_multimodal(
    processor: Any,
    model_type: str,
    modality: Modality,
    inputs: dict[str, list],
    modality_kwargs: dict[str, dict[str, Any]],
    common_kwargs: dict[str, Any],
) -> Any:
    argument_names: dict[Any, str] = dict(MODALITY_TO_PROCESSOR_ARG)
    arguments = {argument_names.get(key, key): value for key, value in inputs.items()}
    if model_type in _FLAT_KWARGS_MODEL_TYPES or not processor_supports_modality_kwargs():
        if modality == ("audio", "text"):
            # Whisper's audio options (padding to 30 s) must win over the text ones.
            options = {**modality_kwargs["text"], **modality_kwargs["audio"]}
        else:
            options = modality_kwargs[modality] if isinstance(modality, str) else {}
        return processor(**arguments, **options, **common_kwargs)
    return processor(
        **arguments,
        text_kwargs=modality_kwargs["text"],
        images_kwargs=modality_kwargs["image"],
        audio_kwargs=modality_kwargs["audio"],
        videos_kwargs=modality_kwargs["video"],
        common_kwargs=common_kwargs,
    )


def call_processor(
    processor: Any,
    model_type: str,
    modality: Modality,
    inputs: dict[str, list],
    modality_kwargs: dict[str, dict[str, Any]],
    common_kwargs: dict[str, Any],
) -> Any:
    """Run ``processor`` on a batch of one (possibly combined) modality other than ``"message"``."""
    from transformers import ProcessorMixin

    if isinstance(processor, ProcessorMixin):
        return _call_multimodal(processor, model_type, modality, inputs, modality_kwargs, common_kwargs)
    return _call_single_modality(processor, modality, inputs, modality_kwargs, common_kwargs)


def apply_chat_template(
    processor: Any,
    messages: list[list[dict[str, Any]]],
    modality_kwargs: dict[str, dict[str, Any]],
    common_kwargs: dict[str, Any],
    chat_template_kwargs: dict[str, Any],
) -> Any:
    """Render and tokenise conversations with ``processor``'s chat template (the given dicts are not changed)."""
    from transformers import ProcessorMixin

    chat_template_kwargs = dict(chat_template_kwargs)
    text_kwargs = dict(modality_kwargs["text"])
    # Size options given with the chat-template options belong with the text options (and win).
    for key in CHAT_TEMPLATE_TOP_LEVEL_KWARGS & chat_template_kwargs.keys():
        text_kwargs[key] = chat_template_kwargs.pop(key)

    if isinstance(processor, ProcessorMixin):
        video_kwargs = dict(modality_kwargs["video"])
        chat_template_kwargs.setdefault("load_audio_from_video", video_kwargs.pop("load_audio_from_video", False))
        nested: dict[str, Any] = {
            "text_kwargs": text_kwargs,
            "images_kwargs": modality_kwargs["image"],
            "audio_kwargs": modality_kwargs["audio"],
            "videos_kwargs": video_kwargs,
            "common_kwargs": common_kwargs,
        }
        render: Any = processor.apply_chat_template
        if "processor_kwargs" in inspect.signature(render).parameters:
            # Newer transformers take the per-modality options as one dict, return_tensors beside it.
            return render(
                messages,
                tokenize=True,
                return_dict=True,
                return_tensors=common_kwargs.get("return_tensors"),
                processor_kwargs=nested,
                **chat_template_kwargs,
            )
        return render(messages, tokenize=True, return_dict=True, **nested, **chat_template_kwargs)

    common = dict(common_kwargs)
    top_level = {key: common.pop(key) for key in CHAT_TEMPLATE_TOP_LEVEL_KWARGS & common.keys()}
    top_level.update({key: text_kwargs.pop(key) for key in CHAT_TEMPLATE_TOP_LEVEL_KWARGS & text_kwargs.keys()})
    return processor.apply_chat_template(
        messages,
        tokenize=True,
        return_dict=True,
        tokenizer_kwargs=text_kwargs,
        common_kwargs=common,
        **top_level,
        **chat_template_kwargs,
    )
