"""Step 2.2 of Augmented SBERT: a cross-encoder scores the sampled pairs, and gold + silver become one dataset."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from embedforge.exceptions import InvalidArgumentError

if TYPE_CHECKING:
    from datasets import Dataset

    from embedforge.cross_encoder.model import CrossEncoder

#: Column names of the datasets this module builds: two texts, then the label.
DEFAULT_COLUMNS = ("sentence1", "sentence2", "score")


def label_pairs(
    cross_encoder: CrossEncoder,
    pairs: Sequence[Sequence[str]],
    batch_size: int = 32,
    show_progress_bar: bool | None = None,
    threshold: float | None = None,
    columns: Sequence[str] = DEFAULT_COLUMNS,
) -> Dataset:
    """A ``Dataset`` of ``pairs`` with the cross-encoder's score of each as the label ("silver" data).

    Scores are the model's ``predict`` output (after its activation: a probability for a model
    trained with the default binary cross-entropy loss). With ``threshold``, the label is instead
    1 where the score is at least ``threshold`` and 0 elsewhere (for classification-style losses).
    The cross-encoder must have one output (``num_labels=1``).
    """
    from datasets import Dataset

    names = _column_names(columns)
    for index, pair in enumerate(pairs):
        # A str is a sequence too: "ab" must not pass as the pair ("a", "b").
        if isinstance(pair, str) or len(pair) != 2 or not all(isinstance(text, str) for text in pair):
            raise InvalidArgumentError(f"pairs[{index}]={pair!r}; expected a pair of two texts")
    pairs = [tuple(pair) for pair in pairs]
    num_labels = getattr(cross_encoder, "num_labels", 1)
    if num_labels != 1:
        raise InvalidArgumentError(
            f"cross_encoder has num_labels={num_labels}; labelling pairs needs a model with one output score"
        )
    if pairs:
        scores = np.asarray(
            cross_encoder.predict(
                pairs, batch_size=batch_size, show_progress_bar=show_progress_bar, convert_to_numpy=True
            ),
            dtype=np.float64,
        ).reshape(-1)
    else:
        scores = np.zeros(0, dtype=np.float64)
    labels: list[Any] = scores.tolist() if threshold is None else (scores >= threshold).astype(np.int64).tolist()
    return Dataset.from_dict(
        {names[0]: [pair[0] for pair in pairs], names[1]: [pair[1] for pair in pairs], names[2]: labels}
    )


def both_orders(dataset: Dataset) -> Dataset:
    """``dataset`` followed by its pairs with the two texts swapped (a symmetric task's training pairs).

    The cross-encoder reads a pair as one sequence, so ``(a, b)`` and ``(b, a)`` are different
    inputs; training on both teaches it the symmetry that a similarity score has.
    """
    from datasets import concatenate_datasets

    first, second = dataset.column_names[:2]
    swapped = dataset.rename_columns({first: "__second__", second: "__first__"}).rename_columns(
        {"__first__": first, "__second__": second}
    )
    return concatenate_datasets([dataset, swapped.select_columns(dataset.column_names)])


def gold_and_silver(gold: Dataset, silver: Dataset) -> Dataset:
    """One training dataset: the gold rows, then the silver rows, with the gold dataset's column names and types.

    Both must have the same number of columns in the same roles (text, text, label); silver
    columns are matched to gold's by position. An integer gold column (0/1 labels) becomes the
    silver column's float type when the silver values are floats (scores), rather than truncating them.
    """
    from datasets import Value, concatenate_datasets

    if len(gold.column_names) != len(silver.column_names):
        raise InvalidArgumentError(
            f"gold has columns {gold.column_names} but silver has {silver.column_names}; "
            "expected the same number of columns in the same order (text, text, label)"
        )
    renamed = silver.rename_columns(
        {old: new for old, new in zip(silver.column_names, gold.column_names) if old != new}
    )
    features = gold.features.copy()
    for name, feature in renamed.features.items():
        kept = features[name]
        if (
            isinstance(kept, Value)
            and isinstance(feature, Value)
            and kept.dtype.startswith(("int", "uint"))
            and feature.dtype.startswith("float")
        ):
            features[name] = feature
    if features != gold.features:
        gold = gold.cast(features)
    return concatenate_datasets([gold, renamed.cast(features)])


def _column_names(columns: Sequence[str]) -> tuple[str, str, str]:
    if isinstance(columns, str) or len(columns) != 3 or len(set(columns)) != 3:
        raise InvalidArgumentError(f"columns={columns!r}; expected three distinct names (text, text, label)")
    return columns[0], columns[1], columns[2]
