"""File helpers under sentence-transformers' names, for local model folders (there is no hub).

``load_file_path`` and ``load_dir_path`` accept the same arguments as sentence-transformers'
so calls run unchanged; the hub arguments (``token``, ``cache_folder``, ``revision``,
``local_files_only``) have nothing to act on and are ignored.
"""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path, PureWindowsPath
from typing import Any

from tqdm.autonotebook import tqdm

from embedforge._internal.local_path import require_local_dir
from embedforge.exceptions import InvalidArgumentError

#: Bytes read per step while downloading.
DOWNLOAD_BLOCK = 1 << 20


class disabled_tqdm(tqdm):
    """A tqdm progress bar that is always disabled (to silence libraries that take a bar class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["disable"] = True
        super().__init__(*args, **kwargs)

    def __delattr__(self, attr: str) -> None:
        # A disabled bar never sets ``_lock``; some callers delete it regardless.
        try:
            super().__delattr__(attr)
        except AttributeError:
            if attr != "_lock":
                raise


def _relative(name: str, value: str | Path) -> str:
    """``value`` as a path that stays inside the model folder, or InvalidArgumentError."""
    text = os.fspath(value)
    windows = PureWindowsPath(text)
    if windows.anchor or Path(text).is_absolute() or ".." in windows.parts or "\0" in text:
        raise InvalidArgumentError(f"{name}={text!r}; expected a path relative to the model folder, without '..'")
    return text


def load_file_path(
    model_name_or_path: str,
    filename: str | Path,
    subfolder: str = "",
    token: bool | str | None = None,
    cache_folder: str | None = None,
    revision: str | None = None,
    local_files_only: bool = False,
) -> str | None:
    """The path of ``subfolder/filename`` inside the model folder, or None when it has no such file.

    Raises ModelNotFoundError when ``model_name_or_path`` is not a local folder.
    """
    folder = require_local_dir(model_name_or_path, "model_name_or_path")
    path = os.path.join(folder, _relative("subfolder", subfolder), _relative("filename", filename))
    return path if os.path.isfile(path) else None


def load_dir_path(
    model_name_or_path: str,
    subfolder: str,
    token: bool | str | None = None,
    cache_folder: str | None = None,
    revision: str | None = None,
    local_files_only: bool = False,
) -> str | None:
    """The path of ``subfolder`` inside the model folder, or None when it has no such folder."""
    folder = require_local_dir(model_name_or_path, "model_name_or_path")
    path = os.path.join(folder, _relative("subfolder", subfolder))
    return path if os.path.isdir(path) else None


def is_sentence_transformer_model(
    model_name_or_path: str,
    token: bool | str | None = None,
    cache_folder: str | None = None,
    revision: str | None = None,
    local_files_only: bool = False,
) -> bool:
    """Whether the model folder is a sentence-transformers folder (has ``modules.json``)."""
    return load_file_path(model_name_or_path, "modules.json") is not None


def http_get(url: str, path: str) -> None:
    """Download ``url`` to ``path`` with a progress bar; the file appears only once complete.

    Raises the underlying ``urllib.error.URLError``/``HTTPError`` when the download fails.
    """
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise InvalidArgumentError(f"url={url!r}; expected an http:// or https:// address")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    partial = f"{path}.part"
    try:
        with urllib.request.urlopen(url) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(unit="B", unit_scale=True, total=total, desc=os.path.basename(path)) as bar:
                while block := response.read(DOWNLOAD_BLOCK):
                    out.write(block)
                    bar.update(len(block))
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
