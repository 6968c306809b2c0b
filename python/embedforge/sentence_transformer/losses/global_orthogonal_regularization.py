"""GlobalOrthogonalRegularizationLoss: spread a column's embeddings out over the space (Zhang et al., 2017)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from embedforge.base.losses.base import Loss
from embedforge.base.losses.merged_forward import embed_columns
from embedforge.exceptions import InvalidArgumentError
from embedforge.sentence_transformer.losses.multiple_negatives_ranking import similarity_fct_name
from embedforge.util.similarity import cos_sim


class GlobalOrthogonalRegularizationLoss(Loss):
    """Penalise high mean and high second moment of the similarities between different inputs of a column.

    For each text column with ``n`` rows of dimension ``d``, over the ``n (n - 1)`` off-diagonal entries
    ``s`` of ``similarity_fct(E, E)``: ``mean_term = mean(s) ** 2`` and
    ``second_moment_term = relu(mean(s ** 2) - 1 / d)``. Each term is aggregated over the columns
    (``"mean"`` or ``"sum"``) and weighted; ``forward`` returns ``{"gor_mean": ..., "gor_second_moment": ...}``
    (a term is left out when its weight is 0 or None), which the trainer sums. Combine it with a primary
    loss through :meth:`compute_loss_from_embeddings` or a multi-dataset setup; labels are ignored.
    """

    input_columns: ClassVar[tuple[int, int | None]] = (1, None)
    # A regulariser that usually shares its dataset with a primary loss, whose label it then ignores.
    requires_label: ClassVar[bool | None] = None
    citation: ClassVar[str] = """
@inproceedings{zhang2017spreadout,
    title={Learning Spread-out Local Feature Descriptors},
    author={Xu Zhang and Felix X. Yu and Sanjiv Kumar and Shih-Fu Chang},
    booktitle={Proceedings of the IEEE International Conference on Computer Vision (ICCV)},
    year={2017},
    eprint={1708.06320},
    archivePrefix={arXiv},
    primaryClass={cs.CV},
    url={https://arxiv.org/abs/1708.06320}
}
"""

    def __init__(
        self,
        model: nn.Module,
        similarity_fct: Callable[[Tensor, Tensor], Tensor] = cos_sim,
        mean_weight: float | None = 1.0,
        second_moment_weight: float | None = 1.0,
        aggregation: Literal["mean", "sum"] = "mean",
    ) -> None:
        super().__init__()
        if not mean_weight and not second_moment_weight:
            raise InvalidArgumentError(
                f"At least one of mean_weight ({mean_weight!r}) or second_moment_weight ({second_moment_weight!r}) "
                "must be non-zero"
            )
        if aggregation not in ("mean", "sum"):
            raise InvalidArgumentError(f"aggregation must be 'mean' or 'sum', but got {aggregation!r}")
        self.model = model
        self.similarity_fct = similarity_fct
        self.mean_weight = mean_weight
        self.second_moment_weight = second_moment_weight
        self.aggregation = aggregation

    def forward(
        self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None
    ) -> dict[str, Tensor]:
        """The weighted GOR terms over every text column."""
        features = self.check_features(sentence_features, labels)
        embeddings = embed_columns(self.model, features)
        return self.compute_loss_from_embeddings(embeddings)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None = None) -> dict[str, Tensor]:
        """The weighted terms from per-column embeddings; ``labels`` is accepted for symmetry and ignored."""
        mean_terms, second_moment_terms = zip(*(self.compute_gor(column) for column in embeddings), strict=True)
        results: dict[str, Tensor] = {}
        if self.mean_weight:
            results["gor_mean"] = self.mean_weight * self._aggregate(mean_terms)
        if self.second_moment_weight:
            results["gor_second_moment"] = self.second_moment_weight * self._aggregate(second_moment_terms)
        return results

    def _aggregate(self, terms: tuple[Tensor, ...]) -> Tensor:
        stacked = torch.stack(terms)
        return stacked.sum() if self.aggregation == "sum" else stacked.mean()

    def compute_gor(self, embeddings: Tensor) -> tuple[Tensor, Tensor]:
        """Unweighted (mean_term, second_moment_term) of one column's ``(batch, dim)`` embeddings."""
        batch_size, hidden_dim = embeddings.shape
        similarities = self.similarity_fct(embeddings, embeddings)
        # Self-similarities say nothing about how inputs spread, so they are zeroed out.
        diagonal = torch.eye(batch_size, dtype=torch.bool, device=similarities.device)
        similarities = similarities.masked_fill(diagonal, 0.0)
        # At least 1, so a single-row batch gives a differentiable zero rather than NaN.
        off_diagonal = max(batch_size * (batch_size - 1), 1)
        mean_term = (similarities.sum() / off_diagonal).pow(2)
        second_moment = similarities.pow(2).sum() / off_diagonal
        # 1/d is the second moment of uniformly spread unit vectors: only the excess is penalised.
        second_moment_term = torch.relu(second_moment - 1.0 / hidden_dim)
        return mean_term, second_moment_term

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {
            "similarity_fct": similarity_fct_name(self.similarity_fct),
            "mean_weight": self.mean_weight,
            "second_moment_weight": self.second_moment_weight,
            "aggregation": self.aggregation,
        }
