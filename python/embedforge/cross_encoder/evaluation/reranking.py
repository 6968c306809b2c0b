"""CrossEncoderRerankingEvaluator: MAP, MRR@k and NDCG@k of a CrossEncoder reranking candidate lists."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from embedforge.base.evaluation.evaluator import BaseEvaluator, append_csv_row, epoch_text
from embedforge.base.evaluation.metrics import average_precision, ndcg_at_k
from embedforge.exceptions import InvalidArgumentError

logger = logging.getLogger(__name__)


class CrossEncoderRerankingEvaluator(BaseEvaluator):
    """Rerank each sample's documents with ``model.predict`` and score the ranking.

    Each sample has a ``query``, its ``positive`` text(s) and either ``negative`` texts or a
    retrieved ``documents`` list. With ``documents``, the retriever's own order is scored too
    (``base_*`` metrics), and ``always_rerank_positives`` adds positives the retriever missed to
    the reranked list. Samples without any relevant candidate score 0. Primary metric: ``ndcg@{at_k}``.
    """

    def __init__(
        self,
        samples: list[dict[str, Any]] | dict[Any, dict[str, Any]],
        at_k: int = 10,
        always_rerank_positives: bool = True,
        name: str = "",
        prompt_name: str | None = None,
        batch_size: int = 64,
        show_progress_bar: bool = False,
        write_csv: bool = True,
        mrr_at_k: int | None = None,
    ) -> None:
        super().__init__()
        if mrr_at_k is not None:
            logger.warning("mrr_at_k is deprecated; use at_k=%d instead", mrr_at_k)
            at_k = mrr_at_k
        self.samples = list(samples.values()) if isinstance(samples, dict) else samples
        self.at_k = at_k
        self.always_rerank_positives = always_rerank_positives
        self.name = name
        self.prompt_name = prompt_name
        self.batch_size = batch_size
        self.show_progress_bar = show_progress_bar
        self.write_csv = write_csv
        self.csv_file = "CrossEncoderRerankingEvaluator" + (f"_{name}" if name else "") + f"_results_@{at_k}.csv"
        self.csv_headers = ["epoch", "steps", "MAP", f"MRR@{at_k}", f"NDCG@{at_k}"]
        self.primary_metric = f"ndcg@{at_k}"

    def _candidates(self, index: int, sample: dict[str, Any]) -> tuple[str, list[str], list[int], tuple | None]:
        """(query, documents to rerank, their relevance, the retriever's own metrics or None)."""
        if "query" not in sample or "positive" not in sample:
            raise InvalidArgumentError(f"samples[{index}] needs 'query' and 'positive' keys; it has {sorted(sample)}")
        if ("negative" in sample) == ("documents" in sample):
            raise InvalidArgumentError(f"samples[{index}] needs exactly one of 'negative' and 'documents'")
        positives = sample["positive"]
        positives = [positives] if isinstance(positives, str) else list(positives)
        documents = sample.get("documents")
        if documents is None:
            docs = positives + list(sample["negative"])
            return sample["query"], docs, [1] * len(positives) + [0] * (len(docs) - len(positives)), None
        base = None
        if documents:
            found = [int(document in positives) for document in documents]
            if sum(found) == 0:
                base = (0.0, 0.0, 0.0)
            else:
                # Positives the retriever missed count as ranked after all it returned.
                relevant = found + [1] * (len(positives) - sum(found))
                base = self.compute_metrics(relevant, np.arange(len(relevant), 0, -1))
        if self.always_rerank_positives:
            docs = positives + [document for document in documents if document not in positives]
            return sample["query"], docs, [1] * len(positives) + [0] * (len(docs) - len(positives)), base
        return sample["query"], list(documents), [int(document in positives) for document in documents], base

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Rerank every sample with one batched ``predict`` call; metrics prefixed with ``name``."""
        logger.info(
            "%s: Evaluating the model on the %s dataset%s:", type(self).__name__, self.name, epoch_text(epoch, steps)
        )
        pairs: list[tuple[str, str]] = []
        plans: list[list[int] | None] = []
        base_rows = []
        for index, sample in enumerate(self.samples):
            query, docs, relevant, base = self._candidates(index, sample)
            if base is not None:
                base_rows.append(base)
            if sum(relevant) == 0:
                plans.append(None)
                continue
            plans.append(relevant)
            pairs.extend((query, document) for document in docs)
        scores = (
            model.predict(
                pairs,
                prompt_name=self.prompt_name,
                batch_size=self.batch_size,
                convert_to_numpy=True,
                show_progress_bar=self.show_progress_bar,
            )
            if pairs
            else np.array([])
        )
        rows, offset = [], 0
        for plan in plans:
            if plan is None:
                rows.append((0.0, 0.0, 0.0))
                continue
            rows.append(self.compute_metrics(plan, scores[offset : offset + len(plan)]))
            offset += len(plan)
        mrr, ndcg, ap = (float(np.mean([row[i] for row in rows])) for i in range(3))
        metrics = {"map": ap, f"mrr@{self.at_k}": mrr, f"ndcg@{self.at_k}": ndcg}
        logger.info("MAP: %.2f  MRR@%d: %.2f  NDCG@%d: %.2f", ap * 100, self.at_k, mrr * 100, self.at_k, ndcg * 100)
        if base_rows:
            base_mrr, base_ndcg, base_ap = (float(np.mean([row[i] for row in base_rows])) for i in range(3))
            # The model card shows each reranked metric with its change over the retriever's order.
            card = {
                "map": f"{ap:.4f} ({ap - base_ap:+.4f})",
                f"mrr@{self.at_k}": f"{mrr:.4f} ({mrr - base_mrr:+.4f})",
                f"ndcg@{self.at_k}": f"{ndcg:.4f} ({ndcg - base_ndcg:+.4f})",
            }
            self.store_metrics_in_model_card_data(model, self.prefix_name_to_metrics(card, self.name), epoch, steps)
            metrics.update(
                {"base_map": base_ap, f"base_mrr@{self.at_k}": base_mrr, f"base_ndcg@{self.at_k}": base_ndcg}
            )
            metrics = self.prefix_name_to_metrics(metrics, self.name)
        else:
            metrics = self.prefix_name_to_metrics(metrics, self.name)
            self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        if output_path is not None and self.write_csv:
            append_csv_row(output_path, self.csv_file, self.csv_headers, [epoch, steps, ap, mrr, ndcg])
        return metrics

    def compute_metrics(self, relevant: list[int], scores: Any) -> tuple[float, float, float]:
        """(MRR@k, NDCG@k, AP) of ranking by ``scores`` against 0/1 ``relevant``."""
        scores = np.asarray(scores)
        # The same (unstable) descending order as sentence-transformers, so ties break alike.
        ranking = np.argsort(scores)[::-1][: self.at_k]
        mrr = next((1.0 / (rank + 1) for rank, index in enumerate(ranking) if relevant[index]), 0.0)
        truth = np.asarray(relevant, dtype=np.float64)
        widened = scores.astype(np.float64)
        return mrr, ndcg_at_k(truth, widened, self.at_k), average_precision(truth, widened)

    def get_config_dict(self) -> dict[str, Any]:
        """``at_k`` (and ``always_rerank_positives`` when samples carry ``documents``)."""
        config: dict[str, Any] = {"at_k": self.at_k}
        if self.samples and "documents" in self.samples[0]:
            config["always_rerank_positives"] = self.always_rerank_positives
        return config
