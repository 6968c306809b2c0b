"""Paraphrase mining quality: mine the most similar pairs of a text collection and score them against gold duplicates."""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from embedforge.base.evaluation.evaluator import BaseEvaluator, append_csv_row, epoch_text
from embedforge.util.paraphrase import paraphrase_mining

logger = logging.getLogger(__name__)


def _duplicate_table() -> defaultdict[str, defaultdict[str, bool]]:
    """An empty ``table[id1][id2] -> bool`` whose missing entries read as False."""
    return defaultdict(lambda: defaultdict(bool))


class ParaphraseMiningEvaluator(BaseEvaluator):
    """Average precision, and precision/recall/F1 at the best threshold, of mined paraphrase pairs.

    ``sentences_map`` maps ids to texts; gold duplicates come from ``duplicates_list`` (id pairs)
    and/or ``duplicates_dict`` (``[id1][id2] -> True``). The primary metric is ``average_precision``.
    """

    def __init__(
        self,
        sentences_map: dict[str, str],
        duplicates_list: list[tuple[str, str]] | None = None,
        duplicates_dict: dict[str, dict[str, bool]] | None = None,
        add_transitive_closure: bool = False,
        query_chunk_size: int = 5000,
        corpus_chunk_size: int = 100000,
        max_pairs: int = 500000,
        top_k: int = 100,
        show_progress_bar: bool = False,
        batch_size: int = 16,
        name: str = "",
        write_csv: bool = True,
        truncate_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.ids = list(sentences_map)
        self.sentences = [sentences_map[sentence_id] for sentence_id in self.ids]
        self.name = name
        self.show_progress_bar = show_progress_bar
        self.batch_size = batch_size
        self.query_chunk_size = query_chunk_size
        self.corpus_chunk_size = corpus_chunk_size
        self.max_pairs = max_pairs
        self.top_k = top_k
        self.truncate_dim = truncate_dim
        # `add_transitive_closure` is also the name of the static method below, so the flag lives here.
        self._add_transitive_closure = add_transitive_closure

        self.duplicates: Any = duplicates_dict if duplicates_dict is not None else _duplicate_table()
        for id1, id2 in duplicates_list or []:
            # Pairs naming an id outside sentences_map cannot be mined, so they are not gold pairs.
            if id1 in sentences_map and id2 in sentences_map:
                self.duplicates[id1][id2] = True
                self.duplicates[id2][id1] = True
        if add_transitive_closure:
            self.duplicates = self.add_transitive_closure(self.duplicates)

        gold_pairs = set()
        for id1, row in self.duplicates.items():
            for id2 in row:
                if id1 in sentences_map and id2 in sentences_map and self._is_duplicate(id1, id2):
                    gold_pairs.add((id1, id2) if id1 <= id2 else (id2, id1))
        self.total_num_duplicates = len(gold_pairs)

        suffix = "_" + name if name else ""
        self.csv_file: str = "paraphrase_mining_evaluation" + suffix + "_results.csv"
        self.csv_headers = ["epoch", "steps", "precision", "recall", "f1", "threshold", "average_precision"]
        self.write_csv = write_csv
        self.primary_metric = "average_precision"

    def _is_duplicate(self, id1: str, id2: str) -> bool:
        """Whether either direction of the pair is marked as a duplicate (a plain dict may be lopsided)."""
        return bool(self.duplicates.get(id1, {}).get(id2, False) or self.duplicates.get(id2, {}).get(id1, False))

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Mine pairs with ``model`` and return ``{name}_average_precision``, ``_f1``, ``_precision``, ``_recall``, ``_threshold``."""
        logger.info(
            f"Paraphrase Mining Evaluation of the model on the {self.name} dataset"
            f"{epoch_text(epoch, steps, self.truncate_dim)}:"
        )
        pairs = paraphrase_mining(
            model,
            self.sentences,
            show_progress_bar=self.show_progress_bar,
            batch_size=self.batch_size,
            query_chunk_size=self.query_chunk_size,
            corpus_chunk_size=self.corpus_chunk_size,
            max_pairs=self.max_pairs,
            top_k=self.top_k,
            truncate_dim=self.truncate_dim,
        )
        logger.info(f"Number of candidate pairs: {len(pairs)}")
        scores = self._score_pairs(pairs)

        logger.info(f"Average Precision: {scores['average_precision'] * 100:.2f}")
        logger.info(f"Optimal threshold: {scores['threshold']:.4f}")
        logger.info(f"Precision: {scores['precision'] * 100:.2f}")
        logger.info(f"Recall: {scores['recall'] * 100:.2f}")
        logger.info(f"F1: {scores['f1'] * 100:.2f}\n")

        if output_path is not None and self.write_csv:
            row = [epoch, steps] + [
                scores[key] for key in ("precision", "recall", "f1", "threshold", "average_precision")
            ]
            append_csv_row(output_path, self.csv_file, self.csv_headers, row)

        metrics = self.prefix_name_to_metrics(scores, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def _score_pairs(self, pairs: list[list[float | int]]) -> dict[str, float]:
        """Walk the pairs best first; pairs tied on score are judged together, as one threshold step."""
        extracted = correct = correct_before = 0
        best_f1 = best_precision = best_recall = threshold = 0.0
        average_precision = 0.0
        total = self.total_num_duplicates
        for position, (score, i, j) in enumerate(pairs):
            extracted += 1
            if self._is_duplicate(self.ids[int(i)], self.ids[int(j)]):
                correct += 1
            if position + 1 < len(pairs) and pairs[position + 1][0] == score:
                continue
            if correct > correct_before:
                precision = correct / extracted
                recall = correct / total if total > 0 else 0.0
                f1 = 2 * precision * recall / (precision + recall)
                average_precision += precision * (correct - correct_before)
                if f1 > best_f1:
                    best_f1, best_precision, best_recall = f1, precision, recall
                    # Midway between this score and the next one down (or this score, at the end).
                    following = pairs[min(position + 1, len(pairs) - 1)][0]
                    threshold = (float(score) + float(following)) / 2
            correct_before = correct
        return {
            "average_precision": average_precision / total if total > 0 else 0.0,
            "f1": best_f1,
            "precision": best_precision,
            "recall": best_recall,
            "threshold": threshold,
        }

    @staticmethod
    def add_transitive_closure(graph: Any) -> Any:
        """Mark every two ids connected through duplicate links as duplicates (in place; returns ``graph``)."""
        visited: set[Any] = set()
        for start in list(graph.keys()):
            if start in visited:
                continue
            component = {start}
            queue = [node for node, is_dup in graph[start].items() if is_dup]
            while queue:
                node = queue.pop(0)
                if node not in component:
                    component.add(node)
                    queue.extend(other for other, is_dup in graph[node].items() if is_dup)
            members = list(component)
            # Lone ids get no entries (and stay unvisited), as in sentence-transformers.
            for a_index in range(len(members) - 1):
                for b_index in range(a_index + 1, len(members)):
                    a, b = members[a_index], members[b_index]
                    graph[a][b] = True
                    graph[b][a] = True
                    visited.add(a)
                    visited.add(b)
        return graph

    def get_config_dict(self) -> dict[str, Any]:
        """Settings worth recording in a model card."""
        config: dict[str, Any] = {
            "add_transitive_closure": self._add_transitive_closure,
            "max_pairs": self.max_pairs,
            "top_k": self.top_k,
        }
        if self.truncate_dim is not None:
            config["truncate_dim"] = self.truncate_dim
        return config
