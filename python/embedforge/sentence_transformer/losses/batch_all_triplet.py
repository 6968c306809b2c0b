"""BatchAllTripletLoss: every valid (anchor, positive, negative) triplet of the batch, averaged over the active ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from embedforge.base.losses.base import flat_labels
from embedforge.sentence_transformer.losses.batch_hard_triplet import (
    BatchHardTripletLoss,
    BatchHardTripletLossDistanceFunction,
    BatchTripletLoss,
)


class BatchAllTripletLoss(BatchTripletLoss):
    """``sum(relu(d(a, p) - d(a, n) + margin)) / #(triplets with a positive loss)`` over all valid triplets."""

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

    def batch_all_triplet_loss(self, labels: Tensor, embeddings: Tensor) -> Tensor:
        """Batch-all triplet loss of ``embeddings`` with class ids ``labels``."""
        labels = flat_labels(self, labels, embeddings.shape[0])
        distances = self.distance_metric(embeddings)
        # Enumerate the (anchor, positive) pairs and compare each with the whole row: an
        # (pairs x batch) matrix instead of the batch^3 cube of all index triples.
        anchors, positives = BatchHardTripletLoss.get_anchor_positive_triplet_mask(labels).nonzero(as_tuple=True)
        losses = distances[anchors, positives].unsqueeze(1) - distances[anchors] + self.triplet_margin
        is_negative = labels[anchors].unsqueeze(1) != labels.unsqueeze(0)
        losses = is_negative.float() * losses
        losses = torch.where(losses < 0, torch.zeros_like(losses), losses)
        # Tiny values count as inactive, as in sentence-transformers; the epsilon keeps 0 / 0 at 0.
        active = int((losses > 1e-16).sum().item())
        return losses.sum() / (active + 1e-16)

    batch_loss = batch_all_triplet_loss

    def get_config_dict(self) -> dict[str, Any]:
        """Same keys as sentence-transformers."""
        return {
            "distance_metric": getattr(self.distance_metric, "__name__", str(self.distance_metric)),
            "margin": self.triplet_margin,
        }
