"""MegaBatchMarginLoss: a margin loss against the hardest in-batch negative (Wieting & Gimpel 2018)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from embedforge.base.losses.base import Loss
from embedforge.base.losses.gradcache import (
    CachedLossMixin,
    reject_static_embedding,
    validate_mini_batch_arguments,
)
from embedforge.base.losses.merged_forward import embed_columns
from embedforge.base.losses.row_chunks import chunked_loss
from embedforge.exceptions import InvalidArgumentError
from embedforge.util import cos_sim

CITATION_PARANMT = """
@inproceedings{wieting-gimpel-2018-paranmt,
    title = "{P}ara{NMT}-50{M}: Pushing the Limits of Paraphrastic Sentence Embeddings with Millions of Machine Translations",
    author = "Wieting, John and Gimpel, Kevin",
    editor = "Gurevych, Iryna and Miyao, Yusuke",
    booktitle = "Proceedings of the 56th Annual Meeting of the Association for Computational Linguistics (Volume 1: Long Papers)",
    month = jul,
    year = "2018",
    address = "Melbourne, Australia",
    publisher = "Association for Computational Linguistics",
    url = "https://aclanthology.org/P18-1042",
    doi = "10.18653/v1/P18-1042",
    pages = "451--462",
}
"""


@dataclass
class _PairState:
    anchors: Tensor
    positives: Tensor


class MegaBatchMarginLoss(CachedLossMixin, Loss):
    """``relu(positive_margin - cos(a, p)) + relu(max_negative_cos - negative_margin)``, averaged over anchors.

    Each anchor's negative is the most similar *other* positive in the batch, so large batches matter;
    with ``use_mini_batched_version`` (the default) the batch is embedded with GradCache in
    ``mini_batch_size`` pieces, giving the same loss and gradients in mini-batch memory.
    """

    input_columns = (2, 2)
    requires_label = False
    citation = CITATION_PARANMT

    def __init__(
        self,
        model: nn.Module,
        positive_margin: float = 0.8,
        negative_margin: float = 0.3,
        use_mini_batched_version: bool = True,
        mini_batch_size: int = 50,
        mini_batch_num_tokens: int | None = None,
        show_progress_bar: bool = False,
    ) -> None:
        """Margins for the positive and the hardest negative cosine; mini-batch settings for the GradCache path."""
        super().__init__()
        if use_mini_batched_version:
            reject_static_embedding(model, type(self).__name__, "MegaBatchMarginLoss(use_mini_batched_version=False)")
        validate_mini_batch_arguments(mini_batch_size, mini_batch_num_tokens)
        self.model = model
        self.positive_margin = positive_margin
        self.negative_margin = negative_margin
        self.use_mini_batched_version = use_mini_batched_version
        self.mini_batch_size = mini_batch_size
        self.mini_batch_num_tokens = mini_batch_num_tokens
        self.show_progress_bar = show_progress_bar
        # Wrappers ask this to know whether gradients arrive through a backward hook.
        self.uses_gradient_cache = use_mini_batched_version

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        """Embed (anchor, positive) and return the batch loss."""
        features = list(sentence_features)
        if len(features) != 2:
            # A third column would be embedded and then ignored (or crash the cached backward pass).
            raise InvalidArgumentError(
                f"{type(self).__name__} expects exactly 2 input columns, (anchor, positive), but got {len(features)}. "
                "It mines each anchor's hardest negative from the other positives in the batch, so it has no use "
                "for a negative column; CachedMultipleNegativesRankingLoss trains with explicit negatives."
            )
        features = self.check_features(features, labels)
        if self.use_mini_batched_version:
            return self.forward_cached(features, labels)
        return self.compute_loss_from_embeddings(embed_columns(self.model, features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None = None) -> Tensor:
        """The loss from ``[anchors, positives]`` embeddings, each ``(batch, dim)``."""
        return chunked_loss(self, embeddings, labels, chunk_size=None)

    def calculate_loss(
        self, reps: list[list[Tensor]], labels: Tensor | None = None, *, with_backward: bool = False
    ) -> Tensor:
        """The loss on cached embeddings, in chunks of ``mini_batch_size`` anchors."""
        embeddings = [torch.cat(column) for column in reps]
        return chunked_loss(self, embeddings, labels, self.mini_batch_size, with_backward, self.show_progress_bar)

    # -- ChunkedLoss ---------------------------------------------------------------------------

    def prepare_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> _PairState:
        """Check there are exactly (anchors, positives)."""
        if len(embeddings) != 2:
            raise InvalidArgumentError(
                f"{type(self).__name__} needs exactly 2 embedding columns (anchor, positive), got {len(embeddings)}: "
                "it mines each anchor's negative from the other positives"
            )
        return _PairState(embeddings[0], embeddings[1])

    def num_rows(self, state: _PairState) -> int:
        """Anchor rows."""
        return state.anchors.size(0)

    def loss_for_rows(self, state: _PairState, begin: int, end: int) -> Tensor:
        """Summed margin losses of anchors ``begin:end``, divided by the batch size."""
        rows = torch.arange(end - begin, device=state.anchors.device)
        own = rows + begin
        scores = cos_sim(state.anchors[begin:end], state.positives)
        positive = scores[rows, own]
        # Hide each anchor's own positive so the max picks its hardest negative.
        own_mask = torch.zeros_like(scores, dtype=torch.bool)
        own_mask[rows, own] = True
        hardest_negative = scores.masked_fill(own_mask, -torch.inf).max(dim=1).values
        per_anchor = F.relu(self.positive_margin - positive) + F.relu(hardest_negative - self.negative_margin)
        return per_anchor.sum() / state.anchors.size(0)

    def get_config_dict(self) -> dict[str, Any]:
        """The constructor arguments, as sentence-transformers reports them."""
        return {
            "positive_margin": self.positive_margin,
            "negative_margin": self.negative_margin,
            "mini_batch_size": self.mini_batch_size,
            "mini_batch_num_tokens": self.mini_batch_num_tokens,
        }
