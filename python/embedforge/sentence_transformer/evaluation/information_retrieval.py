"""Retrieval quality of an embedding model: rank a corpus for each query and score the ranking."""

from __future__ import annotations

import bisect
import itertools
import json
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm import trange

from embedforge import _core
from embedforge.base.evaluation.evaluator import BaseEvaluator, encode_method, epoch_text
from embedforge.exceptions import InvalidArgumentError
from embedforge.util.retrieval import _rust_score_name
from embedforge.util.similarity import SimilarityFunction

logger = logging.getLogger(__name__)

# Order of the metric groups in results, CSV columns and logs (as sentence-transformers).
_METRIC_GROUPS = ("accuracy@k", "precision@k", "recall@k", "ndcg@k", "mrr@k", "map@k")

# The similarity names a model may report that the Rust engine scores itself.
_ENGINE_SCORES = ("cosine", "dot", "euclidean", "manhattan")

# Temporary [queries x chunk] matrices (torch scores when the torch score function must rank a
# chunk, see _order_is_fragile; full re-rankings of rows tied at the cutoff) are built this many
# bytes at a time instead of whole: 1,000 queries x 50,000 documents would be 191 MB at once.
_WORKSPACE_BYTES = 32 * 2**20
# Slices are never narrower than this, so every slice stays a large matrix product.
_MIN_SLICE_COLUMNS = 2048
# Column slices of a matrix product are bitwise the full product's columns only when BLAS runs
# its blocked gemm kernel, i.e. for enough query rows; with a handful of queries it may switch to
# matrix-vector kernels whose rounding depends on the width (seen with MKL below ~8 rows). Below
# this many queries the full matrix is small anyway and is built whole, as sentence-transformers does.
_MIN_SLICED_QUERIES = 128


def _check_cutoffs(name: str, values: Sequence[int]) -> None:
    if not values or any(not isinstance(k, int) or isinstance(k, bool) or k < 1 for k in values):
        raise InvalidArgumentError(f"{name}={values!r} is not valid; expected a non-empty list of positive ints")


class RetrievalCsvColumns:
    """CSV columns and the model's own score function, shared by the retrieval evaluators."""

    accuracy_at_k: list[int]
    precision_recall_at_k: list[int]
    mrr_at_k: list[int]
    ndcg_at_k: list[int]
    map_at_k: list[int]
    csv_file: str
    csv_headers: list[str]
    # None until the first call when the model's own similarity is used.
    score_functions: dict[str, Callable[[Tensor, Tensor], Tensor]] | None
    score_function_names: list[str]
    primary_metric: str | None
    _score_functions_from_model: bool

    def _append_csv_headers(self, score_function_names: list[str]) -> None:
        for score_name in score_function_names:
            self.csv_headers += [f"{score_name}-Accuracy@{k}" for k in self.accuracy_at_k]
            for k in self.precision_recall_at_k:
                self.csv_headers += [f"{score_name}-Precision@{k}", f"{score_name}-Recall@{k}"]
            self.csv_headers += [f"{score_name}-MRR@{k}" for k in self.mrr_at_k]
            self.csv_headers += [f"{score_name}-NDCG@{k}" for k in self.ndcg_at_k]
            self.csv_headers += [f"{score_name}-MAP@{k}" for k in self.map_at_k]

    def _adopt_model_score_function(self, model: Any) -> bool:
        """Without explicit score functions, score with the model's similarity; True if the CSV columns changed."""
        if not self._score_functions_from_model:
            return False
        self.score_functions = {model.similarity_fn_name: model.similarity}
        if self.score_function_names == sorted(self.score_functions):
            return False
        changed = bool(self.score_function_names)
        self.score_function_names = sorted(self.score_functions)
        self.csv_headers = ["epoch", "steps"]
        self._append_csv_headers(self.score_function_names)
        self.primary_metric = None
        return changed

    def _write_csv_row(
        self,
        value: Callable[[str, str, int], float],
        output_path: str,
        epoch: int,
        steps: int,
        headers_changed: bool,
    ) -> None:
        """Append one CSV row; ``value(score_function, metric, k)`` gives each cell, in the headers' order."""
        os.makedirs(output_path, exist_ok=True)
        csv_path = os.path.join(output_path, self.csv_file)
        is_new = not os.path.isfile(csv_path)
        if not is_new and headers_changed:
            logger.warning(
                f"{self.csv_file} already has columns for other score functions; the rows for "
                f"{self.score_function_names} are appended under the old headers."
            )
        row: list[Any] = [epoch, steps]
        for fn in self.score_function_names:
            row += [value(fn, "accuracy", k) for k in self.accuracy_at_k]
            for k in self.precision_recall_at_k:
                row += [value(fn, "precision", k), value(fn, "recall", k)]
            row += [value(fn, "mrr", k) for k in self.mrr_at_k]
            row += [value(fn, "ndcg", k) for k in self.ndcg_at_k]
            row += [value(fn, "map", k) for k in self.map_at_k]
        # Written by hand, not with csv.writer: sentence-transformers' files end lines with "\n".
        with open(csv_path, mode="w" if is_new else "a", encoding="utf-8") as f:
            if is_new:
                f.write(",".join(self.csv_headers) + "\n")
            f.write(",".join(map(str, row)) + "\n")


class InformationRetrievalEvaluator(RetrievalCsvColumns, BaseEvaluator):
    """Accuracy, precision, recall, MRR, NDCG and MAP at cutoffs for retrieving ``corpus`` documents.

    Queries without relevant documents are skipped. The corpus is embedded and searched in chunks
    of ``corpus_chunk_size``; results rank by score, ties by ascending corpus id. The primary
    metric is ``{score_function}_ndcg@{max(ndcg_at_k)}``.
    """

    def __init__(
        self,
        queries: dict[str, Any],
        corpus: dict[str, Any],
        relevant_docs: dict[str, set[str]],
        corpus_chunk_size: int = 50000,
        mrr_at_k: list[int] = [10],  # noqa: B006 - sentence-transformers' signature; never mutated
        ndcg_at_k: list[int] = [10],  # noqa: B006
        accuracy_at_k: list[int] = [1, 3, 5, 10],  # noqa: B006
        precision_recall_at_k: list[int] = [1, 3, 5, 10],  # noqa: B006
        map_at_k: list[int] = [100],  # noqa: B006
        show_progress_bar: bool = False,
        batch_size: int = 32,
        name: str = "",
        write_csv: bool = True,
        truncate_dim: int | None = None,
        score_functions: dict[str, Callable[[Tensor, Tensor], Tensor]] | None = None,
        main_score_function: str | SimilarityFunction | None = None,
        query_prompt: str | None = None,
        query_prompt_name: str | None = None,
        corpus_prompt: str | None = None,
        corpus_prompt_name: str | None = None,
        write_predictions: bool = False,
    ) -> None:
        super().__init__()
        for arg, values in (
            ("mrr_at_k", mrr_at_k),
            ("ndcg_at_k", ndcg_at_k),
            ("accuracy_at_k", accuracy_at_k),
            ("precision_recall_at_k", precision_recall_at_k),
            ("map_at_k", map_at_k),
        ):
            _check_cutoffs(arg, values)
        if corpus_chunk_size < 1:
            raise InvalidArgumentError(f"corpus_chunk_size={corpus_chunk_size!r} is not valid; expected a positive int")

        self.queries_ids = [qid for qid in queries if qid in relevant_docs and len(relevant_docs[qid]) > 0]
        self.queries = [queries[qid] for qid in self.queries_ids]
        self.corpus_ids = list(corpus.keys())
        self.corpus = [corpus[cid] for cid in self.corpus_ids]
        self._corpus_id_ranks: Tensor | None = None
        self._corpus_id_sorted_positions: np.ndarray | None = None

        self.query_prompt = query_prompt
        self.query_prompt_name = query_prompt_name
        self.corpus_prompt = corpus_prompt
        self.corpus_prompt_name = corpus_prompt_name

        self.relevant_docs = relevant_docs
        self.corpus_chunk_size = corpus_chunk_size
        self.mrr_at_k = mrr_at_k
        self.ndcg_at_k = ndcg_at_k
        self.accuracy_at_k = accuracy_at_k
        self.precision_recall_at_k = precision_recall_at_k
        self.map_at_k = map_at_k

        self.show_progress_bar = show_progress_bar
        self.batch_size = batch_size
        self.name = name
        self.write_csv = write_csv
        self.score_functions = score_functions
        self.score_function_names = sorted(score_functions) if score_functions else []
        # Without explicit functions each call uses the evaluated model's own similarity.
        self._score_functions_from_model = score_functions is None
        self.main_score_function = SimilarityFunction(main_score_function) if main_score_function else None
        self.truncate_dim = truncate_dim

        suffix = "_" + name if name else ""
        self.csv_file: str = "Information-Retrieval_evaluation" + suffix + "_results.csv"
        self.csv_headers = ["epoch", "steps"]
        self._append_csv_headers(self.score_function_names)
        self.write_predictions = write_predictions
        if write_predictions:
            self.predictions_file = "Information-Retrieval_evaluation" + suffix + "_predictions.jsonl"

    def __call__(
        self,
        model: Any,
        output_path: str | None = None,
        epoch: int = -1,
        steps: int = -1,
        *args: Any,
        **kwargs: Any,
    ) -> dict[str, float]:
        """Embed queries and corpus with ``model``, rank, and return the metrics keyed ``{name}_{fn}_{metric}@{k}``."""
        logger.info(
            f"Information Retrieval Evaluation of the model on the {self.name} dataset"
            f"{epoch_text(epoch, steps, self.truncate_dim)}:"
        )
        headers_changed = self._adopt_model_score_function(model)

        # Extra positional arguments are corpus_model and corpus_embeddings, as in sentence-transformers;
        # mypy cannot tell that they stop before output_path.
        scores = self.compute_all_metrics(model, *args, output_path=output_path, **kwargs)  # type: ignore[misc]

        if output_path is not None and self.write_csv:
            self._write_csv_row(
                lambda fn, metric, k: scores[fn][f"{metric}@k"][k], output_path, epoch, steps, headers_changed
            )

        if not self.primary_metric:
            top_k = max(self.ndcg_at_k)
            if self.main_score_function is None:
                best = max(self.score_function_names, key=lambda fn: scores[fn]["ndcg@k"][top_k])
            else:
                best = self.main_score_function.value
            self.primary_metric = f"{best}_ndcg@{top_k}"

        metrics = {
            f"{fn}_{group.replace('@k', '@' + str(k))}": value
            for fn, groups in scores.items()
            for group, values in groups.items()
            for k, value in values.items()
        }
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def get_corpus_id_ranks(self) -> Tensor:
        """Position of each corpus entry when the corpus ids are sorted ascending (cached)."""
        if self._corpus_id_ranks is None:
            order = self._corpus_id_order()
            ranks = torch.empty(len(order), dtype=torch.long)
            ranks[torch.from_numpy(order)] = torch.arange(len(order))
            self._corpus_id_ranks = ranks
        return self._corpus_id_ranks

    def _corpus_id_order(self) -> np.ndarray:
        """Corpus positions sorted by corpus id (cached): 8 bytes per document, unlike an id -> position dict."""
        if self._corpus_id_sorted_positions is None:
            self._corpus_id_sorted_positions = np.array(
                sorted(range(len(self.corpus_ids)), key=self.corpus_ids.__getitem__), dtype=np.int64
            )
        return self._corpus_id_sorted_positions

    def _corpus_position(self, corpus_id: Any) -> int | None:
        """Where ``corpus_id`` sits in the corpus, or None when it is not a corpus id (binary search)."""
        order = self._corpus_id_order()
        try:
            at = bisect.bisect_left(order, corpus_id, key=self.corpus_ids.__getitem__)
        except TypeError:  # not comparable with the corpus ids, so not one of them
            return None
        if at < len(order) and self.corpus_ids[order[at]] == corpus_id:
            return int(order[at])
        return None

    def _max_k(self) -> int:
        return max(
            max(self.mrr_at_k),
            max(self.ndcg_at_k),
            max(self.accuracy_at_k),
            max(self.precision_recall_at_k),
            max(self.map_at_k),
        )

    def _chunk_top_k(self, pair_scores: Tensor, top_k: int, chunk_ranks: Tensor) -> tuple[Tensor, Tensor]:
        """The top ``top_k`` of each row by (score desc, corpus id asc): (scores, chunk indices)."""
        values, indices = torch.topk(pair_scores, top_k, dim=1, largest=True, sorted=False)
        threshold = values.min(dim=1, keepdim=True).values
        tied = (pair_scores >= threshold).sum(dim=1) > top_k
        if bool(tied.any()):
            # torch.topk picks among scores tied at the cutoff arbitrarily; those rows are re-picked
            # by an integer key (above the cutoff first, then cutoff ties by ascending corpus id) so
            # the result does not depend on corpus_chunk_size.
            n = len(self.corpus_ids)
            rows = pair_scores[tied]
            row_threshold = threshold[tied]
            keys = torch.where(rows > row_threshold, chunk_ranks, 2 * n)
            keys = torch.where(rows == row_threshold, chunk_ranks + n, keys)
            tie_indices = keys.topk(top_k, dim=1, largest=False).indices
            indices = indices.clone()
            values = values.clone()
            indices[tied] = tie_indices
            values[tied] = rows.gather(1, tie_indices)
        return values, indices

    def compute_all_metrics(
        self,
        model: Any,
        corpus_model: Any = None,
        corpus_embeddings: Tensor | None = None,
        output_path: str | None = None,
    ) -> dict[str, dict[str, dict[int, float]]]:
        """Rank the corpus for every query with every score function and score the rankings."""
        if corpus_model is None:
            corpus_model = model
        if self.score_functions is None:
            self.score_functions = {model.similarity_fn_name: model.similarity}
            self.score_function_names = sorted(self.score_functions)
        max_k = self._max_k()

        query_embeddings = self.embed_inputs(
            model, self.queries, encode_fn_name="query", prompt_name=self.query_prompt_name, prompt=self.query_prompt
        )
        rank_array = self.get_corpus_id_ranks().numpy()
        # Hits are corpus positions; relevant ids map to positions too (ids outside the corpus get
        # fresh numbers past its end, so they count as relevant but never match a hit).
        relevant = self._relevant_positions()
        relevant_sets = [set(row) for row in relevant]
        engine_names = {
            fn: self._engine_score_name(fn, score_function) for fn, score_function in self.score_functions.items()
        }
        query_matrix = _float32_matrix(query_embeddings) if any(engine_names.values()) else None
        # Per score function: the running best max_k (scores, global corpus indices) per query,
        # merged chunk by chunk, so memory stays at one chunk plus queries x max_k.
        best: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}
        # Scores merged across chunks must all come from one source: the engine and torch may round
        # a score differently, which would rank exact duplicates by chunk rather than by corpus id.
        # Once a chunk needs torch scores, so do the later ones; a score function whose earlier
        # chunks were ranked by the engine is ranked again, by torch from the first chunk on.
        pending = list(self.score_functions)
        torch_scored: set[str] = set()
        while pending:
            running: dict[str, tuple[np.ndarray, np.ndarray] | None] = {fn: None for fn in pending}
            restart: set[str] = set()
            for start in trange(
                0, len(self.corpus), self.corpus_chunk_size, desc="Corpus Chunks", disable=not self.show_progress_bar
            ):
                active = [fn for fn in pending if fn not in restart]
                if not active:
                    break
                end = min(start + self.corpus_chunk_size, len(self.corpus))
                chunk = self._corpus_chunk(corpus_model, corpus_embeddings, start, end)
                for fn in active:
                    values, indices, by_torch = self._rank_chunk(
                        self.score_functions[fn],
                        engine_names[fn],
                        query_embeddings,
                        query_matrix,
                        chunk,
                        start,
                        max_k,
                        rank_array[start:end],
                        relevant_sets,
                        force_torch=fn in torch_scored,
                    )
                    if by_torch and fn not in torch_scored:
                        torch_scored.add(fn)
                        if running[fn] is not None:
                            restart.add(fn)
                            continue
                    running[fn] = _merge_best(running[fn], (values, indices + start), max_k, rank_array)
                # Dropped before the next chunk is embedded, so two chunks' embeddings never coexist.
                del chunk
            best.update({fn: kept for fn, kept in running.items() if fn not in restart})
            pending = [fn for fn in pending if fn in restart]

        ranked: dict[str, list[list[int]]] = {}
        results: dict[str, list[list[dict[str, Any]]]] = {}
        for fn, kept in best.items():
            if kept is None:  # empty corpus: nothing retrieved
                ranked[fn] = [[] for _ in self.queries]
                results[fn] = [[] for _ in self.queries]
                continue
            scores, indices = kept
            ranked[fn] = indices.tolist()
            if self.write_predictions and output_path is not None:
                results[fn] = [
                    [{"corpus_id": self.corpus_ids[i], "score": s} for i, s in zip(row_i, row_s)]
                    for row_i, row_s in zip(ranked[fn], scores.tolist())
                ]

        if self.write_predictions and output_path is not None:
            self._write_predictions(results, output_path)

        logger.info(f"Queries: {len(self.queries)}")
        logger.info(f"Corpus: {len(self.corpus)}\n")
        scores_by_fn = {fn: self._score_ranked(ranked[fn], relevant) for fn in self.score_functions}
        for fn in self.score_function_names:
            logger.info(f"Score-Function: {fn}")
            self.output_scores(scores_by_fn[fn])
        return scores_by_fn

    def _relevant_positions(self) -> list[list[int]]:
        """Each query's relevant documents as corpus positions; unknown ids get numbers past the corpus end."""
        outside: dict[Any, int] = {}
        relevant = []
        for qid in self.queries_ids:
            row = []
            for cid in self.relevant_docs[qid]:
                position = self._corpus_position(cid)
                if position is None:
                    position = outside.setdefault(cid, len(self.corpus_ids) + len(outside))
                row.append(position)
            relevant.append(row)
        return relevant

    def _corpus_chunk(self, corpus_model: Any, corpus_embeddings: Any, start: int, end: int) -> Any:
        """Embeddings of corpus rows ``start:end``: embedded now, or taken from ``corpus_embeddings``."""
        if corpus_embeddings is None:
            return self.embed_inputs(
                corpus_model,
                self.corpus[start:end],
                encode_fn_name="document",
                prompt_name=self.corpus_prompt_name,
                prompt=self.corpus_prompt,
            )
        if isinstance(corpus_embeddings, Tensor) and corpus_embeddings.is_sparse:
            return corpus_embeddings.index_select(0, torch.arange(start, end, device=corpus_embeddings.device))
        return corpus_embeddings[start:end]

    def _rank_chunk(
        self,
        score_function: Callable[[Tensor, Tensor], Tensor],
        engine_name: str | None,
        query_embeddings: Tensor,
        query_matrix: np.ndarray | None,
        chunk: Any,
        start: int,
        max_k: int,
        chunk_ranks: np.ndarray,
        relevant_sets: list[set[int]],
        force_torch: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, bool]:
        """The chunk's best ``max_k`` per query by (score desc, corpus id asc): (scores, chunk indices, by torch).

        The Rust engine ranks the chunk unless the score function is one it does not know, its order
        is fragile, or ``force_torch``; then the torch score function does, in column slices when that
        is exact. The last item says whether torch scored the chunk.
        """
        dense = _is_dense_matrix(chunk)
        if engine_name is not None and query_matrix is not None and dense and not force_torch:
            values, indices = _engine_top_k(query_matrix, _float32_matrix(chunk), max_k, engine_name, chunk_ranks)
            if not self._order_is_fragile(values, indices, start, relevant_sets):
                return values[:, :max_k], indices[:, :max_k], False
        # Only the engine's own formulas are known to score each corpus row independently of the
        # others; a user's score function (and a sparse chunk) always goes whole, as in sentence-transformers.
        row_wise = engine_name is not None and dense
        return (*self._torch_top_k(score_function, query_embeddings, chunk, max_k, chunk_ranks, row_wise), True)

    def _torch_top_k(
        self,
        score_function: Callable[[Tensor, Tensor], Tensor],
        query_embeddings: Tensor,
        chunk: Any,
        max_k: int,
        chunk_ranks: np.ndarray,
        row_wise: bool,
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_rank_chunk` with the torch score function, on column slices when ``row_wise`` allows it.

        A slice's scores are bitwise the full matrix's columns (the same gemm per element), and the
        best ``max_k`` of the chunk are the best ``max_k`` of its slices' best, by the same order.
        """
        n_docs = int(chunk.shape[0])
        width = n_docs
        if row_wise and len(query_embeddings) >= _MIN_SLICED_QUERIES:
            width = max(_MIN_SLICE_COLUMNS, _WORKSPACE_BYTES // (4 * len(query_embeddings)))
        # Equal slices: the last one is never a sliver that a BLAS could treat as a special case.
        n_slices = -(-n_docs // width)
        bounds = [n_docs * i // n_slices for i in range(n_slices + 1)]
        ranks = torch.from_numpy(chunk_ranks)
        kept: tuple[np.ndarray, np.ndarray] | None = None
        for low, high in itertools.pairwise(bounds):
            pair_scores = score_function(query_embeddings, chunk if n_slices == 1 else chunk[low:high])
            top_k = min(max_k, pair_scores.shape[1])
            values, indices = self._chunk_top_k(pair_scores, top_k, ranks[low:high].to(pair_scores.device))
            del pair_scores
            found = (values.float().cpu().numpy(), indices.cpu().numpy() + low)
            kept = found if kept is None and n_slices == 1 else _merge_best(kept, found, max_k, chunk_ranks)
        if kept is None:  # unreachable: a chunk always has at least one row
            raise RuntimeError("an empty corpus chunk was ranked")
        return kept

    def _engine_score_name(self, fn: str, score_function: Callable[..., Any]) -> str | None:
        """The Rust engine's name for a score function, or None when only torch can compute it."""
        name = _rust_score_name(score_function)
        if name is None and self._score_functions_from_model and fn in _ENGINE_SCORES:
            # model.similarity for one of the built-in similarity names.
            name = fn
        return name

    def _order_is_fragile(
        self, values: np.ndarray, indices: np.ndarray, start: int, relevant_positions: list[set[int]]
    ) -> bool:
        """Whether float rounding could make this chunk's ranking differ from torch's.

        The engine and torch sum dot products in different orders, so scores within ~1e-6 of each
        other may come out in either order. That only changes the metrics when one of the two is a
        relevant document (and the predictions file whenever it happens), so only then is the chunk
        scored with the torch score function instead, exactly like sentence-transformers.
        """
        if values.shape[1] < 2:
            return False
        # Differences in summation order stay below ~1e-6 of the scores' scale for float32
        # embeddings of a few hundred dimensions; 2e-6 leaves a margin.
        tolerance = 2e-6 * np.maximum(1.0, np.abs(values[:, :1]))
        near = (values[:, :-1] - values[:, 1:]) <= tolerance
        rows = np.flatnonzero(near.any(axis=1))
        if len(rows) == 0:
            return False
        if self.write_predictions:
            return True
        for row in rows:
            relevant = relevant_positions[row]
            for j in np.flatnonzero(near[row]):
                if indices[row, j] + start in relevant or indices[row, j + 1] + start in relevant:
                    return True
        return False

    #: The older, misspelt name of :meth:`compute_all_metrics`.
    compute_metrices = compute_all_metrics

    def _write_predictions(self, results: dict[str, list[list[dict[str, Any]]]], output_path: str) -> None:
        os.makedirs(output_path, exist_ok=True)
        for fn, per_query in results.items():
            path = os.path.join(output_path, self.predictions_file.replace(".jsonl", f"_{fn}.jsonl"))
            with open(path, mode="w", encoding="utf-8") as f:
                for qid, query, hits in zip(self.queries_ids, self.queries, per_query):
                    record = {"query_id": qid, "query": query, "results": hits}
                    f.write(json.dumps(record) + "\n")

    def embed_inputs(
        self,
        model: Any,
        sentences: Any,
        encode_fn_name: str | None = None,
        prompt_name: str | None = None,
        prompt: str | None = None,
        **kwargs: Any,
    ) -> Tensor:
        """Embed with ``encode_query``/``encode_document``/``encode`` as a tensor, with this evaluator's settings."""
        encode_fn = encode_method(model, encode_fn_name)
        return encode_fn(
            sentences,
            prompt_name=prompt_name,
            prompt=prompt,
            batch_size=self.batch_size,
            show_progress_bar=self.show_progress_bar,
            convert_to_tensor=True,
            truncate_dim=self.truncate_dim,
            **kwargs,
        )

    def compute_metrics(self, queries_result_list: list[list[dict[str, Any]]]) -> dict[str, dict[int, float]]:
        """Score per-query hit lists (``{"corpus_id", "score"}`` dicts, aligned with ``queries_ids``)."""
        # Corpus ids become ints for the Rust scorer; relevant ids outside the corpus get fresh ints
        # so they still count towards recall and the ideal DCG without ever matching a hit.
        id_map: dict[Any, int] = {}
        ranked = []
        relevant = []
        for qid, hits in zip(self.queries_ids, queries_result_list):
            ordered = sorted(hits, key=lambda hit: (-hit["score"], hit["corpus_id"]))
            ranked.append([id_map.setdefault(hit["corpus_id"], len(id_map)) for hit in ordered])
            relevant.append([id_map.setdefault(cid, len(id_map)) for cid in self.relevant_docs[qid]])
        return self._score_ranked(ranked, relevant)

    def _score_ranked(self, ranked: list[list[int]], relevant: list[list[int]]) -> dict[str, dict[int, float]]:
        raw = _core.retrieval_metrics(
            ranked,
            relevant,
            accuracy_at_k=self.accuracy_at_k,
            precision_recall_at_k=self.precision_recall_at_k,
            mrr_at_k=self.mrr_at_k,
            ndcg_at_k=self.ndcg_at_k,
            map_at_k=self.map_at_k,
        )
        cutoffs = {
            "accuracy@k": self.accuracy_at_k,
            "precision@k": self.precision_recall_at_k,
            "recall@k": self.precision_recall_at_k,
            "ndcg@k": self.ndcg_at_k,
            "mrr@k": self.mrr_at_k,
            "map@k": self.map_at_k,
        }
        return {group: {k: raw[group][k] for k in cutoffs[group]} for group in _METRIC_GROUPS}

    def output_scores(self, scores: dict[str, dict[int, float]]) -> None:
        """Log one score function's metrics."""
        for k, v in scores["accuracy@k"].items():
            logger.info(f"Accuracy@{k}: {v * 100:.2f}%")
        for k, v in scores["precision@k"].items():
            logger.info(f"Precision@{k}: {v * 100:.2f}%")
        for k, v in scores["recall@k"].items():
            logger.info(f"Recall@{k}: {v * 100:.2f}%")
        for k, v in scores["mrr@k"].items():
            logger.info(f"MRR@{k}: {v:.4f}")
        for k, v in scores["ndcg@k"].items():
            logger.info(f"NDCG@{k}: {v:.4f}")
        for k, v in scores["map@k"].items():
            logger.info(f"MAP@{k}: {v:.4f}")

    @staticmethod
    def compute_dcg_at_k(relevances: Sequence[float], k: int) -> float:
        """Discounted cumulative gain of the first ``k`` relevances (gain / log2(rank + 1))."""
        return float(sum(rel / np.log2(i + 2) for i, rel in enumerate(relevances[:k])))

    def get_config_dict(self) -> dict[str, Any]:
        """The non-default prompt and truncation settings."""
        keys = ("truncate_dim", "query_prompt", "query_prompt_name", "corpus_prompt", "corpus_prompt_name")
        return {key: getattr(self, key) for key in keys if getattr(self, key) is not None}


def _is_dense_matrix(embeddings: Any) -> bool:
    """Whether ``embeddings`` is a dense 2-D tensor or array the engine can read."""
    if isinstance(embeddings, Tensor):
        return not embeddings.is_sparse and embeddings.dim() == 2
    return isinstance(embeddings, np.ndarray) and embeddings.ndim == 2


def _float32_matrix(embeddings: Any) -> np.ndarray:
    """A CPU float32 numpy matrix (a view when the input already is one)."""
    if isinstance(embeddings, Tensor):
        embeddings = embeddings.detach().to(device="cpu", dtype=torch.float32).numpy()
    return np.ascontiguousarray(embeddings, dtype=np.float32)


def _engine_top_k(
    queries: np.ndarray, chunk: np.ndarray, max_k: int, score: str, chunk_ranks: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The best ``max_k`` chunk rows per query by (score desc, corpus id asc): (scores, chunk indices).

    The engine breaks ties by chunk position; one extra hit (returned too, unless a tie was
    resolved) shows whether a tie straddles the cutoff, and only those rows are re-ranked over the
    whole chunk by corpus id.
    """
    top_k = min(max_k, len(chunk))
    if top_k == 0:
        return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
    indices, values = _core.top_k(queries, chunk, top_k + 1, score)
    if values.shape[1] > top_k:
        tied = np.flatnonzero(values[:, top_k - 1] == values[:, top_k])
        if len(tied):
            values, indices = values[:, :top_k].copy(), indices[:, :top_k].copy()
            # A whole-chunk ranking costs ~40 bytes per document and row (indices, scores, sort keys).
            rows_per_pass = max(1, _WORKSPACE_BYTES // (40 * len(chunk)))
            for first in range(0, len(tied), rows_per_pass):
                rows = tied[first : first + rows_per_pass]
                all_indices, all_values = _core.top_k(queries[rows], chunk, len(chunk), score)
                order = np.lexsort((chunk_ranks[all_indices], -all_values), axis=-1)[:, :top_k]
                indices[rows] = np.take_along_axis(all_indices, order, axis=1)
                values[rows] = np.take_along_axis(all_values, order, axis=1)
    return values, indices


def _merge_best(
    kept: tuple[np.ndarray, np.ndarray] | None,
    new: tuple[np.ndarray, np.ndarray],
    max_k: int,
    ranks: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The best ``max_k`` of two candidate sets per query, by (score desc, corpus id asc), sorted."""
    scores, indices = new
    if kept is not None:
        scores = np.concatenate([kept[0], scores], axis=1)
        indices = np.concatenate([kept[1], indices], axis=1)
    # lexsort's last key is the primary one.
    order = np.lexsort((ranks[indices], -scores), axis=-1)[:, :max_k]
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(indices, order, axis=1)
