"""Scratch tensors handed back and forth between training steps instead of freshly allocated.

A training step of a contrastive loss holds several batch x batch float matrices (16 MB each at
batch 2048) from its forward to its backward. Freshly allocated, each one's pages are faulted in
on first touch, and the memory goes back to the operating system when the step frees it, so every
step pays those faults again; on a virtual machine that is about as slow as the softmax pass that
fills the matrix. A pool keeps the freed matrices and gives them to the next step instead.
"""

from __future__ import annotations

import torch
from torch import Tensor


class BufferPool:
    """Free tensors of one shape and dtype, reused in place of new allocations.

    Only whoever took a buffer may give it back, and only once nothing else refers to it: the
    pool hands it out again as is (uninitialised, as ``torch.empty`` would be). A buffer that is
    never given back is simply freed by its last reference, so an interrupted step leaks nothing.
    """

    def __init__(self, max_free: int = 16) -> None:
        self.max_free = max_free
        self._key: tuple[tuple[int, ...], torch.dtype, torch.device] | None = None
        self._free: list[Tensor] = []

    def take(self, shape: tuple[int, ...], like: Tensor) -> Tensor:
        """A contiguous tensor of ``shape`` with ``like``'s dtype and device, contents undefined."""
        key = (tuple(shape), like.dtype, like.device)
        if key == self._key and self._free:
            return self._free.pop()
        return torch.empty(shape, dtype=like.dtype, device=like.device)

    def give(self, buffer: Tensor) -> None:
        """Return ``buffer`` for re-use; buffers of another shape than the last ones replace them."""
        key = (tuple(buffer.shape), buffer.dtype, buffer.device)
        if key != self._key:
            # A new batch shape (e.g. a short last batch): the old buffers will not fit again soon.
            self._key = key
            self._free = []
        if len(self._free) < self.max_free:
            self._free.append(buffer)

    def clear(self) -> None:
        """Drop every free buffer."""
        self._free = []
        self._key = None
