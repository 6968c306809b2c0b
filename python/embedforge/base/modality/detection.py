"""Infer the modality of an input from its type and shape alone (no processor, no tokenizer).

The rules, in order: PIL images are images and torchcodec decoders are audio or video; a string is
text unless it names a media file the model supports; a two-string tuple/list is a text pair; chat
messages (dicts with ``role`` and ``content``, or lists of them) are ``"message"``; ``{"array",
"sampling_rate"}`` is audio and ``{"array", "video_metadata"}`` video; other dicts are multimodal
inputs keyed by modality; arrays and tensors are told apart by their number of dimensions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import torch

from embedforge.base.modality.media_paths import (
    AUDIO_EXTENSIONS,
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    is_audio_url_or_path,
    is_image_url_or_path,
    is_video_url_or_path,
)
from embedforge.base.modality_types import MULTIMODAL_DICT_KEYS, AudioDecoder, Modality, PILImage, VideoDecoder

__all__ = [
    "format_modality",
    "infer_batch_modality",
    "infer_modality",
    "is_message_dict",
    "is_non_text_pair",
    "sorted_keys",
]

# How a misplaced metadata key should have been written, keyed by that key.
_SIBLING_KEY_HINTS = {
    "sampling_rate": (
        "To attach the sampling rate, pass the audio itself as a dict, e.g.:\n"
        '{"audio": {"array": waveform, "sampling_rate": 16000}}'
    ),
    "video_metadata": (
        "To attach per-sample video metadata, pass the video itself as a dict, and keep processor options in "
        "processing_kwargs, e.g.:\n"
        '{"video": {"array": frames, "video_metadata": {"fps": 15, "total_num_frames": 3}}}\n'
        'processing_kwargs={"video": {"do_sample_frames": False}}'
    ),
}


def sorted_keys(keys: Any) -> list:
    """Keys sorted for a stable error message, even when they are of mixed, incomparable types."""
    return sorted(keys, key=str)


def is_message_dict(value: Any) -> bool:
    """Whether ``value`` is one chat message: a dict with ``"role"`` and ``"content"``."""
    return isinstance(value, dict) and "role" in value and "content" in value


def _is_text_pair(value: Any) -> bool:
    return isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(part, str) for part in value)


def is_non_text_pair(sample: Any) -> bool:
    """Whether ``sample`` is a 2-item tuple/list pairing media (or a dict) with anything.

    Two strings are a text pair, which tokenizers handle themselves; chat messages are not pairs.
    Such pairs become ``query``/``document`` chat messages before processing.
    """
    if not isinstance(sample, (tuple, list)) or len(sample) != 2 or _is_text_pair(sample):
        return False
    return not any(
        is_message_dict(part) or (isinstance(part, list) and part and isinstance(part[0], dict)) for part in sample
    )


def _media_or_text(text: str, modality: str, supported_modalities: Sequence[Modality] | None) -> Modality:
    # A model that cannot read this media treats the string as the text it literally is.
    if supported_modalities is not None and modality not in supported_modalities:
        return "text"
    return cast("Modality", modality)


def _infer_dict_modality(sample: dict) -> Modality:
    if is_message_dict(sample):
        return "message"
    if "array" in sample:
        if "sampling_rate" in sample:
            return "audio"
        if "video_metadata" in sample:
            return "video"
        raise ValueError(
            "A dict input with an 'array' key must also include 'sampling_rate' (for audio) or 'video_metadata' "
            f"(for video). Got keys: {sorted_keys(sample.keys())}"
        )
    if not sample:
        raise ValueError("An empty dict is not a valid input sample.")
    unknown = set(sample) - MULTIMODAL_DICT_KEYS
    if unknown:
        hints = [_SIBLING_KEY_HINTS[key] for key in sorted(_SIBLING_KEY_HINTS) if key in unknown]
        hint = (" " + "\n\n".join(hints)) if hints else ""
        raise ValueError(
            f"Multimodal dict input contains unrecognized modality keys: {sorted_keys(unknown)}. "
            f"Expected keys from: {sorted(MULTIMODAL_DICT_KEYS)}.{hint}"
        )
    if len(sample) == 1:
        # {"image": pil} is routed exactly like a bare PIL image.
        return cast("Modality", next(iter(sample)))
    # Sorted, so the same combination always maps to the same route whatever the key order.
    return tuple(sorted(sample))


def _infer_array_modality(sample: np.ndarray | torch.Tensor) -> Modality:
    by_ndim = {1: "audio", 2: "audio", 3: "image", 4: "video", 5: "video"}
    if sample.ndim not in by_ndim:
        raise ValueError(
            f"Unsupported tensor dimensionality: {sample.ndim}D. Expected 1-2D for audio (mono or multi-channel "
            "waveform), 3D for an image, or 4-5D for video."
        )
    return cast("Modality", by_ndim[sample.ndim])


def infer_modality(sample: Any, supported_modalities: Sequence[Modality] | None = None) -> Modality:
    """The modality of one input: ``"text"``, ``"image"``, ``"audio"``, ``"video"``, ``"message"``, or a tuple.

    Args:
        sample: One input (see :mod:`embedforge.base.modality_types` for the accepted forms).
        supported_modalities: The model's modalities, if known. A string that names media the
            model does not support is then classified as ``"text"``.

    Returns:
        The modality; a multimodal dict with several keys gives the sorted tuple of its keys.

    Raises:
        ValueError: If the input's type or structure is not one of the accepted forms.
    """
    if PILImage is not None and isinstance(sample, PILImage):
        return "image"
    if AudioDecoder is not None and isinstance(sample, AudioDecoder):
        return "audio"
    if VideoDecoder is not None and isinstance(sample, VideoDecoder):
        return "video"
    if isinstance(sample, str):
        for modality, test in (
            ("image", is_image_url_or_path),
            ("video", is_video_url_or_path),
            ("audio", is_audio_url_or_path),
        ):
            if test(sample):
                return _media_or_text(sample, modality, supported_modalities)
        return "text"
    if _is_text_pair(sample):
        return "text"
    if isinstance(sample, dict):
        return _infer_dict_modality(sample)
    if isinstance(sample, list) and sample and is_message_dict(sample[0]):
        return "message"
    if isinstance(sample, (np.ndarray, torch.Tensor)):
        return _infer_array_modality(sample)
    raise ValueError(
        f"Unsupported input type: {type(sample).__name__}. "
        "Expected one of: str, dict, PIL.Image.Image, np.ndarray, torch.Tensor"
    )


_MEDIA_EXTENSIONS = IMAGE_EXTENSIONS + VIDEO_EXTENSIONS + AUDIO_EXTENSIONS
_MEDIA_PREFIXES = ("http://", "https://", "data:")
_MEDIA_MODALITIES = ("image", "video", "audio")


def _cannot_name_media(text: str) -> bool:
    """True for a string that :func:`infer_modality` is sure to call text: no URL or data-URI prefix and no
    media file extension (every media test needs one of those)."""
    return not text.startswith(_MEDIA_PREFIXES) and not text[-5:].lower().endswith(_MEDIA_EXTENSIONS)


def infer_batch_modality(samples: Sequence[Any], supported_modalities: Sequence[Modality] | None = None) -> Modality:
    """The modality shared by every sample; ``"message"`` for a mixed batch, ``"text"`` for an empty one.

    A mixed batch is ``"message"`` because that is how such batches are processed: each sample becomes
    a chat message carrying its own content types.
    """
    if not samples:
        return "text"
    if supported_modalities is not None and not any(media in supported_modalities for media in _MEDIA_MODALITIES):
        # A model that reads no media takes every string as text (see _media_or_text): only the types matter.
        if all(type(sample) is str for sample in samples):
            return "text"
    elif all(type(sample) is str and _cannot_name_media(sample) for sample in samples):
        # The common case (a training or encode batch of sentences), decided without the per-string
        # URL parsing and file-system checks of infer_modality: thousands of strings per step.
        return "text"
    modalities = {infer_modality(sample, supported_modalities=supported_modalities) for sample in samples}
    return modalities.pop() if len(modalities) == 1 else "message"


def format_modality(modality: Modality) -> str:
    """A modality for display: ``("image", "text")`` reads ``"image+text"``."""
    return "+".join(modality) if isinstance(modality, tuple) else modality
