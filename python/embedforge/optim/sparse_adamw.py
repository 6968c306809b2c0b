"""AdamW that takes sparse-row gradients and still applies the exact dense AdamW update.

A StaticEmbedding's gradient touches only the rows of the tokens in the batch (a few thousand of
30k), but dense AdamW updates every row each step: rows without a gradient still see their moments
decay and their weights move. This optimizer keeps those semantics bit for bit. What it saves is the
cost around the update: the model hands over ``(rows, values)`` as a coalesced sparse COO gradient
instead of a freshly allocated, zero-filled 30k x 1024 dense one; here the rows are scattered into
one persistent dense buffer, torch's own (fused or foreach) AdamW kernel runs over it, and only the
touched rows are zeroed again. The arithmetic is torch.optim.AdamW's, on the same dense gradient.

For the common case (a 2-D float32 parameter on the CPU) the whole step, every row included, is
one pass of the Rust core (``embedforge._core.adamw_sparse_rows``) over the weights and the two
moments, with the same arithmetic; no dense gradient is built at all. The state (``step``,
``exp_avg``, ``exp_avg_sq``) is torch's, so checkpoints load into either optimizer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from embedforge import _core
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
        native: list[tuple[Tensor, dict[str, Any], Tensor]] = []
        touched: list[tuple[Tensor, Tensor, Tensor]] = []
        for group in self.param_groups:
            for param in group["params"]:
                sparse = param.grad
                if _native_applies(param, group, self.state.get(param)):
                    native.append((param, group, sparse))
                    # Hidden from torch's step below, which then leaves this parameter alone.
                    param.grad = None
                    continue
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
            for param, _, sparse in native:
                param.grad = sparse
        for param, group, sparse in native:
            self._native_step(param, group, sparse)
        return loss

    def _native_step(self, param: Tensor, group: dict[str, Any], grad: Tensor) -> None:
        """One step of ``param`` by the Rust core, with torch's state layout."""
        state = self.state[param]
        if len(state) == 0:
            # As torch.optim.AdamW initialises it (a float32 step counter unless the default dtype is float64).
            scalar_dtype = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
            state["step"] = torch.tensor(0.0, dtype=scalar_dtype)
            state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["step"] += 1
        rows, values = _unique_rows(grad)
        beta1, beta2 = group["betas"]
        _core.adamw_sparse_rows(
            param.detach().numpy(),
            state["exp_avg"].numpy(),
            state["exp_avg_sq"].numpy(),
            rows.contiguous().numpy(),
            values.to(torch.float32).contiguous().numpy(),
            lr=float(group["lr"]),
            beta1=float(beta1),
            beta2=float(beta2),
            eps=float(group["eps"]),
            weight_decay=float(group["weight_decay"]),
            step=int(state["step"].item()),
            maximize=bool(group.get("maximize", False)),
        )


def _unique_rows(grad: Tensor) -> tuple[Tensor, Tensor]:
    """The row indices (strictly increasing) and values of a row-sparse gradient, merging repeated rows if any.

    Gradient clipping scales the values in place, which clears the tensor's coalesced flag even though
    its rows stay unique and sorted; checking the order (one pass over the row ids) spares the sort
    and merge that ``coalesce`` would then redo.
    """
    if not grad.is_coalesced():
        rows = grad._indices()[0]
        if rows.numel() > 1 and not bool((rows[1:] > rows[:-1]).all()):
            grad = grad.coalesce()
        else:
            return rows, grad._values()
    return grad.indices()[0], grad.values()


def _native_applies(param: Tensor, group: dict[str, Any], state: dict[str, Any] | None) -> bool:
    """Whether the Rust step covers ``param``: a row-sparse gradient on a contiguous 2-D float32 CPU matrix,
    plain options (no capturable or differentiable step), and moments, if any, of the same layout."""
    grad = param.grad
    if grad is None or not grad.is_sparse or grad.sparse_dim() != 1 or grad.dense_dim() != 1:
        return False
    if param.dim() != 2 or param.dtype != torch.float32 or param.device.type != "cpu" or not param.is_contiguous():
        return False
    if group.get("capturable") or group.get("differentiable"):
        return False
    # Moments restored from a checkpoint in another layout stay with torch's kernel.
    moments = [state.get(key) for key in ("exp_avg", "exp_avg_sq")] if state else []
    return all(
        isinstance(m, Tensor) and m.shape == param.shape and m.dtype == torch.float32 and m.is_contiguous()
        for m in moments
    )
