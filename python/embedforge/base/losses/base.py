"""What every loss shares: checking the columns it is given before training starts."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from torch import Tensor, nn

from embedforge.exceptions import InvalidArgumentError

logger = logging.getLogger(__name__)


class Loss(nn.Module):
    """Base class of embedforge's losses.

    A subclass states the text columns it accepts (``input_columns``: minimum and maximum,
    ``None`` for no maximum) and whether it needs a label column (``requires_label``: True,
    False, or None when either is fine). ``check_input_columns`` turns a mismatch into an error
    that names the loss, the columns it got and what it needs; the trainer calls it before
    the first step, and ``forward`` calls ``check_features`` on every batch.
    """

    input_columns: ClassVar[tuple[int, int | None]] = (1, None)
    requires_label: ClassVar[bool | None] = None
    #: BibTeX entry of the paper behind the loss, for the model card (empty when there is none).
    citation: ClassVar[str] = ""

    def describe_input_needs(self) -> str:
        """Human wording of the accepted columns, e.g. '2 text columns and a label column'."""
        low, high = self.input_columns
        if high == low:
            texts = f"{low} text column{'s' if low != 1 else ''}"
        elif high is None:
            texts = f"at least {low} text column{'s' if low != 1 else ''}"
        else:
            texts = f"{low} to {high} text columns"
        if self.requires_label is True:
            return texts + " and a label column"
        if self.requires_label is False:
            return texts + " and no label column"
        return texts + " (a label column is optional)"

    def check_input_columns(self, columns: Sequence[str], has_label: bool, label_column: str | None = None) -> None:
        """Fail, naming the loss, the columns and the need, unless ``columns`` (+ label) suit this loss."""
        low, high = self.input_columns
        count_ok = len(columns) >= low and (high is None or len(columns) <= high)
        if has_label and self.requires_label is False:
            # sentence-transformers' label-free losses ignore a label column; say so rather than fail.
            logger.warning("%s does not use labels; the label column %r is ignored", type(self).__name__, label_column)
            has_label = False
        label_ok = self.requires_label is None or self.requires_label == has_label
        if count_ok and label_ok:
            return
        got = f"text columns {list(columns)}" + (
            f" and label column {label_column!r}" if has_label else " and no label"
        )
        raise InvalidArgumentError(f"{type(self).__name__} needs {self.describe_input_needs()}, but got {got}")

    def check_features(
        self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None
    ) -> list[dict[str, Tensor]]:
        """Per-batch form of :meth:`check_input_columns`; returns the features as a list."""
        features = list(sentence_features)
        # Labels given to a label-free loss are ignored, as in sentence-transformers (the trainer warned once).
        has_label = labels is not None and self.requires_label is not False
        self.check_input_columns([f"column {index}" for index in range(len(features))], has_label)
        return features

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {}


def flat_labels(loss: nn.Module, labels: Tensor, batch_size: int) -> Tensor:
    """``labels`` as a vector of one label per row, or an error naming the loss and both counts."""
    if labels.numel() != batch_size:
        raise InvalidArgumentError(
            f"{type(loss).__name__} expects {batch_size} labels (one per example), "
            f"but got {labels.numel()} labels with shape {tuple(labels.shape)}"
        )
    return labels.view(-1)
