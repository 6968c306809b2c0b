"""SentenceTransformerDataCollator: rows of texts (+ label) -> tokenized ``{column}_{feature}`` tensors."""

from __future__ import annotations

from dataclasses import dataclass

from embedforge.base.data_collator import DEFAULT_LABEL_COLUMNS, BaseDataCollator


@dataclass
class SentenceTransformerDataCollator(BaseDataCollator):
    """Collates rows for a SentenceTransformer's losses (see :class:`BaseDataCollator`)."""


__all__ = ["DEFAULT_LABEL_COLUMNS", "SentenceTransformerDataCollator"]
