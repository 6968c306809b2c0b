"""PListMLELoss (Lan et al. 2014): the Plackett-Luce likelihood of the true ranking, weighted by position."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from embedforge.cross_encoder.losses._common import ListwiseLoss
from embedforge.util.misc import fullname

if TYPE_CHECKING:
    # Only for annotations: the model module imports the legacy fit, which imports these losses.
    from embedforge.cross_encoder.model import CrossEncoder


class PListMLELambdaWeight(nn.Module):
    """Position weights of Position-Aware ListMLE: how much each rank's choice counts in the likelihood.

    Args:
        rank_discount_fn: Maps the boolean ``(batch, docs)`` mask of real documents to weights of the
            same shape, zero on padding. None for the default ``2^(n - rank) - 1`` (rank from 1, n the
            number of documents of the list), which puts most weight on getting the top right.
    """

    def __init__(self, rank_discount_fn: Callable[[Tensor], Tensor] | None = None) -> None:
        super().__init__()
        self.rank_discount_fn = rank_discount_fn

    def forward(self, mask: Tensor) -> Tensor:
        """Weights for each position of each list, shape of ``mask``, zero where ``mask`` is False."""
        if self.rank_discount_fn is not None:
            return self.rank_discount_fn(mask)
        count = mask.sum(dim=1, keepdim=True)
        ranks = torch.arange(1, mask.shape[1] + 1, device=mask.device).expand_as(mask)
        # 2^(n - rank) overflows float32 past n = 128: dividing a list's weights by a common 2^(n - 127)
        # keeps them finite without changing their proportions (they are normalised per list anyway).
        shift = (count - 127).clamp_min(0)
        weights = torch.pow(2.0, count - ranks - shift) - torch.pow(2.0, -shift)
        return weights * mask


class PListMLELoss(ListwiseLoss):
    """Position-aware ListMLE: maximise the Plackett-Luce probability of the true order, weighting ranks.

    Under the Plackett-Luce model the probability of a ranking is the product over positions of
    ``exp(s_pos) / sum(exp(s) of the documents not yet placed)``. The loss of a list is minus the sum
    of the log of those factors, each scaled by its position weight (normalised to sum to 1 per list);
    the batch loss is the mean over lists. Without weights (``lambda_weight=None``) this is ListMLE.

    Args:
        model: The CrossEncoder to train; it must have a single output label.
        lambda_weight: The position weights; None for plain ListMLE. Defaults to
            :class:`PListMLELambdaWeight` with its ``2^(n - rank) - 1`` discount.
        activation_fn: Applied to the logits first; None for identity. Defaults to identity.
        mini_batch_size: Pairs per forward pass: None (or 0) for as many as the batch has queries, a
            negative value for all pairs at once.
        respect_input_order: True (default) takes each document list as already in the true order
            (most relevant first); False orders it by the labels, highest first.

    Inputs:
        ``(query, [doc_1, ..., doc_n])`` rows with labels ``[label_1, ..., label_n]``; lists may differ in length.
    """

    citation = """
@inproceedings{lan2014position,
  title={Position-Aware ListMLE: A Sequential Learning Process for Ranking},
  author={Lan, Yanyan and Zhu, Yadong and Guo, Jiafeng and Niu, Shuzi and Cheng, Xueqi},
  booktitle={UAI},
  volume={14},
  pages={449--458},
  year={2014}
}
"""

    def __init__(
        self,
        model: CrossEncoder,
        lambda_weight: PListMLELambdaWeight | None = PListMLELambdaWeight(),  # noqa: B008 - upstream default, stateless
        activation_fn: nn.Module | None = nn.Identity(),  # noqa: B008 - the sentence-transformers default, stateless
        mini_batch_size: int | None = None,
        respect_input_order: bool = True,
    ) -> None:
        super().__init__(model, activation_fn=activation_fn, mini_batch_size=mini_batch_size)
        self.lambda_weight = lambda_weight
        self.respect_input_order = respect_input_order
        #: Keeps the weight normalisation finite for a list whose weights are all zero.
        self.eps = 1e-10

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
        scores = batch.padded(logits, 1e-16)
        mask = batch.mask(device)
        if not self.respect_input_order:
            # Padding (label -inf) sorts to the end, so the valid documents of a list stay in front.
            relevance = batch.padded(batch.labels.to(device), float("-inf"))
            order = relevance.sort(descending=True, dim=1).indices
            scores, ordered_mask = scores.gather(1, order), mask.gather(1, order)
        else:
            ordered_mask = mask

        # log of sum(exp(s_j) for j at or after each position), with padding contributing nothing.
        hidden = scores.masked_fill(~ordered_mask, torch.finfo(scores.dtype).min)
        remaining = torch.logcumsumexp(hidden.flip(1), dim=1).flip(1)
        log_probs = scores - remaining
        if self.lambda_weight is not None:
            weights = self.lambda_weight(mask)
            log_probs = log_probs * (weights / (weights.sum(dim=1, keepdim=True) + self.eps))
        log_probs = log_probs.masked_fill(~ordered_mask, 0.0)
        per_list = -log_probs.sum(dim=1)
        if not torch.any(per_list):
            # Nothing to learn (e.g. every list has one document): sentence-transformers returns a zero that
            # is not connected to the model, so the parameters get no gradient at all.
            return torch.tensor(0.0, device=device, requires_grad=True)
        return per_list.mean()

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {
            "lambda_weight": None if self.lambda_weight is None else fullname(self.lambda_weight),
            "activation_fn": fullname(self.activation_fn),
            "mini_batch_size": self.mini_batch_size,
            "respect_input_order": self.respect_input_order,
        }
