"""BatchSemiHardTripletLoss: per positive pair, the closest negative that is still farther than the positive."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from embedforge.base.losses.base import flat_labels
from embedforge.sentence_transformer.losses.batch_hard_triplet import (
    BatchHardTripletLossDistanceFunction,
    BatchTripletLoss,
)


class BatchSemiHardTripletLoss(BatchTripletLoss):
    """FaceNet's semi-hard mining: ``relu(d(a, p) - d(a, n*) + margin)`` averaged over positive pairs.

    ``n*`` is the closest negative of ``a`` with ``d(a, n) > d(a, p)``; when there is none, the
    farthest negative of ``a`` (TensorFlow Addons' ``triplet_semihard_loss``).
    """

    def __init__(
        self,
        model: nn.Module,
        distance_metric: Callable[[Tensor], Tensor] = BatchHardTripletLossDistanceFunction.euclidean_distance,
        margin: float = 5,
    ) -> None:
        super().__init__()
        self.sentence_embedder = model
        self.margin = margin
        self.distance_metric = distance_metric

    def batch_semi_hard_triplet_loss(self, labels: Tensor, embeddings: Tensor) -> Tensor:
        """Semi-hard triplet loss of ``embeddings`` with class ids ``labels``."""
        labels = flat_labels(self, labels, embeddings.shape[0])
        batch_size = labels.numel()
        distances = self.distance_metric(embeddings)
        same = labels.unsqueeze(0) == labels.unsqueeze(1)

        # Each anchor's negative distances in ascending order (non-negatives pushed to +inf at the end);
        # a binary search per (anchor, positive) then finds the first negative strictly farther than
        # the positive without the batch^3 comparison cube.
        sorted_negatives = distances.masked_fill(same, torch.inf).sort(dim=1, stable=True).values
        first_farther = torch.searchsorted(
            sorted_negatives.detach().contiguous(), distances.detach().contiguous(), right=True
        )
        farther = sorted_negatives.gather(1, first_farther.clamp(max=batch_size - 1))
        semi_hard = torch.where(torch.isfinite(farther), farther, farthest_negative(distances, ~same))

        positive_pairs = same.float() - torch.eye(batch_size, device=distances.device)
        losses = torch.clamp((distances - semi_hard + self.margin) * positive_pairs, min=0.0)
        return losses.sum() / positive_pairs.sum().clamp(min=1e-16)

    batch_loss = batch_semi_hard_triplet_loss

    def get_config_dict(self) -> dict[str, Any]:
        """Same keys as sentence-transformers."""
        return {
            "distance_metric": getattr(self.distance_metric, "__name__", str(self.distance_metric)),
            "margin": self.margin,
        }


def farthest_negative(distances: Tensor, negatives: Tensor) -> Tensor:
    """Per row (as a ``(batch, 1)`` column) the largest distance among ``negatives``; the row minimum if there is none.

    Shifting by the row minimum makes every candidate non-negative, so zeroing the non-negatives
    cannot make them win the maximum.
    """
    row_min = distances.min(dim=1, keepdim=True).values
    return ((distances - row_min) * negatives).max(dim=1, keepdim=True).values + row_min
