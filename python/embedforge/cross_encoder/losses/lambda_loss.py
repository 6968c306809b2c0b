"""LambdaLoss (Wang et al. 2018): pairwise logistic losses weighted to bound a ranking metric such as nDCG."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor, nn

from embedforge.cross_encoder.losses._common import ListwiseLoss
from embedforge.exceptions import InvalidArgumentError
from embedforge.util.misc import fullname

if TYPE_CHECKING:
    # Only for annotations: the model module imports the legacy fit, which imports these losses.
    from embedforge.cross_encoder.model import CrossEncoder

# Every scheme works on one batch of lists, each sorted by the model's scores (rank 1 first):
#   gain[b, i]      (2^label - 1) / maxDCG of the document at predicted rank i+1 (0 for padding),
#   discount[0, i]  log2(2 + i), the DCG discount of rank i+1,
#   true_sorted     the (clamped) labels in that order.
# A scheme returns the weight of each document pair (i, j), broadcastable to (batch, docs, docs).


class BaseWeightingScheme(nn.Module):
    """A LambdaLoss weighting scheme: the weight of each pair of predicted ranks (subclass and implement ``forward``)."""

    def forward(self, gain: Tensor, discount: Tensor, true_sorted: Tensor) -> Tensor:
        """Pair weights from the normalised gains, the rank discounts and the labels in predicted order."""
        raise NotImplementedError


class NoWeightingScheme(BaseWeightingScheme):
    """Every pair weighs 1: plain pairwise logistic loss (RankNet)."""

    def forward(self, gain: Tensor, discount: Tensor, true_sorted: Tensor) -> Tensor:
        """The constant weight 1."""
        return torch.tensor(1.0, device=gain.device)


class NDCGLoss1Scheme(BaseWeightingScheme):
    """NDCG-Loss1: the discounted gain of the higher-ranked document (a loose bound; Loss2 and Loss2++ do better)."""

    def forward(self, gain: Tensor, discount: Tensor, true_sorted: Tensor) -> Tensor:
        """``gain_i / discount_i`` for every pair (i, j)."""
        return (gain / discount).unsqueeze(-1)


class NDCGLoss2Scheme(BaseWeightingScheme):
    """NDCG-Loss2: a tight nDCG bound weighting each pair by the discount step at its rank distance and its gain gap."""

    def forward(self, gain: Tensor, discount: Tensor, true_sorted: Tensor) -> Tensor:
        """``|1/D(|i-j|) - 1/D(|i-j|+1)| * |gain_i - gain_j|``, zero on the diagonal."""
        ranks = torch.arange(1, gain.shape[1] + 1, device=gain.device)
        distance = (ranks[:, None] - ranks[None, :]).abs()
        # discount[0, d - 1] = D(d) = log2(1 + d); at d = 0 the index wraps to the last entry, but the
        # diagonal it affects is zeroed just below.
        inverse = discount[0].abs().reciprocal()
        delta = (inverse[distance - 1] - inverse[distance]).abs()
        delta.fill_diagonal_(0.0)
        return delta.unsqueeze(0) * (gain.unsqueeze(2) - gain.unsqueeze(1)).abs()


class LambdaRankScheme(BaseWeightingScheme):
    """LambdaRank: the change in DCG from swapping the two documents (a coarse nDCG bound)."""

    def forward(self, gain: Tensor, discount: Tensor, true_sorted: Tensor) -> Tensor:
        """``|1/D_i - 1/D_j| * |gain_i - gain_j|``."""
        inverse = discount.reciprocal()
        return (inverse.unsqueeze(2) - inverse.unsqueeze(1)).abs() * (gain.unsqueeze(2) - gain.unsqueeze(1)).abs()


class NDCGLoss2PPScheme(BaseWeightingScheme):
    """NDCG-Loss2++: ``mu`` times the NDCG-Loss2 weights plus the LambdaRank weights (the paper's best scheme).

    Args:
        mu: Weight of the NDCG-Loss2 term. Defaults to 10.0.
    """

    def __init__(self, mu: float = 10.0) -> None:
        super().__init__()
        self.mu = mu
        self.ndcg_loss2 = NDCGLoss2Scheme()
        self.lambda_rank = LambdaRankScheme()

    def forward(self, gain: Tensor, discount: Tensor, true_sorted: Tensor) -> Tensor:
        """``mu * NDCG-Loss2 + LambdaRank``."""
        return self.mu * self.ndcg_loss2(gain, discount, true_sorted) + self.lambda_rank(gain, discount, true_sorted)


class LambdaLoss(ListwiseLoss):
    """The LambdaLoss framework for a reranker: a weighted pairwise logistic loss over each query's documents.

    The documents of a query are sorted by the model's scores; every pair (i, j) whose labels are
    ordered (label_i > label_j) and that has a document in the top ``k`` adds
    ``-weight_ij * log(sigmoid(sigma * (s_i - s_j)))`` (in bits with ``reduction_log="binary"``); the
    loss is the mean over those pairs. The weighting scheme decides which metric the loss bounds.

    Args:
        model: The CrossEncoder to train; it must have a single output label.
        weighting_scheme: One of :class:`NoWeightingScheme`, :class:`NDCGLoss1Scheme`,
            :class:`NDCGLoss2Scheme`, :class:`LambdaRankScheme`, :class:`NDCGLoss2PPScheme` (the default,
            the strongest in the paper); None means no weighting. NDCG-Loss1 also counts pairs with
            equal labels.
        k: Only pairs with a document in the model's top ``k`` count, and maxDCG is taken at ``k``
            (nDCG@k); None for all documents.
        sigma: Slope of the sigmoid on score differences. Defaults to 1.0.
        eps: Floor of maxDCG, so a list without relevant documents does not divide by zero.
        reduction_log: ``"binary"`` (log2, the default) or ``"natural"`` logarithm.
        activation_fn: Applied to the logits first; None for identity. Defaults to identity.
        mini_batch_size: Pairs per forward pass: None (or 0) for as many as the batch has queries, a
            negative value for all pairs at once. Lowers memory, not the result.

    Inputs:
        ``(query, [doc_1, ..., doc_n])`` rows with a label list ``[label_1, ..., label_n]`` (binary or
        graded); lists may differ in length. ``mine_hard_negatives(..., output_format="labeled-list")``
        produces this format.
    """

    citation = """
@inproceedings{wang2018lambdaloss,
  title={The LambdaLoss Framework for Ranking Metric Optimization},
  author={Wang, Xuanhui and Li, Cheng and Golbandi, Nadav and Bendersky, Michael and Najork, Marc},
  booktitle={Proceedings of the 27th ACM international conference on information and knowledge management},
  pages={1313--1322},
  year={2018}
}
"""

    def __init__(
        self,
        model: CrossEncoder,
        weighting_scheme: BaseWeightingScheme | None = NDCGLoss2PPScheme(),  # noqa: B008 - upstream default, stateless
        k: int | None = None,
        sigma: float = 1.0,
        eps: float = 1e-10,
        reduction_log: Literal["natural", "binary"] = "binary",
        activation_fn: nn.Module | None = nn.Identity(),  # noqa: B008 - the sentence-transformers default, stateless
        mini_batch_size: int | None = None,
    ) -> None:
        super().__init__(model, activation_fn=activation_fn, mini_batch_size=mini_batch_size)
        if reduction_log not in ("natural", "binary"):
            raise InvalidArgumentError(f"reduction_log is {reduction_log!r}; expected 'natural' or 'binary'")
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 0):
            raise InvalidArgumentError(f"k is {k!r}; expected a positive integer or None")
        self.weighting_scheme = weighting_scheme or NoWeightingScheme()
        self.k = k
        self.sigma = sigma
        self.eps = eps
        self.reduction_log = reduction_log

    def forward(
        self,
        inputs: list[Any],
        labels: list[Tensor],
        prompt: str | None = None,
        task: str | None = None,
    ) -> Tensor:
        """The loss of a batch ``[queries, documents_lists]`` with one label list per query."""
        batch, logits = self.score_batch(inputs, labels, prompt, task)
        # Padding scores sort last; padding labels are -inf so every pair with a padded document is dropped.
        scores = batch.padded(logits, -1e16)
        relevance = batch.padded(batch.labels.to(scores.device), float("-inf"))
        num_docs = batch.max_docs

        scores_sorted, order = scores.sort(descending=True, dim=-1)
        ideal, _ = relevance.sort(descending=True, dim=-1)
        true_sorted = relevance.gather(1, order)

        label_gap = true_sorted.unsqueeze(2) - true_sorted.unsqueeze(1)
        counted = torch.isfinite(label_gap)
        if not isinstance(self.weighting_scheme, NDCGLoss1Scheme):
            counted &= label_gap > 0
        k = self.k or num_docs
        in_top_k = torch.zeros((num_docs, num_docs), dtype=torch.bool, device=scores.device)
        in_top_k[:k, :] = True
        in_top_k[:, :k] = True

        # Gains from here on: padding (-inf) and negative labels count as 0.
        true_sorted = true_sorted.clamp(min=0.0)
        ideal = ideal.clamp(min=0.0)
        discount = torch.log2(torch.arange(2, num_docs + 2, device=scores.device, dtype=torch.float32)).unsqueeze(0)
        max_dcg = ((torch.pow(2.0, ideal) - 1) / discount)[:, :k].sum(dim=-1).clamp(min=self.eps)
        gain = (torch.pow(2.0, true_sorted) - 1) / max_dcg.unsqueeze(1)
        weights = self.weighting_scheme(gain, discount, true_sorted)

        # log(sigmoid(.)) in one stable step keeps the gradient of badly misordered pairs from underflowing;
        # the clamp keeps padded-vs-real differences (~1e16) finite.
        score_gap = (scores_sorted.unsqueeze(2) - scores_sorted.unsqueeze(1)).clamp(min=-1e8, max=1e8)
        score_gap = score_gap.nan_to_num(nan=0.0, posinf=1e8, neginf=-1e8)
        pair_losses = weights * nn.functional.logsigmoid(self.sigma * score_gap)
        if self.reduction_log == "binary":
            pair_losses = pair_losses / math.log(2)
        kept = pair_losses[counted & in_top_k]
        return -kept.sum() / max(kept.numel(), 1)

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {
            "weighting_scheme": fullname(self.weighting_scheme),
            "k": self.k,
            "sigma": self.sigma,
            "eps": self.eps,
            "reduction_log": self.reduction_log,
            "activation_fn": fullname(self.activation_fn),
            "mini_batch_size": self.mini_batch_size,
        }
