"""The model card: the README.md written with every saved model, and the data and callback behind it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from embedforge.model_card.data import SentenceTransformerModelCardData, get_losses
from embedforge.model_card.render import generate_model_card, write_model_card

if TYPE_CHECKING:
    from embedforge.model_card.callback import ModelCardCallback, SentenceTransformerModelCardCallback

#: Names served from callback.py on first use: it imports transformers' Trainer machinery (slow).
_LAZY = {"ModelCardCallback", "SentenceTransformerModelCardCallback"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from embedforge.model_card import callback

        return getattr(callback, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ModelCardCallback",
    "SentenceTransformerModelCardCallback",
    "SentenceTransformerModelCardData",
    "generate_model_card",
    "get_losses",
    "write_model_card",
]
