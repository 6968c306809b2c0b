"""CrossEntropyLoss: a multi-label cross-encoder's logits of a pair against its class."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from embedforge.cross_encoder.losses._common import CrossEncoderLoss, pairs_of
from embedforge.exceptions import InvalidArgumentError

if TYPE_CHECKING:
    # Only for annotations: the model module imports the legacy fit, which imports these losses.
    from embedforge.cross_encoder.model import CrossEncoder


class CrossEntropyLoss(CrossEncoderLoss):
    """Softmax cross-entropy over a cross-encoder's ``num_labels`` logits, e.g. for NLI-style pair classification.

    Args:
        model: The CrossEncoder to train; ``num_labels`` is the number of classes.
        activation_fn: Applied to the logits before the loss. Defaults to identity.
        **kwargs: Passed on to :class:`torch.nn.CrossEntropyLoss` (e.g. ``weight``, ``label_smoothing``).

    Inputs:
        Two text columns and a label column holding the class index of each pair (integers in
        ``[0, num_labels)``), or class probabilities of shape ``(batch, num_labels)``.
    """

    input_columns = (2, 2)
    requires_label = True
    require_single_label = False

    def __init__(
        self,
        model: CrossEncoder,
        activation_fn: nn.Module = nn.Identity(),  # noqa: B008 - the sentence-transformers default, stateless
        **kwargs: Any,
    ) -> None:
        super().__init__(model)
        self.activation_fn = activation_fn
        self.ce_loss = nn.CrossEntropyLoss(**kwargs)

    def forward(
        self, inputs: list[list[str]], labels: Tensor, prompt: str | None = None, task: str | None = None
    ) -> Tensor:
        """The loss of a batch of ``[first_texts, second_texts]`` with a class (or class distribution) per row."""
        self.check_column_count(inputs)
        logits = self.activation_fn(self.score_pairs(pairs_of(inputs[0], inputs[1], 1), prompt=prompt, task=task))
        if labels is None:
            raise InvalidArgumentError(f"{type(self).__name__} needs a label column, but the batch has no labels")
        labels = torch.as_tensor(labels).to(logits.device)
        batch_size, num_classes = logits.shape
        if not labels.is_floating_point() and labels.shape == (batch_size, 1):
            labels = labels.view(-1)
        if labels.shape == (batch_size,):
            if labels.is_floating_point():
                raise InvalidArgumentError(
                    f"{type(self).__name__} expects class indices as integers, but got labels of dtype {labels.dtype}"
                )
        elif labels.shape != (batch_size, num_classes) or not labels.is_floating_point():
            raise InvalidArgumentError(
                f"{type(self).__name__} expects labels of shape ({batch_size},) (class indices) or "
                f"({batch_size}, {num_classes}) (class probabilities), but got {labels.dtype} labels of shape "
                f"{tuple(labels.shape)}"
            )
        return self.ce_loss(logits, labels)
