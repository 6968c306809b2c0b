"""BinaryCrossEntropyLoss: a cross-encoder's score of a pair against a 0/1 (or [0, 1]) relevance label."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from embedforge.cross_encoder.losses._common import CrossEncoderLoss, label_vector, pairs_of
from embedforge.util.misc import fullname

if TYPE_CHECKING:
    # Only for annotations: the model module imports the legacy fit, which imports these losses.
    from embedforge.cross_encoder.model import CrossEncoder


class BinaryCrossEntropyLoss(CrossEncoderLoss):
    """Binary cross-entropy on the logit of each (text, text) pair: high for relevant pairs, low for the rest.

    The usual loss for training a reranker on labeled pairs, e.g. the ``"labeled-pair"`` output of
    :func:`~embedforge.util.mine_hard_negatives`.

    Args:
        model: The CrossEncoder to train; it must have a single output label (``num_labels=1``).
        activation_fn: Applied to the logits before the loss (which applies its own sigmoid).
            Defaults to identity.
        pos_weight: Weight of positive examples, a tensor such as ``torch.tensor(4)``; None for equal weight.
        **kwargs: Passed on to :class:`torch.nn.BCEWithLogitsLoss` (e.g. ``reduction``).

    Inputs:
        Two text columns (e.g. query, document) and a label column: 1 for relevant, 0 for not, or a
        float relevance in [0, 1].
    """

    input_columns = (2, 2)
    requires_label = True

    def __init__(
        self,
        model: CrossEncoder,
        activation_fn: nn.Module = nn.Identity(),  # noqa: B008 - the sentence-transformers default, stateless
        pos_weight: Tensor | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(model)
        self.activation_fn = activation_fn
        self.pos_weight = pos_weight
        self.bce_with_logits_loss = nn.BCEWithLogitsLoss(pos_weight=pos_weight, **kwargs)

    def forward(
        self, inputs: list[list[str]], labels: Tensor, prompt: str | None = None, task: str | None = None
    ) -> Tensor:
        """The loss of a batch of ``[first_texts, second_texts]`` with one label per row."""
        self.check_column_count(inputs)
        logits = self.score_pairs(pairs_of(inputs[0], inputs[1], 1), prompt=prompt, task=task).view(-1)
        logits = self.activation_fn(logits)
        targets = label_vector(self, labels, logits.shape[0], logits.device)
        return self.bce_with_logits_loss(logits, targets)

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {
            "activation_fn": fullname(self.activation_fn),
            "pos_weight": None if self.pos_weight is None else self.pos_weight.item(),
        }
