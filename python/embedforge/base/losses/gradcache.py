"""GradCache (Gao et al. 2021, arXiv:2101.06983): in-batch losses over huge batches in mini-batch memory.

A cached loss runs in three stages:

1. embed every mini-batch of every column without autograd, remembering the RNG state of each call;
2. compute the loss on those detached embeddings, back-propagate it to them (chunk by chunk, so the
   score matrix is never held whole) and keep the gradient of the loss with respect to each embedding;
3. during the outer ``loss.backward()``, re-embed each mini-batch with autograd under its replayed RNG
   state (so dropout draws the same masks) and back-propagate the cached embedding gradients into the
   model, one mini-batch at a time.

Peak activation memory therefore follows ``mini_batch_size``: the model only ever holds the graph of
one mini-batch, and the loss stage holds a ``mini_batch_size x candidates`` score chunk.

:class:`CachedLossMixin` is the engine, with sentence-transformers' hooks: a loss provides
``calculate_loss`` and may override ``embed_minibatch`` (whose result starts with the embeddings and
ends with the RNG snapshot; anything in between is per-mini-batch extra data, e.g. a guide model's
embeddings, handed to :meth:`CachedLossMixin.loss_from_cache`). The loss formulas themselves live in
:mod:`embedforge.base.losses.row_chunks`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from functools import partial
from typing import Any

import torch
import tqdm
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from embedforge.base.losses.minibatch import batch_size_of, create_minibatch, minibatch_ranges
from embedforge.base.losses.row_chunks import ChunkedLoss, RowChunkedLoss, chunked_loss, sum_row_chunks
from embedforge.exceptions import InvalidArgumentError
from embedforge.util.distributed import all_gather_with_grad, get_rank

__all__ = [
    "CachedLossMixin",
    "ChunkedLoss",
    "GradCacheMixin",
    "RandContext",
    "RowChunkedLoss",
    "all_gather_with_grad",
    "chunked_loss",
    "create_minibatch",
    "get_rank",
    "has_static_embedding_input",
    "minibatch_ranges",
    "reject_static_embedding",
    "slice_features",
    "sum_row_chunks",
    "uses_gradient_cache",
    "validate_mini_batch_arguments",
]

# sentence-transformers' names for the mini-batch helpers (tests and user code import them from here).
_get_batch_size = batch_size_of
_create_minibatch = create_minibatch
_minibatch_ranges = minibatch_ranges
#: Earlier embedforge name of :func:`create_minibatch`.
slice_features = create_minibatch


# -- argument checks ---------------------------------------------------------------------------------


def validate_mini_batch_arguments(mini_batch_size: int, mini_batch_num_tokens: int | None) -> None:
    """Reject mini-batch settings that cannot split a batch."""
    if isinstance(mini_batch_size, bool) or not isinstance(mini_batch_size, int) or mini_batch_size <= 0:
        raise InvalidArgumentError(f"mini_batch_size is {mini_batch_size!r}; expected a positive integer")
    _validate_mini_batch_num_tokens(mini_batch_num_tokens)


def _validate_mini_batch_num_tokens(mini_batch_num_tokens: int | None) -> None:
    if mini_batch_num_tokens is not None and (
        isinstance(mini_batch_num_tokens, bool)
        or not isinstance(mini_batch_num_tokens, int)
        or mini_batch_num_tokens <= 0
    ):
        raise InvalidArgumentError(
            f"mini_batch_num_tokens must be a positive integer or None. Got {mini_batch_num_tokens!r}."
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
    """Whether ``loss`` embeds mini-batches again during its backward pass (the cached losses do).

    Wrappers that patch the model's forward for the duration of the forward pass (MatryoshkaLoss,
    AdaptiveLayerLoss) must treat such losses differently: their patch is gone by the time the
    backward pass re-embeds.
    """
    return bool(getattr(loss, "uses_gradient_cache", False))


def reject_static_embedding(model: nn.Module, loss_name: str, alternative: str) -> None:
    """Refuse a model that embeds with a StaticEmbedding, as sentence-transformers does."""
    if has_static_embedding_input(model):
        raise InvalidArgumentError(
            f"{loss_name} is not compatible with a SentenceTransformer model based on a StaticEmbedding: its "
            "inputs are a flat token stream with no batch dimension to split into mini-batches. "
            f"Consider using {alternative} instead."
        )


# -- replayable randomness ----------------------------------------------------------------------------


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


# -- stage 3: the backward hook ------------------------------------------------------------------------


def _replay_backward(
    grad_output: Tensor,
    loss_obj: CachedLossMixin,
    sentence_features: list[dict[str, Any]],
    cache: list[list[Tensor]],
    random_states: list[list[RandContext | None]],
    ranges: list[list[tuple[int, int]]],
) -> None:
    """Re-embed each mini-batch with autograd and push its cached gradient into the model.

    ``cache``, ``random_states`` and ``ranges`` belong to one forward call (bound into this hook), so a
    second forward before the first backward cannot mix batches up. The ranges are replayed rather
    than recomputed because modules may have changed the features since (e.g. a mask rewritten in
    place), which would move token-budget boundaries. ``grad_output`` scales every mini-batch, which
    carries loss scaling and gradient accumulation through.
    """
    model = getattr(loss_obj.model, "_orig_mod", loss_obj.model)
    remaining = sum(len(column) for column in cache)
    with torch.enable_grad():
        for features, grads, states, column_ranges in zip(sentence_features, cache, random_states, ranges):
            replay = loss_obj.embed_minibatch_iter(
                sentence_feature=features,
                with_grad=True,
                copy_random_state=False,
                random_states=states,
                ranges=column_ranges,
            )
            for grad in grads:
                remaining -= 1
                # Under DDP only the last replayed mini-batch may all-reduce the accumulated gradients;
                # advancing the iterator runs the forward, so it belongs inside no_sync too.
                is_ddp = isinstance(model, DistributedDataParallel)
                with model.no_sync() if is_ddp and remaining > 0 else nullcontext():
                    embeddings = next(replay)[0]
                    if not embeddings.requires_grad:
                        continue  # a frozen model (or module) has nothing to receive
                    # d(loss)/d(params) = sum over rows of (d loss / d embedding) . (d embedding / d params):
                    # a dot product with the cached gradient has exactly that gradient. Low precision
                    # embeddings are accumulated in float32, float64 stays float64.
                    dtype = torch.promote_types(embeddings.dtype, grad.dtype)
                    if dtype in (torch.float16, torch.bfloat16):
                        dtype = torch.float32
                    surrogate = torch.dot(embeddings.flatten().to(dtype), grad.flatten().to(dtype)) * grad_output
                    surrogate.backward()


# -- the engine -----------------------------------------------------------------------------------------


class CachedLossMixin:
    """The GradCache forward pass, for an ``nn.Module`` loss that holds ``model`` and implements ``calculate_loss``.

    The loss's ``forward`` calls :meth:`forward_cached`. Mini-batches hold ``mini_batch_size`` rows, or
    as many rows as fit in ``mini_batch_num_tokens`` real tokens when that is set.
    """

    model: Any
    mini_batch_size: int
    mini_batch_num_tokens: int | None = None
    show_progress_bar: bool = False
    #: Read by wrappers (see :func:`uses_gradient_cache`); a loss that can switch caching off overrides it.
    uses_gradient_cache: bool = True

    def calculate_loss(
        self, reps: list[list[Tensor]], labels: Tensor | None = None, *, with_backward: bool = False
    ) -> Tensor:
        """Stage 2: the loss from per-column lists of per-mini-batch embeddings.

        With ``with_backward`` the loss is back-propagated to ``reps`` (chunk by chunk, if the loss
        chunks) and returned detached, so no part of its graph outlives its own backward pass.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement calculate_loss")

    def loss_from_cache(
        self,
        reps: list[list[Tensor]],
        extras: list[list[tuple[Any, ...]]],
        labels: Tensor | None,
        with_backward: bool,
    ) -> Tensor:
        """Stage 2 as the engine calls it; ``extras`` holds what ``embed_minibatch`` returned besides the embeddings."""
        return self.calculate_loss(reps, labels, with_backward=with_backward)

    def embed_minibatch(
        self,
        sentence_feature: dict[str, Any],
        begin: int,
        end: int,
        with_grad: bool,
        copy_random_state: bool,
        random_state: RandContext | None = None,
    ) -> tuple[Any, ...]:
        """Embed rows ``begin:end``; returns ``(embeddings, rng_snapshot)`` (the snapshot is None unless asked)."""
        minibatch = create_minibatch(sentence_feature, begin, end)
        with (
            random_state if random_state is not None else nullcontext(),
            nullcontext() if with_grad else torch.no_grad(),
        ):
            snapshot = RandContext(*minibatch.values()) if copy_random_state else None
            embeddings = self.model(minibatch)["sentence_embedding"]
        return embeddings, snapshot

    def embed_minibatch_iter(
        self,
        sentence_feature: dict[str, Any],
        with_grad: bool,
        copy_random_state: bool,
        random_states: list[RandContext | None] | None = None,
        ranges: list[tuple[int, int]] | None = None,
    ) -> Iterator[tuple[Any, ...]]:
        """:meth:`embed_minibatch` over every mini-batch of one column, in order."""
        if ranges is None:
            ranges = minibatch_ranges(sentence_feature, self.mini_batch_size, self.mini_batch_num_tokens)
        progress = tqdm.tqdm(ranges, desc="Embed mini-batches", disable=not self.show_progress_bar)
        for index, (begin, end) in enumerate(progress):
            yield self.embed_minibatch(
                sentence_feature=sentence_feature,
                begin=begin,
                end=end,
                with_grad=with_grad,
                copy_random_state=copy_random_state,
                random_state=None if random_states is None else random_states[index],
            )

    def forward_cached(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor | None = None) -> Tensor:
        """Run stages 1 and 2 now and hook stage 3 onto the returned loss's backward."""
        sentence_features = list(sentence_features)
        grad_enabled = torch.is_grad_enabled()
        # Boundaries first: the forward passes may change the features, and stage 3 must replay these.
        ranges = [
            minibatch_ranges(features, self.mini_batch_size, self.mini_batch_num_tokens)
            for features in sentence_features
        ]

        reps: list[list[Tensor]] = []
        extras: list[list[tuple[Any, ...]]] = []
        states: list[list[RandContext | None]] = []
        for features, column_ranges in zip(sentence_features, ranges):
            column_reps, column_extras, column_states = [], [], []
            # RNG snapshots are only replayed by the backward hook, so skip them when there is none.
            for embeddings, *extra, state in self.embed_minibatch_iter(
                sentence_feature=features, with_grad=False, copy_random_state=grad_enabled, ranges=column_ranges
            ):
                column_reps.append(embeddings.detach().requires_grad_(grad_enabled))
                column_extras.append(tuple(extra))
                column_states.append(state)
            reps.append(column_reps)
            extras.append(column_extras)
            states.append(column_states)

        if not grad_enabled:
            return self.loss_from_cache(reps, extras, labels, with_backward=False)

        loss = self.loss_from_cache(reps, extras, labels, with_backward=True)
        grads = [[part.grad for part in column] for column in reps]
        unused = [str(index) for index, column in enumerate(grads) if any(grad is None for grad in column)]
        if unused:
            # Caught here rather than as a None gradient deep inside loss.backward().
            raise InvalidArgumentError(
                f"The loss computation of {type(self).__name__} did not use input column(s) {', '.join(unused)}: "
                "their embeddings received no gradient. Every input column is embedded (twice, with gradient "
                "caching), so remove the unused column(s) from the dataset instead."
            )
        cache = [[grad for grad in column if grad is not None] for column in grads]
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


class GradCacheMixin(CachedLossMixin):
    """Earlier embedforge form of :class:`CachedLossMixin`, kept for subclasses written against it.

    Its ``embed_minibatch(features, begin, end, with_grad, random_state, copy_random_state)`` returns
    ``(embeddings, extra, rng_snapshot)``; ``embed_minibatch_extra`` supplies ``extra``.
    """

    def embed_minibatch(  # type: ignore[override]
        self,
        features: dict[str, Any],
        begin: int,
        end: int,
        with_grad: bool,
        random_state: RandContext | None = None,
        copy_random_state: bool = False,
    ) -> tuple[Tensor, Any, RandContext | None]:
        """Embed rows ``begin:end``; returns the embeddings, extra per-loss data (or None) and the RNG snapshot."""
        minibatch = create_minibatch(features, begin, end)
        pristine = dict(minibatch)  # the model writes its outputs into the dict it gets
        with random_state if random_state is not None else nullcontext():
            with nullcontext() if with_grad else torch.no_grad():
                snapshot = RandContext(*minibatch.values()) if copy_random_state else None
                embeddings = self.model(minibatch)["sentence_embedding"]
            extra = None if with_grad else self.embed_minibatch_extra(pristine)
        return embeddings, extra, snapshot

    def embed_minibatch_extra(self, batch: dict[str, Any]) -> Any:
        """Per-mini-batch data besides the embeddings that the loss needs (none by default)."""
        return None

    def embed_minibatch_iter(
        self,
        sentence_feature: dict[str, Any],
        with_grad: bool,
        copy_random_state: bool,
        random_states: list[RandContext | None] | None = None,
        ranges: list[tuple[int, int]] | None = None,
    ) -> Iterator[tuple[Any, ...]]:
        """Adapts the positional, three-part ``embed_minibatch`` to the engine's contract."""
        if ranges is None:
            ranges = minibatch_ranges(sentence_feature, self.mini_batch_size, self.mini_batch_num_tokens)
        progress = tqdm.tqdm(ranges, desc="Embed mini-batches", disable=not self.show_progress_bar)
        for index, (begin, end) in enumerate(progress):
            state = None if random_states is None else random_states[index]
            embeddings, extra, snapshot = self.embed_minibatch(
                sentence_feature, begin, end, with_grad, state, copy_random_state
            )
            yield embeddings, extra, snapshot

    def loss_from_cache(
        self,
        reps: list[list[Tensor]],
        extras: list[list[tuple[Any, ...]]],
        labels: Tensor | None,
        with_backward: bool,
    ) -> Tensor:
        """Stage 2 through the earlier hook, which received the extras unpacked."""
        return self._loss_on_cache(reps, [[extra[0] for extra in column] for column in extras], labels, with_backward)

    def _loss_on_cache(
        self, reps: list[list[Tensor]], extras: list[list[Any]], labels: Tensor | None, with_backward: bool
    ) -> Tensor:
        return self.calculate_loss(reps, labels, with_backward=with_backward)
