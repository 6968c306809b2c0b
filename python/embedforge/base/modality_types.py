"""The input types a model accepts, per modality, and the names the processors give them.

An input is text, an image, audio, a video, a chat conversation, a dict combining several of these,
or a pair of them (for pair scorers). These aliases are for type hints and documentation; the
detection itself lives in :mod:`embedforge.base.modality`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, TypedDict, Union

import numpy as np
import torch

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage
    from torchcodec.decoders import AudioDecoder, VideoDecoder  # type: ignore[import-not-found]
else:
    # Both are optional extras: without them their inputs are simply never recognised.
    try:
        from PIL.Image import Image as PILImage
    except ImportError:
        PILImage = None
    try:
        from torchcodec.decoders import AudioDecoder, VideoDecoder
    except (ImportError, OSError, RuntimeError):
        AudioDecoder = None
        VideoDecoder = None

__all__ = [
    "MODALITY_TO_PROCESSOR_ARG",
    "MULTIMODAL_DICT_KEYS",
    "AudioDict",
    "AudioInput",
    "ImageInput",
    "MessageDict",
    "MessageFormat",
    "MessageInput",
    "Modality",
    "MultimodalInput",
    "PairInput",
    "PairableInput",
    "ProcessorArgName",
    "SingleInput",
    "TextInput",
    "VideoDict",
    "VideoInput",
]


class AudioDict(TypedDict):
    """A waveform with its sampling rate (the layout of a `datasets` Audio column)."""

    array: np.ndarray | torch.Tensor
    sampling_rate: int


class VideoDict(TypedDict):
    """Video frames with optional metadata (fps, total_num_frames, ...) for the processor."""

    array: Any
    video_metadata: dict[str, Any] | None


class MessageDict(TypedDict):
    """One chat message: a role and its content (a string, or a list of typed content items)."""

    role: str
    content: str | list[dict[str, Any]]


TextInput = str
ImageInput = Union[str, "PILImage", np.ndarray, torch.Tensor]
AudioInput = Union[str, np.ndarray, torch.Tensor, AudioDict, "AudioDecoder"]
VideoInput = Union[str, np.ndarray, torch.Tensor, VideoDict, "VideoDecoder", list, tuple]
MessageInput = MessageDict | list[MessageDict]


class MultimodalInput(TypedDict, total=False):
    """One input made of several modalities; each key may hold one value or a list of them."""

    text: Any
    image: Any
    audio: Any
    video: Any


SingleInput = TextInput | ImageInput | AudioInput | VideoInput | MessageInput | MultimodalInput
PairableInput = TextInput | ImageInput | AudioInput | VideoInput | MultimodalInput
PairInput = tuple[PairableInput, PairableInput] | list[PairableInput]

# A single modality name, or the sorted tuple of the keys of a multimodal dict input.
Modality = (
    Literal["text", "image", "audio", "video", "message"] | tuple[Literal["text", "image", "audio", "video"], ...]
)

ProcessorArgName = Literal["text", "images", "audio", "videos", "message"]
MessageFormat = Literal["auto", "structured", "flat"]

# The keyword a transformers processor takes each modality under (`processor(images=...)`).
MODALITY_TO_PROCESSOR_ARG: dict[Modality, ProcessorArgName] = {
    "text": "text",
    "image": "images",
    "audio": "audio",
    "video": "videos",
    "message": "message",
}

# The keys a multimodal dict input may use.
MULTIMODAL_DICT_KEYS = frozenset({"text", "image", "audio", "video"})
