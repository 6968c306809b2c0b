"""Classification accuracy of a SoftmaxLoss head over labelled sentence pairs."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from embedforge.base.evaluation.evaluator import BaseEvaluator, append_csv_row
from embedforge.exceptions import InvalidArgumentError
from embedforge.util import batch_to_device

logger = logging.getLogger(__name__)


def _collate(model: Any) -> Any:
    """Turn a list of examples (``texts`` and ``label``) into per-column features and a label tensor."""

    def collate(batch: list[Any]) -> tuple[list[dict[str, torch.Tensor]], torch.Tensor]:
        columns = zip(*(example.texts for example in batch))
        features = [model.preprocess(list(column)) for column in columns]
        labels = [example.label for example in batch]
        if labels and isinstance(labels[0], np.ndarray):
            return features, torch.from_numpy(np.stack(labels))
        return features, torch.tensor(labels)

    return collate


class LabelAccuracyEvaluator(BaseEvaluator):
    """Share of examples whose argmax class under ``softmax_model`` (a SoftmaxLoss) equals the label.

    ``dataloader`` yields lists of examples with ``texts`` and an integer ``label``; its
    ``collate_fn`` is replaced by one that tokenises with the evaluated model.
    """

    def __init__(
        self, dataloader: DataLoader, name: str = "", softmax_model: Any = None, write_csv: bool = True
    ) -> None:
        super().__init__()
        self.dataloader = dataloader
        self.name = name
        self.softmax_model = softmax_model
        self.write_csv = write_csv
        self.csv_file = "accuracy_evaluation" + ("_" + name if name else "") + "_results.csv"
        self.csv_headers = ["epoch", "steps", "accuracy"]
        self.primary_metric = "accuracy"

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """``accuracy`` over every example of the data loader."""
        if self.softmax_model is None:
            raise InvalidArgumentError("softmax_model=None; expected a SoftmaxLoss whose classifier is evaluated")
        model.eval()
        if epoch == -1:
            suffix = ":"
        elif steps == -1:
            suffix = f" after epoch {epoch}:"
        else:
            suffix = f" in epoch {epoch} after {steps} steps:"
        logger.info(f"Evaluation on the {self.name} dataset{suffix}")
        collate = getattr(model, "smart_batching_collate", None) or _collate(model)
        self.dataloader.collate_fn = collate
        total = 0
        correct = 0
        for features, label_ids in self.dataloader:
            features = [batch_to_device(feature, model.device) for feature in features]
            label_ids = label_ids.to(model.device)
            with torch.no_grad():
                _, logits = self.softmax_model(features, labels=None)
            total += logits.size(0)
            correct += int(torch.argmax(logits, dim=1).eq(label_ids).sum().item())
        if total == 0:
            raise InvalidArgumentError("dataloader yielded no examples; expected at least one labelled pair")
        accuracy = correct / total
        logger.info(f"Accuracy: {accuracy:.4f} ({correct}/{total})\n")
        if output_path is not None and self.write_csv:
            append_csv_row(output_path, self.csv_file, self.csv_headers, [epoch, steps, accuracy])
        metrics = self.prefix_name_to_metrics({"accuracy": accuracy}, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics
