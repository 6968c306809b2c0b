"""MultipleNegativesRankingLoss for cross-encoders: pick each query's positive among in-batch and hard negatives."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from embedforge.cross_encoder.losses._common import CrossEncoderLoss, pairs_of
from embedforge.exceptions import InvalidArgumentError
from embedforge.util.misc import fullname

if TYPE_CHECKING:
    # Only for annotations: the model module imports the legacy fit, which imports these losses.
    from embedforge.cross_encoder.model import CrossEncoder


class MultipleNegativesRankingLoss(CrossEncoderLoss):
    """InfoNCE for a reranker: the query's positive must outscore sampled in-batch negatives and any hard negatives.

    A cross-encoder has to score every (query, candidate) pair jointly, so instead of the full
    ``batch x batch`` score matrix of the bi-encoder loss, each query is paired with its positive,
    ``num_negatives`` candidates drawn at random from the other rows (positives and hard negatives
    alike), and the hard negatives of its own row. The scores, after ``activation_fn`` and times
    ``scale``, go through a softmax cross-entropy whose target is the positive.

    Args:
        model: The CrossEncoder to train; it must have a single output label.
        num_negatives: In-batch negatives drawn per query (without replacement); None, or more than
            there are, uses every other row's candidates. Defaults to 4.
        scale: Multiplies the activated scores (the inverse temperature); 0 or None leaves them as they are.
            Defaults to 10.0.
        activation_fn: Applied to the logits first; None for none. Defaults to sigmoid.

    Inputs:
        ``(anchor, positive)`` pairs or ``(anchor, positive, negative_1, ..., negative_n)`` tuples; no
        label (a label column is ignored). Batches without duplicate texts
        (``BatchSamplers.NO_DUPLICATES``) keep a query's positive from reappearing as its negative.
    """

    input_columns = (2, None)
    requires_label = False

    def __init__(
        self,
        model: CrossEncoder,
        num_negatives: int | None = 4,
        scale: float = 10.0,
        activation_fn: nn.Module | None = nn.Sigmoid(),  # noqa: B008 - the sentence-transformers default, stateless
    ) -> None:
        super().__init__(model)
        if num_negatives is not None and (
            isinstance(num_negatives, bool) or not isinstance(num_negatives, int) or num_negatives < 0
        ):
            raise InvalidArgumentError(f"num_negatives is {num_negatives!r}; expected a non-negative integer or None")
        self.num_negatives = num_negatives
        self.scale = scale
        self.activation_fn = activation_fn
        self.cross_entropy_loss = nn.CrossEntropyLoss()

    def call_model_with_columns(
        self, anchors: Sequence[str], candidates: Sequence[str], prompt: str | None = None, task: str | None = None
    ) -> Tensor:
        """Scores of the row-wise pairs (anchors[i], candidates[i]), shape ``(batch,)``."""
        return self.call_model_with_pairs(pairs_of(anchors, candidates, 1), prompt=prompt, task=task)

    def call_model_with_pairs(
        self, pairs: list[tuple[str, str]], prompt: str | None = None, task: str | None = None
    ) -> Tensor:
        """Raw scores of ``pairs``, shape ``(len(pairs),)``."""
        return self.score_pairs(pairs, prompt=prompt, task=task).squeeze(1)

    def get_in_batch_negatives(
        self, anchors: Sequence[str], candidates: Sequence[Sequence[str]]
    ) -> Iterator[list[str]]:
        """Columns of in-batch negatives: the k-th column holds the k-th negative drawn for every anchor.

        ``candidates`` are the positive and hard-negative columns. Anchor i may take any candidate
        except those of its own row. The draw uses ``torch.multinomial`` on the global RNG, so a seed
        gives the same negatives as sentence-transformers.
        """
        batch_size = len(anchors)
        flat = [text for column in candidates for text in column]
        # allowed[i, c * batch_size + j]: candidate j of column c is a negative for anchor i unless j == i.
        allowed = ~torch.eye(batch_size, dtype=torch.bool).repeat(1, len(candidates))
        available = len(flat) - len(candidates)
        if self.num_negatives == 0:
            return
        if self.num_negatives is not None and self.num_negatives < available:
            picks = torch.multinomial(allowed.float(), self.num_negatives)
        else:
            picks = allowed.nonzero()[:, 1].view(batch_size, -1)
        for slot in picks.T.tolist():
            yield [flat[index] for index in slot]

    def calculate_loss(self, logits: list[Tensor], batch_size: int) -> Tensor:
        """The loss from the scores of the candidate columns, concatenated column after column.

        ``logits`` may be split anywhere (per column or per mini-batch): only their concatenation counts.
        """
        scores = torch.cat(logits, dim=0).reshape(-1, batch_size).T  # (batch, candidates); column 0 = positive
        if self.activation_fn is not None:
            scores = self.activation_fn(scores)
        if self.scale:
            scores = scores * self.scale
        targets = torch.zeros(batch_size, dtype=torch.long, device=scores.device)
        return self.cross_entropy_loss(scores, targets)

    def forward(
        self,
        inputs: list[list[str]],
        labels: Tensor | None = None,
        prompt: str | None = None,
        task: str | None = None,
    ) -> Tensor:
        """The loss of a batch of ``[anchors, positives, hard_negatives_1, ...]``; ``labels`` are ignored."""
        self.check_column_count(inputs)
        for index, column in enumerate(inputs[1:], start=1):
            pairs_of(inputs[0], column, index)  # ragged columns would misalign the in-batch draw
        anchors = inputs[0]
        # The negatives are drawn lazily, after the positives' forward pass: with dropout on, this order of
        # random draws is what gives sentence-transformers' negatives and dropout masks for the same seed.
        scores = [self.call_model_with_columns(anchors, inputs[1], prompt=prompt, task=task)]
        for column in self.get_in_batch_negatives(anchors, inputs[1:]):
            scores.append(self.call_model_with_columns(anchors, column, prompt=prompt, task=task))
        for column in inputs[2:]:
            scores.append(self.call_model_with_columns(anchors, column, prompt=prompt, task=task))
        return self.calculate_loss(scores, len(anchors))

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {"scale": self.scale, "num_negatives": self.num_negatives, "activation_fn": fullname(self.activation_fn)}
