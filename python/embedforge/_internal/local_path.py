"""Resolving model paths: everything is local, so a name that is not a folder fails at once."""

from __future__ import annotations

import os

from embedforge.exceptions import ModelNotFoundError


def require_local_dir(path: str | os.PathLike, argument: str) -> str:
    """Return ``path`` as a string if it is an existing folder, else raise ModelNotFoundError explaining why."""
    text = os.fspath(path)
    expanded = os.path.expanduser(text)
    if os.path.isdir(expanded):
        return expanded
    if os.path.exists(expanded):
        raise ModelNotFoundError(f"{argument}={text!r} is a file; expected a model folder")
    looks_like_hub_id = (
        text.count("/") <= 1 and not text.startswith((".", "/", "~")) and os.sep not in text.replace("/", "", 1)
    )
    if looks_like_hub_id:
        raise ModelNotFoundError(
            f"{argument}={text!r} is not a local folder. embedforge never downloads models from a hub: "
            "download the model folder yourself and pass its local path."
        )
    raise ModelNotFoundError(f"{argument}={text!r}: no such folder")
