"""CachedMultipleNegativesRankingLoss: the cross-encoder MultipleNegativesRankingLoss with GradCache.

The loss is a function of the pair scores only, so GradCache (Gao et al. 2021) applies with a score in
the place of an embedding: score every (anchor, candidate) pair in mini-batches without autograd,
compute the loss and its gradient with respect to each score, then, during ``backward()``, score each
mini-batch again with autograd (replaying its dropout randomness) and push the cached score gradients
into the model. Memory then follows ``mini_batch_size`` rather than the number of pairs.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from embedforge.base.losses.gradcache import GradCacheMixin, RandContext, slice_features, validate_mini_batch_arguments
from embedforge.cross_encoder.losses._common import pairs_of
from embedforge.cross_encoder.losses.multiple_negatives_ranking import MultipleNegativesRankingLoss
from embedforge.exceptions import InvalidArgumentError
from embedforge.util.tensor import batch_to_device

if TYPE_CHECKING:
    # Only for annotations: the model module imports the legacy fit, which imports these losses.
    from embedforge.cross_encoder.model import CrossEncoder


class CachedMultipleNegativesRankingLoss(MultipleNegativesRankingLoss):
    """:class:`MultipleNegativesRankingLoss` with the same value and gradients, in ``mini_batch_size`` memory.

    Every pair is scored twice (once without and once with autograd), so a step is slower; in exchange
    the batch, and with it the pool of in-batch negatives, can be far larger than fits in memory.

    Args:
        model: The CrossEncoder to train; it must have a single output label.
        num_negatives: In-batch negatives drawn per query; None for all. Defaults to 4.
        scale: Multiplies the activated scores. Defaults to 10.0.
        activation_fn: Applied to the logits first; None for none. Defaults to sigmoid.
        mini_batch_size: Pairs scored per forward pass. Defaults to 32.
        show_progress_bar: Show a bar over the mini-batches of each pass. Defaults to False.

    Inputs:
        As :class:`MultipleNegativesRankingLoss`: ``(anchor, positive[, negative_1, ...])``, no label.
    """

    #: Read by the trainer and wrappers: this loss back-propagates from a hook on its result.
    uses_gradient_cache = True

    def __init__(
        self,
        model: CrossEncoder,
        num_negatives: int | None = 4,
        scale: float = 10.0,
        activation_fn: nn.Module | None = nn.Sigmoid(),  # noqa: B008 - the sentence-transformers default, stateless
        mini_batch_size: int = 32,
        show_progress_bar: bool = False,
    ) -> None:
        super().__init__(model, num_negatives=num_negatives, scale=scale, activation_fn=activation_fn)
        validate_mini_batch_arguments(mini_batch_size, None)
        self.mini_batch_size = mini_batch_size
        self.show_progress_bar = show_progress_bar

    def forward(
        self,
        inputs: list[list[str]],
        labels: Tensor | None = None,
        prompt: str | None = None,
        task: str | None = None,
    ) -> Tensor:
        """The loss of a batch of ``[anchors, positives, hard_negatives_1, ...]``; ``labels`` are ignored."""
        self.check_column_count(inputs)
        for index, column in enumerate(inputs[1:], start=1):
            pairs_of(inputs[0], column, index)
        anchors = list(inputs[0])
        # All negatives are drawn before the first forward pass, as sentence-transformers' cached loss does.
        columns = [inputs[1], *self.get_in_batch_negatives(anchors, inputs[1:]), *inputs[2:]]
        pairs = [(anchor, candidate) for column in columns for anchor, candidate in zip(anchors, column)]
        # Tokenised once, kept where the tokenizer put them: each mini-batch is cut out (without the padding
        # no row of it needs, so its tensors equal a separate tokenisation) and moved to the device alone.
        features = self.model.preprocess(pairs, prompt=prompt, task=task)
        # The cross-entropy targets (the positive is candidate 0) double as the batch size for stage 2.
        targets = torch.zeros(len(anchors), dtype=torch.long, device=self.model.device)
        return _PairScoreCache(self).forward_cached([features], targets)

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {**super().get_config_dict(), "mini_batch_size": self.mini_batch_size}


class _PairScoreCache(GradCacheMixin):
    """The GradCache stages of one forward call, over a single "column": the flat list of tokenised pairs.

    A pair's "embedding" is its score; stage 2 is :meth:`MultipleNegativesRankingLoss.calculate_loss`.
    """

    def __init__(self, loss: CachedMultipleNegativesRankingLoss) -> None:
        self.loss = loss
        self.model = loss.model
        self.mini_batch_size = loss.mini_batch_size
        self.mini_batch_num_tokens = None
        self.show_progress_bar = loss.show_progress_bar

    # The mixin calls this by keyword; only the parameter order differs from its signature.
    def embed_minibatch(  # type: ignore[override]
        self,
        features: dict[str, Any],
        begin: int,
        end: int,
        with_grad: bool,
        random_state: RandContext | None = None,
        copy_random_state: bool = False,
    ) -> tuple[Tensor, Any, RandContext | None]:
        """Score pairs ``begin:end``: their scores, no extras, and (on request) the RNG state before the pass."""
        # On the device before the RNG snapshot: RandContext only records the devices of the tensors it sees.
        batch = batch_to_device(slice_features(features, begin, end), self.loss.model.device)
        with (
            random_state if random_state is not None else nullcontext(),
            nullcontext() if with_grad else torch.no_grad(),
        ):
            snapshot = RandContext(*batch.values()) if copy_random_state else None
            scores = self.model(batch)["scores"].squeeze(1)
        return scores, None, snapshot

    def calculate_loss(
        self, reps: list[list[Tensor]], labels: Tensor | None = None, *, with_backward: bool = False
    ) -> Tensor:
        """The loss from the per-mini-batch scores; with ``with_backward`` their gradients are left in ``.grad``."""
        if labels is None:
            raise InvalidArgumentError("the cached cross-encoder loss needs its cross-entropy targets as labels")
        loss = self.loss.calculate_loss(reps[0], labels.numel())
        if with_backward:
            loss.backward()
            loss = loss.detach()
        return loss
