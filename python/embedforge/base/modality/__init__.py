"""Modalities: what kind of input a sample is, and how a batch of inputs reaches a processor.

The sentence-transformers 6 path ``sentence_transformers.base.modality``. The pieces:

* :mod:`.media_paths`: does a string name an image, video or audio file;
* :mod:`.detection`: :func:`infer_modality` and :func:`infer_batch_modality`;
* :mod:`.media_unwrap`: raw values and metadata out of wrapped audio and video;
* :mod:`.formatter`: :class:`InputFormatter`, batches grouped by modality or turned into chat messages;
* :mod:`.unsupported`: the error for a modality a model cannot encode.
"""

from __future__ import annotations

import logging

from embedforge.base.modality.detection import (
    format_modality,
    infer_batch_modality,
    infer_modality,
    is_message_dict,
    is_non_text_pair,
)
from embedforge.base.modality.formatter import (
    KNOWN_MODEL_TYPES_MESSAGE_FORMATS,
    PAIR_ROLE_PROBES,
    PAIR_ROLES,
    InputFormatter,
)
from embedforge.base.modality.media_paths import is_audio_url_or_path, is_image_url_or_path, is_video_url_or_path
from embedforge.base.modality.unsupported import raise_unsupported_modality_error
from embedforge.base.modality_types import AudioDecoder, PILImage, VideoDecoder

logger = logging.getLogger(__name__)

# sentence-transformers' name for the pair check; its tests and callers import it from here.
_is_non_text_pair = is_non_text_pair

__all__ = [
    "KNOWN_MODEL_TYPES_MESSAGE_FORMATS",
    "PAIR_ROLES",
    "PAIR_ROLE_PROBES",
    "AudioDecoder",
    "InputFormatter",
    "PILImage",
    "VideoDecoder",
    "format_modality",
    "infer_batch_modality",
    "infer_modality",
    "is_audio_url_or_path",
    "is_image_url_or_path",
    "is_message_dict",
    "is_non_text_pair",
    "is_video_url_or_path",
    "raise_unsupported_modality_error",
]
