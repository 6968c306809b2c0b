"""The model card shared by every model kind: its data, the README.md renderer and the training callback."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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


__all__ = ["BaseModelCardData", "ModelCardCallback", "generate_model_card", "get_losses", "write_model_card"]
