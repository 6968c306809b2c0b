"""Turn wrapped audio and video inputs into the raw values a processor takes, collecting their metadata.

Audio may come as ``{"array", "sampling_rate"}`` or a torchcodec ``AudioDecoder``; video as
``{"array", "video_metadata"}``, a ``VideoDecoder`` or a list of frames. Processors take one
``sampling_rate`` per batch and one ``video_metadata`` list aligned with the videos, so those are
gathered into ``extra_modality_kwargs[modality]`` while the values are unwrapped.
"""

from __future__ import annotations

from typing import Any

from embedforge.base.modality.detection import infer_modality
from embedforge.base.modality_types import AudioDecoder, VideoDecoder

__all__ = ["as_sequence", "is_video_frames", "reconcile_video_metadata", "unwrap_audio", "unwrap_video"]


def as_sequence(value: Any) -> list | tuple:
    """``value`` itself when it is a list or tuple, else a one-item list holding it."""
    return value if isinstance(value, (list, tuple)) else [value]


def is_video_frames(value: Any) -> bool:
    """Whether ``value`` is a non-empty list/tuple of images, i.e. the frames of one video."""
    if not isinstance(value, (list, tuple)) or not value:
        return False
    try:
        return all(infer_modality(frame) == "image" for frame in value)
    except ValueError:
        return False


def _record_sampling_rate(sampling_rate: int, extra_modality_kwargs: dict[str, dict[str, Any]]) -> None:
    audio_kwargs = extra_modality_kwargs["audio"]
    known = audio_kwargs.get("sampling_rate")
    # The feature extractor resamples nothing: one rate must hold for the whole batch.
    if known is not None and known != sampling_rate:
        raise ValueError(
            f"This batch mixes audio with different sampling rates ({known} and {sampling_rate}), but the processor "
            "takes one sampling rate per batch. Resample the audio to a common rate, or encode each sampling rate "
            "in its own call."
        )
    audio_kwargs["sampling_rate"] = sampling_rate


def unwrap_audio(value: Any, extra_modality_kwargs: dict[str, dict[str, Any]]) -> Any:
    """The raw waveform(s) inside ``value``; sampling rates go to ``extra_modality_kwargs["audio"]``.

    Raises:
        ValueError: If two samples of the batch give different sampling rates.
    """
    if isinstance(value, (list, tuple)):
        return [unwrap_audio(item, extra_modality_kwargs) for item in value]
    if isinstance(value, dict):
        if "sampling_rate" in value:
            _record_sampling_rate(value["sampling_rate"], extra_modality_kwargs)
        return value["array"]
    if AudioDecoder is not None and isinstance(value, AudioDecoder):
        samples = value.get_all_samples()
        _record_sampling_rate(samples.sample_rate, extra_modality_kwargs)
        # The decoder gives (channels, samples); processors expect one mono channel.
        return samples.data.mean(dim=0).numpy()
    return value


def unwrap_video(value: Any, extra_modality_kwargs: dict[str, dict[str, Any]]) -> Any:
    """The raw video(s) inside ``value``, with one ``video_metadata`` entry recorded per video.

    The entry is None for a video that carries no metadata; :func:`reconcile_video_metadata` settles
    those once the batch is parsed. A list of frames comes back wrapped in a list, so it stays one video.
    """
    if is_video_frames(value):
        value = {"array": value, "video_metadata": None}
    if isinstance(value, (list, tuple)):
        videos: list[Any] = []
        for item in value:
            videos.extend(as_sequence(unwrap_video(item, extra_modality_kwargs)))
        return videos
    metadata = extra_modality_kwargs["video"].setdefault("video_metadata", [])
    if isinstance(value, dict):
        metadata.append(value.get("video_metadata"))
        frames = value["array"]
        return [list(frames)] if isinstance(frames, (list, tuple)) else frames
    if VideoDecoder is not None and isinstance(value, VideoDecoder):
        frames = value.get_frames_in_range(0, len(value)).data
        metadata.append(
            {
                "fps": value.metadata.average_fps,
                "total_num_frames": value.metadata.num_frames,
                "duration": value.metadata.duration_seconds,
                "frames_indices": list(range(frames.shape[0])),
            }
        )
        return frames
    metadata.append(None)
    return value


def _videos_in_order(typed_inputs: list[tuple[Any, Any]]) -> list[Any]:
    videos: list[Any] = []
    for modality, value in typed_inputs:
        if modality == "video":
            videos.extend(as_sequence(value))
        elif isinstance(modality, tuple) and "video" in modality:
            videos.extend(as_sequence(value["video"]))
    return videos


def reconcile_video_metadata(
    typed_inputs: list[tuple[Any, Any]], extra_modality_kwargs: dict[str, dict[str, Any]]
) -> None:
    """Settle the None entries :func:`unwrap_video` recorded, once the whole batch is known.

    With no metadata at all the key is dropped (the processor then uses its defaults). Otherwise each
    missing entry gets the defaults transformers would infer from the frame count, which needs the
    video in memory.

    Raises:
        ValueError: If a video given as a path or URL has no metadata while another video has some.
    """
    video_kwargs = extra_modality_kwargs.get("video")
    if not video_kwargs or "video_metadata" not in video_kwargs:
        return
    metadata = video_kwargs["video_metadata"]
    if all(entry is None for entry in metadata):
        del video_kwargs["video_metadata"]
        if not video_kwargs:
            del extra_modality_kwargs["video"]
        return
    videos = _videos_in_order(typed_inputs)
    for index, (entry, video) in enumerate(zip(metadata, videos, strict=True)):
        if entry is not None:
            continue
        if isinstance(video, str) or not hasattr(video, "__len__"):
            # A partial list would pin metadata to the wrong videos, so refuse rather than guess.
            raise ValueError(
                "This batch mixes videos that carry 'video_metadata' with videos that do not. Defaults can only be "
                "inferred for videos in memory (frame arrays or lists), so pass 'video_metadata' for every video "
                "in the batch or for none of them."
            )
        frame_count = len(video)
        metadata[index] = {
            "total_num_frames": frame_count,
            "fps": None,
            "duration": None,
            "frames_indices": list(range(frame_count)),
        }
