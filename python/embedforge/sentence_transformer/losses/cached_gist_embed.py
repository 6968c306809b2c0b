"""CachedGISTEmbedLoss: GISTEmbedLoss with GradCache, for batches beyond memory."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor, nn

from embedforge.base.losses.base import Loss
from embedforge.base.losses.gradcache import (
    GradCacheMixin,
    reject_static_embedding,
    sum_row_chunks,
    validate_mini_batch_arguments,
)
from embedforge.sentence_transformer.losses.gist_embed import GuidedInBatchMixin

if TYPE_CHECKING:
    from embedforge.sentence_transformer.model import SentenceTransformer


class CachedGISTEmbedLoss(GradCacheMixin, GuidedInBatchMixin, Loss):
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

    def embed_minibatch_extra(self, batch: dict[str, Any]) -> Tensor:
        """The guide's embeddings of the mini-batch, computed in the same pass as the model's."""
        return self.embed_with_guide(batch)

    def _loss_on_cache(
        self, reps: list[list[Tensor]], extras: list[list[Any]], labels: Tensor | None, with_backward: bool
    ) -> Tensor:
        return self.calculate_loss(reps, extras, with_backward=with_backward)

    def calculate_loss(  # type: ignore[override]
        self, reps: list[list[Tensor]], reps_guided: list[list[Tensor]], *, with_backward: bool = False
    ) -> Tensor:
        """The GIST loss on cached model and guide embeddings, in chunks of ``mini_batch_size`` anchors."""
        state = self.prepare_guided([torch.cat(column) for column in reps], [torch.cat(c) for c in reps_guided])
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
