"""The SentenceTransformer model card: its data class, callback and README.md writer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from embedforge.base.model_card.data import BaseModelCardData
from embedforge.base.model_card.render import generate_model_card
from embedforge.base.model_card.render import write_model_card as write_card


@dataclass
class SentenceTransformerModelCardData(BaseModelCardData):
    """Facts for the README.md of a SentenceTransformer (see :class:`BaseModelCardData` for the fields)."""


if TYPE_CHECKING:
    from embedforge.base.model_card.callback import ModelCardCallback as SentenceTransformerModelCardCallback


def __getattr__(name: str) -> Any:
    # The callback imports transformers' Trainer machinery, which `import embedforge` should not pay for.
    if name == "SentenceTransformerModelCardCallback":
        from embedforge.base.model_card.callback import ModelCardCallback

        return ModelCardCallback
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def write_model_card(
    model: Any, folder: str, model_name: str | None = None, train_datasets: list[str] | None = None
) -> None:
    """Write README.md for a SentenceTransformer into ``folder`` (see :func:`embedforge.base.model_card.render.write_model_card`)."""
    write_card(model, folder, model_name, train_datasets, card_data_class=SentenceTransformerModelCardData)


__all__ = [
    "SentenceTransformerModelCardCallback",
    "SentenceTransformerModelCardData",
    "generate_model_card",
    "write_model_card",
]
