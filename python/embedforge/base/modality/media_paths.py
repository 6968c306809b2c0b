"""Tell whether a string names an image, a video or an audio file (a URL, a local path or a data URI).

A string counts as media only when it clearly is: an http(s) URL without spaces whose path ends in a
known extension, or an existing local file with such an extension. Everything else stays text, so a
sentence that merely mentions ``photo.jpg`` is never sent to an image processor.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

__all__ = ["is_audio_url_or_path", "is_image_url_or_path", "is_video_url_or_path", "looks_like_url"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".wmv", ".flv", ".mkv")
AUDIO_EXTENSIONS = (".mp3", ".wav", ".ogg", ".flac", ".aac")
# Video pages whose URLs carry no file extension.
VIDEO_HOSTS = frozenset({"www.youtube.com", "youtube.com", "youtu.be", "m.youtube.com"})


def looks_like_url(text: str) -> bool:
    """Whether ``text`` is an http(s) URL; a space means it is prose that starts with a URL."""
    return text.startswith(("http://", "https://")) and " " not in text


def _url_part(text: str, part: str) -> str | None:
    """One component of a parsed URL, or None when the URL is malformed (urlparse raises on some)."""
    try:
        return getattr(urlparse(text), part)
    except ValueError:
        return None


def _has_media_extension(text: str, extensions: tuple[str, ...]) -> bool:
    """Whether ``text`` is a URL whose path, or an existing local file whose name, ends in ``extensions``."""
    if looks_like_url(text):
        path = _url_part(text, "path")
        return path is not None and path.lower().endswith(extensions)
    # A local name only counts when the file is there: "see notes.png" as plain text stays text.
    return text.lower().endswith(extensions) and os.path.isfile(text)


def is_image_url_or_path(text: str) -> bool:
    """Whether ``text`` is an image URL, an existing image file, or a ``data:image/`` URI."""
    return text.startswith("data:image/") or _has_media_extension(text, IMAGE_EXTENSIONS)


def is_video_url_or_path(text: str) -> bool:
    """Whether ``text`` is a video URL (by extension, or a YouTube link) or an existing video file."""
    if _has_media_extension(text, VIDEO_EXTENSIONS):
        return True
    return looks_like_url(text) and _url_part(text, "netloc") in VIDEO_HOSTS


def is_audio_url_or_path(text: str) -> bool:
    """Whether ``text`` is an audio URL or an existing audio file."""
    return _has_media_extension(text, AUDIO_EXTENSIONS)
