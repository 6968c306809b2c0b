"""OnlineContrastiveLoss: ContrastiveLoss restricted to the hard pairs of each batch."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from embedforge.base.losses.base import Loss, flat_labels
from embedforge.base.losses.merged_forward import embed_columns
from embedforge.sentence_transformer.losses.contrastive import SiameseDistanceMetric, metric_name, warn_non_binary


class OnlineContrastiveLoss(Loss):
    """Sum of ``d^2`` over positives farther than the closest negative and ``relu(margin - d)^2`` over
    negatives closer than the farthest positive."""

    input_columns: ClassVar[tuple[int, int | None]] = (2, 2)
    requires_label: ClassVar[bool | None] = True

    def __init__(
        self,
        model: nn.Module,
        distance_metric: Callable[[Tensor, Tensor], Tensor] = SiameseDistanceMetric.COSINE_DISTANCE,
        margin: float = 0.5,
    ) -> None:
        super().__init__()
        self.model = model
        self.margin = margin
        self.distance_metric = distance_metric
        self._checked_labels = False

    def forward(
        self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor, size_average: bool = False
    ) -> Tensor:
        """Embed both columns and return the loss of the batch's hard pairs (``size_average`` is unused, as upstream)."""
        features = self.check_features(sentence_features, labels)
        return self.compute_loss_from_embeddings(embed_columns(self.model, features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor) -> Tensor:
        """The loss of already computed ``[anchor, other]`` embeddings."""
        labels = flat_labels(self, labels, embeddings[0].shape[0])
        warn_non_binary(
            self, labels, "Pairs with other labels are neither positives nor negatives, so they are ignored."
        )
        distances = self.distance_metric(embeddings[0], embeddings[1])
        negatives = distances[labels == 0]
        positives = distances[labels == 1]
        # A batch with one kind only compares that kind with its own mean, as sentence-transformers does.
        negative_bound = positives.max() if len(positives) else negatives.mean()
        positive_bound = negatives.min() if len(negatives) else positives.mean()
        hard_negatives = negatives[negatives < negative_bound]
        hard_positives = positives[positives > positive_bound]
        return hard_positives.pow(2).sum() + F.relu(self.margin - hard_negatives).pow(2).sum()

    def get_config_dict(self) -> dict[str, Any]:
        """Same keys as sentence-transformers."""
        return {"distance_metric": metric_name(self.distance_metric, SiameseDistanceMetric), "margin": self.margin}
