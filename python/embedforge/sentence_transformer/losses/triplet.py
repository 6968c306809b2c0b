"""TripletLoss: the anchor must be closer to the positive than to the negative by a margin."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from embedforge.base.losses.base import Loss
from embedforge.base.losses.merged_forward import embed_columns
from embedforge.sentence_transformer.losses.contrastive import metric_name
from embedforge.util import pairwise_cos_sim, pairwise_euclidean_sim, pairwise_manhattan_sim

TRIPLET_CITATION = """
@misc{hermans2017defense,
    title={In Defense of the Triplet Loss for Person Re-Identification},
    author={Alexander Hermans and Lucas Beyer and Bastian Leibe},
    year={2017},
    eprint={1703.07737},
    archivePrefix={arXiv},
    primaryClass={cs.CV}
}
"""


def _cosine(x: Tensor, y: Tensor) -> Tensor:
    return 1 - pairwise_cos_sim(x, y)


def _euclidean(x: Tensor, y: Tensor) -> Tensor:
    return -pairwise_euclidean_sim(x, y)


def _manhattan(x: Tensor, y: Tensor) -> Tensor:
    return -pairwise_manhattan_sim(x, y)


class TripletDistanceMetric:
    """Row-wise distances between two embedding batches, for TripletLoss."""

    # staticmethod so the members stay plain functions whether read from the class or an instance.
    COSINE = staticmethod(_cosine)
    EUCLIDEAN = staticmethod(_euclidean)
    MANHATTAN = staticmethod(_manhattan)


class TripletLoss(Loss):
    """``mean(relu(d(anchor, positive) - d(anchor, negative) + triplet_margin))`` over (anchor, positive, negative) rows."""

    input_columns: ClassVar[tuple[int, int | None]] = (3, 3)
    requires_label: ClassVar[bool | None] = False
    citation: ClassVar[str] = TRIPLET_CITATION

    def __init__(
        self,
        model: nn.Module,
        distance_metric: Callable[[Tensor, Tensor], Tensor] = TripletDistanceMetric.EUCLIDEAN,
        triplet_margin: float = 5,
    ) -> None:
        super().__init__()
        self.model = model
        self.distance_metric = distance_metric
        self.triplet_margin = triplet_margin

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        """Embed the three columns and return the triplet loss of the batch."""
        features = self.check_features(sentence_features, labels)
        return self.compute_loss_from_embeddings(embed_columns(self.model, features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None = None) -> Tensor:
        """The triplet loss of already computed ``[anchor, positive, negative]`` embeddings."""
        anchor, positive, negative = embeddings
        margins = self.distance_metric(anchor, positive) - self.distance_metric(anchor, negative)
        return F.relu(margins + self.triplet_margin).mean()

    def get_config_dict(self) -> dict[str, Any]:
        """Same keys as sentence-transformers."""
        return {
            "distance_metric": metric_name(self.distance_metric, TripletDistanceMetric),
            "triplet_margin": self.triplet_margin,
        }
