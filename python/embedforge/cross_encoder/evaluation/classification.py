"""CrossEncoderClassificationEvaluator: accuracy-style metrics of a CrossEncoder's predicted labels."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from embedforge.base.evaluation.evaluator import append_csv_row
from embedforge.base.evaluation.metrics import average_precision, best_accuracy_threshold, best_f1_threshold

from .pair_evaluator import PairEvaluator

logger = logging.getLogger(__name__)


def f1_averages(labels: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Macro, micro and support-weighted F1 over the classes seen in either array (sklearn's
    ``f1_score`` averages; a class with no true or predicted member scores 0)."""
    classes = np.union1d(labels, predicted)
    true_positives = np.array([np.sum((labels == c) & (predicted == c)) for c in classes], dtype=np.float64)
    predicted_count = np.array([np.sum(predicted == c) for c in classes], dtype=np.float64)
    support = np.array([np.sum(labels == c) for c in classes], dtype=np.float64)
    denominator = predicted_count + support
    per_class = np.divide(2 * true_positives, denominator, out=np.zeros_like(denominator), where=denominator > 0)
    total = predicted_count.sum() + support.sum()
    return {
        "f1_macro": float(per_class.mean()),
        "f1_micro": float(2 * true_positives.sum() / total) if total > 0 else 0.0,
        "f1_weighted": float((per_class * support).sum() / support.sum()) if support.sum() > 0 else 0.0,
    }


class CrossEncoderClassificationEvaluator(PairEvaluator):
    """Classification metrics of ``model.predict`` on labelled pairs.

    A single-label model is scored as a binary classifier over its scores (accuracy, F1, precision,
    recall at their best thresholds, and average precision; primary metric ``average_precision``);
    a model with several labels by the argmax class (macro, micro and weighted F1; primary
    metric ``f1_macro``).
    """

    csv_stem = "CrossEncoderClassificationEvaluator"
    targets_name = "labels"

    def __init__(
        self,
        sentence_pairs: list[list[str]],
        labels: list[int],
        *,
        name: str = "",
        prompt_name: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        write_csv: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(sentence_pairs, labels, name, prompt_name, batch_size, show_progress_bar, write_csv)
        self.labels = np.asarray(labels)
        self.csv_headers: list[str] = []

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Predict every pair and compare with the labels; metrics prefixed with ``name``."""
        scores = self.predict(model, epoch, steps)
        if model.num_labels == 1:
            accuracy, accuracy_threshold = best_accuracy_threshold(scores, self.labels, True)
            f1, precision, recall, f1_threshold = best_f1_threshold(scores, self.labels, True)
            metrics = {
                "accuracy": accuracy,
                "accuracy_threshold": accuracy_threshold,
                "f1": f1,
                "f1_threshold": f1_threshold,
                "precision": precision,
                "recall": recall,
                "average_precision": average_precision(self.labels, np.asarray(scores, dtype=np.float64)),
            }
            self.csv_headers = [
                "epoch",
                "steps",
                "Accuracy",
                "Accuracy_Threshold",
                "F1",
                "F1_Threshold",
                "Precision",
                "Recall",
                "Average_Precision",
            ]
            self.primary_metric = "average_precision"
        else:
            metrics = f1_averages(self.labels, np.argmax(scores, axis=1))
            self.csv_headers = ["epoch", "steps", "Macro_F1", "Micro_F1", "Weighted_F1"]
            self.primary_metric = "f1_macro"
        for key, value in metrics.items():
            logger.info("%-18s %.2f", key, value * 100 if "threshold" not in key else value)
        if output_path is not None and self.write_csv:
            append_csv_row(output_path, self.csv_file, self.csv_headers, [epoch, steps, *metrics.values()])
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics
