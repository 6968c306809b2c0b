"""Paraphrase mining from ``sentence_transformers.util``: the most similar pairs within one list of texts.

Each text's nearest neighbours come from the Rust top-k engine (exact, multi-threaded, no
``[n, n]`` score matrix) for the four built-in score functions, and from a chunked torch loop for
any other callable. Neighbours tied on score are taken lowest index first, so the result does not
depend on the chunk sizes. The pairs are then collected exactly as sentence-transformers does:
each unordered pair once, with the score from the first text (in input order) that found it,
keeping at most ``max_pairs`` of the best.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

from ..exceptions import InvalidArgumentError
from .retrieval import _as_f32_matrix, _rust_score_name
from .similarity import cos_sim
from .tensor import EmbeddingsLike, _convert_to_tensor

# Corpus rows the Rust engine scores per block (cache-sized; corpus_chunk_size only lowers it).
_RUST_BLOCK = 4096


def _check_int(name: str, value: Any, minimum: int) -> None:
    """Reject non-integers and values below ``minimum``, naming the argument."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        expected = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise InvalidArgumentError(f"invalid value for `{name}`: got {value!r}, expected {expected}")


def paraphrase_mining(
    model: Any,
    sentences: list[str],
    show_progress_bar: bool = False,
    batch_size: int = 32,
    query_chunk_size: int = 5000,
    corpus_chunk_size: int = 100000,
    max_pairs: int = 500000,
    top_k: int = 100,
    score_function: Callable[[Tensor, Tensor], Tensor] = cos_sim,
    truncate_dim: int | None = None,
    prompt_name: str | None = None,
    prompt: str | None = None,
) -> list[list[float | int]]:
    """Embed ``sentences`` with ``model`` and return their most similar pairs as ``[score, i, j]``, best first."""
    embeddings = model.encode(
        sentences,
        show_progress_bar=show_progress_bar,
        batch_size=batch_size,
        convert_to_tensor=True,
        truncate_dim=truncate_dim,
        prompt_name=prompt_name,
        prompt=prompt,
    )
    return paraphrase_mining_embeddings(
        embeddings,
        query_chunk_size=query_chunk_size,
        corpus_chunk_size=corpus_chunk_size,
        max_pairs=max_pairs,
        top_k=top_k,
        score_function=score_function,
    )


def paraphrase_mining_embeddings(
    embeddings: EmbeddingsLike,
    query_chunk_size: int = 5000,
    corpus_chunk_size: int = 100000,
    max_pairs: int = 500000,
    top_k: int = 100,
    score_function: Callable[[Tensor, Tensor], Tensor] = cos_sim,
) -> list[list[float | int]]:
    """The most similar pairs among ``embeddings`` rows as ``[score, i, j]`` with ``i < j``, best first.

    Every row contributes at most ``top_k`` neighbours (itself excluded); at most ``max_pairs``
    pairs are kept. ``score_function`` is assumed symmetric: a pair keeps one direction's score.
    """
    _check_int("query_chunk_size", query_chunk_size, 1)
    _check_int("corpus_chunk_size", corpus_chunk_size, 1)
    _check_int("max_pairs", max_pairs, 0)
    _check_int("top_k", top_k, 0)
    matrix = _convert_to_tensor(embeddings)
    if matrix.dim() != 2:
        raise InvalidArgumentError(
            f"invalid value for `embeddings`: got shape {tuple(matrix.shape)}, expected a 2-D [texts, dim] matrix"
        )
    if len(matrix) == 0 or top_k == 0 or max_pairs == 0:
        return []

    score_name = _rust_score_name(score_function)
    if score_name is None or matrix.is_sparse:
        neighbour_rows = _neighbours_torch(matrix, query_chunk_size, corpus_chunk_size, top_k, score_function)
    else:
        neighbour_rows = _neighbours_rust(matrix, query_chunk_size, corpus_chunk_size, top_k, score_name)
    return _collect_pairs(neighbour_rows, top_k, max_pairs)


def _neighbours_rust(
    matrix: Tensor, query_chunk_size: int, corpus_chunk_size: int, top_k: int, score_name: str
) -> Iterator[tuple[int, list[int], list[float]]]:
    """Per row (in order): its ``top_k + 1`` best rows and scores from the Rust engine."""
    from .. import _core  # imported here so `embedforge.util` stays free of the extension

    corpus = _as_f32_matrix(matrix)
    k = min(top_k + 1, len(corpus))
    block = min(corpus_chunk_size, _RUST_BLOCK)
    for start in range(0, len(corpus), query_chunk_size):
        ids, scores = _core.top_k(corpus[start : start + query_chunk_size], corpus, k, score_name, block)
        for offset, (id_row, score_row) in enumerate(zip(ids.tolist(), scores.tolist())):
            yield start + offset, id_row, score_row


def _neighbours_torch(
    matrix: Tensor,
    query_chunk_size: int,
    corpus_chunk_size: int,
    top_k: int,
    score_function: Callable[[Tensor, Tensor], Tensor],
) -> Iterator[tuple[int, list[int], list[float]]]:
    """The same neighbours for an arbitrary score function, scored chunk by chunk with torch."""
    n = len(matrix)
    k = min(top_k + 1, n)
    for start in range(0, n, query_chunk_size):
        queries = _rows(matrix, start, min(start + query_chunk_size, n))
        best_scores: Tensor | None = None
        best_ids: Tensor | None = None
        for corpus_start in range(0, n, corpus_chunk_size):
            chunk_scores = score_function(
                queries, _rows(matrix, corpus_start, min(corpus_start + corpus_chunk_size, n))
            )
            chunk_ids = torch.arange(corpus_start, corpus_start + chunk_scores.shape[1]).expand_as(chunk_scores)
            if best_scores is not None and best_ids is not None:
                chunk_scores = torch.cat([best_scores, chunk_scores.detach()], dim=1)
                chunk_ids = torch.cat([best_ids, chunk_ids], dim=1)
            best_scores, best_ids = _stable_top(chunk_scores.detach().cpu(), chunk_ids.cpu(), k)
        assert best_scores is not None and best_ids is not None
        for offset, (id_row, score_row) in enumerate(zip(best_ids.tolist(), best_scores.tolist())):
            yield start + offset, id_row, score_row


def _stable_top(scores: Tensor, ids: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The ``k`` best columns per row by score, ties to the lower id (torch.topk breaks ties arbitrarily)."""
    # Candidates arrive with ids ascending within each row, so a stable descending sort keeps
    # the lower id first among equal scores.
    order = torch.argsort(ids, dim=1, stable=True)
    scores, ids = scores.gather(1, order), ids.gather(1, order)
    order = torch.argsort(scores, dim=1, descending=True, stable=True)[:, :k]
    return scores.gather(1, order), ids.gather(1, order)


def _rows(tensor: Tensor, start: int, end: int) -> Tensor:
    """Rows ``start:end`` of a dense or sparse COO tensor (sparse tensors cannot be sliced)."""
    if tensor.is_sparse:
        return tensor.index_select(0, torch.arange(start, end, device=tensor.device))
    return tensor[start:end]


def _collect_pairs(
    neighbour_rows: Iterator[tuple[int, list[int], list[float]]], top_k: int, max_pairs: int
) -> list[list[float | int]]:
    """Merge every row's neighbours into the ``max_pairs`` best unordered pairs (sentence-transformers' rules)."""
    # A min-heap of (score, i, j), i < j: its root is the weakest pair kept. The eviction rules
    # (a candidate no better than the last evicted score is skipped; an evicted pair may come
    # back with its other direction's score) follow sentence-transformers so results match.
    heap: list[tuple[float, int, int]] = []
    queued: set[tuple[int, int]] = set()
    floor = float("-inf")
    for i, id_row, score_row in neighbour_rows:
        taken = 0
        for j, score in zip(id_row, score_row):
            if j == i:
                continue
            if taken == top_k:
                break
            taken += 1
            if score <= floor:
                # A row's neighbours come best first and the floor only rises, so the rest of
                # this row would be skipped too (sentence-transformers checks each of them).
                break
            pair = (i, j) if i < j else (j, i)
            if pair in queued:
                continue
            queued.add(pair)
            if len(heap) < max_pairs:
                heapq.heappush(heap, (score, *pair))
            else:
                evicted = heapq.heappushpop(heap, (score, *pair))
                queued.discard(evicted[1:])
                floor = evicted[0]
    return sorted(([score, i, j] for score, i, j in heap), key=lambda triple: triple[0], reverse=True)


__all__ = ["paraphrase_mining", "paraphrase_mining_embeddings"]
