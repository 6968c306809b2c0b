"""Pick the sparse-gradient optimizer for a model whose trainable weights are StaticEmbedding matrices.

The trainer calls :func:`sparse_static_optimizer_cls_and_kwargs` before it builds its optimizer.
When the Trainer would use ``torch.optim.AdamW`` (``optim="adamw_torch"`` or ``"adamw_torch_fused"``,
the default) on a single process and the model has a StaticEmbedding, it switches the StaticEmbedding
modules to row-sparse gradients and returns :class:`SparseGradientAdamW` with the very same keyword
arguments. Parameter groups, weight decay, schedule, clipping and the update arithmetic stay as they
were; what goes away is the vocabulary-sized dense gradient built, zero-filled and freed each step.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from embedforge.optim.sparse_adamw import SparseGradientAdamW


def static_embedding_modules(model: nn.Module) -> list[nn.Module]:
    """The StaticEmbedding modules of ``model`` whose weights are trained."""
    from embedforge.models.static_embedding import StaticEmbedding

    return [
        module
        for module in model.modules()
        if isinstance(module, StaticEmbedding) and module.embedding.weight.requires_grad
    ]


def sparse_static_optimizer_cls_and_kwargs(model: nn.Module, args: Any) -> tuple[type, dict[str, Any]] | None:
    """``(SparseGradientAdamW, kwargs)`` for ``Trainer.optimizer_cls_and_kwargs``, or None when it does not apply.

    Applies when ``args`` selects torch's AdamW, training runs in one process, and ``model`` has a
    trainable StaticEmbedding; in that case those modules are switched to sparse row gradients.
    """
    from transformers import Trainer

    statics = static_embedding_modules(model)
    if not statics or getattr(args, "world_size", 1) != 1:
        return None
    # Parameters spread over devices other than the CPU keep the stock path (only CPU is measured).
    if any(module.embedding.weight.device.type != "cpu" for module in statics):
        return None
    optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    if optimizer_cls is not torch.optim.AdamW or optimizer_kwargs.get("amsgrad"):
        return None
    for module in statics:
        module.sparse_gradients = True
    return SparseGradientAdamW, dict(optimizer_kwargs)
