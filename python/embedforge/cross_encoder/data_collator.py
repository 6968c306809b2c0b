"""CrossEncoderDataCollator: rows of texts (+ label) -> raw text columns, for losses that tokenise pairs themselves."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import torch

from embedforge.base.data_collator import DEFAULT_LABEL_COLUMNS, BaseDataCollator
from embedforge.exceptions import InvalidArgumentError


@dataclass
class CrossEncoderDataCollator(BaseDataCollator):
    """Collate rows for a CrossEncoder's losses.

    Unlike the embedding kind, nothing is tokenised here: a CrossEncoder loss pairs the columns
    (query with each document, anchor with positive, ...) and tokenises the pairs jointly through
    ``model.preprocess``. A batch holds each text column as a list under its own name (in column
    order, which decides the roles), the label under ``label`` (a tensor, or a list of tensors when
    each row's label is a list, as for listwise losses), ``dataset_name`` when rows carry one, and
    the ``prompt`` and Router ``task`` of the batch. Because columns are combined into pairs, a
    prompt or route is one string, or one per dataset: never one per column.
    """

    def __post_init__(self) -> None:
        for argument, example in (
            ("prompts", "prompts='Search: ' or prompts={'dataset_a': 'Search: ', 'dataset_b': 'Retrieve: '}"),
            ("router_mapping", "router_mapping={'dataset_a': 'rerank', 'dataset_b': 'rerank'}"),
        ):
            value = getattr(self, argument)
            if isinstance(value, dict) and any(isinstance(inner, dict) for inner in value.values()):
                raise InvalidArgumentError(
                    f"CrossEncoder {argument} cannot be per-column ({argument}={value!r}): a CrossEncoder combines "
                    f"its input columns into pairs, so give one string or one string per dataset, e.g. {example}"
                )

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        """Turn a list of rows into one batch dict of text lists, label, prompt and task."""
        if not features:
            return {}
        first_row = features[0]
        column_names = list(first_row)
        batch: dict[str, Any] = {}
        if "dataset_name" in first_row:
            column_names.remove("dataset_name")
            batch["dataset_name"] = first_row["dataset_name"]
        if tuple(column_names) not in self._warned_columns:
            self.maybe_warn_about_column_order(column_names)

        for label_column in self.valid_label_columns:
            if label_column in first_row:
                labels = [row[label_column] for row in features]
                if isinstance(labels[0], Collection) and not isinstance(labels[0], str):
                    # Listwise rows have one label per document, and documents per row vary in number.
                    batch["label"] = [torch.as_tensor(label) for label in labels]
                elif isinstance(labels[0], torch.Tensor):
                    batch["label"] = torch.stack(labels)
                else:
                    batch["label"] = torch.tensor(labels)
                column_names.remove(label_column)
                break

        if prompt := self._batch_value(self.prompts, batch):
            batch["prompt"] = prompt
        if task := self._batch_value(self.router_mapping, batch):
            batch["task"] = task
        for column_name in column_names:
            batch[column_name] = [row[column_name] for row in features]
        return batch

    @staticmethod
    def _batch_value(setting: Any, batch: dict[str, Any]) -> str | None:
        """A prompt or route for this batch: the one string, or the batch's dataset's entry."""
        if not setting:
            return None
        if isinstance(setting, str):
            return setting
        if isinstance(setting, dict) and "dataset_name" in batch:
            return setting.get(batch["dataset_name"])
        return None


__all__ = ["DEFAULT_LABEL_COLUMNS", "CrossEncoderDataCollator"]
