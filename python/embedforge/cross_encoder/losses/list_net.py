"""ListNetLoss (Cao et al. 2007): cross-entropy between the label and score distributions over a query's documents."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from embedforge.cross_encoder.losses._common import ListwiseLoss
from embedforge.exceptions import InvalidArgumentError

if TYPE_CHECKING:
    # Only for annotations: the model module imports the legacy fit, which imports these losses.
    from embedforge.cross_encoder.model import CrossEncoder


class ListNetLoss(ListwiseLoss):
    """ListNet: the top-one probabilities softmax(labels) as the target of softmax(scores), per query.

    The loss of a query is ``-sum_i softmax(labels)_i * log softmax(scores)_i`` over its documents;
    the batch loss is the mean over queries. Padding takes no probability mass on either side.

    Args:
        model: The CrossEncoder to train; it must have a single output label.
        activation_fn: Applied to the logits first; None for identity. Defaults to identity.
        mini_batch_size: Pairs per forward pass: None (or 0) for as many as the batch has queries, a
            negative value for all pairs at once.

    Inputs:
        ``(query, [doc_1, ..., doc_n])`` rows with labels ``[label_1, ..., label_n]`` (binary or graded);
        lists may differ in length but none may be empty.
    """

    citation = """
@inproceedings{cao2007learning,
    title={Learning to Rank: From Pairwise Approach to Listwise Approach},
    author={Cao, Zhe and Qin, Tao and Liu, Tie-Yan and Tsai, Ming-Feng and Li, Hang},
    booktitle={Proceedings of the 24th international conference on Machine learning},
    pages={129--136},
    year={2007}
}
"""

    def __init__(
        self,
        model: CrossEncoder,
        activation_fn: nn.Module | None = nn.Identity(),  # noqa: B008 - the sentence-transformers default, stateless
        mini_batch_size: int | None = None,
    ) -> None:
        super().__init__(model, activation_fn=activation_fn, mini_batch_size=mini_batch_size)
        self.cross_entropy_loss = nn.CrossEntropyLoss()

    def forward(
        self,
        inputs: list[Any],
        labels: list[Tensor],
        prompt: str | None = None,
        task: str | None = None,
    ) -> Tensor:
        """The loss of a batch ``[queries, documents_lists]`` with one label list per query."""
        batch, logits = self.score_batch(inputs, labels, prompt, task)
        if batch.rows.unique().numel() != batch.num_queries:
            # A query without documents has no label distribution (its softmax would be 0/0).
            counts = [int((batch.rows == row).sum()) for row in range(batch.num_queries)]
            raise InvalidArgumentError(
                f"{type(self).__name__} needs at least one document per query, but the batch has {counts}"
            )
        # A finite padding score keeps log_softmax finite there; the -inf padding label gives it zero target mass.
        scores = batch.padded(logits, -1e16)
        targets = batch.padded(batch.labels.to(scores.device), float("-inf")).softmax(dim=1)
        return self.cross_entropy_loss(scores, targets)
