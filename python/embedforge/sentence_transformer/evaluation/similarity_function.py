"""``SimilarityFunction`` under the evaluation package, where older scripts import it from."""

from __future__ import annotations

from embedforge.util import SimilarityFunction

__all__ = ["SimilarityFunction"]
