"""Paraphrase mining from ``sentence_transformers.util``: the most similar pairs within one list of texts.

Each text's nearest neighbours come from the Rust top-k engine (exact, multi-threaded, no
``[n, n]`` score matrix) for the four built-in score functions, and from a chunked torch loop for
any other callable. Neighbours tied on score are taken lowest index first, so the result does not
depend on the chunk sizes. The pairs are then collected with sentence-transformers' rules (each
unordered pair once, with the score from the first text, in input order, that found it; at most
``max_pairs`` of the best, with its heap's tie-breaking at the cut), by array operations rather
than a heap walked per neighbour (see ``paraphrase_pairs``). Pairs with equal scores are listed by
``(i, j)``; sentence-transformers lists them in its heap's internal order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

from ..exceptions import InvalidArgumentError
from .paraphrase_pairs import NeighbourChunk, VectorisedPairCollector, collect_pairs_sequentially
from .retrieval import _as_f32_matrix, _rust_score_name
from .similarity import cos_sim
from .tensor import EmbeddingsLike, _convert_to_tensor

# Corpus rows the Rust engine scores per block (cache-sized; corpus_chunk_size only lowers it).
_RUST_BLOCK = 4096
# Rows scored against each other to check a user's score function for symmetry.
_SYMMETRY_PROBE_ROWS = 64


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
    pairs are kept. ``score_function`` is assumed symmetric: a pair keeps one direction's score
    (if it is not, the result is still sentence-transformers', only slower). Pairs with equal
    scores are listed in ``(i, j)`` order.
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
    if score_name is not None and not matrix.is_sparse:
        # The engine scores both directions of a pair with the same arithmetic.
        return _collect(
            lambda: _neighbours_rust(matrix, query_chunk_size, corpus_chunk_size, top_k, score_name),
            len(matrix),
            top_k,
            max_pairs,
            symmetric=True,
        )
    return _collect(
        lambda: _neighbours_torch(matrix, query_chunk_size, corpus_chunk_size, top_k, score_function),
        len(matrix),
        top_k,
        max_pairs,
        symmetric=_looks_symmetric(matrix, score_function),
    )


def _collect(
    neighbours: Callable[[], Iterator[NeighbourChunk]], rows: int, top_k: int, max_pairs: int, symmetric: bool
) -> list[list[float | int]]:
    """The pairs from a fresh neighbour stream: by the closed form when scores are symmetric, else by the walk."""
    if symmetric:
        collector = VectorisedPairCollector(rows, top_k, max_pairs)
        for chunk in neighbours():
            collector.add(*chunk)
            if collector.gave_up:
                break
        pairs = collector.result()
        if pairs is not None:
            return pairs
        # A NaN score, or a pair scored differently each way after all: score again and walk.
    return collect_pairs_sequentially(neighbours(), top_k, max_pairs)


def _looks_symmetric(matrix: Tensor, score_function: Callable[[Tensor, Tensor], Tensor]) -> bool:
    """Whether ``score_function`` scores the first rows the same both ways, bit for bit (NaN counts as not)."""
    # A cheap probe that catches plainly asymmetric callables before a whole search; the
    # collector still compares both directions of every pair it keeps and bails out if they differ.
    sample = _rows(matrix, 0, min(len(matrix), _SYMMETRY_PROBE_ROWS))
    scores = score_function(sample, sample).detach()
    return scores.shape[0] == scores.shape[1] and bool(torch.equal(scores, scores.T))


def _neighbours_rust(
    matrix: Tensor, query_chunk_size: int, corpus_chunk_size: int, top_k: int, score_name: str
) -> Iterator[NeighbourChunk]:
    """Per query chunk: each row's ``top_k + 1`` best rows and scores from the Rust engine, best first."""
    from .. import _core  # imported here so `embedforge.util` stays free of the extension

    corpus = _as_f32_matrix(matrix)
    k = min(top_k + 1, len(corpus))
    block = min(corpus_chunk_size, _RUST_BLOCK)
    for start in range(0, len(corpus), query_chunk_size):
        ids, scores = _core.top_k(corpus[start : start + query_chunk_size], corpus, k, score_name, block)
        yield start, ids, scores


def _neighbours_torch(
    matrix: Tensor,
    query_chunk_size: int,
    corpus_chunk_size: int,
    top_k: int,
    score_function: Callable[[Tensor, Tensor], Tensor],
) -> Iterator[NeighbourChunk]:
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
        # float64 holds every torch float dtype exactly (numpy has no bfloat16).
        yield start, best_ids.numpy(), best_scores.to(torch.float64).numpy()


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


__all__ = ["paraphrase_mining", "paraphrase_mining_embeddings"]
