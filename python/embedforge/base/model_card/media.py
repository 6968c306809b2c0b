"""Images, audio and video in model cards: recognise them, describe them in a line, save them as files.

A card cannot embed a PIL image or a waveform, so the usage snippet and the dataset samples refer to
files written next to the README (``assets/image_0.jpg``, ``assets/audio_0.wav``, ...). Identical
media are written once: a content hash maps each one to the file already written for it. Pillow,
torchaudio and PyAV are optional; a medium whose writer is missing is described, not saved.
"""

from __future__ import annotations

import importlib
import logging
import os
from typing import Any

import numpy as np
import torch

from embedforge.base.model_card import video

logger = logging.getLogger(__name__)

#: Longer texts are cut in the samples table (the card is for reading, not for reproducing the data).
MAX_EXAMPLE_CHARS = 1000
#: Lists longer than this show only their first elements in the samples table.
MAX_EXAMPLE_LIST = 5
#: Frames per second of a saved video whose metadata gives none.
DEFAULT_VIDEO_FPS = 24


def pil_image_class() -> type | None:
    """``PIL.Image.Image`` when Pillow is installed, else None."""
    try:
        from PIL.Image import Image
    except ImportError:
        return None
    return Image


def is_pil_image(value: Any) -> bool:
    """Whether ``value`` is a PIL image (False when Pillow is not installed)."""
    image_class = pil_image_class()
    return image_class is not None and isinstance(value, image_class)


def is_audio_dict(value: Any) -> bool:
    """An audio sample as ``datasets`` decodes it: ``{"array": ..., "sampling_rate": ...}``."""
    return isinstance(value, dict) and "array" in value and "sampling_rate" in value


def is_video_dict(value: Any) -> bool:
    """A decoded video sample: ``{"array": frames, "video_metadata": {...}}``."""
    return isinstance(value, dict) and "array" in value and "video_metadata" in value


def is_typed_media_dict(value: Any) -> bool:
    """An audio or video sample dict, as opposed to a multimodal input such as ``{"text": ..., "image": ...}``."""
    return is_audio_dict(value) or is_video_dict(value)


def is_text_example(item: Any) -> bool:
    """A text, or a list of texts (a CrossEncoder pair): nothing to save as a file."""
    return isinstance(item, str) or (isinstance(item, list) and all(isinstance(part, str) for part in item))


def asset_hash(value: Any) -> int | None:
    """A hash of a medium's content, so identical media share one file; None for what cannot be saved."""
    # Lazily decoded datasets media carry their encoded source: hashing it needs no decoding, and tells
    # apart clips whose decoded metadata (duration, size) happens to match.
    encoded = getattr(value, "_hf_encoded", None)
    if isinstance(encoded, dict) and (encoded.get("bytes") or encoded.get("path")):
        return hash((encoded.get("path"), encoded.get("bytes")))
    if is_pil_image(value):
        return hash((value.tobytes(), value.size, value.mode))
    if isinstance(value, dict) and "array" in value:
        array = value["array"]
        if isinstance(array, torch.Tensor):
            array = array.detach().cpu().numpy()
        if isinstance(array, np.ndarray):
            return hash((array.tobytes(), array.shape, value.get("sampling_rate")))
    return None


def _save_audio(value: dict[str, Any], path: str) -> bool:
    """Write an audio dict as a WAV file with torchaudio; False when torchaudio cannot."""
    try:
        # Imported by name: an optional package without type stubs.
        torchaudio = importlib.import_module("torchaudio")
        waveform = torch.as_tensor(value["array"]).float().cpu()
        if waveform.ndim == 1:
            waveform = waveform.unsqueeze(0)  # torchaudio wants (channels, samples)
        torchaudio.save(path, waveform, value["sampling_rate"])
    except Exception as error:  # noqa: BLE001 - a missing backend only costs the card a file
        logger.debug("Could not save audio for the model card: %s", error)
        return False
    return True


def _video_frames_uint8(array: Any) -> np.ndarray:
    """Frames as a (time, height, width, channels) uint8 array, from (T, C, H, W) or (T, H, W, C), 0-1 or 0-255."""
    frames = torch.as_tensor(array)
    if frames.ndim == 5:
        frames = frames[0]
    if frames.ndim == 4 and frames.shape[1] in (1, 3, 4) and frames.shape[-1] not in (1, 3, 4):
        frames = frames.permute(0, 2, 3, 1)
    if frames.dtype != torch.uint8:
        if frames.is_floating_point() and frames.max() <= 1.0:
            frames = frames * 255
        frames = frames.clamp(0, 255).to(torch.uint8)
    return frames.cpu().numpy()


def _save_video(value: dict[str, Any], path: str) -> bool:
    """Write a video dict as an H.264 MP4 with PyAV; False when PyAV cannot."""
    try:
        av = importlib.import_module("av")  # PyAV, optional
        frames = _video_frames_uint8(value["array"])
        fps = (value.get("video_metadata") or {}).get("fps", DEFAULT_VIDEO_FPS)
        with av.open(path, mode="w") as container:
            stream = container.add_stream("h264", rate=round(fps))
            stream.height, stream.width = frames.shape[1], frames.shape[2]
            stream.pix_fmt = "yuv420p"
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():  # flush the encoder
                container.mux(packet)
    except Exception as error:  # noqa: BLE001 - a missing codec only costs the card a file
        logger.debug("Could not save video for the model card: %s", error)
        return False
    return True


def save_asset(value: Any, assets_dir: str, index: int, cache: dict[int, str], prefix: str = "") -> str | None:
    """Write one medium under ``assets_dir`` and return its path relative to the card (``assets/...``).

    ``cache`` maps content hashes to files already written, so a repeated medium reuses its file.
    Returns None (after a warning) for a value that cannot be written.
    """
    content_hash = asset_hash(value)
    if content_hash is not None and content_hash in cache:
        return cache[content_hash]
    os.makedirs(assets_dir, exist_ok=True)
    relative = _write_asset(value, assets_dir, index, prefix)
    if relative is None:
        logger.warning(f"Could not save predict example asset of type {type(value).__name__}")
        return None
    if content_hash is not None:
        cache[content_hash] = relative
    return relative


def _write_asset(value: Any, assets_dir: str, index: int, prefix: str) -> str | None:
    """Write ``value`` in the file format of its kind; the relative path, or None if it cannot be written."""
    if video.is_video_decoder(value):
        # Copying the source file keeps the original encoding and needs no decoding.
        copied = video.copy_source(value, assets_dir, f"{prefix}video_{index}")
        if copied is not None:
            return copied
        try:
            value = video.to_video_dict(value)
        except RuntimeError as error:
            logger.debug("Could not decode a video for the model card: %s", error)
            return None
    if is_pil_image(value):
        filename = f"{prefix}image_{index}.jpg"
        # JPEG has no alpha or palette: convert so any image mode can be written.
        value.convert("RGB").save(os.path.join(assets_dir, filename))
        return f"assets/{filename}"
    if is_audio_dict(value):
        filename = f"{prefix}audio_{index}.wav"
        return f"assets/{filename}" if _save_audio(value, os.path.join(assets_dir, filename)) else None
    if is_video_dict(value):
        filename = f"{prefix}video_{index}.mp4"
        return f"assets/{filename}" if _save_video(value, os.path.join(assets_dir, filename)) else None
    return None


def format_example_value(value: Any) -> str:
    """One cell of the samples table: media as a short description, long texts and lists cut, Markdown escaped."""
    if video.is_video_decoder(value):
        return video.describe(value)
    if is_pil_image(value):
        return f"&lt;image {value.width}x{value.height}&gt;"
    if is_audio_dict(value):
        seconds = len(value["array"]) / value["sampling_rate"]
        return f"&lt;audio {seconds:.2f}s @ {value['sampling_rate']} Hz&gt;"
    if is_video_dict(value):
        return "&lt;video&gt;"
    if isinstance(value, list) and len(value) > MAX_EXAMPLE_LIST:
        return str(value[:MAX_EXAMPLE_LIST])[:-1] + ", ...]"
    if isinstance(value, str) and len(value) > MAX_EXAMPLE_CHARS:
        value = value[:MAX_EXAMPLE_CHARS] + "..."
    # A newline or a pipe would break the Markdown table row.
    return str(value).replace("\n", "<br>").replace("|", "\\|")


def example_asset_html(value: Any, relative_path: str) -> str:
    """The samples-table cell for a saved medium: an inline image or audio player."""
    if is_pil_image(value):
        return f'<img src="{relative_path}" width="200">'
    if is_audio_dict(value):
        seconds = len(value["array"]) / value["sampling_rate"]
        return f'<audio controls src="{relative_path}"><code>&lt;audio {seconds:.2f}s&gt;</code></audio>'
    if video.is_video_decoder(value):
        return video.html(value, relative_path)
    return f"<code>{format_example_value(value)}</code>"


def is_saveable_example(value: Any) -> bool:
    """Media the samples table shows as a saved file rather than as text."""
    return is_pil_image(value) or is_audio_dict(value) or video.is_video_decoder(value)
