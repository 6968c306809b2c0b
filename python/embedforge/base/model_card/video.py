"""torchcodec video decoders in model cards: recognise them, describe them, turn them into frames.

``datasets`` hands out a video column's values as lazily decoding ``torchcodec`` VideoDecoder
objects. A card cannot show a decoder: it copies the source file, or decodes the frames so the
clip can be re-encoded or passed to the model. torchcodec is optional; without it no value is a
decoder. The class is read from ``embedforge.base.model_card.VideoDecoder`` on every call, so code
(and tests) that substitute a stand-in there are honoured.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import Any

import torch

_PACKAGE = "embedforge.base.model_card"


def video_decoder_class() -> type | None:
    """The VideoDecoder class in use (torchcodec's, a substitute set on the package, or None)."""
    package = sys.modules.get(_PACKAGE)
    decoder_class = getattr(package, "VideoDecoder", None)
    return decoder_class if isinstance(decoder_class, type) or callable(decoder_class) else None


def is_video_decoder(value: Any) -> bool:
    """Whether ``value`` is a video decoder."""
    decoder_class = video_decoder_class()
    return isinstance(decoder_class, type) and isinstance(value, decoder_class)


def describe(decoder: Any) -> str:
    """A one-line, HTML-escaped description: duration, size and frame rate."""
    meta = decoder.metadata
    return f"&lt;video {meta.duration_seconds:.2f}s {meta.width}x{meta.height} @ {meta.average_fps:.0f}fps&gt;"


def html(decoder: Any, relative_path: str) -> str:
    """An inline video player for a saved clip, with its duration as the fallback text."""
    seconds = decoder.metadata.duration_seconds
    return f'<video controls width="200" src="{relative_path}"><code>&lt;video {seconds:.2f}s&gt;</code></video>'


def copy_source(decoder: Any, assets_dir: str, filename_stem: str) -> str | None:
    """Copy the decoder's source file into ``assets_dir`` (keeping its extension); None without a source file."""
    source = getattr(decoder.metadata, "path", None)
    if not source or not os.path.isfile(source):
        return None
    filename = filename_stem + (os.path.splitext(source)[1] or ".mp4")
    os.makedirs(assets_dir, exist_ok=True)
    shutil.copy2(source, os.path.join(assets_dir, filename))
    return f"assets/{filename}"


def _frames(decoder: Any) -> torch.Tensor | None:
    """All frames a decoder gives, by batch access (all, or all but a broken last one), else one by one."""
    count = len(decoder)
    for wanted in (count, count - 1):
        try:
            return decoder.get_frames_at(list(range(wanted))).data
        except Exception:  # noqa: BLE001 - torchcodec raises various errors on damaged streams
            continue
    collected = []
    for index in range(count):
        try:
            collected.append(decoder[index])
        except Exception:  # noqa: BLE001 - keep the frames decoded before the damage
            break
    return torch.stack(collected) if collected else None


def to_video_dict(decoder: Any) -> dict[str, Any]:
    """The decoder's clip as ``{"array": frames, "video_metadata": {...}}``, the form models take.

    Falls back to a fresh decoder of the source file when the given one cannot decode.

    Raises:
        RuntimeError: when no strategy yields a frame.
    """
    meta = decoder.metadata
    frames = _frames(decoder)
    source = getattr(meta, "path", None)
    if frames is None and source:
        try:
            frames = _frames(video_decoder_class()(source))  # type: ignore[misc]
        except Exception:  # noqa: BLE001 - the error below says what matters
            frames = None
    if frames is None:
        raise RuntimeError(f"Could not decode frames from VideoDecoder (source: {source!r})")
    return {
        "array": frames,
        "video_metadata": {
            "fps": meta.average_fps,
            "total_num_frames": meta.num_frames,
            "frames_indices": list(range(frames.shape[0])),
        },
    }
