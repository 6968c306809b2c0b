"""Embedding quantization: float embeddings to float32, int8, uint8, binary or ubinary.

Same semantics as ``sentence_transformers.util.quantize_embeddings``, so an index built from
embedforge-quantized embeddings can be searched with sentence-transformers-quantized queries
(and the other way round):

- ``int8``/``uint8``: each dimension's ``[min, max]`` range is cut into 255 equal steps and a
  value is mapped to ``floor((value - min) / step)``, clipped to 0..255 (minus 128 for int8).
  The ranges come from ``ranges``, else from ``calibration_embeddings``, else from the
  embeddings being quantized.
- ``ubinary``: one bit per dimension (``value > 0``), packed 8 to a byte with ``np.packbits``.
- ``binary``: the same bytes shifted by -128 into int8.

:func:`semantic_search_faiss` and :func:`semantic_search_usearch` do the same over a FAISS or usearch
index (optional dependencies, imported on call), as sentence-transformers does.
:func:`semantic_search_quantized` searches such a corpus exactly with embedforge's Rust engine
(integer dot products for int8/uint8, popcount Hamming distance for binary/ubinary), with the
arguments and rescoring semantics of sentence-transformers' ``semantic_search_faiss`` /
``semantic_search_usearch`` but no index library: the corpus array is the index.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any, Literal, cast, overload

import numpy as np
from torch import Tensor

from ..exceptions import InvalidArgumentError
from .tensor import _tensor_to_numpy

if TYPE_CHECKING:
    import faiss
    import usearch.index

logger = logging.getLogger(__name__)

#: The precisions :func:`quantize_embeddings` accepts, in sentence-transformers' order.
PRECISIONS: tuple[str, ...] = ("float32", "int8", "uint8", "binary", "ubinary")

Precision = Literal["float32", "int8", "uint8", "binary", "ubinary"]
QuantizableEmbeddings = Tensor | np.ndarray | list[Tensor] | list[np.ndarray]

# Scalar quantization uses 256 buckets, i.e. 255 steps between a dimension's min and max.
_STEPS = 255
# Below this many calibration rows the per-dimension min/max are noisy estimates.
_FEW_CALIBRATION_ROWS = 100


def _get_quantization_ranges(
    embeddings: np.ndarray,
    precision: Literal["int8", "uint8"],
    calibration_embeddings: np.ndarray | None,
) -> np.ndarray:
    """Per-dimension ``[min; max]`` (shape ``(2, dim)``) of the calibration embeddings, else of ``embeddings``."""
    if calibration_embeddings is None:
        if embeddings.ndim == 1 or embeddings.shape[0] == 1:
            # One row has min == max in every dimension, which would put every value in bucket 0.
            raise InvalidArgumentError(
                f"Cannot compute {precision} quantization ranges from a single embedding: pass `ranges` "
                "(shape (2, embedding_dim)) or `calibration_embeddings` from a representative set of embeddings."
            )
        if embeddings.shape[0] < _FEW_CALIBRATION_ROWS:
            logger.warning(
                f"Computing {precision} quantization buckets based on {len(embeddings)} embeddings. "
                f"{precision} quantization is more stable with `ranges` calculated from more embeddings "
                "or a `calibration_embeddings` that can be used to calculate the buckets."
            )
        calibration_embeddings = embeddings
    else:
        calibration_embeddings = _as_calibration_array(calibration_embeddings, embeddings.shape[-1])
    return np.vstack((np.min(calibration_embeddings, axis=0), np.max(calibration_embeddings, axis=0)))


def _as_calibration_array(calibration_embeddings: object, dim: int) -> np.ndarray:
    """Validate ``calibration_embeddings`` as a non-empty ``(rows, dim)`` float array."""
    if isinstance(calibration_embeddings, Tensor):
        calibration_embeddings = _tensor_to_numpy(calibration_embeddings)
    array = np.asarray(calibration_embeddings)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] != dim:
        raise InvalidArgumentError(
            f"calibration_embeddings must be a non-empty (num_embeddings, {dim}) array matching the embedding "
            f"dimension, got shape {array.shape}."
        )
    return array


def _as_ranges_array(ranges: object, dim: int) -> np.ndarray:
    """Validate ``ranges`` as a ``(2, dim)`` array of per-dimension minima and maxima, as float32."""
    if isinstance(ranges, Tensor):
        ranges = _tensor_to_numpy(ranges)
    array = np.asarray(ranges)
    # A (2, 1) array is accepted too: it broadcasts one [min, max] over every dimension.
    if array.ndim != 2 or array.shape[0] != 2 or array.shape[1] not in (1, dim):
        raise InvalidArgumentError(
            f"ranges must be an array of shape (2, {dim}) holding each dimension's minimum and maximum, "
            f"got shape {array.shape}."
        )
    # The bucket arithmetic happens in float32 in sentence-transformers; matching it keeps the
    # floor() at bucket edges (and so the quantized values) identical.
    return array.astype(np.float32, copy=False)


def _bucket_steps(ranges: np.ndarray) -> np.ndarray:
    """Width of one bucket per dimension; 1 where a dimension is constant so nothing divides by 0."""
    steps = (ranges[1, :] - ranges[0, :]) / _STEPS
    return np.where(steps == 0, 1, steps)


def _dequantize_embeddings(
    embeddings: np.ndarray,
    precision: Literal["int8", "uint8"],
    ranges: np.ndarray,
) -> np.ndarray:
    """Map int8/uint8 bucket indices back to values (the bucket's lower edge), for rescoring float queries."""
    ranges = np.asarray(ranges).astype(np.float32, copy=False)
    # Widen before adding the int8 offset back: 127 + 128 does not fit in int8.
    values = np.asarray(embeddings).astype(np.float64)
    if precision == "int8":
        values += 128
    return values * _bucket_steps(ranges) + ranges[0]


def _scalar_quantize(
    embeddings: np.ndarray,
    precision: Literal["int8", "uint8"],
    ranges: np.ndarray | None,
    calibration_embeddings: np.ndarray | None,
) -> np.ndarray:
    """Quantize to int8/uint8 with 256 equal-width buckets per dimension."""
    if embeddings.ndim > 2:
        # Per-dimension ranges are taken over axis 0, which is only meaningful for rows of vectors.
        raise InvalidArgumentError(
            f"embeddings must be 1-D or 2-D for {precision} quantization (or a list of 2-D multi-vector "
            f"matrices), got shape {embeddings.shape}."
        )
    if ranges is None:
        ranges = _get_quantization_ranges(embeddings, precision, calibration_embeddings)
    ranges = _as_ranges_array(ranges, embeddings.shape[-1])
    starts = ranges[0, :]
    buckets = np.clip(np.floor((embeddings - starts) / _bucket_steps(ranges)), 0, _STEPS)
    if precision == "uint8":
        return buckets.astype(np.uint8)
    # int8 shifts the same 0..255 buckets down to -128..127.
    return (buckets - 128).astype(np.int8)


@overload
def quantize_embeddings(
    embeddings: Tensor | np.ndarray,
    precision: Precision,
    ranges: np.ndarray | None = None,
    calibration_embeddings: np.ndarray | None = None,
) -> np.ndarray: ...


@overload
def quantize_embeddings(
    embeddings: QuantizableEmbeddings,
    precision: Precision,
    ranges: np.ndarray | None = None,
    calibration_embeddings: np.ndarray | None = None,
) -> np.ndarray | list[np.ndarray]: ...


def quantize_embeddings(
    embeddings: QuantizableEmbeddings,
    precision: Precision,
    ranges: np.ndarray | None = None,
    calibration_embeddings: np.ndarray | None = None,
) -> np.ndarray | list[np.ndarray]:
    """Quantize float embeddings to ``precision`` ("float32", "int8", "uint8", "binary" or "ubinary").

    Args:
        embeddings: Float embeddings: a tensor, an array, a list of 1-D rows, or a list of 2-D
            multi-vector matrices (one per document, with varying numbers of rows).
        precision: The target precision.
        ranges: For int8/uint8 only: a ``(2, embedding_dim)`` array of each dimension's minimum
            and maximum. Default: computed from ``calibration_embeddings``.
        calibration_embeddings: For int8/uint8 only: embeddings whose per-dimension min/max give
            the ranges. Default: the embeddings being quantized (fragile for small batches).

    Returns:
        A numpy array (float32, int8 or uint8; binary precisions hold ``ceil(dim / 8)`` bytes per
        embedding), or a list of them for a list of multi-vector matrices, which then share one
        set of ranges.

    Raises:
        InvalidArgumentError: (a ``ValueError``) for an unknown precision, integer input, badly
            shaped ``ranges``/``calibration_embeddings``, or int8/uint8 ranges that would have to
            be computed from a single embedding.
    """
    # Validated first, so a typo fails the same way whatever the embeddings are.
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise InvalidArgumentError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}.")

    if isinstance(embeddings, Tensor):
        embeddings = _tensor_to_numpy(embeddings)
    elif isinstance(embeddings, list):
        if not embeddings:
            return []
        if isinstance(embeddings[0], Tensor):
            embeddings = [_tensor_to_numpy(item) for item in embeddings]
        if isinstance(embeddings[0], np.ndarray) and embeddings[0].ndim == 2:
            return _quantize_multi_vector(embeddings, precision, ranges, calibration_embeddings)
        embeddings = np.array(embeddings)
    elif not isinstance(embeddings, np.ndarray):
        raise InvalidArgumentError(
            f"embeddings must be a tensor, a numpy array or a list of them, got {type(embeddings).__name__}."
        )

    if embeddings.dtype in (np.int8, np.uint8):
        raise InvalidArgumentError(
            f"embeddings must be float to be quantized, got already-quantized {embeddings.dtype} embeddings."
        )

    if embeddings.ndim == 2 and embeddings.shape[0] == 0 and precision != "float32":
        # Nothing to calibrate or pack (e.g. a fully masked multi-vector document): return an
        # empty result with the width and dtype a non-empty one would have.
        dim = embeddings.shape[1]
        width = (dim + 7) // 8 if precision.endswith("binary") else dim
        return np.zeros((0, width), dtype=np.int8 if precision in ("int8", "binary") else np.uint8)

    if precision == "float32":
        return embeddings.astype(np.float32)
    if precision in ("int8", "uint8"):
        return _scalar_quantize(embeddings, precision, ranges, calibration_embeddings)

    packed = np.packbits(embeddings > 0, axis=-1)
    if precision == "ubinary":
        return packed
    # Widen so the -128 shift cannot wrap around, then store the signed byte.
    return (packed.astype(np.int16) - 128).astype(np.int8)


def _quantize_multi_vector(
    matrices: list[np.ndarray],
    precision: Precision,
    ranges: np.ndarray | None,
    calibration_embeddings: np.ndarray | None,
) -> list[np.ndarray]:
    """Quantize each multi-vector matrix, with int8/uint8 ranges calibrated once for all of them."""
    if precision in ("int8", "uint8") and ranges is None:
        # One shared set of ranges keeps token scores comparable across documents.
        if calibration_embeddings is not None:
            ranges = _get_quantization_ranges(matrices[0], precision, calibration_embeddings)
        else:
            stacked = np.concatenate(matrices, axis=0)
            if len(stacked):
                ranges = _get_quantization_ranges(stacked, precision, None)
    return [
        quantize_embeddings(matrix, precision=precision, ranges=ranges, calibration_embeddings=calibration_embeddings)
        for matrix in matrices
    ]


def _load_corpus(corpus_embeddings: object) -> np.ndarray:
    """The corpus as a numpy array; a ``.npy`` path is opened as a read-only memory map."""
    if isinstance(corpus_embeddings, (str, os.PathLike)):
        return np.load(os.fspath(corpus_embeddings), mmap_mode="r")
    if isinstance(corpus_embeddings, Tensor):
        return _tensor_to_numpy(corpus_embeddings)
    if isinstance(corpus_embeddings, np.ndarray):
        return corpus_embeddings
    raise InvalidArgumentError(
        "corpus_embeddings must be a numpy array, a tensor or the path of a .npy file, "
        f"got {type(corpus_embeddings).__name__}."
    )


# The numpy dtype each corpus precision is stored in (what quantize_embeddings returns).
_STORAGE_DTYPES = {
    "float32": np.float32,
    "int8": np.int8,
    "uint8": np.uint8,
    "binary": np.int8,
    "ubinary": np.uint8,
}


def semantic_search_quantized(
    query_embeddings: np.ndarray | Tensor,
    corpus_embeddings: np.ndarray | Tensor | str | os.PathLike[str],
    corpus_precision: Precision = "float32",
    top_k: int = 10,
    ranges: np.ndarray | None = None,
    calibration_embeddings: np.ndarray | None = None,
    rescore: bool = True,
    rescore_multiplier: int = 2,
    output_index: bool = False,
) -> tuple[list[list[dict[str, int | float]]], float] | tuple[list[list[dict[str, int | float]]], float, np.ndarray]:
    """Exact search of a (quantized) corpus with float or quantized queries, with optional rescoring.

    The arguments mean what they mean in sentence-transformers' ``semantic_search_faiss`` /
    ``semantic_search_usearch``; the search itself is exact and runs in embedforge's Rust engine.

    Args:
        query_embeddings: Float query embeddings (quantized here like the corpus, and kept for
            rescoring), or queries already quantized to ``corpus_precision`` (no rescoring).
        corpus_embeddings: The corpus as :func:`quantize_embeddings` returned it for
            ``corpus_precision``, or the path of a ``.npy`` file holding it, which is memory-mapped
            and streamed block by block (so it may be larger than RAM).
        corpus_precision: "float32" (dot product), "int8"/"uint8" (integer dot product of the
            bucket indices) or "binary"/"ubinary" (Hamming distance of the sign bits).
        top_k: Results per query.
        ranges: int8/uint8 only: the ``(2, dim)`` per-dimension minima and maxima the corpus was
            quantized with; used to quantize the queries and to dequantize candidates for rescoring.
        calibration_embeddings: int8/uint8 only: embeddings whose per-dimension min/max give the
            ranges when ``ranges`` is None (else the queries' own ranges are used, which is fragile).
        rescore: With float queries and a quantized corpus, fetch ``top_k * rescore_multiplier``
            candidates and re-rank them by the float query's dot product with the dequantized
            candidate (bucket lower edges for int8/uint8, 0/1 bits for binary).
        rescore_multiplier: Oversampling factor for rescoring.
        output_index: Also return the corpus array that was searched (the "index"; a memory map
            when a path was given), to pass back as ``corpus_embeddings`` next time.

    Returns:
        ``(results, seconds)`` or ``(results, seconds, corpus)``: per query a list of
        ``{"corpus_id", "score"}`` dicts, best first. Scores are float dot products (float32,
        and after rescoring), integer dot products (int8/uint8, highest first) or Hamming distances
        (binary/ubinary, lowest first); ties go to the lower corpus id. ``seconds`` times the
        search and rescoring, not the query quantization.

    Raises:
        InvalidArgumentError: (a ``ValueError``) for an unknown precision, a corpus whose dtype
            does not match it, mismatched widths, NaN queries, or a non-positive multiplier.
    """
    from .. import _core  # imported here so `embedforge.util` stays free of the extension

    if not isinstance(corpus_precision, str) or corpus_precision not in PRECISIONS:
        raise InvalidArgumentError(f"corpus_precision must be one of {list(PRECISIONS)}, got {corpus_precision!r}.")
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 0:
        raise InvalidArgumentError(f"top_k must be a non-negative integer, got {top_k!r}.")
    if not isinstance(rescore_multiplier, int) or isinstance(rescore_multiplier, bool) or rescore_multiplier < 1:
        raise InvalidArgumentError(f"rescore_multiplier must be a positive integer, got {rescore_multiplier!r}.")

    corpus = _load_corpus(corpus_embeddings)
    expected = _STORAGE_DTYPES[corpus_precision]
    if corpus.ndim != 2:
        raise InvalidArgumentError(f"corpus_embeddings must be 2-D, got shape {corpus.shape}.")
    if corpus_precision == "float32" and corpus.dtype != np.float32 and np.issubdtype(corpus.dtype, np.floating):
        corpus = corpus.astype(np.float32)
    if corpus.dtype != expected:
        raise InvalidArgumentError(
            f"corpus_embeddings has dtype {corpus.dtype}, but corpus_precision={corpus_precision!r} is stored as "
            f"{np.dtype(expected).name}: quantize the corpus with quantize_embeddings(..., precision="
            f"{corpus_precision!r}) or pass the matching corpus_precision."
        )

    queries = (
        _tensor_to_numpy(query_embeddings) if isinstance(query_embeddings, Tensor) else np.asarray(query_embeddings)
    )
    if queries.ndim == 1:
        queries = queries[None, :]
    rescore_queries: np.ndarray | None = None
    k = top_k
    if queries.dtype in (np.int8, np.uint8):
        if rescore and corpus_precision != "float32":
            logger.warning(
                "Rescoring needs float query embeddings, but the queries are already quantized: "
                "searching without rescoring. Pass float queries or rescore=False."
            )
    else:
        queries = queries.astype(np.float32, copy=False)
        if rescore:
            if corpus_precision != "float32":
                rescore_queries = queries
                k = top_k * rescore_multiplier
            else:
                logger.warning(
                    "Rescoring only applies to a quantized corpus; this corpus is float32, so the float search "
                    "is already exact. Pass rescore=False to silence this warning."
                )
        if corpus_precision in ("int8", "uint8") and ranges is None:
            ranges = _get_quantization_ranges(queries, corpus_precision, calibration_embeddings)
        if corpus_precision != "float32":
            queries = quantize_embeddings(queries, corpus_precision, ranges=ranges)

    start = time.perf_counter()
    if corpus_precision == "float32":
        ids, scores = _core.top_k(np.ascontiguousarray(queries, dtype=np.float32), corpus, k, "dot")
        values: np.ndarray = scores
    else:
        ids, int_scores = _core.top_k_quantized(queries, corpus, k, corpus_precision)
        values = int_scores
        if rescore_queries is not None:
            float_ranges = None
            if ranges is not None:
                float_ranges = np.ascontiguousarray(
                    np.broadcast_to(_as_ranges_array(ranges, corpus.shape[1]), (2, corpus.shape[1])), dtype=np.float32
                )
            ids, values = _core.rescore_quantized(rescore_queries, corpus, corpus_precision, ids, top_k, float_ranges)
    seconds = time.perf_counter() - start

    results: list[list[dict[str, int | float]]] = [
        [{"corpus_id": int(i), "score": float(s)} for i, s in zip(id_row, score_row)]
        for id_row, score_row in zip(ids.tolist(), values.tolist())
    ]
    if output_index:
        return results, seconds, corpus
    return results, seconds


__all__ = ["PRECISIONS", "quantize_embeddings", "semantic_search_quantized"]


SearchResults = list[list[dict[str, int | float]]]

_FAISS_PRECISIONS = ("float32", "uint8", "ubinary")
_USEARCH_PRECISIONS = ("float32", "int8", "ubinary", "binary")


def _check_corpus_source(
    corpus_embeddings: Any, corpus_index: Any, corpus_precision: str, allowed: tuple[str, ...], library: str
) -> None:
    """Exactly one of embeddings or index, and a precision the index library supports."""
    if corpus_embeddings is not None and corpus_index is not None:
        raise ValueError("Only corpus_embeddings or corpus_index should be used, not both.")
    if corpus_embeddings is None and corpus_index is None:
        raise ValueError("Either corpus_embeddings or corpus_index should be used.")
    if corpus_precision not in allowed:
        quoted = ", ".join(f'"{name}"' for name in allowed)
        raise ValueError(f"corpus_precision must be one of {quoted} for {library}, got {corpus_precision!r}.")


def _prepare_index_queries(
    query_embeddings: np.ndarray,
    corpus_precision: str,
    corpus_is_quantized: bool,
    top_k: int,
    ranges: np.ndarray | None,
    calibration_embeddings: np.ndarray | None,
    rescore: bool,
    rescore_multiplier: int,
    function_name: str,
) -> tuple[np.ndarray, np.ndarray | None, int, np.ndarray | None]:
    """Quantize float queries like the corpus and decide on rescoring.

    Returns the queries to search with, the float queries to rescore with (None: no rescoring),
    how many candidates to fetch, and the int8/uint8 ranges used (needed again to dequantize).
    """
    if query_embeddings.dtype in (np.uint8, np.int8):
        if rescore:
            logger.warning(
                "Rescoring is enabled but the query embeddings are quantized. Either pass `rescore=False` "
                "or don't quantize the query embeddings."
            )
        return query_embeddings, None, top_k, ranges

    rescore_queries = None
    k = top_k
    if rescore:
        if corpus_is_quantized:
            rescore_queries = query_embeddings
            k = top_k * rescore_multiplier
        else:
            logger.warning(
                "Rescoring is enabled but the corpus is not quantized. Either pass `rescore=False` or quantize "
                'the corpus embeddings with `quantize_embeddings(embeddings, precision="...")` and pass '
                f'`corpus_precision="..."` to `{function_name}`.'
            )
    # Dequantizing candidates for rescoring needs the very ranges the queries were quantized with.
    if rescore_queries is not None and corpus_precision in ("int8", "uint8") and ranges is None:
        scalar_precision = cast("Literal['int8', 'uint8']", corpus_precision)
        ranges = _get_quantization_ranges(query_embeddings, scalar_precision, calibration_embeddings)
    queries = quantize_embeddings(
        query_embeddings,
        precision=cast("Precision", corpus_precision),
        ranges=ranges,
        calibration_embeddings=calibration_embeddings,
    )
    return queries, rescore_queries, k, ranges


def _rescore_candidates(
    rescore_queries: np.ndarray,
    candidates: np.ndarray,
    valid: np.ndarray,
    corpus_precision: str,
    ranges: np.ndarray | None,
    top_k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Re-rank quantized candidates by their dot product with the float query.

    ``candidates`` is ``(queries, k, stored width)`` in the corpus precision; ``valid`` marks the
    slots that hold a real match. Returns, per query, the positions (into the k candidates) of the
    best ``top_k`` and their new scores; padding slots sort last with score -inf.
    """
    if corpus_precision in ("ubinary", "binary"):
        # packbits padded the dimension up to whole bytes: cut the padding bits off again.
        unpacked = np.unpackbits(candidates.astype(np.uint8), axis=-1)[..., : rescore_queries.shape[-1]]
        values: np.ndarray = unpacked.astype(np.int64)
    elif corpus_precision in ("int8", "uint8"):
        values = _dequantize_embeddings(candidates.astype(np.int64), corpus_precision, ranges)  # type: ignore[arg-type]
    else:
        values = candidates.astype(np.float64)
    # One dot product per (query, candidate): query i against each of its own k candidates.
    scores = np.einsum("qd,qkd->qk", rescore_queries, values).astype(np.float64, copy=False)
    scores[~valid] = -np.inf
    order = np.argsort(-scores, axis=1, kind="stable")[:, :top_k]
    return order, np.take_along_axis(scores, order, axis=1)


def _collect_results(scores: np.ndarray, ids: np.ndarray, valid: np.ndarray) -> SearchResults:
    """Per query, the valid matches as ``{"corpus_id", "score"}`` dicts, in the order given."""
    return [
        [
            {"corpus_id": int(corpus_id), "score": float(score)}
            for score, corpus_id, keep in zip(score_row, id_row, valid_row)
            if keep
        ]
        for score_row, id_row, valid_row in zip(scores, ids, valid)
    ]


def semantic_search_faiss(
    query_embeddings: np.ndarray,
    corpus_embeddings: np.ndarray | None = None,
    corpus_index: faiss.Index | None = None,
    corpus_precision: Literal["float32", "uint8", "ubinary"] = "float32",
    top_k: int = 10,
    ranges: np.ndarray | None = None,
    calibration_embeddings: np.ndarray | None = None,
    rescore: bool = True,
    rescore_multiplier: int = 2,
    exact: bool = True,
    output_index: bool = False,
) -> tuple[SearchResults, float] | tuple[SearchResults, float, faiss.Index]:
    """Search a (quantized) corpus with a FAISS index; needs the optional ``faiss-cpu`` package.

    Args:
        query_embeddings: Query embeddings, ideally float so they can be used for rescoring.
        corpus_embeddings: The corpus, as :func:`quantize_embeddings` returned it for
            ``corpus_precision``; an index is built from it. Give this or ``corpus_index``.
        corpus_index: A FAISS index built earlier (``output_index=True`` returns one).
        corpus_precision: "float32" or "uint8" (inner-product index) or "ubinary" (binary Hamming index).
        top_k: Results per query (fewer when the index holds fewer vectors).
        ranges: uint8 only: the ``(2, dim)`` per-dimension ranges the corpus was quantized with.
        calibration_embeddings: uint8 only: embeddings giving the ranges when ``ranges`` is None
            (else the queries' own ranges are used, which is fragile).
        rescore: With float queries and a quantized corpus, fetch ``top_k * rescore_multiplier``
            candidates and re-rank them by the float query's dot product with each dequantized candidate.
        rescore_multiplier: Oversampling factor for rescoring.
        exact: Exact (flat) index, else an approximate HNSW index (M=16).
        output_index: Also return the index, to search again without rebuilding it.

    Returns:
        ``(results, seconds)`` or ``(results, seconds, index)``: per query a list of
        ``{"corpus_id": int, "score": float}``, best first.

    Raises:
        ValueError: if both or neither of ``corpus_embeddings`` and ``corpus_index`` are given, or
            for a precision FAISS cannot search.
    """
    import faiss

    _check_corpus_source(corpus_embeddings, corpus_index, corpus_precision, _FAISS_PRECISIONS, "faiss")
    # Float and binary FAISS indexes share no base class: the index is duck-typed from here on.
    index: Any = corpus_index
    if index is None:
        assert corpus_embeddings is not None  # checked above; narrows the type
        dim = corpus_embeddings.shape[1]
        if corpus_precision == "ubinary":
            bits = dim * 8
            index = faiss.IndexBinaryFlat(bits) if exact else faiss.IndexBinaryHNSW(bits, 16)
        else:
            index = faiss.IndexFlatIP(dim) if exact else faiss.IndexHNSWFlat(dim, 16, faiss.METRIC_INNER_PRODUCT)
        index.add(corpus_embeddings)

    queries, rescore_queries, k, ranges = _prepare_index_queries(
        query_embeddings,
        corpus_precision,
        corpus_precision != "float32",
        top_k,
        ranges,
        calibration_embeddings,
        rescore,
        rescore_multiplier,
        "semantic_search_faiss",
    )

    start = time.time()
    scores, ids = index.search(queries, k)
    # FAISS fills short result lists with id -1: those slots are no match.
    valid = ids != -1
    if rescore_queries is not None:
        # reconstruct(-1) would read out of bounds, so padding slots get a zero vector instead.
        stored_width = index.d // 8 if corpus_precision == "ubinary" else index.d
        stored_dtype = np.uint8 if corpus_precision == "ubinary" else np.float32
        placeholder = np.zeros(stored_width, dtype=stored_dtype)
        candidates = np.array(
            [[index.reconstruct(int(i)) if i != -1 else placeholder for i in id_row] for id_row in ids]
        ).reshape(len(ids), ids.shape[1], stored_width)
        order, scores = _rescore_candidates(rescore_queries, candidates, valid, corpus_precision, ranges, top_k)
        ids = np.take_along_axis(ids, order, axis=1)
        valid = np.take_along_axis(valid, order, axis=1)
    seconds = time.time() - start

    results = _collect_results(scores, ids, valid)
    if output_index:
        return results, seconds, index
    return results, seconds


def semantic_search_usearch(
    query_embeddings: np.ndarray,
    corpus_embeddings: np.ndarray | None = None,
    corpus_index: usearch.index.Index | None = None,
    corpus_precision: Literal["float32", "int8", "ubinary", "binary"] = "float32",
    top_k: int = 10,
    ranges: np.ndarray | None = None,
    calibration_embeddings: np.ndarray | None = None,
    rescore: bool = True,
    rescore_multiplier: int = 2,
    exact: bool = True,
    output_index: bool = False,
) -> tuple[SearchResults, float] | tuple[SearchResults, float, usearch.index.Index]:
    """Search a (quantized) corpus with a usearch index; needs the optional ``usearch`` package.

    Args:
        query_embeddings: Query embeddings, ideally float so they can be used for rescoring.
        corpus_embeddings: The corpus, as :func:`quantize_embeddings` returned it for
            ``corpus_precision``; an index is built from it. Give this or ``corpus_index``.
        corpus_index: A usearch index built earlier (``output_index=True`` returns one).
        corpus_precision: "float32" (cosine), "int8" (inner product) or "ubinary"/"binary"
            (Hamming over the sign bits).
        top_k: Results per query (fewer when the index holds fewer vectors).
        ranges: int8 only: the ``(2, dim)`` per-dimension ranges the corpus was quantized with.
        calibration_embeddings: int8 only: embeddings giving the ranges when ``ranges`` is None.
        rescore: With float queries and a quantized index, fetch ``top_k * rescore_multiplier``
            candidates and re-rank them by the float query's dot product with each dequantized candidate.
        rescore_multiplier: Oversampling factor for rescoring.
        exact: Exact (brute-force) search, else usearch's approximate graph search.
        output_index: Also return the index, to search again without rebuilding it.

    Returns:
        ``(results, seconds)`` or ``(results, seconds, index)``: per query a list of
        ``{"corpus_id": int, "score": float}``; before rescoring the scores are usearch distances
        (lower is better), after rescoring dot products (higher is better).

    Raises:
        ValueError: if both or neither of ``corpus_embeddings`` and ``corpus_index`` are given, or
            for a precision usearch cannot search.
    """
    from usearch.compiled import ScalarKind
    from usearch.index import Index

    _check_corpus_source(corpus_embeddings, corpus_index, corpus_precision, _USEARCH_PRECISIONS, "usearch")
    if corpus_index is None:
        assert corpus_embeddings is not None  # checked above; narrows the type
        dim = corpus_embeddings.shape[1]
        if corpus_precision == "float32":
            corpus_index = Index(ndim=dim, metric="cos", dtype="f32")
        elif corpus_precision == "int8":
            corpus_index = Index(ndim=dim, metric="ip", dtype="i8")
        else:
            corpus_index = Index(ndim=dim * 8, metric="hamming", dtype="b1")
            if corpus_precision == "binary":
                # A b1 index reads raw bits: undo the -128 shift quantize_embeddings applied for "binary".
                corpus_embeddings = corpus_embeddings.view(np.uint8) ^ 0x80
        corpus_index.add(np.arange(len(corpus_embeddings)), corpus_embeddings)

    queries, rescore_queries, k, ranges = _prepare_index_queries(
        query_embeddings,
        corpus_precision,
        # A passed-in index decides for itself whether it is quantized.
        corpus_index.dtype != ScalarKind.F32,
        top_k,
        ranges,
        calibration_embeddings,
        rescore,
        rescore_multiplier,
        "semantic_search_usearch",
    )

    start = time.time()
    if corpus_precision == "binary":
        queries = queries.view(np.uint8) ^ 0x80
    matches = corpus_index.search(queries, count=k, exact=exact)
    scores = np.atleast_2d(matches.distances)
    ids = np.atleast_2d(matches.keys)
    # usearch pads short result lists and reports each query's real match count beside them; a
    # single query's Matches has no counts, and then every slot is real.
    counts = np.reshape(np.asarray(getattr(matches, "counts", ids.shape[1])), (-1, 1))
    valid = np.arange(ids.shape[1]) < counts
    if rescore_queries is not None and valid.any():
        # get() knows no key for padding slots: look up any real key there; its score is discarded.
        lookup_ids = np.where(valid, ids, ids[valid][0])
        candidates = np.array([corpus_index.get(id_row) for id_row in lookup_ids])
        order, scores = _rescore_candidates(rescore_queries, candidates, valid, corpus_precision, ranges, top_k)
        ids = np.take_along_axis(ids, order, axis=1)
        valid = np.take_along_axis(valid, order, axis=1)
    seconds = time.time() - start

    results = _collect_results(scores, ids, valid)
    if output_index:
        return results, seconds, corpus_index
    return results, seconds
