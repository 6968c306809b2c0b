"""MSELoss: mean squared error between the student's embeddings and teacher embeddings given as the label."""

from __future__ import annotations

from typing import Any, ClassVar

from torch import nn

from embedforge.sentence_transformer.losses.embed_distill import EmbedDistillLoss


class MSELoss(EmbedDistillLoss):
    """:class:`EmbedDistillLoss` with ``distance_metric="mse"`` (multilingual knowledge distillation).

    Every text column's embedding is compared with the teacher embedding in the label, shape
    ``(batch, teacher_dim)`` (shared by all columns) or ``(batch, columns, teacher_dim)``.
    """

    citation: ClassVar[str] = """
@inproceedings{reimers-2020-multilingual-sentence-bert,
    title = "Making Monolingual Sentence Embeddings Multilingual using Knowledge Distillation",
    author = "Reimers, Nils and Gurevych, Iryna",
    booktitle = "Proceedings of the 2020 Conference on Empirical Methods in Natural Language Processing (EMNLP)",
    month = nov,
    year = "2020",
    publisher = "Association for Computational Linguistics",
    url = "https://arxiv.org/abs/2004.09813",
}
"""

    def __init__(self, model: nn.Module, projection_dim: int | None = None) -> None:
        super().__init__(model, distance_metric="mse", projection_dim=projection_dim)

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {"projection_dim": self.projection_dim}
