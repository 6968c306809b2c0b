"""Distillation check over several (source, target) language columns of a table."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from embedforge.base.evaluation.evaluator import BaseEvaluator, append_csv_row

logger = logging.getLogger(__name__)


class MSEEvaluatorFromDataFrame(BaseEvaluator):
    """MSE (x100) between teacher embeddings of column ``src`` and model embeddings of column ``trg``.

    ``dataframe`` is a list of row dicts; rows where either column is blank are skipped per
    combination. The metric ``negative_mse`` is minus the mean over ``combinations``.
    """

    def __init__(
        self,
        dataframe: list[dict[str, str]],
        teacher_model: Any,
        combinations: list[tuple[str, str]],
        batch_size: int = 8,
        name: str = "",
        write_csv: bool = True,
        truncate_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.combinations = combinations
        self.name = name
        self.batch_size = batch_size
        self.csv_file = "mse_evaluation" + ("_" + name if name else "") + "_results.csv"
        self.csv_headers = ["epoch", "steps"]
        self.primary_metric = "negative_mse"
        self.write_csv = write_csv
        self.truncate_dim = truncate_dim
        self.data: dict[tuple[str, str], tuple[list[str], list[str]]] = {}

        logger.info("Compute teacher embeddings")
        all_sources: set[str] = set()
        for src_lang, trg_lang in combinations:
            sources: list[str] = []
            targets: list[str] = []
            for row in dataframe:
                if row[src_lang].strip() != "" and row[trg_lang].strip() != "":
                    all_sources.add(row[src_lang])
                    sources.append(row[src_lang])
                    targets.append(row[trg_lang])
            self.data[(src_lang, trg_lang)] = (sources, targets)
            self.csv_headers.append(f"{src_lang}-{trg_lang}")
        unique_sources = list(all_sources)
        embedded = self.embed_inputs(teacher_model, unique_sources)
        self.teacher_embeddings = dict(zip(unique_sources, embedded))

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """``negative_mse``: minus the mean over combinations of 100 x the mean squared difference."""
        model.eval()
        mse_scores = []
        for src_lang, trg_lang in self.combinations:
            sources, targets = self.data[(src_lang, trg_lang)]
            teacher = np.asarray([self.teacher_embeddings[sentence] for sentence in sources])
            student = np.asarray(self.embed_inputs(model, targets))
            mse = ((teacher - student) ** 2).mean() * 100
            mse_scores.append(mse)
            logger.info(f"MSE evaluation on {self.name} dataset - {src_lang}-{trg_lang}:")
            logger.info(f"MSE (*100):\t{mse:4f}")
        if output_path is not None and self.write_csv:
            append_csv_row(output_path, self.csv_file, self.csv_headers, [epoch, steps, *mse_scores])
        metrics = self.prefix_name_to_metrics({"negative_mse": -np.mean(mse_scores).item()}, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def embed_inputs(self, model: Any, sentences: Any, **kwargs: Any) -> np.ndarray:
        """Embed with this evaluator's batch size and truncation, as a numpy array."""
        return model.encode(
            sentences,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            truncate_dim=self.truncate_dim,
            **kwargs,
        )

    @property
    def description(self) -> str:
        """Shown in model cards."""
        return "Knowledge Distillation"
