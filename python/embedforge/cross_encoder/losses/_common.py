"""What the cross-encoder losses share: model checks, scoring text pairs, and padded listwise batches.

A cross-encoder loss receives raw text columns (the collator does not tokenise): ``inputs`` is the
list of non-label columns of the batch, ``labels`` a tensor (one value per row) or a list of tensors
(a list-valued label column), and ``prompt`` / ``task`` go to ``model.preprocess`` unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor, nn

from embedforge.base.losses.base import Loss
from embedforge.exceptions import InvalidArgumentError
from embedforge.util.misc import fullname
from embedforge.util.tensor import batch_to_device

if TYPE_CHECKING:
    # Only for annotations: the model module imports the legacy fit, which imports these losses.
    from embedforge.cross_encoder.model import CrossEncoder


class CrossEncoderLoss(Loss):
    """Base of the cross-encoder losses: keeps the model, checks it, and scores (query, document) pairs."""

    #: sentence-transformers accepts any model with a CrossEncoder's interface in its listwise losses,
    #: but insists on a CrossEncoder in its pointwise and in-batch ones; the subclasses say which.
    require_cross_encoder: ClassVar[bool] = True
    #: Whether the loss reads one score per pair (every loss but CrossEntropyLoss).
    require_single_label: ClassVar[bool] = True

    def __init__(self, model: CrossEncoder) -> None:
        super().__init__()
        # Known by the kind every embedforge model states, not isinstance: importing the model class here
        # would close an import cycle (model -> legacy fit -> losses -> model).
        if self.require_cross_encoder and getattr(model, "model_type", None) != "CrossEncoder":
            raise InvalidArgumentError(
                f"{type(self).__name__} needs a CrossEncoder as model, but got a {type(model).__name__}"
            )
        num_labels = getattr(model, "num_labels", None)
        if self.require_single_label and num_labels != 1:
            raise InvalidArgumentError(
                f"{type(self).__name__} needs a model with one output label (num_labels=1), "
                f"but the model has num_labels={num_labels}"
            )
        self.model = model

    def check_column_count(self, inputs: Sequence[Any]) -> None:
        """Per-batch check of ``input_columns``: fail, naming the loss, on a wrong number of input columns."""
        low, high = self.input_columns
        count = len(inputs)
        if count >= low and (high is None or count <= high):
            return
        if high == low:
            wanted = f"exactly {low}"
        elif high is None:
            wanted = f"at least {low}"
        else:
            wanted = f"{low} to {high}"
        raise InvalidArgumentError(
            f"{type(self).__name__} needs {wanted} non-label input columns, but the batch has {count}"
        )

    def score_pairs(self, pairs: list[tuple[str, str]], prompt: str | None = None, task: str | None = None) -> Tensor:
        """The model's raw scores (logits) of ``pairs``, shape ``(len(pairs), num_labels)``, with autograd."""
        features = self.model.preprocess(pairs, prompt=prompt, task=task)
        features = batch_to_device(features, self.model.device)
        return self.model(features)["scores"]


def pairs_of(anchors: Sequence[str], candidates: Sequence[str], column: int) -> list[tuple[str, str]]:
    """Row-wise (anchor, candidate) pairs; the columns of one batch must have one entry per row."""
    if len(candidates) != len(anchors):
        raise InvalidArgumentError(
            f"input column {column} has {len(candidates)} rows, but the first column has {len(anchors)}"
        )
    return list(zip(anchors, candidates))


def label_vector(loss: nn.Module, labels: Tensor | None, batch_size: int, device: torch.device) -> Tensor:
    """``labels`` as one float per row on ``device``, or an error naming the loss and both counts."""
    if labels is None:
        raise InvalidArgumentError(f"{type(loss).__name__} needs a label column, but the batch has no labels")
    if not isinstance(labels, Tensor):
        labels = torch.as_tensor(labels)
    if labels.numel() != batch_size:
        raise InvalidArgumentError(
            f"{type(loss).__name__} expects {batch_size} labels (one per example), "
            f"but got {labels.numel()} labels with shape {tuple(labels.shape)}"
        )
    return labels.reshape(-1).to(device=device, dtype=torch.float32)


# -- listwise batches: one query, a ragged list of documents, one label per document -----------------


@dataclass
class ListwiseBatch:
    """A checked listwise batch flattened to pairs, with the positions to scatter them into a padded matrix.

    ``rows[i]`` / ``cols[i]`` place pair ``i`` (query ``rows[i]``, its document number ``cols[i]``) in a
    ``(num_queries, max_docs)`` matrix; queries with fewer documents leave the rest as padding.
    """

    pairs: list[tuple[str, str]]
    labels: Tensor
    rows: Tensor
    cols: Tensor
    num_queries: int
    max_docs: int

    @classmethod
    def from_inputs(cls, loss: nn.Module, inputs: Sequence[Any], labels: Any) -> ListwiseBatch:
        """Check ``(queries, documents_lists)`` and the per-query label lists, and flatten them."""
        name = type(loss).__name__
        if isinstance(labels, Tensor):
            raise InvalidArgumentError(
                f"{name} expects a list of label tensors (one per query, one label per document), but got a "
                f"single tensor of shape {tuple(labels.shape)}: the label column must hold lists"
            )
        if labels is None:
            raise InvalidArgumentError(f"{name} needs a label column of per-document labels, but got no labels")
        if len(inputs) != 2:
            raise InvalidArgumentError(
                f"{name} expects two input columns (queries, documents_list), but got {len(inputs)} input columns"
            )
        queries, documents = inputs
        for index, docs in enumerate(documents):
            if isinstance(docs, str) or not isinstance(docs, Sequence):
                raise InvalidArgumentError(
                    f"{name}: row {index} of the documents column is {type(docs).__name__} {docs!r:.60}; "
                    "expected a list of documents"
                )
        if len(documents) != len(queries):
            raise InvalidArgumentError(
                f"{name}: the documents column has {len(documents)} rows, but the query column has {len(queries)}"
            )
        docs_per_query = [len(docs) for docs in documents]
        label_rows = [label if isinstance(label, Tensor) else torch.as_tensor(label) for label in labels]
        labels_per_query = [int(label.numel()) for label in label_rows]
        if docs_per_query != labels_per_query:
            raise InvalidArgumentError(
                f"{name}: number of documents per query in inputs ({docs_per_query}) does not match the number "
                f"of labels per query ({labels_per_query})"
            )
        if not queries or max(docs_per_query) == 0:
            raise InvalidArgumentError(
                f"{name} got a batch without any documents (documents per query: {docs_per_query})"
            )
        pairs = [(query, doc) for query, docs in zip(queries, documents) for doc in docs]
        rows = torch.repeat_interleave(torch.arange(len(queries)), torch.tensor(docs_per_query))
        cols = torch.cat([torch.arange(count) for count in docs_per_query])
        flat_labels = torch.cat([label.reshape(-1).float().cpu() for label in label_rows])
        return cls(pairs, flat_labels, rows, cols, len(queries), max(docs_per_query))

    def padded(self, values: Tensor, fill: float) -> Tensor:
        """``values`` (one per pair) scattered into a ``(num_queries, max_docs)`` matrix, ``fill`` elsewhere."""
        matrix = torch.full((self.num_queries, self.max_docs), fill, dtype=torch.float32, device=values.device)
        matrix[self.rows.to(values.device), self.cols.to(values.device)] = values.to(torch.float32)
        return matrix

    def mask(self, device: torch.device) -> Tensor:
        """True where a matrix entry holds a real document rather than padding."""
        mask = torch.zeros((self.num_queries, self.max_docs), dtype=torch.bool, device=device)
        mask[self.rows.to(device), self.cols.to(device)] = True
        return mask


def check_mini_batch_size(mini_batch_size: int | None) -> None:
    """``None`` or an integer (see :meth:`ListwiseLoss.score_batch` for what each value means)."""
    if mini_batch_size is not None and (isinstance(mini_batch_size, bool) or not isinstance(mini_batch_size, int)):
        raise InvalidArgumentError(f"mini_batch_size is {mini_batch_size!r}; expected an integer or None")


class ListwiseLoss(CrossEncoderLoss):
    """Base of the listwise losses: scores every (query, document) pair of a ragged batch in mini-batches."""

    input_columns = (2, 2)
    requires_label = True
    require_cross_encoder = False

    def __init__(self, model: CrossEncoder, activation_fn: nn.Module | None, mini_batch_size: int | None) -> None:
        super().__init__(model)
        check_mini_batch_size(mini_batch_size)
        # sentence-transformers' listwise losses read None as "no activation".
        self.activation_fn = activation_fn or nn.Identity()
        self.mini_batch_size = mini_batch_size

    def score_batch(
        self, inputs: Sequence[Any], labels: Any, prompt: str | None, task: str | None
    ) -> tuple[ListwiseBatch, Tensor]:
        """The checked batch and the activated float32 score of each of its pairs, in pair order.

        ``mini_batch_size`` counts pairs per forward pass: None means as many pairs as the batch has
        queries, and so does 0 (sentence-transformers documents 0 as "all pairs", but its code reads
        it as unset, which is what decides the forward passes); a negative value means all pairs at once.
        """
        batch = ListwiseBatch.from_inputs(self, inputs, labels)
        step = self.mini_batch_size or batch.num_queries
        if step <= 0:
            step = len(batch.pairs)
        parts = [
            self.score_pairs(batch.pairs[start : start + step], prompt=prompt, task=task).view(-1)
            for start in range(0, len(batch.pairs), step)
        ]
        return batch, self.activation_fn(torch.cat(parts).float())

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {"activation_fn": fullname(self.activation_fn), "mini_batch_size": self.mini_batch_size}
