"""Quantized search (_core.top_k_quantized / rescore_quantized, util.semantic_search_quantized)
against numpy brute force and sentence-transformers' semantic_search_faiss."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import load_st_util_module
from embedforge import _core
from embedforge.exceptions import InvalidArgumentError
from embedforge.util import quantize_embeddings
from embedforge.util.quantization import semantic_search_quantized


def ranked(scores: np.ndarray, k: int, higher_is_better: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Reference top-k per row: by score (best first), ties to the lower column."""
    key = -scores if higher_is_better else scores
    columns = np.arange(scores.shape[1])
    order = np.stack([np.lexsort((columns, row)) for row in key])[:, :k] if len(scores) else np.zeros((0, k), int)
    return order, np.take_along_axis(scores, order, axis=1)


def hamming(queries: np.ndarray, corpus: np.ndarray) -> np.ndarray:
    """Hamming distances between packed-bit rows (any byte dtype)."""
    q = np.unpackbits(queries.view(np.uint8), axis=1).astype(np.int64)
    c = np.unpackbits(corpus.view(np.uint8), axis=1).astype(np.int64)
    return (q[:, None, :] != c[None, :, :]).sum(-1)


def embeddings(rows: int, dim: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)


@pytest.mark.parametrize(("n_queries", "n_corpus", "dim"), [(1, 1, 1), (5, 37, 7), (13, 300, 64), (20, 1000, 33)])
@pytest.mark.parametrize("precision", ["int8", "uint8"])
def test_integer_dot_products_match_numpy(n_queries: int, n_corpus: int, dim: int, precision: str) -> None:
    """Exact ids and integer scores for all k and block sizes (block sizes cannot change a result)."""
    calibration = embeddings(200, dim, 0)
    queries = quantize_embeddings(embeddings(n_queries, dim, 1), precision, calibration_embeddings=calibration)
    corpus = quantize_embeddings(embeddings(n_corpus, dim, 2), precision, calibration_embeddings=calibration)
    corpus[n_corpus // 2 :] = corpus[: n_corpus - n_corpus // 2]  # duplicated rows: exact ties
    scores = queries.astype(np.int64) @ corpus.astype(np.int64).T
    for k in (1, 10, n_corpus + 5):
        want_ids, want_scores = ranked(scores, min(k, n_corpus))
        for block in (1, 17, 4096):
            ids, got = _core.top_k_quantized(queries, corpus, k, precision, block)
            assert got.dtype == np.int32 and ids.dtype == np.int64
            np.testing.assert_array_equal(got, want_scores)
            np.testing.assert_array_equal(ids, want_ids)


@pytest.mark.parametrize(("n_queries", "n_corpus", "dim"), [(1, 1, 8), (7, 50, 20), (9, 700, 384)])
@pytest.mark.parametrize("precision", ["binary", "ubinary"])
def test_hamming_distances_match_numpy(n_queries: int, n_corpus: int, dim: int, precision: str) -> None:
    """Hamming distance ranks lowest first; binary and ubinary give the same distances."""
    queries = quantize_embeddings(embeddings(n_queries, dim, 3), precision)
    corpus = quantize_embeddings(embeddings(n_corpus, dim, 4), precision)
    distances = hamming(queries, corpus)
    for k in (1, 5, n_corpus + 1):
        want_ids, want = ranked(distances, min(k, n_corpus), higher_is_better=False)
        for block in (3, 4096):
            ids, got = _core.top_k_quantized(queries, corpus, k, precision, block)
            np.testing.assert_array_equal(got, want)
            np.testing.assert_array_equal(ids, want_ids)


def dequantized(corpus: np.ndarray, precision: str, ranges: np.ndarray) -> np.ndarray:
    """Bucket lower edges, written out independently of embedforge's helpers."""
    ranges = ranges.astype(np.float32)
    step = (ranges[1] - ranges[0]) / np.float32(255)
    step = np.where(step == 0, np.float32(1), step)
    values = corpus.astype(np.float64) + (128 if precision == "int8" else 0)
    return values * step.astype(np.float64) + ranges[0].astype(np.float64)


@pytest.mark.parametrize("precision", ["int8", "uint8", "binary", "ubinary"])
def test_rescoring_matches_numpy(precision: str) -> None:
    """Float queries against dequantized candidates, in float64; best k kept, ties to the lower id."""
    dim = 19
    float_queries = embeddings(6, dim, 5)
    float_corpus = embeddings(80, dim, 6)
    ranges = np.stack([float_corpus.min(0), float_corpus.max(0)])
    if precision in ("int8", "uint8"):
        corpus = quantize_embeddings(float_corpus, precision, ranges=ranges)
        rows = dequantized(corpus, precision, ranges)
    else:
        corpus = quantize_embeddings(float_corpus, precision)
        # binary stores each packed byte minus 128, i.e. with its top bit flipped.
        packed = corpus.view(np.uint8) ^ np.uint8(0x80 if precision == "binary" else 0)
        rows = np.unpackbits(packed, axis=1)[:, :dim].astype(np.float64)
    candidates = np.random.default_rng(7).integers(0, 80, size=(6, 12)).astype(np.int64)
    candidates[:, 5] = candidates[:, 4]  # a repeated candidate keeps both copies in order
    ids, scores = _core.rescore_quantized(float_queries, corpus, precision, candidates, 7, ranges)
    full = np.einsum("ij,ikj->ik", float_queries.astype(np.float64), rows[candidates])
    order = np.stack([np.lexsort((candidates[q], -full[q])) for q in range(6)])[:, :7]
    np.testing.assert_array_equal(ids, np.take_along_axis(candidates, order, axis=1))
    np.testing.assert_allclose(scores, np.take_along_axis(full, order, axis=1), rtol=1e-12, atol=1e-12)


@pytest.fixture(scope="module")
def st_quantization() -> Any:
    """sentence-transformers' util.quantization (the oracle), when faiss is importable."""
    pytest.importorskip("faiss")
    return load_st_util_module("quantization")


@pytest.mark.parametrize("precision", ["float32", "uint8", "ubinary"])
@pytest.mark.parametrize("rescore", [True, False])
def test_semantic_search_quantized_matches_faiss(st_quantization: Any, precision: str, rescore: bool) -> None:
    """Same hits and scores as semantic_search_faiss (exact) with the same arguments."""
    calibration = embeddings(500, 32, 8)
    queries = embeddings(12, 32, 9)
    corpus = quantize_embeddings(embeddings(400, 32, 10), precision, calibration_embeddings=calibration)
    kwargs = {"corpus_precision": precision, "top_k": 8, "calibration_embeddings": calibration, "rescore": rescore}
    theirs, _ = st_quantization.semantic_search_faiss(queries, corpus_embeddings=corpus, **kwargs)
    ours, seconds = semantic_search_quantized(queries, corpus, rescore_multiplier=2, **kwargs)
    assert seconds >= 0
    assert len(ours) == len(theirs)
    for our_hits, their_hits in zip(ours, theirs):
        np.testing.assert_allclose(
            [h["score"] for h in our_hits], [h["score"] for h in their_hits], rtol=1e-5, atol=1e-4
        )
        # Integer scores tie often and faiss orders ties arbitrarily: the ids strictly better
        # than the last kept score must agree.
        higher_is_better = not (precision == "ubinary" and not rescore)
        last = our_hits[-1]["score"]

        def strictly_better(hits: list[dict], last: float = last, higher: bool = higher_is_better) -> list[int]:
            return sorted(
                h["corpus_id"] for h in hits if (h["score"] > last + 1e-4 if higher else h["score"] < last - 1e-4)
            )

        assert strictly_better(our_hits) == strictly_better(their_hits)


def test_npy_corpus_is_memory_mapped(tmp_path: Path) -> None:
    """A .npy path gives the same results as the array, and output_index hands back a memory map."""
    calibration = embeddings(300, 16, 11)
    corpus = quantize_embeddings(embeddings(300, 16, 12), "int8", calibration_embeddings=calibration)
    path = tmp_path / "corpus.npy"
    np.save(path, corpus)
    queries = embeddings(4, 16, 13)
    in_memory, _ = semantic_search_quantized(
        queries, corpus, "int8", top_k=5, calibration_embeddings=calibration, rescore_multiplier=4
    )
    mapped, _, index = semantic_search_quantized(
        queries, str(path), "int8", top_k=5, calibration_embeddings=calibration, rescore_multiplier=4, output_index=True
    )
    assert mapped == in_memory
    assert isinstance(index, np.memmap)


def test_prequantized_queries_and_warnings(caplog: pytest.LogCaptureFixture) -> None:
    """Quantized queries search without rescoring (with a warning); float32 + rescore warns too."""
    corpus_float = embeddings(50, 24, 14)
    corpus = quantize_embeddings(corpus_float, "ubinary")
    queries = quantize_embeddings(embeddings(3, 24, 15), "ubinary")
    with caplog.at_level(logging.WARNING):
        hits, _ = semantic_search_quantized(queries, corpus, "ubinary", top_k=4)
    assert "already quantized" in caplog.text
    want_ids, want = ranked(hamming(queries, corpus), 4, higher_is_better=False)
    assert [[h["corpus_id"] for h in row] for row in hits] == want_ids.tolist()
    assert [[h["score"] for h in row] for row in hits] == want.astype(float).tolist()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        semantic_search_quantized(embeddings(2, 24, 16), corpus_float, "float32", top_k=2)
    assert "Rescoring only applies" in caplog.text


def test_bad_inputs_are_named() -> None:
    """dtype/precision and width mismatches, unknown precisions, bad multipliers; k clips; empty inputs."""
    corpus = quantize_embeddings(embeddings(10, 16, 17), "int8", calibration_embeddings=embeddings(50, 16, 0))
    queries = embeddings(2, 16, 18)
    with pytest.raises(InvalidArgumentError, match="corpus_precision"):
        semantic_search_quantized(queries, corpus, "int4")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="dtype int8"):
        semantic_search_quantized(queries, corpus, "uint8")
    with pytest.raises(InvalidArgumentError, match="rescore_multiplier"):
        semantic_search_quantized(queries, corpus, "int8", rescore_multiplier=0)
    with pytest.raises(InvalidArgumentError, match="corpus"):
        _core.top_k_quantized(corpus[:, :8], corpus, 1, "int8")
    with pytest.raises(InvalidArgumentError, match="queries"):
        _core.top_k_quantized(corpus.view(np.uint8), corpus, 1, "int8")
    with pytest.raises(InvalidArgumentError, match="precision"):
        _core.top_k_quantized(corpus, corpus, 1, "int4")
    with pytest.raises(InvalidArgumentError, match="corpus"):
        _core.top_k_quantized(corpus, corpus.astype(np.float32), 1, "int8")
    with pytest.raises(InvalidArgumentError, match="candidates"):
        _core.rescore_quantized(queries, corpus, "int8", np.full((2, 3), 10, np.int64), 2, np.ones((2, 16), np.float32))
    with pytest.raises(InvalidArgumentError, match="ranges"):
        _core.rescore_quantized(queries, corpus, "int8", np.zeros((2, 3), np.int64), 2)
    with pytest.raises(InvalidArgumentError, match="queries"):
        _core.rescore_quantized(np.full((2, 16), np.nan, np.float32), corpus, "int8", np.zeros((2, 3), np.int64), 2)
    hits, _ = semantic_search_quantized(
        queries, corpus, "int8", top_k=100, calibration_embeddings=embeddings(50, 16, 0)
    )
    assert [len(row) for row in hits] == [10, 10]
    empty, _ = semantic_search_quantized(
        queries, corpus[:0], "int8", top_k=3, calibration_embeddings=embeddings(50, 16, 0)
    )
    assert empty == [[], []]
    ids, scores = _core.top_k_quantized(corpus[:0], corpus, 3, "int8")
    assert ids.shape == (0, 3) and scores.shape == (0, 3)
