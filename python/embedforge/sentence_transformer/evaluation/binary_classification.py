"""Binary classification of sentence pairs by thresholding their embedding similarity."""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np

from embedforge.base.evaluation.evaluator import BaseEvaluator, append_csv_row, check_same_length, epoch_text
from embedforge.base.evaluation.metrics import (
    average_precision,
    best_accuracy_threshold,
    best_f1_threshold,
    matthews_corrcoef,
)
from embedforge.exceptions import InvalidArgumentError
from embedforge.util import (
    pairwise_cos_sim,
    pairwise_dot_score,
    pairwise_euclidean_sim,
    pairwise_manhattan_sim,
)

logger = logging.getLogger(__name__)

_METRICS = ["accuracy", "accuracy_threshold", "f1", "precision", "recall", "f1_threshold", "ap", "mcc"]

# name -> (score function, display name, whether a higher score means "more similar").
# The distance variants negate the (negative) similarity back into a distance.
_SCORE_FNS: dict[str, tuple[Any, str, bool]] = {
    "cosine": (pairwise_cos_sim, "Cosine-Similarity", True),
    "dot": (pairwise_dot_score, "Dot-Product", True),
    "manhattan": (lambda x, y: -pairwise_manhattan_sim(x, y), "Manhattan-Distance", False),
    "euclidean": (lambda x, y: -pairwise_euclidean_sim(x, y), "Euclidean-Distance", False),
}


class BinaryClassificationEvaluator(BaseEvaluator):
    """Accuracy, F1, precision, recall, average precision and MCC of labelled (0/1) sentence pairs.

    The primary metric is the average precision (``<fn>_ap``, or ``max_ap`` over several functions).
    """

    def __init__(
        self,
        sentences1: list[str],
        sentences2: list[str],
        labels: list[int],
        name: str = "",
        batch_size: int = 32,
        show_progress_bar: bool = False,
        write_csv: bool = True,
        truncate_dim: int | None = None,
        similarity_fn_names: list[Literal["cosine", "dot", "euclidean", "manhattan"]] | None = None,
    ) -> None:
        super().__init__()
        check_same_length(sentences1=sentences1, sentences2=sentences2, labels=labels)
        for label in labels:
            if label not in (0, 1):
                raise InvalidArgumentError(f"labels contains {label!r}; expected only 0 and 1")
        self.similarity_fn_names: list[str] = list(similarity_fn_names or [])
        for fn_name in self.similarity_fn_names:
            if fn_name not in _SCORE_FNS:
                raise InvalidArgumentError(
                    f"similarity_fn_names contains {fn_name!r}; expected names in {list(_SCORE_FNS)}"
                )
        self.sentences1 = sentences1
        self.sentences2 = sentences2
        self.labels = labels
        self.truncate_dim = truncate_dim
        self.write_csv = write_csv
        self.name = name
        self.batch_size = batch_size
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() in (logging.INFO, logging.DEBUG)
        self.show_progress_bar = show_progress_bar
        self.csv_file = "binary_classification_evaluation" + ("_" + name if name else "") + "_results.csv"
        self.csv_headers = ["epoch", "steps"]
        self._append_csv_headers(self.similarity_fn_names)

    def _append_csv_headers(self, similarity_fn_names: list[str]) -> None:
        self.csv_headers += [f"{fn_name}_{metric}" for fn_name in similarity_fn_names for metric in _METRICS]

    @classmethod
    def from_input_examples(cls, examples: list[Any], **kwargs: Any) -> BinaryClassificationEvaluator:
        """Build from objects with ``texts`` (two sentences) and ``label``."""
        return cls(
            [example.texts[0] for example in examples],
            [example.texts[1] for example in examples],
            [example.label for example in examples],
            **kwargs,
        )

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Metrics per similarity function, keyed ``<name>_<fn>_<metric>``."""
        logger.info(
            f"Binary Accuracy Evaluation of the model on the {self.name} dataset"
            f"{epoch_text(epoch, steps, self.truncate_dim)}:"
        )
        if not self.similarity_fn_names:
            self.similarity_fn_names = [model.similarity_fn_name]
            self._append_csv_headers(self.similarity_fn_names)
        scores = self.compute_metrics(model)

        if output_path is not None and self.write_csv:
            row: list[Any] = [epoch, steps]
            for header in self.csv_headers[2:]:
                fn_name, metric = header.split("_", maxsplit=1)
                if fn_name in scores:
                    row.append(scores[fn_name][metric])
            append_csv_row(output_path, self.csv_file, self.csv_headers, row)

        metrics = {
            f"{fn_name}_{metric}": value for fn_name, values in scores.items() for metric, value in values.items()
        }
        if len(self.similarity_fn_names) > 1:
            for metric in next(iter(scores.values())):
                metrics[f"max_{metric}"] = max(values[metric] for values in scores.values())
            self.primary_metric = "max_ap"
        else:
            self.primary_metric = f"{self.similarity_fn_names[0]}_ap"
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def compute_metrics(self, model: Any) -> dict[str, dict[str, float]]:
        """The eight metrics for each configured similarity function."""
        try:
            # Hashable inputs (text) are embedded once each, however often they repeat.
            unique = list({*self.sentences1, *self.sentences2})
        except TypeError:
            embeddings1 = self.embed_inputs(model, self.sentences1)
            embeddings2 = self.embed_inputs(model, self.sentences2)
        else:
            embedded = self.embed_inputs(model, unique)
            row_of = {sentence: i for i, sentence in enumerate(unique)}
            embeddings1 = embedded[[row_of[s] for s in self.sentences1]]
            embeddings2 = embedded[[row_of[s] for s in self.sentences2]]

        labels = np.asarray(self.labels)
        output: dict[str, dict[str, float]] = {}
        for fn_name in self.similarity_fn_names:
            score_fn, display, higher_is_similar = _SCORE_FNS[fn_name]
            scores = score_fn(embeddings1, embeddings2).detach().cpu().numpy()
            acc, acc_threshold = self.find_best_acc_and_threshold(scores, labels, higher_is_similar)
            f1, precision, recall, f1_threshold = self.find_best_f1_and_threshold(scores, labels, higher_is_similar)
            ap = average_precision(labels, scores if higher_is_similar else -scores)
            predicted = scores >= f1_threshold if higher_is_similar else scores <= f1_threshold
            mcc = matthews_corrcoef(labels, predicted)
            logger.info(f"Accuracy with {display}: {acc * 100:.2f}\t(Threshold: {acc_threshold:.4f})")
            logger.info(f"F1 with {display}: {f1 * 100:.2f}\t(Threshold: {f1_threshold:.4f})")
            logger.info(f"Precision / recall with {display}: {precision * 100:.2f} / {recall * 100:.2f}")
            logger.info(f"Average precision / MCC with {display}: {ap * 100:.2f} / {mcc * 100:.2f}")
            output[fn_name] = {
                "accuracy": acc,
                "accuracy_threshold": acc_threshold,
                "f1": f1,
                "f1_threshold": f1_threshold,
                "precision": precision,
                "recall": recall,
                "ap": ap,
                "mcc": mcc,
            }
        return output

    # The misspelt name some older scripts still call.
    compute_metrices = compute_metrics

    def embed_inputs(self, model: Any, sentences: Any, **kwargs: Any) -> np.ndarray:
        """Embed with this evaluator's batch size and truncation, as a numpy array."""
        return model.encode(
            sentences,
            batch_size=self.batch_size,
            show_progress_bar=self.show_progress_bar,
            convert_to_numpy=True,
            truncate_dim=self.truncate_dim,
            **kwargs,
        )

    @staticmethod
    def find_best_acc_and_threshold(scores: Any, labels: Any, high_score_more_similar: bool) -> tuple[float, float]:
        """Best accuracy over all cut points between distinct scores, and the threshold achieving it."""
        return best_accuracy_threshold(scores, labels, high_score_more_similar)

    @staticmethod
    def find_best_f1_and_threshold(
        scores: Any, labels: Any, high_score_more_similar: bool
    ) -> tuple[float, float, float, float]:
        """Best F1 (with its precision and recall) over all cut points, and the threshold achieving it."""
        return best_f1_threshold(scores, labels, high_score_more_similar)

    def get_config_dict(self) -> dict[str, Any]:
        """``truncate_dim`` when set."""
        return {"truncate_dim": self.truncate_dim} if self.truncate_dim is not None else {}
