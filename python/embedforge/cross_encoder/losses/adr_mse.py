"""ADRMSELoss (Rank-DistiLLM): discounted squared error between true ranks and differentiable approximate ranks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from embedforge.cross_encoder.losses._common import ListwiseLoss
from embedforge.util.misc import fullname

if TYPE_CHECKING:
    # Only for annotations: the model module imports the legacy fit, which imports these losses.
    from embedforge.cross_encoder.model import CrossEncoder


class ADRMSELoss(ListwiseLoss):
    """Approx Discounted Rank MSE: fit each document's soft rank to its true rank, nDCG-style discounted.

    A document's soft rank is ``1 + sum_{j != i} sigmoid(alpha * (s_j - s_i))`` (ApproxRank). Its true
    rank comes from the labels, with tied labels sharing their average rank (so equal scores for equal
    labels reach zero error). The loss is ``(true - soft)^2 / log2(1 + true)`` averaged over all real
    documents of the batch.

    Args:
        model: The CrossEncoder to train; it must have a single output label.
        alpha: Sharpness of the sigmoid in the soft rank: higher is closer to the hard rank but gives
            weaker gradients for well-separated pairs. Defaults to 1.0 (the paper's value).
        activation_fn: Applied to the logits first; None for identity. Defaults to identity.
        mini_batch_size: Pairs per forward pass: None (or 0) for as many as the batch has queries, a
            negative value for all pairs at once.

    Inputs:
        ``(query, [doc_1, ..., doc_n])`` rows with labels or teacher scores ``[score_1, ..., score_n]``;
        lists may differ in length.
    """

    citation = """
@inproceedings{schlatt2025rankdistillm,
    title={Rank-DistiLLM: Closing the Effectiveness Gap Between Cross-Encoders and LLMs for Passage Re-ranking},
    author={Schlatt, Ferdinand and Fröbe, Maik and Scells, Harrisen and Zhuang, Shengyao and Koopman, Bevan and Zuccon, Guido and Stein, Benno and Potthast, Martin and Hagen, Matthias},
    booktitle={Advances in Information Retrieval (ECIR 2025)},
    year={2025},
    doi={10.1007/978-3-031-88714-7_31},
}
"""

    def __init__(
        self,
        model: CrossEncoder,
        alpha: float = 1.0,
        activation_fn: nn.Module | None = nn.Identity(),  # noqa: B008 - the sentence-transformers default, stateless
        mini_batch_size: int | None = None,
    ) -> None:
        super().__init__(model, activation_fn=activation_fn, mini_batch_size=mini_batch_size)
        self.alpha = alpha

    def approximate_ranks(self, scores: Tensor, mask: Tensor) -> Tensor:
        """ApproxRank of each document: ``1 + sum over the other real documents j of sigmoid(alpha (s_j - s_i))``."""
        # beats[b, i, j] = sigmoid(alpha * (s_j - s_i)): how far document j is ahead of document i.
        beats = torch.sigmoid(self.alpha * (scores.unsqueeze(1) - scores.unsqueeze(2))) * mask.unsqueeze(1)
        # The sum includes j = i, which adds sigmoid(0) = 1/2 for every real document: take it back out.
        return 1.0 + beats.sum(dim=2) - 0.5 * mask.float()

    def forward(
        self,
        inputs: list[Any],
        labels: list[Tensor],
        prompt: str | None = None,
        task: str | None = None,
    ) -> Tensor:
        """The loss of a batch ``[queries, documents_lists]`` with one label list per query."""
        batch, logits = self.score_batch(inputs, labels, prompt, task)
        device = logits.device
        scores = batch.padded(logits, -1e16)
        mask = batch.mask(device)
        relevance = batch.padded(batch.labels.to(device), 0.0)

        # True rank with ties averaged: 1 + (#real documents labelled higher) + (#other real documents with
        # the same label) / 2, i.e. greater + (equal_including_self + 1) / 2.
        other = relevance.unsqueeze(1)  # [b, ., j]
        this = relevance.unsqueeze(2)  # [b, i, .]
        real = mask.unsqueeze(1)
        higher = ((other > this) & real).sum(dim=-1).float()
        same = ((other == this) & real).sum(dim=-1).float()
        true_ranks = higher + (same + 1.0) / 2.0

        errors = (true_ranks - self.approximate_ranks(scores, mask)) ** 2 / torch.log2(true_ranks + 1.0)
        return (errors * mask.float()).sum() / mask.sum()

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {
            "alpha": self.alpha,
            "activation_fn": fullname(self.activation_fn),
            "mini_batch_size": self.mini_batch_size,
        }
