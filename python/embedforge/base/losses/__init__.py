"""What every model kind's losses share: column checks, merged forward passes and the gradient cache."""

from __future__ import annotations

from embedforge.base.losses.base import Loss
from embedforge.base.losses.gradcache import (
    CachedLossMixin,
    GradCacheMixin,
    RandContext,
    has_static_embedding_input,
    uses_gradient_cache,
)
from embedforge.base.losses.merged_forward import column_merging_disabled, embed_columns

__all__ = [
    "CachedLossMixin",
    "GradCacheMixin",
    "Loss",
    "RandContext",
    "column_merging_disabled",
    "embed_columns",
    "has_static_embedding_input",
    "uses_gradient_cache",
]
