"""MarginMSELoss: regress the student's score margin between two documents onto the teacher's margin."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from embedforge.base.losses.base import Loss
from embedforge.base.losses.merged_forward import embed_columns
from embedforge.exceptions import InvalidArgumentError
from embedforge.sentence_transformer.losses.multiple_negatives_ranking import similarity_fct_name
from embedforge.util.similarity import pairwise_dot_score


class MarginMSELoss(Loss):
    """MSE between ``sim(query, positive) - sim(query, negative_i)`` and the teacher's margins in the label.

    Columns: query, positive, negative_1, ..., negative_n. The label per row is either the ``n``
    teacher margins (a scalar when ``n == 1``) or the ``n + 1`` teacher scores
    ``[score(q, pos), score(q, neg_1), ...]``, from which the margins are taken.
    """

    input_columns: ClassVar[tuple[int, int | None]] = (3, None)
    requires_label: ClassVar[bool | None] = True
    citation: ClassVar[str] = """
@misc{hofstaetter2021crossarchitecture,
    title={Improving Efficient Neural Ranking Models with Cross-Architecture Knowledge Distillation},
    author={Sebastian Hofst{\\"a}tter and Sophia Althammer and Michael Schr{\\"o}der and Mete Sertkan and Allan Hanbury},
    year={2021},
    eprint={2010.02666},
    archivePrefix={arXiv},
    primaryClass={cs.IR}
}
"""

    def __init__(
        self, model: nn.Module, similarity_fct: Callable[[Tensor, Tensor], Tensor] = pairwise_dot_score
    ) -> None:
        super().__init__()
        self.model = model
        self.similarity_fct = similarity_fct
        self.loss_fct = nn.MSELoss()

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor) -> Tensor:
        """MSE of predicted against teacher margins, averaged over rows and negatives."""
        features = self.check_features(sentence_features, labels)
        embeddings = embed_columns(self.model, features)
        return self.compute_loss_from_embeddings(embeddings, labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor) -> Tensor:
        """The loss from per-column embeddings [query, positive, negatives...] and the label tensor."""
        query, positive, negatives = embeddings[0], embeddings[1], embeddings[2:]
        batch_size, num_negatives = query.shape[0], len(negatives)
        targets = labels.detach()
        if targets.shape == (batch_size, num_negatives + 1):
            # Raw teacher scores: turn them into positive-minus-negative margins.
            targets = targets[:, :1] - targets[:, 1:]
        elif targets.shape == (batch_size,):
            targets = targets.unsqueeze(1)
        if targets.shape != (batch_size, num_negatives):
            raise InvalidArgumentError(
                f"{type(self).__name__} got labels of shape {tuple(labels.shape)} for a batch of {batch_size} rows "
                f"with {num_negatives} negative column(s); expected ({batch_size}, {num_negatives}) teacher margins "
                f"or ({batch_size}, {num_negatives + 1}) teacher scores [positive, negatives...]"
                + (f", or ({batch_size},) margins" if num_negatives == 1 else "")
            )
        positive_scores = self.similarity_fct(query, positive)
        margins = torch.stack([positive_scores - self.similarity_fct(query, negative) for negative in negatives], dim=1)
        return self.loss_fct(margins, targets.to(margins.dtype))

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {"similarity_fct": similarity_fct_name(self.similarity_fct)}
