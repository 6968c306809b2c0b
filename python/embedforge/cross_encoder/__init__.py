"""Cross-encoders: models that score a text pair jointly (``sentence_transformers.cross_encoder``)."""

from __future__ import annotations

from embedforge.cross_encoder.model import CrossEncoder

__all__ = ["CrossEncoder"]
