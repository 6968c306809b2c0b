"""The model card shared by every model kind: its data, the README.md renderer and the training callback."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from embedforge.base.modality_types import AudioDecoder as AudioDecoder
from embedforge.base.modality_types import VideoDecoder as VideoDecoder
from embedforge.base.model_card.data import BaseModelCardData, get_losses
from embedforge.base.model_card.render import generate_model_card, write_model_card

if TYPE_CHECKING:
    from embedforge.base.model_card.callback import ModelCardCallback

#: Names served from callback.py on first use: it imports transformers' Trainer machinery (slow).
_LAZY = {"ModelCardCallback"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from embedforge.base.model_card import callback

        return getattr(callback, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# AudioDecoder / VideoDecoder (torchcodec's classes, or None without torchcodec) live here so that
# code substituting a stand-in (``embedforge.base.model_card.VideoDecoder = ...``) reaches the card:
# model_card/video.py reads the class from this package on every call.
__all__ = ["BaseModelCardData", "ModelCardCallback", "generate_model_card", "get_losses", "write_model_card"]
