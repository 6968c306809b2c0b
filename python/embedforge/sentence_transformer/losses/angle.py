"""AnglELoss: CoSENT over the AnglE (complex-angle) similarity, also for (anchor, positive, negatives...) rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import ClassVar

import torch
from torch import Tensor, nn

from embedforge.base.losses.base import flat_labels
from embedforge.base.losses.merged_forward import embed_columns
from embedforge.exceptions import InvalidArgumentError
from embedforge.sentence_transformer.losses.cosent import CoSENTLoss
from embedforge.util import pairwise_angle_sim


class AnglELoss(CoSENTLoss):
    """CoSENTLoss with ``pairwise_angle_sim``; n-tuples without labels become positive/negative scored pairs."""

    input_columns: ClassVar[tuple[int, int | None]] = (2, None)
    # Pairs need a score; anchor/positive/negative rows may go without (positives then count as 1).
    requires_label: ClassVar[bool | None] = None
    citation: ClassVar[str] = """
@inproceedings{li2024aoe,
    title = "{A}o{E}: Angle-optimized Embeddings for Semantic Textual Similarity",
    author = "Li, Xianming and Li, Jing",
    year = "2024",
    publisher = "Association for Computational Linguistics",
    url = "https://aclanthology.org/2024.acl-long.101/",
    doi = "10.18653/v1/2024.acl-long.101"
}
"""

    def __init__(self, model: nn.Module, scale: float = 20.0) -> None:
        super().__init__(model, scale, similarity_fct=pairwise_angle_sim)

    def describe_input_needs(self) -> str:
        """Pairs with a score label, or 3+ columns (anchor, positive, negatives) with an optional label."""
        return "2 text columns and a label column, or at least 3 text columns (a label column is optional)"

    def check_input_columns(self, columns: Sequence[str], has_label: bool, label_column: str | None = None) -> None:
        """Like the base check, but a pair (exactly 2 columns) must come with a label."""
        if len(columns) == 2 and not has_label:
            raise InvalidArgumentError(
                f"{type(self).__name__} needs {self.describe_input_needs()}, but got text columns {list(columns)} "
                "and no label"
            )
        super().check_input_columns(columns, has_label, label_column)

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None) -> Tensor:
        """Embed every column and return the AnglE loss of the batch."""
        features = self.check_features(sentence_features, labels)
        return self.compute_loss_from_embeddings(embed_columns(self.model, features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        """AnglE loss of ``[anchor, other, ...]`` embeddings; 3+ columns are unrolled into scored pairs."""
        if len(embeddings) == 2:
            if labels is None:
                raise InvalidArgumentError(f"{type(self).__name__} needs a label column for pairs; got no labels")
            return super().compute_loss_from_embeddings(embeddings, labels)
        anchors = embeddings[0]
        others = len(embeddings) - 1
        if labels is None:
            labels = torch.ones(anchors.shape[0], device=anchors.device)
        labels = flat_labels(self, labels, anchors.shape[0])
        # Anchor vs positive keeps the label; anchor vs each negative gets its complement.
        pair_labels = torch.cat([labels, (1 - labels).repeat(others - 1)])
        return super().compute_loss_from_embeddings([anchors.repeat(others, 1), torch.cat(embeddings[1:])], pair_labels)
