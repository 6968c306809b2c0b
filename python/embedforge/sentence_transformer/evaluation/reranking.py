"""Reranking quality: order each query's positives and negatives by similarity and score the order."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import tqdm
from torch import Tensor

from embedforge.base.evaluation.evaluator import BaseEvaluator, append_csv_row, encode_method, epoch_text
from embedforge.base.evaluation.metrics import average_precision, ndcg_at_k
from embedforge.util import cos_sim

logger = logging.getLogger(__name__)


class RerankingEvaluator(BaseEvaluator):
    """MAP, MRR@k and NDCG@k of ranking each sample's positives above its negatives.

    ``samples`` holds dicts with ``query``, ``positive`` and ``negative`` (a text or a list of
    texts); samples without positives or without negatives are skipped. Primary metric: ``ndcg@{at_k}``.
    """

    def __init__(
        self,
        samples: list[dict[str, Any]],
        at_k: int = 10,
        name: str = "",
        write_csv: bool = True,
        similarity_fct: Callable[[Tensor, Tensor], Tensor] = cos_sim,
        batch_size: int = 64,
        show_progress_bar: bool = False,
        use_batched_encoding: bool = True,
        truncate_dim: int | None = None,
        mrr_at_k: int | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        if mrr_at_k is not None:
            logger.warning(f"The `mrr_at_k` parameter has been deprecated; please use `at_k={mrr_at_k}` instead.")
            self.at_k = mrr_at_k
        else:
            self.at_k = at_k
        self.similarity_fct = similarity_fct
        self.batch_size = batch_size
        self.show_progress_bar = show_progress_bar
        self.use_batched_encoding = use_batched_encoding
        self.truncate_dim = truncate_dim

        rows = list(samples.values()) if isinstance(samples, dict) else samples
        as_list = [
            {
                **sample,
                "positive": [sample["positive"]] if isinstance(sample["positive"], str) else sample["positive"],
                "negative": [sample["negative"]] if isinstance(sample["negative"], str) else sample["negative"],
            }
            for sample in rows
        ]
        self.samples = [s for s in as_list if len(s["positive"]) > 0 and len(s["negative"]) > 0]

        self.csv_file = "RerankingEvaluator" + ("_" + name if name else "") + f"_results_@{self.at_k}.csv"
        self.csv_headers = ["epoch", "steps", "MAP", f"MRR@{self.at_k}", f"NDCG@{self.at_k}"]
        self.write_csv = write_csv
        self.primary_metric = f"ndcg@{self.at_k}"

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Embed and rank every sample with ``model``; returns ``map``, ``mrr@k`` and ``ndcg@k``."""
        logger.info(
            f"RerankingEvaluator: Evaluating the model on the {self.name} dataset"
            f"{epoch_text(epoch, steps, self.truncate_dim)}:"
        )
        scores = self.compute_metrics(model)
        mean_ap, mean_mrr, mean_ndcg = scores["map"], scores["mrr"], scores["ndcg"]
        logger.info(f"Queries: {len(self.samples)}")
        logger.info(f"MAP: {mean_ap * 100:.2f}")
        logger.info(f"MRR@{self.at_k}: {mean_mrr * 100:.2f}")
        logger.info(f"NDCG@{self.at_k}: {mean_ndcg * 100:.2f}")
        if output_path is not None and self.write_csv:
            append_csv_row(output_path, self.csv_file, self.csv_headers, [epoch, steps, mean_ap, mean_mrr, mean_ndcg])
        metrics = {"map": mean_ap, f"mrr@{self.at_k}": mean_mrr, f"ndcg@{self.at_k}": mean_ndcg}
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def compute_metrics(self, model: Any) -> dict[str, float]:
        """Mean AP, MRR@k and NDCG@k over the samples."""
        if self.use_batched_encoding:
            return self.compute_metrics_batched(model)
        return self.compute_metrics_individual(model)

    def _score_sample(self, query_emb: Tensor, docs_emb: Tensor, num_pos: int) -> tuple[float, float, float]:
        scores = self.similarity_fct(query_emb, docs_emb)
        if scores.dim() > 1:
            scores = scores[0]
        values = scores.detach().cpu().double().numpy()
        relevant = np.zeros(values.size)
        relevant[:num_pos] = 1.0
        order = torch.argsort(-scores)[: self.at_k].tolist()
        mrr = next((1.0 / (rank + 1) for rank, i in enumerate(order) if i < num_pos), 0.0)
        # The float32 scores, widened exactly, decide ties the same way as the reference.
        return average_precision(relevant, values), mrr, ndcg_at_k(relevant, values, self.at_k)

    def _mean(self, per_sample: list[tuple[float, float, float]]) -> dict[str, float]:
        ap, mrr, ndcg = (np.mean([row[i] for row in per_sample]) for i in range(3))
        return {"map": float(ap), "mrr": float(mrr), "ndcg": float(ndcg)}

    def compute_metrics_batched(self, model: Any) -> dict[str, float]:
        """Embed all queries in one call and all documents in another, then score each sample."""
        query_embs = self.embed_inputs(
            model, [s["query"] for s in self.samples], encode_fn_name="query", show_progress_bar=self.show_progress_bar
        )
        docs = [doc for s in self.samples for doc in [*s["positive"], *s["negative"]]]
        docs_embs = self.embed_inputs(model, docs, encode_fn_name="document", show_progress_bar=self.show_progress_bar)
        per_sample = []
        start = 0
        for i, sample in enumerate(self.samples):
            n_pos, n_neg = len(sample["positive"]), len(sample["negative"])
            per_sample.append(self._score_sample(query_embs[i], docs_embs[start : start + n_pos + n_neg], n_pos))
            start += n_pos + n_neg
        return self._mean(per_sample)

    def compute_metrics_individual(self, model: Any) -> dict[str, float]:
        """Embed each sample's query and documents separately, then score it."""
        per_sample = []
        for sample in tqdm.tqdm(self.samples, disable=not self.show_progress_bar, desc="Samples"):
            docs = [*sample["positive"], *sample["negative"]]
            query_emb = self.embed_inputs(model, [sample["query"]], encode_fn_name="query", show_progress_bar=False)
            docs_emb = self.embed_inputs(model, docs, encode_fn_name="document", show_progress_bar=False)
            per_sample.append(self._score_sample(query_emb, docs_emb, len(sample["positive"])))
        return self._mean(per_sample)

    #: Older, misspelt names kept importable.
    compute_metrices = compute_metrics
    compute_metrices_batched = compute_metrics_batched
    compute_metrices_individual = compute_metrics_individual

    def embed_inputs(
        self,
        model: Any,
        sentences: Any,
        encode_fn_name: str | None = None,
        show_progress_bar: bool | None = None,
        **kwargs: Any,
    ) -> Tensor:
        """Embed with ``encode_query``/``encode_document``/``encode`` as a tensor."""
        encode_fn = encode_method(model, encode_fn_name)
        return encode_fn(
            sentences,
            batch_size=self.batch_size,
            show_progress_bar=show_progress_bar,
            convert_to_tensor=True,
            truncate_dim=self.truncate_dim,
            **kwargs,
        )

    def get_config_dict(self) -> dict[str, Any]:
        """``at_k`` and, when set, ``truncate_dim``."""
        config: dict[str, Any] = {"at_k": self.at_k}
        if self.truncate_dim is not None:
            config["truncate_dim"] = self.truncate_dim
        return config
