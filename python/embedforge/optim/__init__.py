"""Optimizers for embedforge training: exact dense AdamW fed with sparse-row gradients."""

from __future__ import annotations

from embedforge.optim.sparse_adamw import SparseGradientAdamW
from embedforge.optim.static_training import sparse_static_optimizer_cls, static_embedding_modules

__all__ = ["SparseGradientAdamW", "sparse_static_optimizer_cls", "static_embedding_modules"]
