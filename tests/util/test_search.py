"""embedforge.util.semantic_search and _core.top_k against sentence-transformers' semantic_search."""

from __future__ import annotations

import csv
from typing import Any

import numpy as np
import pytest
import torch

from conftest import load_st_util_module, shared_path
from embedforge import _core
from embedforge.exceptions import InvalidArgumentError
from embedforge.util import cos_sim, dot_score, euclidean_sim, manhattan_sim, semantic_search
from embedforge.util.retrieval import _rust_score_name

SCORES = [cos_sim, dot_score, euclidean_sim, manhattan_sim]


@pytest.fixture(scope="module")
def st_retrieval() -> Any:
    """sentence-transformers' util.retrieval module (the oracle)."""
    return load_st_util_module("retrieval")


def st_function(st_retrieval: Any, name: str) -> Any:
    """The oracle's score function called ``name``."""
    return getattr(load_st_util_module("similarity"), name)


def assert_same_results(ours: list[list[dict]], theirs: list[list[dict]], atol: float = 1e-5) -> None:
    """Same lengths, scores within ``atol``, ids equal wherever the score is not a near-tie."""
    assert len(ours) == len(theirs)
    for our_hits, their_hits in zip(ours, theirs):
        assert len(our_hits) == len(their_hits)
        our_scores = np.array([h["score"] for h in our_hits])
        their_scores = np.array([h["score"] for h in their_hits])
        np.testing.assert_allclose(our_scores, their_scores, atol=atol, rtol=1e-5)
        ours_by_id = {h["corpus_id"]: h["score"] for h in our_hits}
        assert all(isinstance(i, int) and isinstance(v, float) for i, v in ours_by_id.items())
        for hit in their_hits:
            # Ids may differ only between rows whose scores tie up to float rounding: a row
            # missing from ours must score no better than our last hit.
            if hit["corpus_id"] in ours_by_id:
                assert abs(ours_by_id[hit["corpus_id"]] - hit["score"]) <= atol + 1e-5 * abs(hit["score"])
            else:
                assert hit["score"] <= our_scores[-1] + atol + 1e-5 * abs(hit["score"]), hit


@pytest.mark.parametrize("score_index", range(4))
@pytest.mark.parametrize(
    ("n_queries", "n_corpus", "dim", "top_k"), [(1, 1, 3, 5), (13, 300, 16, 10), (40, 2000, 32, 100)]
)
def test_random_parity(
    st_retrieval: Any, score_index: int, n_queries: int, n_corpus: int, dim: int, top_k: int
) -> None:
    """Random normal embeddings: same ids and scores as sentence-transformers for all four scores."""
    generator = torch.Generator().manual_seed(n_corpus + score_index)
    queries = torch.randn(n_queries, dim, generator=generator)
    corpus = torch.randn(n_corpus, dim, generator=generator)
    ours_fn = SCORES[score_index]
    theirs_fn = st_function(st_retrieval, ours_fn.__name__)
    theirs = st_retrieval.semantic_search(queries, corpus, top_k=top_k, corpus_chunk_size=700, score_function=theirs_fn)
    ours = semantic_search(queries, corpus, top_k=top_k, corpus_chunk_size=700, score_function=ours_fn)
    atol = 1e-5 if ours_fn in (cos_sim,) else 2e-4
    assert_same_results(ours, theirs, atol=atol)


def test_custom_callable_uses_torch_fallback(st_retrieval: Any) -> None:
    """A score function the engine does not know goes through the torch loop, same results."""

    def scaled_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return 2 * (a @ b.T)

    assert _rust_score_name(scaled_dot) is None
    generator = torch.Generator().manual_seed(3)
    queries, corpus = torch.randn(7, 8, generator=generator), torch.randn(250, 8, generator=generator)
    for top_k in (0, 5, 300):
        ours = semantic_search(
            queries, corpus, query_chunk_size=3, corpus_chunk_size=40, top_k=top_k, score_function=scaled_dot
        )
        theirs = st_retrieval.semantic_search(
            queries, corpus, query_chunk_size=3, corpus_chunk_size=40, top_k=top_k, score_function=scaled_dot
        )
        assert ours == theirs


def test_sentence_transformers_functions_use_the_engine() -> None:
    """sentence-transformers' own score functions are recognised by module and name."""

    def cos_sim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        raise AssertionError("the engine should have been used")

    cos_sim.__module__ = "sentence_transformers.util.similarity"
    assert _rust_score_name(cos_sim) == "cosine"
    corpus = np.eye(4, dtype=np.float32)
    assert semantic_search(corpus[1], corpus, top_k=2, score_function=cos_sim)[0][0] == {"corpus_id": 1, "score": 1.0}


def test_input_kinds_and_shapes() -> None:
    """numpy, torch (any float dtype), lists and a 1-D query all work; empty inputs give empty lists."""
    rng = np.random.default_rng(0)
    corpus = rng.standard_normal((50, 6)).astype(np.float32)
    queries = rng.standard_normal((3, 6)).astype(np.float32)
    reference = semantic_search(queries, corpus, top_k=4)
    assert semantic_search(torch.from_numpy(queries), torch.from_numpy(corpus), top_k=4) == reference
    assert semantic_search(queries.tolist(), corpus.tolist(), top_k=4) == reference
    assert semantic_search(list(torch.from_numpy(queries)), list(torch.from_numpy(corpus)), top_k=4) == reference
    assert semantic_search(queries[0], corpus, top_k=4) == reference[:1]
    as_f64 = semantic_search(queries.astype(np.float64), corpus.astype(np.float64), top_k=4)
    assert [[h["corpus_id"] for h in r] for r in as_f64] == [[h["corpus_id"] for h in r] for r in reference]
    assert semantic_search(queries, corpus, top_k=1000)[0].__len__() == 50
    assert semantic_search(queries, np.zeros((0, 6), np.float32)) == [[], [], []]
    assert semantic_search(np.zeros((0, 6), np.float32), corpus) == []


def test_bad_arguments_are_named() -> None:
    """Width mismatch, NaN, bad sizes and bad score names raise InvalidArgumentError naming the argument."""
    queries, corpus = np.ones((2, 3), np.float32), np.ones((4, 5), np.float32)
    with pytest.raises(InvalidArgumentError, match="corpus"):
        semantic_search(queries, corpus)
    with pytest.raises(InvalidArgumentError, match="queries"):
        semantic_search(np.full((1, 5), np.nan, np.float32), corpus)
    with pytest.raises(InvalidArgumentError, match="top_k"):
        semantic_search(corpus, corpus, top_k=-1)
    with pytest.raises(InvalidArgumentError, match="corpus_chunk_size"):
        semantic_search(corpus, corpus, corpus_chunk_size=0)
    with pytest.raises(InvalidArgumentError, match="score"):
        _core.top_k(corpus, corpus, 1, "cosinus")
    with pytest.raises(InvalidArgumentError, match="queries"):
        _core.top_k(np.ones((2, 5), np.float64), corpus, 1)


def test_core_top_k_ties_and_blocks() -> None:
    """Exact ties go to the lower corpus index, whatever the block size."""
    corpus = np.repeat(np.eye(3, dtype=np.float32), 4, axis=0)  # every row four times
    ids, scores = _core.top_k(corpus[:1], corpus, 6, "dot", 1)
    assert ids.dtype == np.int64 and scores.dtype == np.float32 and ids.shape == (1, 6)
    assert ids[0].tolist()[:4] == [0, 1, 2, 3]
    for block in (1, 2, 5, 4096):
        again, _ = _core.top_k(corpus, corpus, 12, "euclidean", block)
        np.testing.assert_array_equal(again, _core.top_k(corpus, corpus, 12, "euclidean", 7)[0])


def test_real_embeddings_parity(st_retrieval: Any, minilm_dir: Any) -> None:
    """all-MiniLM-L6-v2 embeddings of STS sentences: same top-10 as sentence-transformers."""
    path = shared_path("stsb", "sts-dev.csv")
    with open(path, encoding="utf-8") as f:
        rows = [row for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE) if len(row) >= 7]
    sentences = list(dict.fromkeys(s for row in rows[:120] for s in (row[5], row[6])))
    from embedforge import SentenceTransformer

    model = SentenceTransformer(str(minilm_dir))
    corpus = model.encode(sentences, convert_to_tensor=True)
    queries = corpus[:: len(sentences) // 20]
    ours_by_name = {"cos_sim": cos_sim, "dot_score": dot_score, "euclidean_sim": euclidean_sim}
    for name, ours_fn in ours_by_name.items():
        ours = semantic_search(queries, corpus, top_k=10, score_function=ours_fn)
        theirs = st_retrieval.semantic_search(queries, corpus, top_k=10, score_function=st_function(st_retrieval, name))
        # torch.cdist expands |q - c|^2 through a matmul for larger inputs, which is off by
        # up to ~1e-3 for near-identical rows (a row against itself); ours sums differences.
        assert_same_results(ours, theirs, atol=1e-3 if name == "euclidean_sim" else 1e-5)
