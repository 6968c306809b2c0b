"""BatchHardTripletLoss: per anchor, its farthest positive against its closest negative in the batch."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from embedforge.base.losses.base import Loss, flat_labels
from embedforge.sentence_transformer.losses.triplet import TRIPLET_CITATION
from embedforge.util import cos_sim


class BatchHardTripletLossDistanceFunction:
    """All-pairs distance matrices of one embedding batch, for the batch triplet losses."""

    @staticmethod
    def cosine_distance(embeddings: Tensor) -> Tensor:
        """``1 - cos_sim(e_i, e_j)`` for every pair of rows."""
        return 1 - cos_sim(embeddings, embeddings)

    @staticmethod
    def euclidean_distance(embeddings: Tensor, squared: bool = False) -> Tensor:
        """``|e_i - e_j|`` (or its square) for every pair of rows, with a zero (and zero gradient) diagonal."""
        # The expansion |a|^2 - 2ab + |b|^2 cancels badly in half precision: do it in float32.
        with torch.autocast(device_type=embeddings.device.type, enabled=False):
            if embeddings.dtype in (torch.float16, torch.bfloat16):
                embeddings = embeddings.float()
            gram = embeddings @ embeddings.t()
        norms = torch.diagonal(gram)
        distances = norms.unsqueeze(0) - 2.0 * gram + norms.unsqueeze(1)
        # Rounding can push a true 0 slightly below zero.
        distances = torch.where(distances < 0, torch.zeros_like(distances), distances)
        if squared:
            return distances
        # sqrt has an infinite slope at 0: take it of a tiny positive value there, then zero the result.
        zero = distances.eq(0).float()
        return (1.0 - zero) * torch.sqrt(distances + zero * 1e-16)

    # The misspelt name that older sentence-transformers code uses.
    eucledian_distance = euclidean_distance


class BatchTripletLoss(Loss):
    """Shared frame of the batch triplet losses: one text column, one class id per row.

    Subclasses set ``batch_loss`` to their loss of ``(labels, embeddings)``.
    """

    input_columns: ClassVar[tuple[int, int | None]] = (1, 1)
    requires_label: ClassVar[bool | None] = True
    citation: ClassVar[str] = TRIPLET_CITATION
    #: The model; subclasses set it under sentence-transformers' attribute name.
    sentence_embedder: nn.Module

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor) -> Tensor:
        """Embed the text column and return the loss for its class labels."""
        features = self.check_features(sentence_features, labels)
        embeddings = self.sentence_embedder(features[0])["sentence_embedding"]
        return self.compute_loss_from_embeddings([embeddings], labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor) -> Tensor:
        """The loss of already computed ``[embeddings]``."""
        return self.batch_loss(labels, embeddings[0])

    def batch_loss(self, labels: Tensor, embeddings: Tensor) -> Tensor:
        """The loss of one embedding batch with class ids ``labels``."""
        raise NotImplementedError


class BatchHardTripletLoss(BatchTripletLoss):
    """``mean(relu(max_pos d(a, p) - min_neg d(a, n) + margin))`` over anchors, with labels as class ids."""

    def __init__(
        self,
        model: nn.Module,
        distance_metric: Callable[[Tensor], Tensor] = BatchHardTripletLossDistanceFunction.euclidean_distance,
        margin: float = 5,
    ) -> None:
        super().__init__()
        self.sentence_embedder = model
        self.triplet_margin = margin
        self.distance_metric = distance_metric

    def batch_hard_triplet_loss(self, labels: Tensor, embeddings: Tensor) -> Tensor:
        """Batch-hard triplet loss of ``embeddings`` with class ids ``labels``."""
        labels = flat_labels(self, labels, embeddings.shape[0])
        hardest_positive, hardest_negative = hardest_distances(self.distance_metric(embeddings), labels)
        losses = hardest_positive - hardest_negative + self.triplet_margin
        return torch.where(losses < 0, torch.zeros_like(losses), losses).mean()

    batch_loss = batch_hard_triplet_loss

    @staticmethod
    def get_triplet_mask(labels: Tensor) -> Tensor:
        """``mask[a, p, n]``: a, p, n distinct, label(a) == label(p) and label(a) != label(n)."""
        same = labels.unsqueeze(0) == labels.unsqueeze(1)
        distinct = ~torch.eye(labels.size(0), dtype=torch.bool, device=labels.device)
        all_distinct = distinct.unsqueeze(2) & distinct.unsqueeze(1) & distinct.unsqueeze(0)
        return all_distinct & same.unsqueeze(2) & ~same.unsqueeze(1)

    @staticmethod
    def get_anchor_positive_triplet_mask(labels: Tensor) -> Tensor:
        """``mask[a, p]``: a != p and they share a label."""
        distinct = ~torch.eye(labels.size(0), dtype=torch.bool, device=labels.device)
        return (labels.unsqueeze(0) == labels.unsqueeze(1)) & distinct

    @staticmethod
    def get_anchor_negative_triplet_mask(labels: Tensor) -> Tensor:
        """``mask[a, n]``: a and n have different labels."""
        return labels.unsqueeze(0) != labels.unsqueeze(1)

    def get_config_dict(self) -> dict[str, Any]:
        """Same keys as sentence-transformers."""
        return {
            "distance_metric": getattr(self.distance_metric, "__name__", str(self.distance_metric)),
            "margin": self.triplet_margin,
        }


def hardest_distances(distances: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Per anchor (as ``(batch, 1)`` columns): the largest positive distance and the smallest negative one.

    An anchor without positives gets 0; one without negatives gets its row's largest distance plus its
    smallest, which is what sentence-transformers' masking arithmetic yields too.
    """
    positive = BatchHardTripletLoss.get_anchor_positive_triplet_mask(labels).float()
    hardest_positive = (positive * distances).max(dim=1, keepdim=True).values
    negative = BatchHardTripletLoss.get_anchor_negative_triplet_mask(labels).float()
    # Lift the non-negatives by the row maximum so that they never win the minimum.
    row_max = distances.max(dim=1, keepdim=True).values
    hardest_negative = (distances + row_max * (1.0 - negative)).min(dim=1, keepdim=True).values
    return hardest_positive, hardest_negative
