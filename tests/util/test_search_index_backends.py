"""semantic_search_faiss / semantic_search_usearch against sentence-transformers' (the oracle) and by hand."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from embedforge.util.quantization import quantize_embeddings, semantic_search_faiss, semantic_search_usearch

RNG = np.random.default_rng(7)
CALIBRATION = RNG.standard_normal((200, 16)).astype(np.float32)
CORPUS = RNG.standard_normal((40, 16)).astype(np.float32)
QUERIES = RNG.standard_normal((3, 16)).astype(np.float32)


def _theirs() -> Any:
    return pytest.importorskip("sentence_transformers.util.quantization")


def _ids(results: list[list[dict[str, Any]]]) -> list[list[int]]:
    return [[hit["corpus_id"] for hit in hits] for hits in results]


def _scores(results: list[list[dict[str, Any]]]) -> list[list[float]]:
    return [[hit["score"] for hit in hits] for hits in results]


@pytest.mark.parametrize("precision", ["float32", "uint8", "ubinary"])
@pytest.mark.parametrize("rescore", [True, False])
def test_faiss_matches_oracle(precision: str, rescore: bool) -> None:
    pytest.importorskip("faiss")
    corpus = quantize_embeddings(CORPUS, precision, calibration_embeddings=CALIBRATION)
    options = {"corpus_precision": precision, "top_k": 5, "calibration_embeddings": CALIBRATION, "rescore": rescore}
    ours, _ = semantic_search_faiss(QUERIES, corpus_embeddings=corpus, **options)
    theirs, _ = _theirs().semantic_search_faiss(QUERIES, corpus_embeddings=corpus, **options)
    assert _ids(ours) == _ids(theirs)
    np.testing.assert_allclose(_scores(ours), _scores(theirs), rtol=1e-6)


@pytest.mark.parametrize("precision", ["float32", "int8"])
@pytest.mark.parametrize("rescore", [True, False])
def test_usearch_matches_oracle(precision: str, rescore: bool) -> None:
    pytest.importorskip("usearch")
    corpus = quantize_embeddings(CORPUS, precision, calibration_embeddings=CALIBRATION)
    options = {"corpus_precision": precision, "top_k": 5, "calibration_embeddings": CALIBRATION, "rescore": rescore}
    ours, _ = semantic_search_usearch(QUERIES, corpus_embeddings=corpus, **options)
    theirs, _ = _theirs().semantic_search_usearch(QUERIES, corpus_embeddings=corpus, **options)
    assert _ids(ours) == _ids(theirs)
    np.testing.assert_allclose(_scores(ours), _scores(theirs), rtol=1e-5)


def test_faiss_float_search_is_the_exact_dot_product_ranking() -> None:
    pytest.importorskip("faiss")
    results, _, index = semantic_search_faiss(
        QUERIES, corpus_embeddings=CORPUS, top_k=4, rescore=False, output_index=True
    )
    expected = np.argsort(-(QUERIES @ CORPUS.T), axis=1)[:, :4]
    assert _ids(results) == expected.tolist()
    # The returned index searches again without rebuilding.
    again, _ = semantic_search_faiss(QUERIES, corpus_index=index, top_k=4, rescore=False)
    assert _ids(again) == _ids(results)


@pytest.mark.parametrize("search", [semantic_search_faiss, semantic_search_usearch])
def test_small_corpus_returns_each_document_once(search: Any) -> None:
    pytest.importorskip("faiss" if search is semantic_search_faiss else "usearch")
    corpus = quantize_embeddings(CORPUS[:3], "ubinary")
    for rescore in (True, False):
        results, _ = search(QUERIES, corpus_embeddings=corpus, corpus_precision="ubinary", top_k=5, rescore=rescore)
        assert [sorted(ids) for ids in _ids(results)] == [[0, 1, 2]] * len(QUERIES)


def test_faiss_empty_corpus_gives_empty_results() -> None:
    pytest.importorskip("faiss")
    empty = np.empty((0, 2), dtype=np.uint8)
    results, _ = semantic_search_faiss(QUERIES, corpus_embeddings=empty, corpus_precision="ubinary", top_k=3)
    assert results == [[], [], []]


def test_argument_errors() -> None:
    pytest.importorskip("faiss")
    with pytest.raises(ValueError, match="not both"):
        semantic_search_faiss(QUERIES, corpus_embeddings=CORPUS, corpus_index=object())
    with pytest.raises(ValueError, match="Either corpus_embeddings or corpus_index"):
        semantic_search_faiss(QUERIES)
    with pytest.raises(ValueError, match=r"corpus_precision must be one of .* for faiss, got 'int8'"):
        semantic_search_faiss(QUERIES, corpus_embeddings=CORPUS, corpus_precision="int8")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="for usearch, got 'uint8'"):
        semantic_search_usearch(QUERIES, corpus_embeddings=CORPUS, corpus_precision="uint8")  # type: ignore[arg-type]
