"""AdamW that takes sparse-row gradients and still applies the exact dense AdamW update.

A StaticEmbedding's gradient touches only the rows of the tokens in the batch (a few thousand of
30k), but dense AdamW updates every row each step: rows without a gradient still see their moments
decay and their weights move. This optimizer keeps those semantics bit for bit. What it saves is the
cost around the update: the model hands over ``(rows, values)`` as a coalesced sparse COO gradient
instead of a freshly allocated, zero-filled 30k x 1024 dense one; here the rows are scattered into
one persistent dense buffer, torch's own (fused or foreach) AdamW kernel runs over it, and only the
touched rows are zeroed again. The arithmetic is torch.optim.AdamW's, on the same dense gradient.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from embedforge.exceptions import InvalidArgumentError


class SparseGradientAdamW(torch.optim.AdamW):
    """``torch.optim.AdamW`` (same arguments, state and results) that also accepts sparse-row gradients."""

    def __init__(self, params: Iterable[Any], *args: Any, **kwargs: Any) -> None:
        super().__init__(params, *args, **kwargs)
        for group in self.param_groups:
            if group.get("amsgrad"):
                # Sparse rows would work with amsgrad too, but nothing needs it and it is untested.
                raise InvalidArgumentError("SparseGradientAdamW does not support amsgrad=True; use torch.optim.AdamW")
        # Per parameter: a dense gradient buffer kept all-zero between steps (not part of the state dict).
        self._dense_buffers: dict[Tensor, Tensor] = {}

    def _densify(self, param: Tensor) -> Tensor | None:
        """Swap ``param``'s sparse gradient for the dense buffer holding it; returns the touched rows."""
        grad = param.grad
        if grad is None or not grad.is_sparse:
            return None
        if grad.sparse_dim() != 1:
            raise InvalidArgumentError(
                f"SparseGradientAdamW expects row-sparse gradients (sparse_dim 1); got sparse_dim {grad.sparse_dim()}"
            )
        grad = grad.coalesce()
        rows = grad.indices()[0]
        buffer = self._dense_buffers.get(param)
        if buffer is None or buffer.shape != param.shape or buffer.dtype != param.dtype:
            buffer = torch.zeros_like(param, memory_format=torch.contiguous_format)
            self._dense_buffers[param] = buffer
        buffer.index_copy_(0, rows, grad.values().to(buffer.dtype))
        param.grad = buffer
        return rows

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One AdamW step; sparse gradients are applied as the dense gradient they stand for."""
        loss = None
        if closure is not None:
            # Re-evaluate first (as torch's AdamW does), so the closure's backward never lands in the buffers.
            with torch.enable_grad():
                loss = closure()
        touched: list[tuple[Tensor, Tensor, Tensor]] = []
        for group in self.param_groups:
            for param in group["params"]:
                sparse = param.grad
                rows = self._densify(param)
                if rows is not None:
                    touched.append((param, sparse, rows))
        try:
            super().step()
        finally:
            for param, sparse, rows in touched:
                # Leave the buffer all-zero for the next step and give the parameter its own gradient back,
                # so zero_grad never frees or zeroes the buffer.
                self._dense_buffers[param].index_fill_(0, rows, 0.0)
                param.grad = sparse
        return loss
