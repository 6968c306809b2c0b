"""What every model kind's losses share: the column checks of :class:`Loss` and the gradient cache."""

from __future__ import annotations

from embedforge.base.losses.base import Loss
from embedforge.base.losses.gradcache import GradCacheMixin, RandContext

__all__ = ["GradCacheMixin", "Loss", "RandContext"]
