"""CosineSimilarityLoss: regress the cosine similarity of each pair onto its label."""

from __future__ import annotations

from collections.abc import Iterable
from inspect import isclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from embedforge.base.losses.base import Loss, flat_labels
from embedforge.base.losses.merged_forward import embed_columns


def _fullname(obj: object) -> str:
    """``module.ClassName`` of an object's class (or of a class), as sentence-transformers writes it in configs."""
    cls = obj if isclass(obj) else type(obj)
    module = cls.__module__
    if module is None or module == str.__module__:
        return cls.__name__
    return f"{module}.{cls.__name__}"


class CosineSimilarityLoss(Loss):
    """``loss_fct(cos_score_transformation(cos(u, v)), label)``; MSE on the raw cosine by default."""

    input_columns: ClassVar[tuple[int, int | None]] = (2, 2)
    requires_label: ClassVar[bool | None] = True

    def __init__(
        self,
        model: nn.Module,
        loss_fct: nn.Module = nn.MSELoss(),  # noqa: B008 - the sentence-transformers default, stateless
        cos_score_transformation: nn.Module = nn.Identity(),  # noqa: B008
    ) -> None:
        super().__init__()
        self.model = model
        self.loss_fct = loss_fct
        self.cos_score_transformation = cos_score_transformation

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor) -> Tensor:
        """Embed both columns and compare their cosine similarity with the labels."""
        features = self.check_features(sentence_features, labels)
        return self.compute_loss_from_embeddings(embed_columns(self.model, features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor) -> Tensor:
        """The loss of already computed ``[first column, second column]`` embeddings."""
        labels = flat_labels(self, labels, embeddings[0].shape[0])
        scores = self.cos_score_transformation(torch.cosine_similarity(embeddings[0], embeddings[1]))
        return self.loss_fct(scores, labels.float())

    def get_config_dict(self) -> dict[str, Any]:
        """Same keys as sentence-transformers: the full class names of both modules."""
        return {
            "loss_fct": _fullname(self.loss_fct),
            "cos_score_transformation": _fullname(self.cos_score_transformation),
        }
