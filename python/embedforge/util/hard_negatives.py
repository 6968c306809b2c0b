"""Hard-negative mining from ``sentence_transformers.util``: turn (anchor, positive) pairs into training tuples.

Every distinct anchor is embedded once and searched against a de-duplicated corpus (the
positives, plus ``corpus`` when given) with the Rust top-k engine; candidates are optionally
rescored by a cross-encoder, filtered by rank, score and margin, and the survivors become
negatives in one of sentence-transformers' four output layouts. Arguments, defaults, filters,
random sampling (Python's ``random`` module, one ``random.sample`` per anchor) and the output
dataset follow sentence-transformers 6.2, so the same model, data and seed give the same dataset.

Candidates tied on score keep the order of the search (lower corpus index first); in
sentence-transformers ``torch.topk`` breaks such ties arbitrarily.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import Tensor
from tqdm.autonotebook import tqdm

from ..exceptions import InvalidArgumentError

if TYPE_CHECKING:
    from datasets import Dataset

logger = logging.getLogger(__name__)

OUTPUT_FORMATS = ("triplet", "n-tuple", "labeled-pair", "labeled-list")

# model.similarity_fn_name -> the Rust engine's score name.
_ENGINE_SCORES = {"cosine": "cosine", "dot": "dot", "euclidean": "euclidean", "manhattan": "manhattan"}

# Corpus rows the Rust engine scores per block.
_RUST_BLOCK = 4096

_NEG_INF = float("-inf")


@dataclass
class _Filters:
    """The resolved selection settings, after deprecated aliases and derived defaults."""

    range_min: int
    range_max: int
    max_score: float | None
    min_score: float | None
    absolute_margin: float | None
    relative_margin: float | None
    num_negatives: int
    sampling_strategy: str
    include_positives: bool
    #: Per filter name: {"skipped": count, "ratio": share of the candidates left at that point}.
    counters: dict[str, dict[str, float]] = field(default_factory=dict)


def mine_hard_negatives(
    dataset: Dataset,
    model: Any,
    anchor_column_name: str | None = None,
    positive_column_name: str | None = None,
    corpus: list[str] | None = None,
    cross_encoder: Any | None = None,
    range_min: int = 0,
    range_max: int | None = None,
    max_score: float | None = None,
    min_score: float | None = None,
    absolute_margin: float | None = None,
    relative_margin: float | None = None,
    num_negatives: int = 3,
    sampling_strategy: Literal["random", "top"] = "top",
    query_prompt_name: str | None = None,
    query_prompt: str | None = None,
    corpus_prompt_name: str | None = None,
    corpus_prompt: str | None = None,
    include_positives: bool = False,
    output_format: Literal["triplet", "n-tuple", "labeled-pair", "labeled-list"] = "triplet",
    output_scores: bool = False,
    batch_size: int = 32,
    faiss_batch_size: int = 16384,
    use_faiss: bool = False,
    use_multi_process: list[str] | bool = False,
    verbose: bool = True,
    cache_folder: str | None = None,
    as_triplets: bool | None = None,
    margin: float | None = None,
) -> Dataset:
    """Add hard negatives to a dataset of (anchor, positive) pairs (see sentence-transformers for every option).

    ``use_faiss`` is accepted for compatibility: the search always runs in embedforge's exact
    engine, scoring by inner product as FAISS' ``IndexFlatIP`` would. ``cross_encoder`` may be
    any object with a sentence-transformers ``CrossEncoder.predict``-style method.
    """
    try:
        from datasets import Dataset
    except ImportError as exc:  # pragma: no cover - datasets ships with the train extra
        raise ImportError("mine_hard_negatives needs `datasets`: pip install 'embedforge[train]'") from exc

    if len(dataset) == 0:
        raise InvalidArgumentError("invalid value for `dataset`: it is empty; expected (anchor, positive) rows")
    _check_int("faiss_batch_size", faiss_batch_size, 1)
    _check_int("batch_size", batch_size, 1)
    _check_int("range_min", range_min, None)
    if range_max is not None:
        _check_int("range_max", range_max, None)
    _check_int("num_negatives", num_negatives, None)
    if sampling_strategy not in ("top", "random"):
        raise InvalidArgumentError(
            f"invalid value for `sampling_strategy`: got {sampling_strategy!r}, expected 'top' or 'random'"
        )

    anchor_column_name, positive_column_name = _resolve_columns(
        list(dataset.column_names), anchor_column_name, positive_column_name
    )
    layout, output_scores, absolute_margin = _resolve_format(
        output_format, output_scores, as_triplets, include_positives, margin, absolute_margin
    )
    if include_positives and (
        range_min != 0
        or range_max is not None
        or max_score is not None
        or min_score is not None
        or absolute_margin is not None
        or relative_margin is not None
        or sampling_strategy != "top"
    ):
        logger.warning(
            "With include_positives=True, changing range_min, range_max, max_score, min_score, absolute_margin, "
            "relative_margin or sampling_strategy from their defaults may still filter out the positives."
        )

    queries_in_rows = list(dataset[anchor_column_name])
    positives_in_rows = list(dataset[positive_column_name])
    # Rows per anchor (duplicated rows included), as sentence-transformers counts them.
    rows_per_query = Counter(queries_in_rows)
    max_positives = max(rows_per_query.values())

    if num_negatives < 1:
        # sentence-transformers' wording, which scripts and tests match on.
        raise InvalidArgumentError(f"num_negatives must be at least 1, got num_negatives={num_negatives}.")
    if range_max is None:
        widen = (
            absolute_margin is not None
            or relative_margin is not None
            or max_score is not None
            or (cross_encoder is not None and min_score is not None)
        )
        # Room for the positives, for range_min skipped ranks and, when filters may reject
        # candidates, ten times the negatives asked for.
        range_max = range_min + num_negatives * (10 if widen else 1) + max_positives
        if verbose:
            print(f"Setting range_max to {range_max} based on the provided parameters.")
    if range_min < 0:
        raise InvalidArgumentError(f"range_min must be non-negative, got range_min={range_min}.")
    if range_min >= range_max:
        raise InvalidArgumentError(
            f"range_min must be smaller than range_max, got range_min={range_min} and range_max={range_max}."
        )
    if num_negatives > range_max - range_min:
        raise InvalidArgumentError(
            f"Cannot mine {num_negatives} negatives per query: only {range_max - range_min} candidates remain "
            f"after skipping the first range_min={range_min} of range_max={range_max}. Lower num_negatives or "
            "range_min, or raise range_max."
        )
    filters = _Filters(
        range_min=range_min,
        range_max=range_max,
        max_score=max_score,
        min_score=min_score,
        absolute_margin=absolute_margin,
        relative_margin=relative_margin,
        num_negatives=num_negatives,
        sampling_strategy=sampling_strategy,
        include_positives=include_positives,
    )

    # The corpus holds every positive; texts are de-duplicated, first occurrence first.
    corpus_texts = list(dict.fromkeys((list(corpus) if corpus is not None else positives_in_rows) + positives_in_rows))
    corpus_index = {text: i for i, text in enumerate(corpus_texts)}
    queries = list(dict.fromkeys(queries_in_rows))
    query_index = {text: i for i, text in enumerate(queries)}
    n_queries = len(queries)
    if n_queries != len(queries_in_rows) and verbose:
        print(f"Found {n_queries} unique queries out of {len(queries_in_rows)} total queries.")
    if max_positives > 1 and verbose:
        print(f"Found an average of {np.mean(list(rows_per_query.values())):.3f} positives per query.")

    query_embeddings, corpus_embeddings = _embed(
        model,
        queries,
        corpus_texts,
        query_prompt_name=query_prompt_name,
        query_prompt=query_prompt,
        corpus_prompt_name=corpus_prompt_name,
        corpus_prompt=corpus_prompt,
        batch_size=batch_size,
        use_multi_process=use_multi_process,
        verbose=verbose,
        cache_folder=cache_folder,
    )

    width = range_max + max_positives
    scores, indices = _search(model, query_embeddings, corpus_embeddings, width, faiss_batch_size, use_faiss, verbose)

    # Each distinct query's distinct positives, in order of first appearance.
    positive_ids: list[list[int]] = [[] for _ in range(n_queries)]
    for query, positive in zip(queries_in_rows, positives_in_rows):
        row = positive_ids[query_index[query]]
        if corpus_index[positive] not in row:
            row.append(corpus_index[positive])
    n_positives = [len(row) for row in positive_ids]
    # One entry per (distinct query, distinct positive), grouped by query.
    pair_queries = [queries[q] for q in range(n_queries) for _ in range(n_positives[q])]
    pair_positives = [corpus_texts[p] for row in positive_ids for p in row]
    pair_query_rows = [q for q in range(n_queries) for _ in range(n_positives[q])]
    flat_positive_ids = [p for row in positive_ids for p in row]
    device = scores.device
    positive_scores = torch.as_tensor(
        model.similarity_pairwise(
            torch.as_tensor(query_embeddings[pair_query_rows]), torch.as_tensor(corpus_embeddings[flat_positive_ids])
        )
    ).to(device)
    del query_embeddings, corpus_embeddings

    if cross_encoder is not None and (
        absolute_margin is not None or relative_margin is not None or max_score is not None or min_score is not None
    ):
        scores, positive_scores = _rescore(
            cross_encoder,
            queries,
            corpus_texts,
            indices,
            pair_queries,
            pair_positives,
            batch_size,
            use_multi_process,
            verbose,
        )

    scores = _filter(scores, indices, positive_ids, positive_scores, n_positives, filters)
    negative_ids, negative_scores = _select(scores, indices, filters)
    if verbose:
        print("Negative candidates mined, preparing dataset...")

    build = _LAYOUTS[layout]
    data, negative_kept, difference, possible = build(
        _Mined(
            anchor_column=anchor_column_name,
            positive_column=positive_column_name,
            queries=queries,
            corpus=corpus_texts,
            positive_ids=positive_ids,
            n_positives=n_positives,
            pair_queries=pair_queries,
            pair_positives=pair_positives,
            positive_scores=positive_scores,
            negative_ids=negative_ids,
            negative_scores=negative_scores,
            num_negatives=num_negatives,
            output_scores=output_scores,
            dataset_rows=len(dataset),
        )
    )
    output = Dataset.from_dict(data)
    if verbose:
        _report(positive_scores, negative_kept, difference, filters, possible - len(output), possible)
    return output


# -- argument handling -------------------------------------------------------------------------------


def _check_int(name: str, value: Any, minimum: int | None) -> None:
    """Reject non-integers (and values below ``minimum``), naming the argument."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise InvalidArgumentError(f"invalid value for `{name}`: got {value!r}, expected an integer")
    if minimum is not None and value < minimum:
        raise InvalidArgumentError(f"invalid value for `{name}`: got {value!r}, expected an integer >= {minimum}")


def _resolve_columns(columns: list[str], anchor: str | None, positive: str | None) -> tuple[str, str]:
    """The anchor and positive column names: as given, else the first and second columns."""
    for name, value in (("anchor_column_name", anchor), ("positive_column_name", positive)):
        # sentence-transformers silently falls back to a positional column for an unknown name;
        # a typo there would mine from the wrong column, so it is an error here.
        if value and value not in columns:
            raise InvalidArgumentError(
                f"invalid value for `{name}`: the dataset has no column {value!r}; its columns are {columns}"
            )
    if not anchor:
        anchor = columns[0]
    if not positive:
        if len(columns) < 2:
            raise InvalidArgumentError(
                f"invalid value for `dataset`: it has the columns {columns}; expected at least two "
                "(anchor, positive) to pick the positive column automatically"
            )
        positive = columns[1]
    return anchor, positive


def _resolve_format(
    output_format: str,
    output_scores: bool,
    as_triplets: bool | None,
    include_positives: bool,
    margin: float | None,
    absolute_margin: float | None,
) -> tuple[str, bool, float | None]:
    """Apply the deprecated aliases (as_triplets, "n-tuple-scores", margin) and include_positives' layout."""
    if as_triplets is not None:
        output_format = "triplet" if as_triplets else "n-tuple"
        logger.warning(f"`as_triplets` is deprecated; use `output_format`. Setting output_format={output_format!r}.")
    if include_positives and output_format != "n-tuple":
        logger.warning('include_positives=True keeps the ranking order, so output_format is set to "n-tuple".')
        output_format = "n-tuple"
    if output_format == "n-tuple-scores":
        logger.warning('output_format="n-tuple-scores" is deprecated; use output_format="n-tuple", output_scores=True.')
        output_format, output_scores = "n-tuple", True
    if output_format not in OUTPUT_FORMATS:
        raise InvalidArgumentError(
            f"invalid value for `output_format`: got {output_format!r}, expected one of {list(OUTPUT_FORMATS)}"
        )
    if margin is not None:
        logger.warning(
            f"`margin` is deprecated; use `absolute_margin` or `relative_margin`. Using absolute_margin={margin}."
        )
        absolute_margin = margin
    return output_format, output_scores, absolute_margin


# -- embedding and search ----------------------------------------------------------------------------


def _embed(
    model: Any,
    queries: list[str],
    corpus: list[str],
    *,
    query_prompt_name: str | None,
    query_prompt: str | None,
    corpus_prompt_name: str | None,
    corpus_prompt: str | None,
    batch_size: int,
    use_multi_process: list[str] | bool,
    verbose: bool,
    cache_folder: str | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Unit-length query and corpus embeddings, read from / written to ``cache_folder`` when given."""
    query_embeddings: np.ndarray | None = None
    corpus_embeddings: np.ndarray | None = None
    query_file = corpus_file = ""
    if cache_folder:
        os.makedirs(cache_folder, exist_ok=True)
        card_data = getattr(model, "model_card_data", None)
        model_name = getattr(card_data, "base_model", None) or ""
        # Same keys as sentence-transformers, so either library reuses the other's cache.
        query_hash = _sha256(repr((model_name, query_prompt, query_prompt_name, queries)))
        corpus_hash = _sha256(repr((model_name, corpus_prompt, corpus_prompt_name, corpus)))
        query_file = os.path.join(cache_folder, f"query_embeddings_{query_hash}.npy")
        corpus_file = os.path.join(cache_folder, f"corpus_embeddings_{corpus_hash}.npy")
        query_embeddings = _load_cached(query_file, len(queries), verbose, "query")
        corpus_embeddings = _load_cached(corpus_file, len(corpus), verbose, "corpus")

    if query_embeddings is None or corpus_embeddings is None:
        pool = _start_pool(model, use_multi_process, "model")
        try:
            common = {"batch_size": batch_size, "normalize_embeddings": True, "convert_to_numpy": True}
            if pool is not None:
                common["pool"] = pool
            if corpus_embeddings is None:
                corpus_embeddings = model.encode_document(
                    corpus,
                    show_progress_bar=verbose,
                    prompt_name=corpus_prompt_name,
                    prompt=corpus_prompt,
                    **common,
                )
            if query_embeddings is None:
                query_embeddings = model.encode_query(
                    queries,
                    show_progress_bar=verbose,
                    prompt_name=query_prompt_name,
                    prompt=query_prompt,
                    **common,
                )
        finally:
            if pool is not None:
                model.stop_multi_process_pool(pool)

    query_embeddings = np.asarray(query_embeddings)
    corpus_embeddings = np.asarray(corpus_embeddings)
    if cache_folder:
        for path, matrix, kind in ((query_file, query_embeddings, "query"), (corpus_file, corpus_embeddings, "corpus")):
            if not os.path.exists(path):
                _save_atomic(path, matrix)
                if verbose:
                    print(f"[Cache] Saved {kind} embeddings to {path}")
    return query_embeddings, corpus_embeddings


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode(), usedforsecurity=False).hexdigest()


def _load_cached(path: str, rows: int, verbose: bool, kind: str) -> np.ndarray | None:
    """A cached embedding matrix (plain .npy, never pickles), or None when absent."""
    if not os.path.exists(path):
        return None
    matrix = np.load(path, allow_pickle=False)
    if matrix.ndim != 2 or len(matrix) != rows:
        raise InvalidArgumentError(
            f"invalid cache file {path!r}: it holds shape {matrix.shape}, expected {rows} {kind} rows; delete it"
        )
    if verbose:
        print(f"[Cache] Loaded {kind} embeddings from {path} (shape={matrix.shape})")
    return matrix


def _save_atomic(path: str, matrix: np.ndarray) -> None:
    """Write ``matrix`` to ``path`` through a temporary file, so a crash never leaves a truncated cache."""
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        with open(temporary, "wb") as f:
            np.save(f, matrix, allow_pickle=False)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _start_pool(owner: Any, use_multi_process: list[str] | bool, what: str) -> Any:
    """A multi-process pool when asked for and ``owner`` can start one; otherwise None (with a warning)."""
    if not use_multi_process:
        return None
    start = getattr(owner, "start_multi_process_pool", None)
    if start is None:
        logger.warning(
            f"use_multi_process is set but the {what} has no start_multi_process_pool; encoding in this process."
        )
        return None
    return start(target_devices=None if isinstance(use_multi_process, bool) else use_multi_process)


def _search(
    model: Any,
    query_embeddings: np.ndarray,
    corpus_embeddings: np.ndarray,
    width: int,
    chunk: int,
    use_faiss: bool,
    verbose: bool,
) -> tuple[Tensor, Tensor]:
    """The best ``width`` corpus rows per query (padded with index -1 / score -inf when the corpus is smaller)."""
    k = min(width, len(corpus_embeddings))
    # With use_faiss sentence-transformers ranks by inner product (IndexFlatIP) whatever the
    # model's similarity; otherwise by the model's similarity.
    score_name = "dot" if use_faiss else _ENGINE_SCORES.get(str(getattr(model, "similarity_fn_name", "")))
    score_blocks, index_blocks = [], []
    desc = "Querying FAISS index" if use_faiss else "Computing similarity scores"
    if score_name is not None:
        from .. import _core  # imported here so `embedforge.util` stays free of the extension

        queries = np.ascontiguousarray(query_embeddings, dtype=np.float32)
        corpus = np.ascontiguousarray(corpus_embeddings, dtype=np.float32)
        for start in tqdm(range(0, len(queries), chunk), desc=desc, disable=not verbose):
            block_ids, block_scores = _core.top_k(queries[start : start + chunk], corpus, k, score_name, _RUST_BLOCK)
            score_blocks.append(torch.from_numpy(block_scores))
            index_blocks.append(torch.from_numpy(block_ids))
    else:
        corpus_tensor = torch.as_tensor(corpus_embeddings)
        for start in tqdm(range(0, len(query_embeddings), chunk), desc=desc, disable=not verbose):
            chunk_scores = torch.as_tensor(model.similarity(query_embeddings[start : start + chunk], corpus_tensor))
            chunk_scores = chunk_scores.detach().cpu()
            order = torch.argsort(chunk_scores, dim=1, descending=True, stable=True)[:, :k]
            score_blocks.append(chunk_scores.gather(1, order))
            index_blocks.append(order)
    scores = torch.cat(score_blocks).to(torch.float32)
    indices = torch.cat(index_blocks).to(torch.long)
    missing = width - scores.shape[1]
    if missing > 0:
        scores = torch.cat([scores, scores.new_full((len(scores), missing), _NEG_INF)], dim=1)
        indices = torch.cat([indices, indices.new_full((len(indices), missing), -1)], dim=1)
    return scores, indices


def _rescore(
    cross_encoder: Any,
    queries: list[str],
    corpus: list[str],
    indices: Tensor,
    pair_queries: list[str],
    pair_positives: list[str],
    batch_size: int,
    use_multi_process: list[str] | bool,
    verbose: bool,
) -> tuple[Tensor, Tensor]:
    """Candidate and positive scores from ``cross_encoder.predict`` instead of the embedding model."""
    pool = _start_pool(cross_encoder, use_multi_process, "cross_encoder")
    extra = {"pool": pool} if pool is not None else {}
    try:
        rows = []
        for query_row, candidate_row in tqdm(
            enumerate(indices.tolist()), desc="Rescoring with CrossEncoder", total=len(indices), disable=not verbose
        ):
            # Padding (-1) is scored as the last corpus text, as in sentence-transformers; it is
            # masked out afterwards anyway.
            pairs = [(queries[query_row], corpus[i]) for i in candidate_row]
            rows.append(
                _as_scores(cross_encoder.predict(pairs, batch_size=batch_size, convert_to_tensor=True, **extra))
            )
        positive_scores = _as_scores(
            cross_encoder.predict(
                list(zip(pair_queries, pair_positives)), batch_size=batch_size, convert_to_tensor=True, **extra
            )
        )
    finally:
        if pool is not None:
            cross_encoder.stop_multi_process_pool(pool)
    return torch.stack(rows), positive_scores


def _as_scores(predicted: Any) -> Tensor:
    """A cross-encoder's output (tensor, array or list of floats) as a float32 vector."""
    return (
        torch.as_tensor(np.asarray(predicted.detach().cpu() if isinstance(predicted, Tensor) else predicted))
        .to(torch.float32)
        .reshape(-1)
    )


# -- filtering and selection -------------------------------------------------------------------------


def _filter(
    scores: Tensor,
    indices: Tensor,
    positive_ids: list[list[int]],
    positive_scores: Tensor,
    n_positives: list[int],
    filters: _Filters,
) -> Tensor:
    """``scores`` with every disqualified candidate set to -inf, counting what each filter removed."""
    scores = scores.clone()
    scores[indices == -1] = _NEG_INF
    if not filters.include_positives:
        for row, positives in enumerate(positive_ids):
            scores[row, torch.isin(indices[row], torch.tensor(positives, dtype=indices.dtype))] = _NEG_INF
    remaining = scores.numel()
    counters = filters.counters

    def drop(name: str, removed: Tensor, shrink: bool) -> None:
        nonlocal remaining
        scores[removed] = _NEG_INF
        skipped = int(removed.sum())
        if skipped:
            counters[name] = {"skipped": skipped, "ratio": skipped / remaining}
            if shrink:
                remaining -= skipped

    if filters.absolute_margin is not None or filters.relative_margin is not None:
        # With several positives the margin is taken from the hardest (lowest-scoring) one.
        bounds = torch.stack([part.min() for part in torch.split(positive_scores, n_positives)]).to(scores.dtype)
        if filters.absolute_margin is not None:
            drop("absolute_margin", scores + filters.absolute_margin > bounds[:, None], shrink=True)
        if filters.relative_margin is not None:
            # Subtracting |positive| * margin stays correct for negative positive scores.
            limit = bounds - bounds.abs() * filters.relative_margin
            drop("relative_margin", scores > limit[:, None], shrink=True)
    if filters.max_score is not None:
        drop("max_score", scores > filters.max_score, shrink=False)
    if filters.min_score is not None:
        # Counts candidates already at -inf too, as sentence-transformers' report does.
        drop("min_score", scores < filters.min_score, shrink=False)
    return scores


def _select(scores: Tensor, indices: Tensor, filters: _Filters) -> tuple[Tensor, Tensor]:
    """Rank candidates, skip the first range_min and take num_negatives: the top ones or a random sample."""
    order = torch.argsort(scores, dim=1, descending=True, stable=True)[:, : filters.range_max]
    scores = scores.gather(1, order)[:, filters.range_min :]
    indices = indices.gather(1, order)[:, filters.range_min :]
    if filters.sampling_strategy == "top":
        return indices[:, : filters.num_negatives], scores[:, : filters.num_negatives]
    # Sample among the finite candidates when there are enough of them; one random.sample per
    # query through Python's global generator, so random.seed() reproduces sentence-transformers.
    finite = (~torch.isinf(scores)).sum(dim=1).clamp(min=filters.num_negatives).tolist()
    picked = torch.tensor([random.sample(range(options), k=filters.num_negatives) for options in finite])
    scores, indices = scores.gather(1, picked), indices.gather(1, picked)
    order = torch.argsort(scores, dim=1, descending=True, stable=True)
    return indices.gather(1, order), scores.gather(1, order)


# -- output layouts ----------------------------------------------------------------------------------


@dataclass
class _Mined:
    """Everything the output layouts need."""

    anchor_column: str
    positive_column: str
    queries: list[str]
    corpus: list[str]
    positive_ids: list[list[int]]
    n_positives: list[int]
    pair_queries: list[str]
    pair_positives: list[str]
    positive_scores: Tensor
    negative_ids: Tensor  # [distinct queries, num_negatives]
    negative_scores: Tensor
    num_negatives: int
    output_scores: bool
    dataset_rows: int

    def per_pair(self, matrix: Tensor) -> Tensor:
        """A per-query matrix repeated once per (query, positive) pair."""
        return torch.repeat_interleave(matrix, torch.tensor(self.n_positives), dim=0)

    def positive_grid(self) -> Tensor:
        """Each pair's positive score, repeated across the negative columns."""
        return self.positive_scores[:, None].expand(-1, self.num_negatives)


# A layout returns (columns, kept negative scores, positive-minus-negative differences, rows possible).
_Layout = tuple[dict[str, Any], Tensor, Tensor, int]


def _triplets(m: _Mined) -> _Layout:
    """One (anchor, positive, negative) row per pair and kept negative."""
    ids, scores = m.per_pair(m.negative_ids), m.per_pair(m.negative_scores)
    keep = ~torch.isinf(scores)
    positive_scores = m.positive_grid()[keep]
    pair_of = torch.arange(len(ids))[:, None].expand_as(ids)[keep].tolist()
    data: dict[str, list[Any]] = {
        m.anchor_column: [m.pair_queries[p] for p in pair_of],
        m.positive_column: [m.pair_positives[p] for p in pair_of],
        "negative": [m.corpus[i] for i in ids[keep].tolist()],
    }
    if m.output_scores:
        data["scores"] = [list(pair) for pair in zip(positive_scores.tolist(), scores[keep].tolist())]
    return data, scores[keep], positive_scores - scores[keep], keep.numel()


def _labeled_pairs(m: _Mined) -> _Layout:
    """(anchor, text, label or score) rows: each query's positives (1), then its kept negatives (0)."""
    anchors: list[str] = []
    texts: list[str] = []
    values: list[float | int] = []
    pair = 0
    for q, query in enumerate(m.queries):
        for p in m.positive_ids[q]:
            anchors.append(query)
            texts.append(m.corpus[p])
            values.append(m.positive_scores[pair].item() if m.output_scores else 1)
            pair += 1
        for i, score in zip(m.negative_ids[q].tolist(), m.negative_scores[q].tolist()):
            if score == _NEG_INF:
                continue
            anchors.append(query)
            texts.append(m.corpus[i])
            values.append(score if m.output_scores else 0)
    data = {m.anchor_column: anchors, m.positive_column: texts, ("score" if m.output_scores else "label"): values}
    scores = m.per_pair(m.negative_scores)
    keep = ~torch.isinf(scores)
    return data, scores[keep], m.positive_grid()[keep] - scores[keep], len(m.queries) * m.num_negatives + m.dataset_rows


def _n_tuples(m: _Mined) -> _Layout:
    """(anchor, positive, negative_1..n) rows for the pairs that found all num_negatives negatives."""
    ids, scores = m.per_pair(m.negative_ids), m.per_pair(m.negative_scores)
    complete = (~torch.isinf(scores)).all(dim=1)
    kept_rows = complete.nonzero().flatten().tolist()
    ids, scores = ids[complete], scores[complete]
    data: dict[str, list[Any]] = {
        m.anchor_column: [m.pair_queries[p] for p in kept_rows],
        m.positive_column: [m.pair_positives[p] for p in kept_rows],
    }
    for column, column_ids in enumerate(ids.T.tolist(), start=1):
        data[f"negative_{column}"] = [m.corpus[i] for i in column_ids]
    if m.output_scores:
        data["scores"] = torch.cat([m.positive_scores[complete][:, None], scores], dim=1).tolist()
    difference = m.positive_grid()[complete].flatten() - scores.flatten()
    return data, scores.flatten(), difference, len(complete)


def _labeled_lists(m: _Mined) -> _Layout:
    """(anchor, [positive, negatives...], [labels or scores]) rows for the pairs with at least one negative."""
    ids, scores = m.per_pair(m.negative_ids), m.per_pair(m.negative_scores)
    keep = ~torch.isinf(scores)
    anchors, documents, values = [], [], []
    for p, (keep_row, id_row) in enumerate(zip(keep.tolist(), ids.tolist())):
        if not any(keep_row):
            continue
        anchors.append(m.pair_queries[p])
        documents.append([m.pair_positives[p]] + [m.corpus[i] for i, k in zip(id_row, keep_row) if k])
        if m.output_scores:
            values.append([m.positive_scores[p].item(), *scores[p][keep[p]].tolist()])
        else:
            values.append([1] + [0] * sum(keep_row))
    data = {m.anchor_column: anchors, m.positive_column: documents, ("scores" if m.output_scores else "labels"): values}
    return data, scores[keep], m.positive_grid()[keep] - scores[keep], len(keep)


_LAYOUTS = {
    "triplet": _triplets,
    "labeled-pair": _labeled_pairs,
    "n-tuple": _n_tuples,
    "labeled-list": _labeled_lists,
}


# -- report ------------------------------------------------------------------------------------------


def _report(
    positive_scores: Tensor, negative_scores: Tensor, difference: Tensor, filters: _Filters, missing: int, possible: int
) -> None:
    """Print score statistics, what each filter skipped, and how many rows lacked negatives."""
    row = "{:<6} {:>14} {:>14} {:>14}"
    print(row.format("Metric", "Positive", "Negative", "Difference"))
    print(row.format("Count", f"{len(positive_scores):,}", f"{len(negative_scores):,}", ""))

    def stat(name: str, values: Tensor) -> str:
        if values.numel() == 0:
            return "nan" if name in ("mean", "median", "std") else f"{(_NEG_INF if name == 'max' else float('inf'))}"
        values = values.float()
        quantiles = {"25%": 0.25, "50%": 0.5, "75%": 0.75}
        value = values.quantile(quantiles[name]) if name in quantiles else getattr(values, name)()
        return f"{value.item():.4f}"

    for name in ("mean", "median", "std", "min", "25%", "50%", "75%", "max"):
        print(
            row.format(
                name.capitalize(), stat(name, positive_scores), stat(name, negative_scores), stat(name, difference)
            )
        )
    settings = {
        "absolute_margin": filters.absolute_margin,
        "relative_margin": filters.relative_margin,
        "max_score": filters.max_score,
        "min_score": filters.min_score,
    }
    for name, value in settings.items():
        if name in filters.counters:
            counter = filters.counters[name]
            print(
                f"Skipped {int(counter['skipped']):,} potential negatives ({counter['ratio']:.2%}) due to the {name} of {value}."
            )
    if missing > 0:
        knobs = ["range_max"] + (["range_min"] if filters.range_min > 0 else [])
        knobs += [name for name in ("absolute_margin", "relative_margin", "max_score") if settings[name] is not None]
        listed = knobs[0] if len(knobs) == 1 else ", ".join(knobs[:-1]) + " and " + knobs[-1]
        print(
            f"Could not find enough negatives for {missing} samples ({missing / possible:.2%}). Consider adjusting the "
            f"{listed} parameter{'s' if len(knobs) > 1 else ''} if you'd like to find more valid negatives."
        )


__all__ = ["mine_hard_negatives"]
