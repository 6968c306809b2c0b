"""Mean-pooled embedding lookup whose weight gradient is row-sparse (only the rows the batch used).

``nn.EmbeddingBag`` (dense mode) back-propagates into a zero-filled matrix the size of the whole
vocabulary, once per call; a StaticEmbedding batch of 2048 texts touches about a tenth of the
rows. Here the backward sums the per-text gradients of each used row with one weighted
``embedding_bag`` over the output gradient and returns a coalesced sparse COO gradient holding those rows only. The forward is
``F.embedding_bag(mode="mean")`` itself, so outputs are unchanged; the gradient's values equal the
dense one's rows (up to the order of the additions).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor


class BagMeanRowGradient(torch.autograd.Function):
    """``embedding_bag(ids, weight, offsets, mode="mean")`` with a row-sparse weight gradient."""

    @staticmethod
    def forward(ctx: Any, input_ids: Tensor, offsets: Tensor, weight: Tensor) -> Tensor:
        ctx.save_for_backward(input_ids, offsets)
        ctx.weight_shape = weight.shape
        return F.embedding_bag(input_ids, weight, offsets, mode="mean")

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[None, None, Tensor | None]:
        if not ctx.needs_input_grad[2]:
            return None, None, None
        input_ids, offsets = ctx.saved_tensors
        return None, None, row_sparse_bag_mean_grad(input_ids, offsets, grad_output, ctx.weight_shape)


def row_sparse_bag_mean_grad(
    input_ids: Tensor, offsets: Tensor, grad_output: Tensor, weight_shape: torch.Size
) -> Tensor:
    """The weight gradient of a mean ``embedding_bag`` as a coalesced sparse COO tensor of the used rows."""
    tokens = input_ids.numel()
    bags = grad_output.shape[0]
    dim = weight_shape[1]
    if tokens == 0:
        empty = torch.empty(1, 0, dtype=torch.long, device=grad_output.device)
        values = grad_output.new_zeros(0, dim)
        return torch.sparse_coo_tensor(empty, values, weight_shape, is_coalesced=True, check_invariants=False)
    ends = torch.cat([offsets[1:], offsets.new_tensor([tokens])])
    counts = ends - offsets
    bag_of_token = torch.repeat_interleave(torch.arange(bags, device=offsets.device), counts)
    # Each token passes on its text's gradient divided by the text's length (an empty text has no tokens).
    scale = 1.0 / counts.clamp_min(1).to(grad_output.dtype)
    rows, row_of_token = torch.unique(input_ids, sorted=True, return_inverse=True)
    # Group the tokens by row: each used row's gradient is the 1/length-weighted sum of the gradients
    # of the texts it occurs in, which is itself a weighted-sum embedding_bag over grad_output's rows.
    order = torch.argsort(row_of_token, stable=True)
    group_starts = torch.zeros(rows.numel(), dtype=torch.long, device=offsets.device)
    group_starts[1:] = torch.cumsum(torch.bincount(row_of_token, minlength=rows.numel()), 0)[:-1]
    texts = bag_of_token[order]
    values = F.embedding_bag(texts, grad_output.contiguous(), group_starts, mode="sum", per_sample_weights=scale[texts])
    # The rows are unique and sorted by construction: skip torch's (costly) invariant check.
    return torch.sparse_coo_tensor(rows.unsqueeze(0), values, weight_shape, is_coalesced=True, check_invariants=False)


def restore_coalesced_flag(param: Tensor) -> None:
    """A post-accumulate-grad hook: mark ``param``'s sparse gradient coalesced when its rows are unique and sorted.

    Autograd stores a parameter's first sparse gradient without the coalesced flag that
    :func:`row_sparse_bag_mean_grad` set, so gradient clipping and the optimizer would sort and merge
    the rows again (several milliseconds per step for a batch's few thousand rows). Strictly
    increasing row indices (one check over the row ids) prove there is nothing to merge. A gradient
    summed over several backward passes repeats rows and is left alone.
    """
    grad = param.grad
    if grad is None or not grad.is_sparse or grad.is_coalesced() or grad.sparse_dim() != 1:
        return
    rows = grad._indices()[0]
    if rows.numel() > 1 and not bool((rows[1:] > rows[:-1]).all()):
        return
    param.grad = torch.sparse_coo_tensor(
        grad._indices(), grad._values(), grad.shape, is_coalesced=True, check_invariants=False
    )
