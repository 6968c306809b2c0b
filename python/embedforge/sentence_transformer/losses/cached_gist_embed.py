"""CachedGISTEmbedLoss: GISTEmbedLoss with GradCache, for batches beyond memory."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor, nn

from embedforge.base.losses.base import Loss
from embedforge.base.losses.gradcache import (
    CachedLossMixin,
    RandContext,
    create_minibatch,
    reject_static_embedding,
    validate_mini_batch_arguments,
)
from embedforge.base.losses.row_chunks import sum_row_chunks
from embedforge.sentence_transformer.losses.gist_embed import GuidedInBatchMixin
from embedforge.util.distributed import all_gather_with_grad, get_rank

if TYPE_CHECKING:
    from embedforge.sentence_transformer.model import SentenceTransformer


#: The real distributed helpers, for when a stand-in put on this module is removed by deleting it.
_DISTRIBUTED_HELPERS: dict[str, Any] = {"all_gather_with_grad": all_gather_with_grad, "get_rank": get_rank}


def __getattr__(name: str) -> Any:
    if name in _DISTRIBUTED_HELPERS:
        return _DISTRIBUTED_HELPERS[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class CachedGISTEmbedLoss(CachedLossMixin, GuidedInBatchMixin, Loss):
    """GISTEmbedLoss computed with GradCache: same loss and gradients, memory set by ``mini_batch_size``."""

    # Like sentence-transformers' version, any number of negative columns after (anchor, positive).
    input_columns = (2, None)
    requires_label = False

    def __init__(
        self,
        model: nn.Module,
        guide: SentenceTransformer,
        temperature: float = 0.01,
        mini_batch_size: int = 32,
        mini_batch_num_tokens: int | None = None,
        show_progress_bar: bool = False,
        margin_strategy: Literal["absolute", "relative"] = "absolute",
        margin: float = 0.0,
        contrast_anchors: bool = True,
        contrast_positives: bool = True,
        gather_across_devices: bool = False,
    ) -> None:
        """GISTEmbedLoss's options plus the mini-batch size (rows or token budget) and a progress bar."""
        super().__init__()
        reject_static_embedding(model, type(self).__name__, "GISTEmbedLoss")
        validate_mini_batch_arguments(mini_batch_size, mini_batch_num_tokens)
        self.model = model
        self._setup_guide(
            model,
            guide,
            temperature,
            margin_strategy,
            margin,
            contrast_anchors,
            contrast_positives,
            gather_across_devices,
        )
        self.mini_batch_size = mini_batch_size
        self.mini_batch_num_tokens = mini_batch_num_tokens
        self.show_progress_bar = show_progress_bar

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        """Embed the columns in mini-batches and return the loss; the model's gradients arrive on backward."""
        return self.forward_cached(self.check_features(sentence_features, labels), labels)

    def embed_minibatch(
        self,
        sentence_feature: dict[str, Any],
        begin: int,
        end: int,
        with_grad: bool,
        copy_random_state: bool,
        random_state: RandContext | None = None,
    ) -> tuple[Tensor, Tensor | None, RandContext | None]:
        """Embed rows ``begin:end`` with the model and, in the first pass only, with the guide.

        Returns ``(embeddings, guide_embeddings, rng_snapshot)``; the backward re-embedding has no use
        for the guide, so there ``guide_embeddings`` is None.
        """
        minibatch = create_minibatch(sentence_feature, begin, end)
        pristine = dict(minibatch)  # the model writes its outputs into the dict it gets
        with random_state if random_state is not None else nullcontext():
            with nullcontext() if with_grad else torch.no_grad():
                snapshot = RandContext(*minibatch.values()) if copy_random_state else None
                embeddings = self.model(minibatch)["sentence_embedding"]
            guide_embeddings = None if with_grad else self.embed_with_guide(pristine)
        return embeddings, guide_embeddings, snapshot

    def loss_from_cache(
        self,
        reps: list[list[Tensor]],
        extras: list[list[tuple[Any, ...]]],
        labels: Tensor | None,
        with_backward: bool,
    ) -> Tensor:
        """Stage 2 with the guide's embeddings, which ``embed_minibatch`` returned next to the model's."""
        reps_guided = [[extra[0] for extra in column] for column in extras]
        return self.calculate_loss(reps, reps_guided, with_backward=with_backward)

    def calculate_loss(  # type: ignore[override]
        self, reps: list[list[Tensor]], reps_guided: list[list[Tensor]], *, with_backward: bool = False
    ) -> Tensor:
        """The GIST loss on cached model and guide embeddings, in chunks of ``mini_batch_size`` anchors."""
        module = sys.modules[__name__]
        state = self.prepare_guided(
            [torch.cat(column) for column in reps],
            [torch.cat(column) for column in reps_guided],
            # Gathered through this module's names, so a test (or a user) can stand in for torch.distributed.
            gather=module.all_gather_with_grad,
            rank=module.get_rank,
        )
        return sum_row_chunks(self, state, self.mini_batch_size, with_backward, self.show_progress_bar)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], guide_embeddings: list[Tensor]) -> Tensor:
        """The loss from full per-column embeddings, exactly as GISTEmbedLoss computes it."""
        return sum_row_chunks(self, self.prepare_guided(embeddings, guide_embeddings), chunk_size=None)

    def get_config_dict(self) -> dict[str, Any]:
        """The constructor arguments, as sentence-transformers reports them."""
        config = self.guided_config()
        return {
            "guide": config.pop("guide"),
            "temperature": config.pop("temperature"),
            "mini_batch_size": self.mini_batch_size,
            "mini_batch_num_tokens": self.mini_batch_num_tokens,
            **config,
        }
