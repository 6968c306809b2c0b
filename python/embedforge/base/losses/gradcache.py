"""GradCache (Gao et al. 2021, arXiv:2101.06983): in-batch losses over huge batches in mini-batch memory.

A cached loss runs in three stages:

1. embed every mini-batch of every column without autograd, remembering the RNG state of each call;
2. compute the loss on those detached embeddings, back-propagate it to them (chunk by chunk, so the
   score matrix is never held whole) and keep the gradient of the loss with respect to each embedding;
3. during the outer ``loss.backward()``, re-embed each mini-batch with autograd under its replayed RNG
   state (so dropout draws the same masks) and back-propagate the cached embedding gradients into the
   model, one mini-batch at a time.

Peak activation memory therefore follows ``mini_batch_size``: the model only ever holds the graph of
one mini-batch, and the loss stage holds a ``mini_batch_size x candidates`` score chunk. What grows
with the batch is just the embeddings themselves (``batch x dim`` floats per column) and their cached
gradients.

The loss formulas are not here: a loss class exposes them through the :class:`ChunkedLoss` pair
``prepare_embeddings`` / ``loss_for_rows``, which its uncached form calls once over all rows and its
cached form calls per chunk of rows.
"""

from __future__ import annotations

import bisect
from contextlib import nullcontext
from functools import partial
from typing import Any, Protocol

import torch
import tqdm
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from embedforge.exceptions import InvalidArgumentError
from embedforge.util.distributed import all_gather_with_grad, get_rank

__all__ = [
    "ChunkedLoss",
    "GradCacheMixin",
    "RandContext",
    "all_gather_with_grad",
    "chunked_loss",
    "get_rank",
    "minibatch_ranges",
    "reject_static_embedding",
    "slice_features",
    "sum_row_chunks",
]


# -- splitting a batch of features into mini-batches -----------------------------------------------


def _batch_size(features: dict[str, Any]) -> int:
    for key in ("input_ids", "attention_mask"):
        value = features.get(key)
        if isinstance(value, Tensor) and value.ndim > 0:
            return value.shape[0]
    for value in features.values():
        if isinstance(value, Tensor) and value.ndim > 0:
            return value.shape[0]
    raise InvalidArgumentError(f"cannot tell the batch size of features with keys {sorted(features)}: no tensor in it")


def minibatch_ranges(
    features: dict[str, Any], mini_batch_size: int, mini_batch_num_tokens: int | None = None
) -> list[tuple[int, int]]:
    """``(begin, end)`` row ranges splitting a batch into mini-batches.

    With ``mini_batch_num_tokens`` each range packs as many rows as fit in that many non-padding tokens
    (counted from the attention mask); a single longer row still gets a range of its own.
    """
    size = _batch_size(features)
    if mini_batch_num_tokens is None:
        return [(begin, min(begin + mini_batch_size, size)) for begin in range(0, size, mini_batch_size)]
    mask = features.get("attention_mask")
    if not isinstance(mask, Tensor) or mask.ndim != 2:
        raise InvalidArgumentError(
            "mini_batch_num_tokens needs an 'attention_mask' in the tokenised inputs to count tokens; "
            f"the features have keys {sorted(features)}. Use mini_batch_size instead."
        )
    cumulative = mask.sum(dim=1).cumsum(dim=0).tolist()
    ranges = []
    begin = 0
    while begin < size:
        before = cumulative[begin - 1] if begin else 0
        end = max(bisect.bisect_right(cumulative, before + mini_batch_num_tokens), begin + 1)
        ranges.append((begin, end))
        begin = end
    return ranges


def slice_features(features: dict[str, Any], begin: int, end: int) -> dict[str, Any]:
    """Rows ``begin:end`` of padded tokenised features, dropping padding columns no row of the slice uses.

    Trimming trailing padding keeps a mini-batch of short texts from being embedded at the width of
    the longest text in the whole batch; leading columns are kept so token positions do not move.
    """
    size = _batch_size(features)
    end = min(end, size)
    width: int | None = None
    keep: int | None = None
    mask = features.get("attention_mask")
    if isinstance(mask, Tensor) and mask.ndim == 2:
        width = mask.shape[1]
        used = mask[begin:end].bool().any(dim=0)
        if used.any():
            last = int(used.nonzero().max().item()) + 1
            keep = last if last < width else None
    sliced: dict[str, Any] = {}
    for key, value in features.items():
        if not isinstance(value, Tensor) or value.ndim == 0 or value.shape[0] != size:
            # Batch-level metadata (e.g. a prompt length) applies to every mini-batch unchanged.
            sliced[key] = value
        elif keep is not None and value.ndim >= 2 and value.shape[1] == width:
            sliced[key] = value[begin:end, :keep]
        else:
            sliced[key] = value[begin:end]
    return sliced


def validate_mini_batch_arguments(mini_batch_size: int, mini_batch_num_tokens: int | None) -> None:
    """Reject mini-batch settings that cannot split a batch."""
    if isinstance(mini_batch_size, bool) or not isinstance(mini_batch_size, int) or mini_batch_size <= 0:
        raise InvalidArgumentError(f"mini_batch_size is {mini_batch_size!r}; expected a positive integer")
    if mini_batch_num_tokens is not None and (
        isinstance(mini_batch_num_tokens, bool)
        or not isinstance(mini_batch_num_tokens, int)
        or mini_batch_num_tokens <= 0
    ):
        raise InvalidArgumentError(
            f"mini_batch_num_tokens is {mini_batch_num_tokens!r}; expected a positive integer or None"
        )


def has_static_embedding_input(model: Any) -> bool:
    """Whether ``model`` embeds its inputs with a flat-token module (StaticEmbedding), first or behind a Router.

    Such features are one token stream plus offsets, with no batch axis to slice into mini-batches.
    """
    model = getattr(model, "_orig_mod", model)
    first = next(iter(model.children()), None) if isinstance(model, nn.Module) else None
    routes = getattr(first, "sub_modules", None)  # a Router's routes: a ModuleDict of Sequentials
    inputs = (
        [next(iter(route.children()), None) for route in routes.values()]
        if isinstance(routes, nn.ModuleDict)
        else [first]
    )
    return any(getattr(module, "flat_token_inputs", False) for module in inputs)


def uses_gradient_cache(loss: Any) -> bool:
    """Whether ``loss`` embeds mini-batches again during its backward pass (the cached losses do)."""
    return bool(getattr(loss, "uses_gradient_cache", False))


def reject_static_embedding(model: nn.Module, loss_name: str, alternative: str) -> None:
    """Refuse a model that embeds with a StaticEmbedding, as sentence-transformers does."""
    if has_static_embedding_input(model):
        raise InvalidArgumentError(
            f"{loss_name} cannot embed a StaticEmbedding model in mini-batches: its inputs are a flat token "
            f"stream with no batch dimension to split. Use {alternative} instead."
        )


# -- the loss side: formulas evaluated chunk by chunk ---------------------------------------------


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


# -- the model side: embedding in mini-batches with replayable randomness ------------------------


class RandContext:
    """The CPU, CUDA and MPS RNG states at creation, restored inside ``with`` (the caller's RNG is left alone)."""

    def __init__(self, *tensors: Any) -> None:
        self.cpu_state = torch.get_rng_state()
        self.devices = sorted({value.get_device() for value in tensors if isinstance(value, Tensor) and value.is_cuda})
        self.cuda_states = [torch.cuda.get_rng_state(device) for device in self.devices]
        uses_mps = any(isinstance(value, Tensor) and value.device.type == "mps" for value in tensors)
        self.mps_state = torch.mps.get_rng_state() if uses_mps else None
        self._fork: Any = None
        self._outer_mps_state: Tensor | None = None

    def __enter__(self) -> None:
        # fork_rng saves the outer CPU/CUDA state and puts it back on exit, so replaying does not disturb it.
        self._fork = torch.random.fork_rng(devices=self.devices, enabled=True)
        self._fork.__enter__()
        torch.set_rng_state(self.cpu_state)
        for device, state in zip(self.devices, self.cuda_states):
            torch.cuda.set_rng_state(state, device)
        if self.mps_state is not None:
            # fork_rng does not cover MPS: save and restore its outer state by hand.
            self._outer_mps_state = torch.mps.get_rng_state()
            torch.mps.set_rng_state(self.mps_state)

    def __exit__(self, *exc: object) -> None:
        if self._outer_mps_state is not None:
            torch.mps.set_rng_state(self._outer_mps_state)
            self._outer_mps_state = None
        self._fork.__exit__(*exc)
        self._fork = None


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "_orig_mod", model)


def _replay_backward(
    grad_output: Tensor,
    loss_obj: GradCacheMixin,
    sentence_features: list[dict[str, Any]],
    cache: list[list[Tensor]],
    random_states: list[list[RandContext | None]],
    ranges: list[list[tuple[int, int]]],
) -> None:
    """Stage 3: re-embed each mini-batch with autograd and push its cached gradient into the model."""
    model = _unwrap(loss_obj.model)
    remaining = sum(len(column) for column in cache)
    with torch.enable_grad():
        for features, grads, states, column_ranges in zip(sentence_features, cache, random_states, ranges):
            for (begin, end), grad, state in zip(column_ranges, grads, states):
                remaining -= 1
                # Under DDP only the last replayed mini-batch may all-reduce the accumulated gradients.
                with model.no_sync() if isinstance(model, DistributedDataParallel) and remaining > 0 else nullcontext():
                    embeddings = loss_obj.embed_minibatch(features, begin, end, with_grad=True, random_state=state)[0]
                    if not embeddings.requires_grad:
                        continue
                    # d(loss)/d(params) = sum over rows of (d loss / d embedding) . (d embedding / d params):
                    # a dot product with the cached gradient has exactly that gradient.
                    dtype = torch.promote_types(embeddings.dtype, grad.dtype)
                    if dtype in (torch.float16, torch.bfloat16):
                        dtype = torch.float32
                    surrogate = torch.dot(embeddings.flatten().to(dtype), grad.flatten().to(dtype)) * grad_output
                    surrogate.backward()


class GradCacheMixin:
    """The three GradCache stages for a loss module that holds ``model`` and implements ``calculate_loss``."""

    model: nn.Module
    mini_batch_size: int
    mini_batch_num_tokens: int | None
    show_progress_bar: bool
    #: Read by wrappers (e.g. MatryoshkaLoss): this loss back-propagates from a hook on its result.
    uses_gradient_cache: bool = True

    def embed_minibatch(
        self,
        features: dict[str, Any],
        begin: int,
        end: int,
        with_grad: bool,
        random_state: RandContext | None = None,
        copy_random_state: bool = False,
    ) -> tuple[Tensor, Any, RandContext | None]:
        """Embed rows ``begin:end``; returns the embeddings, extra per-loss data (or None) and the RNG snapshot."""
        batch = slice_features(features, begin, end)
        # The model writes its outputs into the dict it gets; the extras read a pristine copy.
        pristine = dict(batch)
        with random_state if random_state is not None else nullcontext():
            with nullcontext() if with_grad else torch.no_grad():
                snapshot = RandContext(*batch.values()) if copy_random_state else None
                embeddings = self.model(batch)["sentence_embedding"]
            # Only the first, gradient-free pass needs the extras (e.g. guide embeddings).
            extra = None if with_grad else self.embed_minibatch_extra(pristine)
        return embeddings, extra, snapshot

    def embed_minibatch_extra(self, batch: dict[str, Any]) -> Any:
        """Per-mini-batch data besides the embeddings that the loss needs (none by default)."""
        return None

    def calculate_loss(
        self, reps: list[list[Tensor]], labels: Tensor | None = None, *, with_backward: bool = False
    ) -> Tensor:
        """Stage 2: the loss from per-column lists of per-mini-batch embeddings.

        With ``with_backward`` the loss is back-propagated to ``reps`` chunk by chunk and returned detached.
        """
        raise NotImplementedError

    def _loss_on_cache(
        self, reps: list[list[Tensor]], extras: list[list[Any]], labels: Tensor | None, with_backward: bool
    ) -> Tensor:
        return self.calculate_loss(reps, labels, with_backward=with_backward)

    def forward_cached(self, sentence_features: list[dict[str, Any]], labels: Tensor | None) -> Tensor:
        """Run stages 1 and 2 now and hook stage 3 onto the returned loss's backward."""
        grad_enabled = torch.is_grad_enabled()
        ranges = [
            minibatch_ranges(features, self.mini_batch_size, self.mini_batch_num_tokens)
            for features in sentence_features
        ]
        parts: list[list[Tensor]] = []
        extras: list[list[Any]] = []
        states: list[list[RandContext | None]] = []
        for features, column_ranges in zip(sentence_features, ranges):
            column_parts, column_extras, column_states = [], [], []
            for begin, end in tqdm.tqdm(column_ranges, desc="Embed mini-batches", disable=not self.show_progress_bar):
                embeddings, extra, state = self.embed_minibatch(
                    features, begin, end, with_grad=False, copy_random_state=grad_enabled
                )
                column_parts.append(embeddings.detach().requires_grad_(grad_enabled))
                column_extras.append(extra)
                column_states.append(state)
            parts.append(column_parts)
            extras.append(column_extras)
            states.append(column_states)

        if not grad_enabled:
            return self._loss_on_cache(parts, extras, labels, with_backward=False)

        loss = self._loss_on_cache(parts, extras, labels, with_backward=True)
        cache: list[list[Tensor]] = []
        for index, column in enumerate(parts):
            grads = [part.grad for part in column if part.grad is not None]
            if len(grads) != len(column):
                raise InvalidArgumentError(
                    f"{type(self).__name__} did not use input column {index}: its embeddings got no gradient. "
                    "Remove the column from the dataset."
                )
            cache.append(grads)
        loss = loss.detach().requires_grad_()
        loss.register_hook(
            partial(
                _replay_backward,
                loss_obj=self,
                sentence_features=sentence_features,
                cache=cache,
                random_states=states,
                ranges=ranges,
            )
        )
        return loss
