"""CrossEncoderCorrelationEvaluator: how well a CrossEncoder's scores follow gold similarity scores."""

from __future__ import annotations

import logging
from typing import Any

from scipy.stats import pearsonr, spearmanr

from embedforge.base.evaluation.evaluator import append_csv_row

from .pair_evaluator import PairEvaluator

logger = logging.getLogger(__name__)


class CrossEncoderCorrelationEvaluator(PairEvaluator):
    """Pearson and Spearman correlation of ``model.predict`` on pairs with their gold scores
    (primary metric ``spearman``)."""

    csv_stem = "CrossEncoderCorrelationEvaluator"
    targets_name = "scores"

    def __init__(
        self,
        sentence_pairs: list[list[str]],
        scores: list[float],
        name: str = "",
        prompt_name: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        write_csv: bool = True,
    ) -> None:
        super().__init__(sentence_pairs, scores, name, prompt_name, batch_size, show_progress_bar, write_csv)
        self.scores = scores
        self.csv_headers = ["epoch", "steps", "Pearson_Correlation", "Spearman_Correlation"]
        self.primary_metric = "spearman"

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Predict every pair and correlate with the gold scores; metrics prefixed with ``name``."""
        predicted = self.predict(model, epoch, steps)
        pearson, _ = pearsonr(self.scores, predicted)
        spearman, _ = spearmanr(self.scores, predicted)
        logger.info("Correlation:\tPearson: %.4f\tSpearman: %.4f", pearson, spearman)
        if output_path is not None and self.write_csv:
            append_csv_row(output_path, self.csv_file, self.csv_headers, [epoch, steps, pearson, spearman])
        metrics = self.prefix_name_to_metrics({"pearson": pearson, "spearman": spearman}, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics
