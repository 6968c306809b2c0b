"""CrossEncoderNanoBEIREvaluator: rerank the BM25 candidates of several small BEIR datasets and aggregate.

Each dataset is a local BEIR-format folder (see :mod:`embedforge.base.evaluation.beir`). The
candidates to rerank come from the folder's ``bm25.jsonl`` when it has one (one JSON object per
line, ``{"query-id": "q1", "corpus-ids": ["d7", "d2", ...]}``, best first: the rows of the hub's
NanoBEIR ``bm25`` subset), otherwise from embedforge's own BM25 over ``title + " " + text``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from tqdm import tqdm

from embedforge.base.evaluation.beir import (
    CANDIDATES_FILE,
    DATA_DIR_ENV,
    DATASET_NAME_TO_HUMAN_READABLE,
    DatasetNameType,
    bm25_candidates,
    find_dataset_folder,
    load_beir_candidates,
    load_beir_folder,
    load_beir_titles,
    validate_dataset_names,
)
from embedforge.base.evaluation.evaluator import BaseEvaluator, append_csv_row, epoch_text
from embedforge.exceptions import InvalidArgumentError

from .reranking import CrossEncoderRerankingEvaluator

logger = logging.getLogger(__name__)

#: Datasets left out when ``dataset_names`` is None: their argument-retrieval task differs from the rest.
EXCLUDED_BY_DEFAULT = ("arguana", "touche2020")


class CrossEncoderNanoBEIREvaluator(BaseEvaluator):
    """A CrossEncoderRerankingEvaluator per NanoBEIR dataset over its top ``rerank_k`` BM25 candidates, aggregated.

    Keys are ``Nano{Dataset}_R{rerank_k}_{metric}`` per dataset and
    ``NanoBEIR_R{rerank_k}_{aggregate_key}_{metric}`` aggregated, for the metrics ``map``,
    ``mrr@{at_k}``, ``ndcg@{at_k}`` and the BM25 order's own ``base_map``, ``base_mrr@{at_k}``,
    ``base_ndcg@{at_k}``; the primary metric is the aggregated ``ndcg@{at_k}``. With
    ``always_rerank_positives`` (the default) every relevant document is reranked, also those BM25
    missed. Queries without a relevant document are not evaluated. Datasets are local folders,
    found through ``data_dir``, the ``EMBEDFORGE_NANOBEIR_DIR`` environment variable or
    ``dataset_id`` when it is a local folder; without ``dataset_names`` every dataset except
    arguana and touche2020 is evaluated.
    """

    def __init__(
        self,
        dataset_names: list[DatasetNameType | str] | None = None,
        dataset_id: str = "sentence-transformers/NanoBEIR-en",
        rerank_k: int = 100,
        at_k: int = 10,
        always_rerank_positives: bool = True,
        prompt_name: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool = False,
        write_csv: bool = True,
        aggregate_fn: Callable[[list[float]], float] = np.mean,
        aggregate_key: str = "mean",
        data_dir: str | os.PathLike[str] | Mapping[str, str | os.PathLike[str]] | None = None,
    ) -> None:
        super().__init__()
        if dataset_names is None:
            dataset_names = [name for name in DATASET_NAME_TO_HUMAN_READABLE if name not in EXCLUDED_BY_DEFAULT]
        _check_positive("rerank_k", rerank_k)
        _check_positive("at_k", at_k)
        self.dataset_names = list(dataset_names)
        self.dataset_id = dataset_id
        self.data_dir = data_dir
        self.rerank_k = rerank_k
        self.at_k = at_k
        self.always_rerank_positives = always_rerank_positives
        self.prompt_name = prompt_name
        self.batch_size = batch_size
        self.show_progress_bar = show_progress_bar
        self.write_csv = write_csv
        self.aggregate_fn = aggregate_fn
        self.aggregate_key = aggregate_key
        self.name = f"NanoBEIR_R{rerank_k:d}_{aggregate_key}"

        validate_dataset_names(self.dataset_names)

        reranking_kwargs: dict[str, Any] = {
            "at_k": at_k,
            "always_rerank_positives": always_rerank_positives,
            "prompt_name": prompt_name,
            "show_progress_bar": show_progress_bar,
            "batch_size": batch_size,
            "write_csv": write_csv,
        }
        self.evaluators = [
            self._load_dataset(name, **reranking_kwargs)
            for name in tqdm(self.dataset_names, desc="Loading NanoBEIR datasets", leave=False)
        ]

        self.csv_file: str = f"NanoBEIR_evaluation_{aggregate_key}_results.csv"
        self.csv_headers = ["epoch", "steps", "MAP", f"MRR@{at_k}", f"NDCG@{at_k}"]
        self.primary_metric = f"ndcg@{at_k}"

    def __call__(
        self,
        model: Any,
        output_path: str | None = None,
        epoch: int = -1,
        steps: int = -1,
        *args: Any,
        **kwargs: Any,
    ) -> dict[str, float]:
        """Rerank every dataset with ``model``; return the per-dataset metrics and their aggregates."""
        logger.info(f"NanoBEIR Evaluation of the model on {self.dataset_names} dataset{epoch_text(epoch, steps)}:")
        per_dataset: dict[str, float] = {}
        per_metric: dict[str, list[float]] = {}
        for evaluator in tqdm(self.evaluators, desc="Evaluating datasets", disable=not self.show_progress_bar):
            logger.info(f"Evaluating {evaluator.name}")
            results = evaluator(model, output_path, epoch, steps)
            prefix = evaluator.name + "_"
            for key, value in results.items():
                per_dataset[key] = value
                per_metric.setdefault(key.removeprefix(prefix), []).append(value)
            logger.info("")
        aggregated = {metric: self.aggregate_fn(values) for metric, values in per_metric.items()}

        k = self.at_k
        if output_path is not None and self.write_csv:
            append_csv_row(
                output_path,
                self.csv_file,
                self.csv_headers,
                [epoch, steps, aggregated["map"], aggregated[f"mrr@{k}"], aggregated[f"ndcg@{k}"]],
            )

        # Every sample carries retrieved documents, so the base metrics exist for each dataset.
        pairs = [("map", "MAP:"), (f"mrr@{k}", f"MRR@{k}:"), (f"ndcg@{k}", f"NDCG@{k}:")]
        width = max(len(label) for _, label in pairs) + 1
        logger.info("CrossEncoderNanoBEIREvaluator: Aggregated Results:")
        logger.info(f"{'':<{width}} Base  -> Reranked")
        for metric, label in pairs:
            logger.info(f"{label:<{width}} {aggregated[f'base_{metric}'] * 100:.2f} -> {aggregated[metric] * 100:.2f}")

        # The model card shows each reranked aggregate with its change over the BM25 order.
        card = {
            metric: f"{aggregated[metric]:.4f} ({aggregated[metric] - aggregated[f'base_{metric}']:+.4f})"
            for metric, _ in pairs
        }
        self.store_metrics_in_model_card_data(model, self.prefix_name_to_metrics(card, self.name), epoch, steps)

        per_dataset.update(self.prefix_name_to_metrics(aggregated, self.name))
        return per_dataset

    # -- datasets ------------------------------------------------------------------------------------

    def _get_human_readable_name(self, dataset_name: DatasetNameType | str) -> str:
        return f"Nano{DATASET_NAME_TO_HUMAN_READABLE[dataset_name.lower()]}_R{self.rerank_k}"

    def _load_dataset(self, dataset_name: str, **reranking_kwargs: Any) -> CrossEncoderRerankingEvaluator:
        """A reranking evaluator over one dataset's local folder and its candidates."""
        folder = find_dataset_folder(dataset_name, self.data_dir, self.dataset_id)
        samples = self.load_samples(folder, self.rerank_k)
        if not samples:
            raise InvalidArgumentError(
                f"NanoBEIR dataset {dataset_name!r} in {folder!r} has no query with a relevant document "
                "(qrels/test.tsv score above 0); expected at least one to evaluate"
            )
        return CrossEncoderRerankingEvaluator(
            samples=samples, name=self._get_human_readable_name(dataset_name), **reranking_kwargs
        )

    @staticmethod
    def load_samples(folder: str | os.PathLike[str], rerank_k: int) -> list[dict[str, Any]]:
        """``{"query", "positive", "documents"}`` samples of a BEIR folder: the top ``rerank_k`` candidates per query.

        Candidates come from the folder's ``bm25.jsonl`` (in its order of queries) when present, else
        from BM25 over the corpus (in the order of ``queries.jsonl``). Positives are listed in corpus
        order; queries without a relevant document are left out.
        """
        folder = os.fspath(folder)
        corpus, queries, relevant = load_beir_folder(folder)
        candidates_path = os.path.join(folder, CANDIDATES_FILE)
        if os.path.isfile(candidates_path):
            candidates = load_beir_candidates(candidates_path)
            _check_candidates(candidates_path, candidates, corpus, queries, relevant)
        else:
            judged = {query_id: text for query_id, text in queries.items() if relevant.get(query_id)}
            candidates = bm25_candidates(corpus, judged, rerank_k, titles=load_beir_titles(folder))
        corpus_rank = {doc_id: rank for rank, doc_id in enumerate(corpus)}

        samples = []
        for query_id, ranked in candidates.items():
            positive_ids = relevant.get(query_id)
            if not positive_ids:
                continue
            missing = sorted(doc_id for doc_id in positive_ids if doc_id not in corpus)
            if missing:
                raise InvalidArgumentError(
                    f"{os.path.join(folder, 'qrels', 'test.tsv')}: query {query_id!r} is judged relevant to "
                    f"{missing[:5]}, which are not documents of corpus.jsonl with a non-empty text"
                )
            positives = [corpus[doc_id] for doc_id in sorted(positive_ids, key=corpus_rank.__getitem__)]
            documents = [corpus[doc_id] for doc_id in ranked[:rerank_k]]
            samples.append({"query": queries[query_id], "positive": positives, "documents": documents})
        skipped = len(candidates) - len(samples)
        if skipped:
            logger.info(f"{folder}: {skipped} queries have no relevant document and are not evaluated")
        return samples

    def get_config_dict(self) -> dict[str, Any]:
        """Datasets, candidate depth, cutoff and whether positives are always reranked."""
        return {
            "dataset_names": self.dataset_names,
            "dataset_id": self.dataset_id,
            "rerank_k": self.rerank_k,
            "at_k": self.at_k,
            "always_rerank_positives": self.always_rerank_positives,
        }


def _check_positive(argument: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidArgumentError(f"invalid value for `{argument}`: {value!r}; expected a positive integer")


def _check_candidates(
    path: str,
    candidates: dict[str, list[str]],
    corpus: dict[str, str],
    queries: dict[str, str],
    relevant: dict[str, set[str]],
) -> None:
    """Every listed query and document must exist; judged queries without a row are reported, not evaluated."""
    unknown_queries = [query_id for query_id in candidates if query_id not in queries]
    if unknown_queries:
        raise InvalidArgumentError(
            f"{path}: the query-ids {unknown_queries[:5]} are not queries of queries.jsonl with a non-empty text"
        )
    for query_id, ranked in candidates.items():
        unknown = [doc_id for doc_id in ranked if doc_id not in corpus]
        if unknown:
            raise InvalidArgumentError(
                f"{path}: query {query_id!r} lists the corpus-ids {unknown[:5]}, which are not documents of "
                "corpus.jsonl with a non-empty text"
            )
    uncovered = [query_id for query_id in queries if relevant.get(query_id) and query_id not in candidates]
    if uncovered:
        logger.warning(
            f"{path} has no candidates for {len(uncovered)} judged queries (e.g. {uncovered[:3]}); "
            "they are not evaluated"
        )


__all__ = ["DATASET_NAME_TO_HUMAN_READABLE", "DATA_DIR_ENV", "CrossEncoderNanoBEIREvaluator"]
