"""NanoBEIR: retrieval metrics on several small BEIR datasets at once, per dataset and aggregated.

sentence-transformers downloads NanoBEIR from the Hugging Face hub; embedforge never reaches a
network, so each dataset is read from a local BEIR-format folder (``corpus.jsonl``,
``queries.jsonl``, ``qrels/test.tsv``). The folders are found through ``data_dir`` (a folder
holding one subfolder per dataset, or a mapping from dataset name to folder), else the
``EMBEDFORGE_NANOBEIR_DIR`` environment variable, else ``dataset_id`` when it is a local folder.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from torch import Tensor
from tqdm import tqdm

from embedforge.base.evaluation.beir import (
    DATA_DIR_ENV,
    DATASET_NAME_TO_HUMAN_READABLE,
    DatasetNameType,
    find_dataset_folder,
    load_beir_folder,
    validate_dataset_names,
)
from embedforge.base.evaluation.evaluator import BaseEvaluator, epoch_text
from embedforge.exceptions import InvalidArgumentError
from embedforge.util.similarity import SimilarityFunction

from .information_retrieval import InformationRetrievalEvaluator, RetrievalCsvColumns

logger = logging.getLogger(__name__)


class NanoBEIREvaluator(RetrievalCsvColumns, BaseEvaluator):
    """An InformationRetrievalEvaluator per NanoBEIR dataset, plus their metrics aggregated (mean by default).

    Keys are ``Nano{Dataset}_{score_fn}_{metric}@{k}`` per dataset and
    ``NanoBEIR_{aggregate_key}_{score_fn}_{metric}@{k}`` aggregated; the primary metric is the
    aggregated ``ndcg@{max(ndcg_at_k)}``. Relevance judgements with score 0 are not relevant.
    """

    information_retrieval_class = InformationRetrievalEvaluator

    def __init__(
        self,
        dataset_names: list[DatasetNameType | str] | None = None,
        dataset_id: str = "sentence-transformers/NanoBEIR-en",
        mrr_at_k: list[int] = [10],  # noqa: B006 - sentence-transformers' signature; never mutated
        ndcg_at_k: list[int] = [10],  # noqa: B006
        accuracy_at_k: list[int] = [1, 3, 5, 10],  # noqa: B006
        precision_recall_at_k: list[int] = [1, 3, 5, 10],  # noqa: B006
        map_at_k: list[int] = [100],  # noqa: B006
        show_progress_bar: bool = False,
        batch_size: int = 32,
        write_csv: bool = True,
        truncate_dim: int | None = None,
        score_functions: dict[str, Callable[[Tensor, Tensor], Tensor]] | None = None,
        main_score_function: str | SimilarityFunction | None = None,
        aggregate_fn: Callable[[list[float]], float] = np.mean,
        aggregate_key: str = "mean",
        query_prompts: str | dict[str, str] | None = None,
        corpus_prompts: str | dict[str, str] | None = None,
        write_predictions: bool = False,
        data_dir: str | os.PathLike[str] | Mapping[str, str | os.PathLike[str]] | None = None,
    ) -> None:
        super().__init__()
        if dataset_names is None:
            dataset_names = list(DATASET_NAME_TO_HUMAN_READABLE)
        self.dataset_names = list(dataset_names)
        self.dataset_id = dataset_id
        self.data_dir = data_dir
        self.aggregate_fn = aggregate_fn
        self.aggregate_key = aggregate_key
        self.write_csv = write_csv
        self.query_prompts: dict[str, str] | None = None
        self.corpus_prompts: dict[str, str] | None = None
        self.show_progress_bar = show_progress_bar
        self.score_functions = score_functions
        self.score_function_names = sorted(score_functions) if score_functions else []
        # Without explicit functions each call uses the evaluated model's own similarity.
        self._score_functions_from_model = score_functions is None
        self.main_score_function = SimilarityFunction(main_score_function) if main_score_function else None
        self.truncate_dim = truncate_dim
        self.name = f"NanoBEIR_{aggregate_key}"
        if truncate_dim:
            self.name += f"_{truncate_dim}"
        self.mrr_at_k = mrr_at_k
        self.ndcg_at_k = ndcg_at_k
        self.accuracy_at_k = accuracy_at_k
        self.precision_recall_at_k = precision_recall_at_k
        self.map_at_k = map_at_k

        self._validate_dataset_names()
        self.query_prompts = self._prompts_per_dataset("query_prompts", query_prompts)
        self.corpus_prompts = self._prompts_per_dataset("corpus_prompts", corpus_prompts)

        ir_kwargs: dict[str, Any] = {
            "mrr_at_k": mrr_at_k,
            "ndcg_at_k": ndcg_at_k,
            "accuracy_at_k": accuracy_at_k,
            "precision_recall_at_k": precision_recall_at_k,
            "map_at_k": map_at_k,
            "show_progress_bar": show_progress_bar,
            "batch_size": batch_size,
            "write_csv": write_csv,
            "truncate_dim": truncate_dim,
            "score_functions": score_functions,
            "main_score_function": main_score_function,
            "write_predictions": write_predictions,
        }
        self.evaluators = [
            self._load_dataset(name, **ir_kwargs)
            for name in tqdm(self.dataset_names, desc="Loading NanoBEIR datasets", leave=False)
        ]

        self.csv_file: str = f"NanoBEIR_evaluation_{aggregate_key}_results.csv"
        self.csv_headers = ["epoch", "steps"]
        self._append_csv_headers(self.score_function_names)

    def __call__(
        self,
        model: Any,
        output_path: str | None = None,
        epoch: int = -1,
        steps: int = -1,
        *args: Any,
        **kwargs: Any,
    ) -> dict[str, float]:
        """Evaluate ``model`` on every dataset; return the per-dataset metrics and their aggregates."""
        logger.info(
            f"NanoBEIR Evaluation of the model on {self.dataset_names} dataset{epoch_text(epoch, steps, self.truncate_dim)}:"
        )
        # The same choice the per-dataset evaluators make, so aggregate and per-dataset labels agree.
        headers_changed = self._adopt_model_score_function(model)

        per_dataset: dict[str, float] = {}
        per_metric: dict[str, list[float]] = {}
        for evaluator in tqdm(self.evaluators, desc="Evaluating datasets", disable=not self.show_progress_bar):
            logger.info(f"Evaluating {evaluator.name}")
            results = evaluator(model, output_path, epoch, steps)
            prefix = evaluator.name + "_"
            for key, value in results.items():
                per_dataset[key] = value
                metric = key.removeprefix(prefix)
                per_metric.setdefault(metric, []).append(value)
        aggregated = {metric: self.aggregate_fn(values) for metric, values in per_metric.items()}

        if output_path is not None and self.write_csv:
            self._write_csv_row(
                lambda fn, metric, k: aggregated[f"{fn}_{metric}@{k}"], output_path, epoch, steps, headers_changed
            )

        if not self.primary_metric:
            top_k = max(self.ndcg_at_k)
            if self.main_score_function is None:
                best = max(self.score_function_names, key=lambda fn: aggregated[f"{fn}_ndcg@{top_k}"])
            else:
                best = self.main_score_function.value
            self.primary_metric = f"{best}_ndcg@{top_k}"

        logger.info(f"Average Queries: {np.mean([len(e.queries) for e in self.evaluators])}")
        logger.info(f"Average Corpus: {np.mean([len(e.corpus) for e in self.evaluators])}\n")
        for fn in self.score_function_names:
            logger.info(f"Aggregated for Score Function: {fn}")
            for k in self.accuracy_at_k:
                logger.info(f"Accuracy@{k}: {aggregated[f'{fn}_accuracy@{k}'] * 100:.2f}%")
            for k in self.precision_recall_at_k:
                logger.info(f"Precision@{k}: {aggregated[f'{fn}_precision@{k}'] * 100:.2f}%")
                logger.info(f"Recall@{k}: {aggregated[f'{fn}_recall@{k}'] * 100:.2f}%")
            for k in self.mrr_at_k:
                logger.info(f"MRR@{k}: {aggregated[f'{fn}_mrr@{k}']:.4f}")
            for k in self.ndcg_at_k:
                logger.info(f"NDCG@{k}: {aggregated[f'{fn}_ndcg@{k}']:.4f}")
            for k in self.map_at_k:
                logger.info(f"MAP@{k}: {aggregated[f'{fn}_map@{k}']:.4f}")

        aggregated = self.prefix_name_to_metrics(aggregated, self.name)
        self.store_metrics_in_model_card_data(model, aggregated, epoch, steps)
        per_dataset.update(aggregated)
        return per_dataset

    # -- datasets ------------------------------------------------------------------------------------

    def _get_human_readable_name(self, dataset_name: str) -> str:
        name = f"Nano{DATASET_NAME_TO_HUMAN_READABLE[dataset_name.lower()]}"
        if self.truncate_dim is not None:
            name += f"_{self.truncate_dim}"
        return name

    def _load_dataset(self, dataset_name: str, **ir_kwargs: Any) -> InformationRetrievalEvaluator:
        """An IR evaluator over one dataset's local BEIR folder."""
        folder = self._dataset_folder(dataset_name)
        corpus, queries, relevant_docs = load_beir_folder(folder)
        if self.query_prompts is not None:
            ir_kwargs["query_prompt"] = self.query_prompts.get(dataset_name)
        if self.corpus_prompts is not None:
            ir_kwargs["corpus_prompt"] = self.corpus_prompts.get(dataset_name)
        return self.information_retrieval_class(
            queries=queries,
            corpus=corpus,
            relevant_docs=relevant_docs,
            name=self._get_human_readable_name(dataset_name),
            **ir_kwargs,
        )

    def _dataset_folder(self, dataset_name: str) -> str:
        """The local folder of ``dataset_name``, or an error naming every place that was looked at."""
        return find_dataset_folder(dataset_name, self.data_dir, self.dataset_id)

    def _validate_dataset_names(self) -> None:
        validate_dataset_names(self.dataset_names)

    def _prompts_per_dataset(self, argument: str, prompts: str | dict[str, str] | None) -> dict[str, str] | None:
        """One prompt for every dataset from a string; a dict must name every dataset."""
        if prompts is None:
            return None
        if isinstance(prompts, str):
            return {name: prompts for name in self.dataset_names}
        missing = [name for name in self.dataset_names if name not in prompts]
        if missing:
            raise InvalidArgumentError(f"invalid value for `{argument}`: no prompt for the datasets {missing}")
        return dict(prompts)

    def store_metrics_in_model_card_data(self, *args: Any, **kwargs: Any) -> None:
        """Record the aggregate only for several datasets (for one it would duplicate that dataset's metrics)."""
        if len(self.dataset_names) > 1:
            super().store_metrics_in_model_card_data(*args, **kwargs)

    def get_config_dict(self) -> dict[str, Any]:
        """Datasets, and the non-default truncation and prompts."""
        config: dict[str, Any] = {"dataset_names": self.dataset_names, "dataset_id": self.dataset_id}
        for key in ("truncate_dim", "query_prompts", "corpus_prompts"):
            if getattr(self, key) is not None:
                config[key] = getattr(self, key)
        return config


__all__ = ["DATASET_NAME_TO_HUMAN_READABLE", "DATA_DIR_ENV", "NanoBEIREvaluator", "load_beir_folder"]
