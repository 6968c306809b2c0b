"""torch.distributed helpers that fall back to the single-process answer when no group is initialised."""

from __future__ import annotations

import logging

import torch

from .environment import is_dist_initialized

logger = logging.getLogger(__name__)
_warned_not_distributed = False


def get_rank() -> int:
    """This process's rank in the default process group, 0 when not distributed."""
    return torch.distributed.get_rank() if is_dist_initialized() else 0


def get_world_size() -> int:
    """Processes in the default process group, 1 when not distributed."""
    return torch.distributed.get_world_size() if is_dist_initialized() else 1


def all_gather(tensor: torch.Tensor, with_grad: bool = False) -> torch.Tensor:
    """Every rank's ``tensor`` concatenated along dim 0 (rank order).

    The local slice is always the caller's own tensor, so its gradient flows; ``with_grad``
    also keeps gradients through the other ranks' slices (a differentiable collective). Without
    an initialised process group, ``tensor`` itself is returned (with a one-time warning).
    """
    global _warned_not_distributed
    if not is_dist_initialized():
        if not _warned_not_distributed:
            logger.warning(
                "all_gather called without an initialised torch.distributed process group; "
                "returning the local tensor (expected when training on one device)"
            )
            _warned_not_distributed = True
        return tensor
    if with_grad:
        # The differentiable collective: its backward sums each rank's gradient contributions and
        # returns every rank the part belonging to its own slice.
        import torch.distributed.nn

        return torch.cat(torch.distributed.nn.all_gather(tensor), dim=0)
    gathered = [torch.zeros_like(tensor) for _ in range(torch.distributed.get_world_size())]
    torch.distributed.all_gather(gathered, tensor)
    gathered[torch.distributed.get_rank()] = tensor
    return torch.cat(gathered, dim=0)


def all_gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """:func:`all_gather` keeping gradients through every rank's slice."""
    return all_gather(tensor, with_grad=True)


def all_gather_padded(
    tensor: torch.Tensor, mask: torch.Tensor, with_grad: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gather ``(B, T, D)`` token embeddings and their ``(B, T)`` mask from every rank.

    Ranks may pad to different ``T``; both are padded (embeddings with zeros, the mask with
    False) to the largest ``T`` of any rank first, since a collective needs equal shapes.
    """
    if is_dist_initialized():
        longest = torch.tensor(tensor.size(1), device=tensor.device)
        torch.distributed.all_reduce(longest, op=torch.distributed.ReduceOp.MAX)
        extra = int(longest.item()) - tensor.size(1)
        if extra > 0:
            tensor = torch.nn.functional.pad(tensor, (0, 0, 0, extra))
            mask = torch.nn.functional.pad(mask, (0, extra))
    return all_gather(tensor, with_grad=with_grad), all_gather(mask)
