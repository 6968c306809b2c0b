"""CoSENTLoss: rank the pairs of a batch by their similarity labels (Su Jianlin's CoSENT)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from embedforge.base.losses.base import Loss, flat_labels
from embedforge.base.losses.merged_forward import embed_columns
from embedforge.exceptions import InvalidArgumentError
from embedforge.util import pairwise_cos_sim


class CoSENTLoss(Loss):
    """CoSENT: ``log(1 + sum exp(scale * (s(k,l) - s(i,j))))`` over pairs where label(i,j) > label(k,l)."""

    input_columns: ClassVar[tuple[int, int | None]] = (2, 2)
    requires_label: ClassVar[bool | None] = True
    citation: ClassVar[str] = """
@article{huang2024cosent,
    author={Huang, Xiang and Peng, Hao and Zou, Dongcheng and Liu, Zhiwei and Li, Jianxin and Liu, Kay and Wu, Jia and Su, Jianlin and Yu, Philip S.},
    journal={IEEE/ACM Transactions on Audio, Speech, and Language Processing},
    title={CoSENT: Consistent Sentence Embedding via Similarity Ranking},
    year={2024},
    doi={10.1109/TASLP.2024.3402087}
}
"""

    def __init__(
        self,
        model: nn.Module,
        scale: float = 20.0,
        similarity_fct: Callable[[Tensor, Tensor], Tensor] = pairwise_cos_sim,
    ) -> None:
        super().__init__()
        self.model = model
        self.similarity_fct = similarity_fct
        self.scale = scale

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor) -> Tensor:
        """Embed both columns and return the CoSENT loss of the batch."""
        features = self.check_features(sentence_features, labels)
        return self.compute_loss_from_embeddings(embed_columns(self.model, features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor) -> Tensor:
        """The CoSENT loss of already computed ``[first column, second column]`` embeddings."""
        labels = flat_labels(self, labels, embeddings[0].shape[0])
        scores = self.similarity_fct(embeddings[0], embeddings[1])
        if scores.shape != labels.shape:
            raise InvalidArgumentError(
                f"{type(self).__name__}: labels have shape {tuple(labels.shape)} but the similarity function "
                f"returned scores of shape {tuple(scores.shape)}"
            )
        # exp(scale * difference) overflows half precision long before float32.
        if scores.dtype in (torch.float16, torch.bfloat16):
            scores = scores.float()
        scores = scores * self.scale
        if labels.dtype == torch.bool:
            labels = labels.int()
        return _ranked_logsumexp(scores, labels)

    def get_config_dict(self) -> dict[str, Any]:
        """Same keys as sentence-transformers: the scale and the similarity function's name."""
        return {"scale": self.scale, "similarity_fct": self.similarity_fct.__name__}


def _ranked_logsumexp(scores: Tensor, labels: Tensor) -> Tensor:
    """``log(1 + sum over label[i] < label[j] of exp(scores[i] - scores[j]))`` in O(n log n) memory-light form.

    After sorting by label, the pairs that rank above row i are exactly the rows from the first
    strictly larger label onwards, so ``logsumexp_j(-scores[j])`` over that suffix (a reversed
    running logsumexp) gives every row's term without building the n x n difference matrix.
    """
    labels, order = torch.sort(labels)
    scores = scores[order]
    suffix = torch.logcumsumexp(torch.flip(-scores, dims=(0,)), dim=0).flip(0)
    # Rows with the largest label have no higher pair: index one past the end, where -inf adds nothing.
    suffix = torch.cat((suffix, torch.full((1,), float("-inf"), dtype=suffix.dtype, device=suffix.device)))
    first_higher = torch.searchsorted(labels, labels, right=True)
    terms = scores + suffix[first_higher]
    # The leading 0 is the "1 +" inside the log.
    return torch.logsumexp(torch.cat((terms.new_zeros(1), terms)), dim=0)
