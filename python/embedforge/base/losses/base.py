"""What every loss shares: checking the columns it is given before training starts."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from embedforge.exceptions import InvalidArgumentError


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
        self.check_input_columns([f"column {index}" for index in range(len(features))], labels is not None)
        return features

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {}


_MERGING_OFF: ContextVar[bool] = ContextVar("embedforge_column_merging_off", default=False)


@contextmanager
def column_merging_disabled() -> Iterator[None]:
    """Embed every column on its own inside the block.

    For wrappers that call the inner loss several times and hand state from one call to the next
    through the per-column feature dicts (AdaptiveLayerLoss's cached hidden states): a merged
    forward writes into a fresh dict that the next call never sees.
    """
    token = _MERGING_OFF.set(True)
    try:
        yield
    finally:
        _MERGING_OFF.reset(token)


def merge_columns(features: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The columns' features as one batch (column after column, right-padded to the widest), or None.

    sentence-transformers 6 embeds like-shaped candidate columns in one forward pass. With dropout
    on, the number and shape of the forward passes decide which random numbers each row draws, so
    the same merge (same order, same padded width, same refusals) is needed for equal losses.
    None when merging is disabled or the columns cannot share a batch: different feature keys,
    flattened (``cu_seq_lens_q``) or 1-D token streams (StaticEmbedding), tensors not indexed by
    row, float tensors that would need padding, or differing non-tensor values / ``prompt_length``.
    """
    if _MERGING_OFF.get() or len(features) < 2:
        return None
    first = features[0]
    if any(set(column) != set(first) for column in features[1:]) or "cu_seq_lens_q" in first:
        return None
    row_keys = [key for key in ("input_ids", "attention_mask") if isinstance(first.get(key), Tensor)]
    if not any(first[key].ndim >= 2 for key in row_keys):
        return None
    rows = first[row_keys[0]].shape[0]
    merged: dict[str, Any] = {}
    for key, value in first.items():
        values = [column[key] for column in features]
        if isinstance(value, Tensor) and key != "prompt_length":
            if any(
                not isinstance(v, Tensor) or v.ndim != value.ndim or v.ndim == 0 or v.shape[0] != rows for v in values
            ):
                return None
            if value.ndim >= 2:
                if any(v.shape[2:] != value.shape[2:] for v in values):
                    return None
                width = max(v.shape[1] for v in values)
                if any(v.shape[1] != width for v in values):
                    # Zero padding is only harmless for token ids and masks (attention_mask 0 hides it).
                    if value.is_floating_point() or value.is_complex():
                        return None
                    values = [F.pad(v, [0, 0] * (v.ndim - 2) + [0, width - v.shape[1]]) for v in values]
            merged[key] = torch.cat(values, dim=0)
            continue
        # Per-batch metadata (prompt_length, task, ...) is shared, so it must agree across columns.
        try:
            if isinstance(value, Tensor):
                same = all(isinstance(v, Tensor) and torch.equal(v, value) for v in values[1:])
            else:
                same = all(not bool(v != value) for v in values[1:])
        except (RuntimeError, ValueError):
            return None
        if not same:
            return None
        merged[key] = value
    return merged


def embed_columns(model: nn.Module, features: Sequence[dict[str, Tensor]], separate_first: bool = True) -> list[Tensor]:
    """One ``sentence_embedding`` tensor per input column, forwarded as sentence-transformers 6 does.

    The first (anchor) column runs alone; the remaining columns share one merged forward pass when
    :func:`merge_columns` accepts them, else run one by one. Dropout draws therefore match
    sentence-transformers' for the same seed (e.g. MNRL on triplets: 2 forwards, not 3).
    """
    features = list(features)
    if separate_first and features:
        return [model(features[0])["sentence_embedding"], *embed_columns(model, features[1:], separate_first=False)]
    merged = merge_columns(features)
    if merged is None:
        return [model(column)["sentence_embedding"] for column in features]
    embeddings = model(merged)["sentence_embedding"]
    return list(embeddings.reshape(len(features), -1, *embeddings.shape[1:]).unbind(0))


def flat_labels(loss: nn.Module, labels: Tensor, batch_size: int) -> Tensor:
    """``labels`` as a vector of one label per row, or an error naming the loss and both counts."""
    if labels.numel() != batch_size:
        raise InvalidArgumentError(
            f"{type(loss).__name__} expects {batch_size} labels (one per example), "
            f"but got {labels.numel()} labels with shape {tuple(labels.shape)}"
        )
    return labels.view(-1)
