"""BatchHardSoftMarginTripletLoss: batch-hard triplets with ``softplus`` in place of a fixed margin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from embedforge.base.losses.base import flat_labels
from embedforge.sentence_transformer.losses.batch_hard_triplet import (
    BatchHardTripletLoss,
    BatchHardTripletLossDistanceFunction,
    hardest_distances,
)


class BatchHardSoftMarginTripletLoss(BatchHardTripletLoss):
    """``mean(softplus(max_pos d(a, p) - min_neg d(a, n)))`` over anchors, with labels as class ids."""

    def __init__(
        self,
        model: nn.Module,
        distance_metric: Callable[[Tensor], Tensor] = BatchHardTripletLossDistanceFunction.euclidean_distance,
    ) -> None:
        super().__init__(model, distance_metric=distance_metric)

    def batch_hard_triplet_soft_margin_loss(self, labels: Tensor, embeddings: Tensor) -> Tensor:
        """Soft-margin batch-hard triplet loss of ``embeddings`` with class ids ``labels``."""
        labels = flat_labels(self, labels, embeddings.shape[0])
        hardest_positive, hardest_negative = hardest_distances(self.distance_metric(embeddings), labels)
        return F.softplus(hardest_positive - hardest_negative).mean()

    batch_loss = batch_hard_triplet_soft_margin_loss

    def get_config_dict(self) -> dict[str, Any]:
        """Same keys as sentence-transformers (no margin)."""
        return {"distance_metric": getattr(self.distance_metric, "__name__", str(self.distance_metric))}
