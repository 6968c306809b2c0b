"""CrossEncoderCorrelationEvaluator: how well a CrossEncoder's scores follow gold similarity scores."""

from __future__ import annotations

import logging
from typing import Any

from scipy.stats import pearsonr, spearmanr

from embedforge.evaluation.evaluator import BaseEvaluator, append_csv_row, check_same_length, epoch_text

logger = logging.getLogger(__name__)


class CrossEncoderCorrelationEvaluator(BaseEvaluator):
    """Pearson and Spearman correlation of ``model.predict`` on pairs with their gold scores
    (primary metric ``spearman``)."""

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
        super().__init__()
        check_same_length(sentence_pairs=sentence_pairs, scores=scores)
        self.sentence_pairs = sentence_pairs
        self.scores = scores
        self.name = name
        self.prompt_name = prompt_name
        self.batch_size = batch_size
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() in (logging.INFO, logging.DEBUG)
        self.show_progress_bar = show_progress_bar
        self.write_csv = write_csv
        self.csv_file = "CrossEncoderCorrelationEvaluator" + (f"_{name}" if name else "") + "_results.csv"
        self.csv_headers = ["epoch", "steps", "Pearson_Correlation", "Spearman_Correlation"]
        self.primary_metric = "spearman"

    @classmethod
    def from_input_examples(cls, examples: list[Any], **kwargs: Any) -> CrossEncoderCorrelationEvaluator:
        """Build from InputExamples holding a text pair and a gold score each."""
        return cls([example.texts for example in examples], [example.label for example in examples], **kwargs)

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Predict every pair and correlate with the gold scores; metrics prefixed with ``name``."""
        logger.info(
            "%s: Evaluating the model on %s dataset%s:", type(self).__name__, self.name, epoch_text(epoch, steps)
        )
        predicted = model.predict(
            self.sentence_pairs,
            prompt_name=self.prompt_name,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            show_progress_bar=self.show_progress_bar,
        )
        pearson, _ = pearsonr(self.scores, predicted)
        spearman, _ = spearmanr(self.scores, predicted)
        logger.info("Correlation:\tPearson: %.4f\tSpearman: %.4f", pearson, spearman)
        if output_path is not None and self.write_csv:
            append_csv_row(output_path, self.csv_file, self.csv_headers, [epoch, steps, pearson, spearman])
        metrics = self.prefix_name_to_metrics({"pearson": pearson, "spearman": spearman}, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics
