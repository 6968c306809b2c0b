"""The evaluator base class: the contract every evaluator (and the trainer) relies on."""

from __future__ import annotations

import csv
import os
import re
from typing import Any


class BaseEvaluator:
    """Base of every evaluator: call it on a model to get a dict of metrics.

    ``greater_is_better`` tells checkpoint selection which direction wins; ``primary_metric``
    names the key of the returned dict that counts as the evaluator's main score.
    """

    def __init__(self) -> None:
        self.greater_is_better = True
        self.primary_metric: str | None = None

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> float | dict[str, float]:
        """Evaluate ``model``; ``epoch``/``steps`` of -1 mean the end of training or a test run."""
        raise NotImplementedError

    def prefix_name_to_metrics(self, metrics: dict[str, Any], name: str) -> dict[str, Any]:
        """Cast values to float where possible and prefix each key (and ``primary_metric``) with ``name_``."""

        def as_float(value: Any) -> Any:
            try:
                return float(value)
            except ValueError:
                return value

        if not name:
            return {key: as_float(value) for key, value in metrics.items()}
        prefixed = {f"{name}_{key}": as_float(value) for key, value in metrics.items()}
        primary = getattr(self, "primary_metric", None)
        if primary is not None and not primary.startswith(name + "_"):
            self.primary_metric = f"{name}_{primary}"
        return prefixed

    def store_metrics_in_model_card_data(
        self, model: Any, metrics: dict[str, Any], epoch: int = 0, step: int = 0
    ) -> None:
        """Hand the metrics to the model's card data, when the model keeps any."""
        card_data = getattr(model, "model_card_data", None)
        # embedforge models built without card data have None here; there is nothing to record into.
        setter = getattr(card_data, "set_evaluation_metrics", None)
        if setter is not None:
            setter(self, metrics, epoch, step)

    @property
    def description(self) -> str:
        """Human-readable name derived from the class name, e.g. "Binary Classification"."""
        class_name = type(self).__name__
        if class_name.startswith("CE"):
            class_name = "CrossEncoder" + class_name[2:]
        index = class_name.find("Evaluator")
        if index >= 0:
            class_name = class_name[:index]
        return re.sub(r"([a-z])([A-Z])", r"\g<1> \g<2>", class_name)

    def get_config_dict(self) -> dict[str, Any]:
        """Configuration values worth recording in a model card."""
        return {}


#: The older name of :class:`BaseEvaluator`, kept importable.
SentenceEvaluator = BaseEvaluator


def epoch_text(epoch: int, steps: int, truncate_dim: int | None = None) -> str:
    """The " after epoch N" / " in epoch N after M steps" suffix used in log lines."""
    if epoch == -1:
        text = ""
    elif steps == -1:
        text = f" after epoch {epoch}"
    else:
        text = f" in epoch {epoch} after {steps} steps"
    if truncate_dim is not None:
        text += f" (truncated to {truncate_dim})"
    return text


def append_csv_row(output_path: str, csv_file: str, headers: list[str], row: list[Any]) -> None:
    """Append ``row`` to ``output_path/csv_file``, writing ``headers`` first when the file is new."""
    os.makedirs(output_path, exist_ok=True)
    csv_path = os.path.join(output_path, csv_file)
    is_new = not os.path.isfile(csv_path)
    with open(csv_path, newline="", mode="w" if is_new else "a", encoding="utf-8") as f:
        writer = csv.writer(f)
        if is_new:
            writer.writerow(headers)
        writer.writerow(row)


def check_same_length(**columns: Any) -> None:
    """Raise InvalidArgumentError unless every column has as many rows as the first one."""
    from embedforge.exceptions import InvalidArgumentError

    names = list(columns)
    first = names[0]
    for name in names[1:]:
        if len(columns[name]) != len(columns[first]):
            raise InvalidArgumentError(
                f"{name} has {len(columns[name])} rows; expected as many as {first} ({len(columns[first])})"
            )


def encode_method(model: Any, encode_fn_name: str | None) -> Any:
    """``model.encode_query`` for "query", ``model.encode_document`` for "document", else ``model.encode``."""
    if encode_fn_name == "query":
        return model.encode_query
    if encode_fn_name == "document":
        return model.encode_document
    return model.encode


def find_primary_metric(metrics: dict[str, Any], evaluator: Any) -> tuple[bool, Any]:
    """The first metric whose key ends with the evaluator's primary metric (``"evaluator"`` if it names none)."""
    suffix = getattr(evaluator, "primary_metric", None) or "evaluator"
    for key, value in metrics.items():
        if key.endswith(suffix):
            return True, value
    return False, None
