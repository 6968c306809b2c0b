"""ContrastiveLoss: pull positive pairs together, push negative pairs beyond a margin (Hadsell et al., 2006)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from embedforge.base.losses.base import Loss, flat_labels
from embedforge.base.losses.merged_forward import embed_columns


def _euclidean(x: Tensor, y: Tensor) -> Tensor:
    return F.pairwise_distance(x, y, p=2)


def _manhattan(x: Tensor, y: Tensor) -> Tensor:
    return F.pairwise_distance(x, y, p=1)


def _cosine_distance(x: Tensor, y: Tensor) -> Tensor:
    return 1 - F.cosine_similarity(x, y)


class SiameseDistanceMetric:
    """Row-wise distances between two embedding batches, for ContrastiveLoss and OnlineContrastiveLoss."""

    # staticmethod so the members stay plain functions whether read from the class or an instance.
    EUCLIDEAN = staticmethod(_euclidean)
    MANHATTAN = staticmethod(_manhattan)
    COSINE_DISTANCE = staticmethod(_cosine_distance)


def metric_name(metric: Callable[..., Tensor], owner: type) -> str:
    """``Owner.MEMBER`` when ``metric`` is one of ``owner``'s members, else the callable's own name."""
    for name in vars(owner):
        if not name.startswith("_") and getattr(owner, name) is metric:
            return f"{owner.__name__}.{name}"
    return getattr(metric, "__name__", str(metric))


def warn_non_binary(loss: nn.Module, labels: Tensor, consequence: str) -> None:
    """Warn once per loss object when a batch has labels other than 0 and 1."""
    if getattr(loss, "_checked_labels", False):
        return
    # torch types Module.__setattr__ values as Tensor | Module; any value is stored at runtime.
    loss._checked_labels = True  # type: ignore[assignment]
    if labels.ne(0).logical_and(labels.ne(1)).any().item():
        warnings.warn(f"{type(loss).__name__} expects binary labels (0 or 1). {consequence}", UserWarning, stacklevel=4)


class ContrastiveLoss(Loss):
    """``0.5 * (y * d^2 + (1 - y) * relu(margin - d)^2)`` per pair, averaged (or summed)."""

    input_columns: ClassVar[tuple[int, int | None]] = (2, 2)
    requires_label: ClassVar[bool | None] = True
    citation: ClassVar[str] = """
@inproceedings{hadsell2006dimensionality,
    author={Hadsell, Raia and Chopra, Sumit and LeCun, Yann},
    booktitle={2006 IEEE Computer Society Conference on Computer Vision and Pattern Recognition (CVPR'06)},
    title={Dimensionality Reduction by Learning an Invariant Mapping},
    year={2006},
    volume={2},
    pages={1735--1742},
    doi={10.1109/CVPR.2006.100}
}
"""

    def __init__(
        self,
        model: nn.Module,
        distance_metric: Callable[[Tensor, Tensor], Tensor] = SiameseDistanceMetric.COSINE_DISTANCE,
        margin: float = 0.5,
        size_average: bool = True,
    ) -> None:
        super().__init__()
        self.distance_metric = distance_metric
        self.margin = margin
        self.model = model
        self.size_average = size_average
        self._checked_labels = False

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor) -> Tensor:
        """Embed both columns and return the contrastive loss of the batch."""
        features = self.check_features(sentence_features, labels)
        return self.compute_loss_from_embeddings(embed_columns(self.model, features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor) -> Tensor:
        """The contrastive loss of already computed ``[anchor, other]`` embeddings."""
        labels = flat_labels(self, labels, embeddings[0].shape[0])
        warn_non_binary(
            self,
            labels,
            "Other labels are used as they are: label weights the positive term and 1 - label the negative term.",
        )
        distances = self.distance_metric(embeddings[0], embeddings[1])
        positive = labels.float() * distances.pow(2)
        negative = (1 - labels).float() * F.relu(self.margin - distances).pow(2)
        losses = 0.5 * (positive + negative)
        return losses.mean() if self.size_average else losses.sum()

    def get_config_dict(self) -> dict[str, Any]:
        """Same keys as sentence-transformers."""
        return {
            "distance_metric": metric_name(self.distance_metric, SiameseDistanceMetric),
            "margin": self.margin,
            "size_average": self.size_average,
        }
