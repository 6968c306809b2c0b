"""Optimizers for embedforge training: exact dense AdamW fed with sparse-row gradients."""

from __future__ import annotations

from embedforge.optim.sparse_adamw import SparseGradientAdamW

__all__ = ["SparseGradientAdamW"]
