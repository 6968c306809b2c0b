"""BaseDataCollator: rows of inputs (+ label) -> preprocessed ``{column}_{feature}`` tensors, for every model kind."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from embedforge.exceptions import InvalidArgumentError

logger = logging.getLogger(__name__)

#: Column names read as the label, in order of preference; the first one present wins.
DEFAULT_LABEL_COLUMNS: tuple[str, ...] = ("label", "labels", "score", "scores")

#: Column name -> the position sentence-transformers users expect it at (column order decides roles).
_USUAL_POSITIONS = {
    "anchor": 0,
    "positive": 1,
    "negative": 2,
    "question": 0,
    "answer": 1,
    "query": 0,
    "response": 1,
    "hypothesis": 0,
    "entailment": 1,
    "contradiction": 2,
}
_USUAL_GROUPS = (
    ("anchor", "positive", "negative"),
    ("question", "answer"),
    ("query", "response"),
    ("hypothesis", "entailment", "contradiction"),
)


@dataclass
class BaseDataCollator:
    """Collate dataset rows for the losses: each text column goes through ``preprocess_fn`` (``model.preprocess``).

    Output keys are ``{column}_{feature}`` (``anchor_input_ids``, ``anchor_attention_mask``, ...), the
    label (first of ``valid_label_columns`` present) under ``label``, and ``dataset_name`` when rows
    carry one. Prompts and Router tasks are resolved per column (and per dataset) as in
    sentence-transformers. Columns are used by position, so their order matters.
    """

    preprocess_fn: Callable[..., dict[str, Any]]
    valid_label_columns: list[str] = field(default_factory=lambda: list(DEFAULT_LABEL_COLUMNS))
    router_mapping: dict[str, str] | dict[str, dict[str, str]] | None = field(default_factory=dict, repr=False)
    prompts: str | dict[str, str] | dict[str, dict[str, str]] | None = field(default_factory=dict, repr=False)
    max_length: int | dict[str, int] | None = field(default=None, repr=False)

    _warned_columns: set[tuple[str, ...]] = field(default_factory=set, init=False, repr=False)
    _warned_id_columns: set[tuple[str, ...]] = field(default_factory=set, init=False, repr=False)

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        """Turn a list of rows into one batch dict."""
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
                batch["label"] = torch.stack(labels) if isinstance(labels[0], torch.Tensor) else torch.tensor(labels)
                column_names.remove(label_column)
                break

        router_mapping = self._resolve_router_mapping(batch)
        prompts = self._resolve_prompts(batch)
        self.maybe_warn_about_id_columns(column_names)
        for position, column_name in enumerate(column_names):
            task = self._get_task_for_column(column_name, position, router_mapping)
            prompt = self._get_prompt_for_column(prompts, column_name)
            inputs = [row[column_name] for row in features]
            max_length = self._max_length_for(task)
            # Only pass max_length when set, so preprocess functions without **kwargs keep working.
            if max_length is not None:
                tokenized = self.preprocess_fn(inputs, prompt=prompt, task=task, max_length=max_length)
            else:
                tokenized = self.preprocess_fn(inputs, prompt=prompt, task=task)
            for key, value in tokenized.items():
                batch[f"{column_name}_{key}"] = value
            if task is not None:
                # Losses that re-run the model need the task each column was tokenized with.
                batch[f"{column_name}_task"] = task
        return batch

    def _resolve_router_mapping(self, batch: dict[str, Any]) -> dict[str, str]:
        """The column -> route mapping for this batch (a per-dataset mapping is looked up by dataset name)."""
        mapping = self.router_mapping
        if not mapping:
            return {}
        if isinstance(next(iter(mapping.values())), dict):
            return mapping.get(batch.get("dataset_name"), {})  # type: ignore[return-value, arg-type]
        return mapping  # type: ignore[return-value]

    def _resolve_prompts(self, batch: dict[str, Any]) -> str | dict[str, str] | None:
        """The prompt(s) for this batch: a string, a column -> prompt dict, or nothing."""
        prompts = self.prompts
        if not prompts:
            return None
        if not isinstance(prompts, dict):
            return prompts
        dataset_name = batch.get("dataset_name")
        if dataset_name is not None and dataset_name in prompts:
            return prompts[dataset_name]
        if isinstance(next(iter(prompts.values())), dict):
            if dataset_name is None:
                raise InvalidArgumentError(
                    f"prompts={prompts!r} is a nested dictionary (dataset name -> column name -> prompt), but the "
                    "dataset is a single Dataset, so rows carry no dataset name to look up; pass a DatasetDict "
                    f"whose names are among {list(prompts)}, or a column -> prompt mapping"
                )
            return {}
        return prompts  # type: ignore[return-value]

    def _get_prompt_for_column(self, prompts: str | dict[str, str] | None, column_name: str) -> str | None:
        """The prompt of one column: the one string for every column, or the column's entry (None if absent)."""
        if isinstance(prompts, str):
            return prompts
        if isinstance(prompts, dict):
            return prompts.get(column_name)
        return None

    def _get_task_for_column(
        self, column_name: str, column_position: int, router_mapping: dict[str, str]
    ) -> str | None:
        """The Router task a column is preprocessed with; a kind may add defaults by position."""
        return router_mapping.get(column_name)

    def _max_length_for(self, task: str | None) -> int | None:
        """A training-time max length: one int for every column, or one per task."""
        if isinstance(self.max_length, int):
            return self.max_length
        if isinstance(self.max_length, dict) and task is not None:
            return self.max_length.get(task)
        return None

    def maybe_warn_about_id_columns(self, column_names: list[str]) -> None:
        """Warn once per set of columns whose names look like ids (``id``, ``*_id``, ``*_ids``, ``*_idx``).

        Such columns are still tokenised and trained on, as text: an id column left in by mistake
        silently teaches the model to match identifiers.
        """
        id_like = [name for name in column_names if name == "id" or name.endswith(("_id", "_ids", "_idx"))]
        if not id_like or tuple(id_like) in self._warned_id_columns:
            return
        self._warned_id_columns.add(tuple(id_like))
        logger.warning(
            "Column(s) %s look like ID columns, but they will be tokenized and trained on as text. If they hold "
            "IDs, replace them with the values they point to first (e.g. with embedforge.util.resolve_ids), or "
            "remove them from the dataset.",
            id_like,
        )

    def maybe_warn_about_column_order(self, column_names: list[str]) -> None:
        """Warn once per column list when a well-known column name sits at an unusual position."""
        for column_name, expected in _USUAL_POSITIONS.items():
            if column_name in column_names and column_names.index(column_name) != expected:
                group = next(names for names in _USUAL_GROUPS if column_name in names)
                logger.warning(
                    "Column %r is at index %d, but a column of that name is usually at index %d. Losses read "
                    "columns by position (e.g. MultipleNegativesRankingLoss takes the first as anchor and the "
                    "second as positive), whatever their names. To reorder: dataset = dataset.select_columns(%s)",
                    column_name,
                    column_names.index(column_name),
                    expected,
                    list(group),
                )
                break
        self._warned_columns.add(tuple(column_names))


__all__ = ["DEFAULT_LABEL_COLUMNS", "BaseDataCollator"]
