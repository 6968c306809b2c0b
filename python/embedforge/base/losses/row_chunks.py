"""Loss formulas evaluated over chunks of anchor rows, so a cached loss never holds a whole score matrix.

A loss exposes its formula through the :class:`ChunkedLoss` pair ``prepare_embeddings`` /
``loss_for_rows``: its uncached form calls it once over all rows, its cached form per chunk of rows,
back-propagating each chunk before building the next.
"""

from __future__ import annotations

from typing import Any, Protocol

import tqdm
from torch import Tensor

from embedforge.exceptions import InvalidArgumentError

__all__ = ["ChunkedLoss", "RowChunkedLoss", "chunked_loss", "sum_row_chunks"]


class RowChunkedLoss(Protocol):
    """A loss whose batch value, given a prepared state, is a sum of per-row-chunk contributions."""

    def loss_for_rows(self, state: Any, begin: int, end: int) -> Tensor:
        """Contribution of anchor rows ``begin:end`` to the batch loss (the chunks sum to the loss)."""
        ...

    def num_rows(self, state: Any) -> int:
        """How many anchor rows there are to split into chunks."""
        ...


class ChunkedLoss(RowChunkedLoss, Protocol):
    """A :class:`RowChunkedLoss` that prepares its state from the batch's embeddings and labels."""

    def prepare_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Any:
        """Whatever all chunks share (gathered candidates, batch size, ...)."""
        ...


def chunked_loss(
    loss: ChunkedLoss,
    embeddings: list[Tensor],
    labels: Tensor | None,
    chunk_size: int | None,
    with_backward: bool = False,
    show_progress_bar: bool = False,
) -> Tensor:
    """Sum a :class:`ChunkedLoss` over row chunks; with ``with_backward`` back-propagate each chunk at once."""
    state = loss.prepare_embeddings(embeddings, labels)
    return sum_row_chunks(loss, state, chunk_size, with_backward, show_progress_bar)


def sum_row_chunks(
    loss: RowChunkedLoss,
    state: Any,
    chunk_size: int | None,
    with_backward: bool = False,
    show_progress_bar: bool = False,
) -> Tensor:
    """Add up ``loss.loss_for_rows`` over chunks of ``chunk_size`` rows of a prepared ``state``.

    Back-propagating chunk by chunk frees each chunk's score matrix before the next is built, which is
    what keeps the loss stage of a cached loss at ``chunk_size x candidates`` memory.
    """
    rows = loss.num_rows(state)
    step = rows if chunk_size is None else max(1, chunk_size)
    total: Tensor | None = None
    for begin in tqdm.trange(0, rows, step, desc="Calculating loss", disable=not show_progress_bar):
        part = loss.loss_for_rows(state, begin, min(begin + step, rows))
        if with_backward:
            part.backward()
            part = part.detach()
        total = part if total is None else total + part
    if total is None:
        raise InvalidArgumentError(f"{type(loss).__name__} got an empty batch")
    return total
