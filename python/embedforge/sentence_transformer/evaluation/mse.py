"""Distillation check: mean squared error between teacher and student embeddings."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from embedforge.base.evaluation.evaluator import BaseEvaluator, append_csv_row, check_same_length, epoch_text

logger = logging.getLogger(__name__)


class MSEEvaluator(BaseEvaluator):
    """MSE (x100) between the teacher's embeddings of ``source_sentences`` and the model's of ``target_sentences``.

    The teacher embeddings are computed once, in the constructor. The metric is ``negative_mse`` so
    that higher is better.
    """

    def __init__(
        self,
        source_sentences: list[str],
        target_sentences: list[str],
        teacher_model: Any = None,
        show_progress_bar: bool = False,
        batch_size: int = 32,
        name: str = "",
        write_csv: bool = True,
        truncate_dim: int | None = None,
    ) -> None:
        super().__init__()
        check_same_length(source_sentences=source_sentences, target_sentences=target_sentences)
        self.truncate_dim = truncate_dim
        self.target_sentences = target_sentences
        self.show_progress_bar = show_progress_bar
        self.batch_size = batch_size
        self.name = name
        # No separator is dropped for an empty name: the file is then "mse_evaluation__results.csv".
        self.csv_file = "mse_evaluation_" + name + "_results.csv"
        self.csv_headers = ["epoch", "steps", "MSE"]
        self.write_csv = write_csv
        self.primary_metric = "negative_mse"
        self.source_embeddings = self.embed_inputs(teacher_model, source_sentences)

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """``negative_mse``: minus 100 x the mean squared difference."""
        target_embeddings = self.embed_inputs(model, self.target_sentences)
        mse = (((self.source_embeddings - target_embeddings) ** 2).mean() * 100).item()
        logger.info(
            f"MSE evaluation (lower = better) on the {self.name} dataset{epoch_text(epoch, steps, self.truncate_dim)}:"
        )
        logger.info(f"MSE (*100):\t{mse:4f}")
        if output_path is not None and self.write_csv:
            append_csv_row(output_path, self.csv_file, self.csv_headers, [epoch, steps, mse])
        metrics = self.prefix_name_to_metrics({"negative_mse": -mse}, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

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

    @property
    def description(self) -> str:
        """Shown in model cards."""
        return "Knowledge Distillation"

    def get_config_dict(self) -> dict[str, Any]:
        """``truncate_dim`` when set."""
        return {"truncate_dim": self.truncate_dim} if self.truncate_dim is not None else {}
