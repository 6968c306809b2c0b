"""Retrieval helpers from ``sentence_transformers.util``: exact semantic search over embeddings.

With one of the four built-in score functions the search runs in the Rust core (a
register-tiled SIMD kernel fused with per-query top-k selection, multi-threaded, GIL released,
no ``[queries, corpus]`` score matrix); any other callable goes through a torch loop that scores
chunk by chunk the way sentence-transformers does.

The corpus may also be the path of a ``.npy`` file: it is memory-mapped and read block by block,
so a float32 corpus larger than RAM can be searched.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..exceptions import InvalidArgumentError
from .similarity import cos_sim, dot_score, euclidean_sim, manhattan_sim
from .tensor import EmbeddingsLike, _convert_to_tensor, normalize_embeddings

# Corpus rows the Rust engine scores per block. sentence-transformers' corpus_chunk_size
# (500,000 by default) only trades memory for speed there; here a block that fits in cache
# is faster, so the chunk size is only honoured when it is smaller.
_RUST_BLOCK = 4096

_RUST_SCORES: dict[Callable[..., Any], str] = {
    cos_sim: "cosine",
    dot_score: "dot",
    euclidean_sim: "euclidean",
    manhattan_sim: "manhattan",
}


def _rust_score_name(score_function: Callable[..., Any]) -> str | None:
    """The Rust engine's name for ``score_function``, or None when only torch can run it."""
    name = _RUST_SCORES.get(score_function)
    if name is not None:
        return name
    # sentence-transformers' own functions compute the same formulas; recognise them by
    # module and name so this module never has to import sentence-transformers.
    module = getattr(score_function, "__module__", None) or ""
    if module.split(".")[0] == "sentence_transformers":
        by_name = {fn.__name__: score for fn, score in _RUST_SCORES.items()}
        return by_name.get(getattr(score_function, "__name__", ""))
    return None


def _positive(name: str, value: int) -> None:
    """Reject chunk sizes below 1, which could never make progress."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidArgumentError(f"invalid value for `{name}`: got {value!r}, expected a positive integer")


def _as_f32_matrix(tensor: Tensor) -> np.ndarray:
    """A CPU float32 numpy view (or copy, when the dtype or device differs) of a 2-D tensor."""
    tensor = tensor.detach()
    if tensor.device.type != "cpu":
        tensor = tensor.cpu()
    if tensor.dtype != torch.float32:
        tensor = tensor.to(torch.float32)
    return tensor.numpy()


def _numpy_corpus(corpus_embeddings: object) -> np.ndarray | None:
    """A float32 2-D numpy corpus the engine can read in place (a ``.npy`` path is memory-mapped)."""
    if isinstance(corpus_embeddings, (str, os.PathLike)):
        corpus = np.load(os.fspath(corpus_embeddings), mmap_mode="r")
        if corpus.ndim != 2 or not np.issubdtype(corpus.dtype, np.floating):
            raise InvalidArgumentError(
                f"invalid value for `corpus_embeddings`: {os.fspath(corpus_embeddings)!r} holds a {corpus.dtype} array "
                f"of shape {corpus.shape}, expected a 2-D float array"
            )
        # Other float dtypes are converted (which reads the whole file); float32 streams.
        return corpus if corpus.dtype == np.float32 else corpus.astype(np.float32)
    if (
        isinstance(corpus_embeddings, np.ndarray)
        and corpus_embeddings.dtype == np.float32
        and corpus_embeddings.ndim == 2
    ):
        return corpus_embeddings
    return None


def semantic_search(
    query_embeddings: EmbeddingsLike,
    corpus_embeddings: EmbeddingsLike | str | os.PathLike[str],
    query_chunk_size: int = 100,
    corpus_chunk_size: int = 500000,
    top_k: int = 10,
    score_function: Callable[[Tensor, Tensor], Tensor] = cos_sim,
) -> list[list[dict[str, int | float]]]:
    """Exact top-k search: per query, a list of ``{"corpus_id", "score"}`` dicts, best first.

    ``corpus_embeddings`` may also be the path of a ``.npy`` file (memory-mapped, streamed).
    Ties go to the lower corpus id.
    """
    _positive("query_chunk_size", query_chunk_size)
    _positive("corpus_chunk_size", corpus_chunk_size)
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 0:
        raise InvalidArgumentError(f"invalid value for `top_k`: got {top_k!r}, expected a non-negative integer")

    score_name = _rust_score_name(score_function)
    # A float32 numpy corpus (or memory map) goes to the engine as it is: no tensor, no copy.
    corpus_array = _numpy_corpus(corpus_embeddings)
    queries = _convert_to_tensor(query_embeddings)
    if queries.dim() == 1:
        queries = queries.unsqueeze(0)
    from .. import _core  # imported here so `embedforge.util` stays free of the extension

    if corpus_array is not None and score_name is not None and not queries.is_sparse and queries.dim() == 2:
        corpus_matrix = corpus_array
    else:
        corpus = _convert_to_tensor(corpus_array if corpus_array is not None else corpus_embeddings)  # type: ignore[arg-type]
        if score_name is None or queries.is_sparse or corpus.is_sparse or corpus.dim() != 2 or queries.dim() != 2:
            return _semantic_search_torch(queries, corpus, query_chunk_size, corpus_chunk_size, top_k, score_function)
        corpus_matrix = _as_f32_matrix(corpus)

    ids, scores = _core.top_k(
        _as_f32_matrix(queries),
        corpus_matrix,
        top_k,
        score_name,
        min(corpus_chunk_size, _RUST_BLOCK),
    )
    return [
        [{"corpus_id": corpus_id, "score": score} for corpus_id, score in zip(id_row, score_row)]
        for id_row, score_row in zip(ids.tolist(), scores.tolist())
    ]


def _semantic_search_torch(
    queries: Tensor,
    corpus: Tensor,
    query_chunk_size: int,
    corpus_chunk_size: int,
    top_k: int,
    score_function: Callable[[Tensor, Tensor], Tensor],
) -> list[list[dict[str, int | float]]]:
    """Chunked torch search for arbitrary score functions (and sparse inputs)."""
    if queries.device != corpus.device:
        queries = queries.to(corpus.device)
    # Per query a min-heap of (score, corpus_id): its root is the weakest hit kept so far.
    heaps: list[list[tuple[float, int]]] = [[] for _ in range(len(queries))]
    # Scoring cosine as a dot product of pre-normalised chunks normalises each corpus chunk
    # once rather than once per query chunk; the scores are the same.
    prenormalize = score_function is cos_sim

    for corpus_start in range(0, len(corpus), corpus_chunk_size):
        corpus_end = min(corpus_start + corpus_chunk_size, len(corpus))
        corpus_chunk = _rows(corpus, corpus_start, corpus_end)
        if prenormalize:
            corpus_chunk = normalize_embeddings(corpus_chunk)
        for query_start in range(0, len(queries), query_chunk_size):
            query_end = min(query_start + query_chunk_size, len(queries))
            query_chunk = _rows(queries, query_start, query_end)
            if prenormalize:
                chunk_scores = dot_score(normalize_embeddings(query_chunk), corpus_chunk)
            else:
                chunk_scores = score_function(query_chunk, corpus_chunk)
            values, indices = torch.topk(
                chunk_scores, min(top_k, chunk_scores.shape[1]), dim=1, largest=True, sorted=False
            )
            for heap, score_row, index_row in zip(
                heaps[query_start:query_end], values.cpu().tolist(), (indices + corpus_start).cpu().tolist()
            ):
                for candidate in zip(score_row, index_row):
                    if len(heap) < top_k:
                        heapq.heappush(heap, candidate)
                    else:
                        heapq.heappushpop(heap, candidate)

    return [
        [
            {"corpus_id": corpus_id, "score": score}
            for score, corpus_id in sorted(heap, key=lambda h: h[0], reverse=True)
        ]
        for heap in heaps
    ]


def _rows(tensor: Tensor, start: int, end: int) -> Tensor:
    """Rows ``start:end`` of a dense or sparse COO tensor (sparse tensors cannot be sliced)."""
    if tensor.is_sparse:
        return tensor.index_select(0, torch.arange(start, end, device=tensor.device))
    return tensor[start:end]


__all__ = ["semantic_search"]
