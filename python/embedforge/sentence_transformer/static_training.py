"""Pick the sparse-gradient optimizer for a model whose trainable weights include StaticEmbedding matrices.

The trainer hands its optimizer class to :func:`sparse_static_optimizer_cls` before building the
optimizer. When that class is ``torch.optim.AdamW`` (``optim="adamw_torch"`` or the default
``"adamw_torch_fused"``), training runs in one process on the CPU and the model has a trainable
StaticEmbedding, the StaticEmbedding modules switch to row-sparse gradients and the class becomes
:class:`SparseGradientAdamW`, with the same keyword arguments. Parameter groups, weight decay, the
schedule, gradient clipping and the update arithmetic stay as they were; what goes away is the
vocabulary-sized dense gradient that is built, zero-filled, summed and freed each step.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from embedforge.optim.sparse_adamw import SparseGradientAdamW
from embedforge.sentence_transformer.modules.static_embedding import StaticEmbedding


def static_embedding_modules(model: nn.Module) -> list[StaticEmbedding]:
    """The StaticEmbedding modules of ``model`` whose weights are trained."""

    return [
        module
        for module in model.modules()
        if isinstance(module, StaticEmbedding) and module.embedding.weight.requires_grad
    ]


def sparse_static_optimizer_cls(
    model: nn.Module, args: Any, optimizer_cls: Any, optimizer_kwargs: dict[str, Any]
) -> Any:
    """``SparseGradientAdamW`` in place of ``torch.optim.AdamW`` for StaticEmbedding training, else ``optimizer_cls``.

    It also sets ``model``'s StaticEmbedding modules to sparse row gradients when it swaps (only this
    optimizer accepts them) and back to dense ones when it does not, so call it for the optimizer that
    will train ``model``.
    """
    statics = static_embedding_modules(model)
    applies = bool(
        optimizer_cls is torch.optim.AdamW
        and not optimizer_kwargs.get("amsgrad")
        and getattr(args, "world_size", 1) == 1
        # Only the CPU path is measured; other devices keep the dense gradient.
        and all(module.embedding.weight.device.type == "cpu" for module in statics)
    )
    # Set both ways: a model trained sparse before must give dense gradients to any other optimizer.
    for module in statics:
        module.sparse_gradients = applies
    return SparseGradientAdamW if applies and statics else optimizer_cls
