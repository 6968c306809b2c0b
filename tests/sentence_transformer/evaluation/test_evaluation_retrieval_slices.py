"""InformationRetrievalEvaluator's memory-bounded paths: sliced torch scoring, id lookups, static encode.

Each test compares with sentence-transformers (the oracle) or with the full score matrix, so the
bounded-memory code paths must give exactly what the whole-matrix computation gives.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conftest import embedforge_static, random_sentences, st_static, static_weights
from embedforge.sentence_transformer.evaluation import information_retrieval
from embedforge.sentence_transformer.evaluation.information_retrieval import InformationRetrievalEvaluator
from embedforge.util import cos_sim, dot_score, euclidean_sim
from test_evaluation_retrieval import FixedModel

N_QUERIES = 160  # at least _MIN_SLICED_QUERIES, so the column slices are used
N_DOCS = 3000


def _random_table(dim: int = 32) -> tuple[dict[str, str], dict[str, str], dict[str, set[str]], FixedModel]:
    """Queries, documents and judgements over seeded random embeddings, with exact and near ties."""
    generator = torch.Generator().manual_seed(7)
    doc_vectors = torch.randn(N_DOCS, dim, generator=generator)
    # Exact duplicates (tied scores for every query) and nudged copies (ties within float rounding).
    doc_vectors[1500:1600] = doc_vectors[100:200]
    doc_vectors[2000:2100] = doc_vectors[300:400] * (1 + 1e-7)
    query_vectors = doc_vectors[torch.randint(0, N_DOCS, (N_QUERIES,), generator=generator)]
    query_vectors = query_vectors + 0.5 * torch.randn(N_QUERIES, dim, generator=generator)
    table = {f"doc {i}": v for i, v in enumerate(doc_vectors)} | {f"query {i}": v for i, v in enumerate(query_vectors)}
    # Ids in shuffled order, so corpus position and corpus-id order differ.
    corpus_ids = [f"c{i:05d}" for i in torch.randperm(N_DOCS, generator=generator).tolist()]
    corpus = {cid: f"doc {i}" for i, cid in enumerate(corpus_ids)}
    queries = {f"q{i}": f"query {i}" for i in range(N_QUERIES)}
    relevant = {
        f"q{i}": {corpus_ids[j] for j in torch.randint(0, N_DOCS, (3,), generator=generator).tolist()}
        for i in range(N_QUERIES)
    }
    # The duplicated rows' queries: relevant documents sit exactly in ties.
    for i in range(0, N_QUERIES, 4):
        relevant[f"q{i}"].add(corpus_ids[100 + i % 100])
    return queries, corpus, relevant, FixedModel(table)


def _slice_widths(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Make slices narrow (~500 columns) and record the (queries, columns) of every torch score call."""
    monkeypatch.setattr(information_retrieval, "_WORKSPACE_BYTES", 4 * N_QUERIES * 500)
    monkeypatch.setattr(information_retrieval, "_MIN_SLICE_COLUMNS", 100)
    shapes: list[tuple[int, int]] = []
    original = InformationRetrievalEvaluator._chunk_top_k

    def spy(self: Any, pair_scores: torch.Tensor, top_k: int, chunk_ranks: torch.Tensor) -> Any:
        shapes.append(tuple(pair_scores.shape))
        return original(self, pair_scores, top_k, chunk_ranks)

    monkeypatch.setattr(InformationRetrievalEvaluator, "_chunk_top_k", spy)
    return shapes


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"corpus_chunk_size": 1100, "map_at_k": [10, 700]},
        {"score_functions": {"cos": cos_sim, "dot": dot_score, "l2": euclidean_sim}, "corpus_chunk_size": 2000},
    ],
)
def test_forced_torch_scoring_in_slices_matches_sentence_transformers(
    options: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    st_eval = pytest.importorskip("sentence_transformers.sentence_transformer.evaluation")
    queries, corpus, relevant, model = _random_table()
    # Every chunk goes through the torch fallback, i.e. through the column slices.
    monkeypatch.setattr(InformationRetrievalEvaluator, "_order_is_fragile", lambda *args: True)
    shapes = _slice_widths(monkeypatch)
    kwargs = {"name": "sliced", "write_predictions": True, **options}
    got = InformationRetrievalEvaluator(queries, corpus, relevant, **kwargs)(model, output_path=str(tmp_path / "ours"))
    want = st_eval.InformationRetrievalEvaluator(queries, corpus, relevant, **kwargs)(
        model, output_path=str(tmp_path / "theirs")
    )
    assert shapes and all(rows == N_QUERIES and 250 <= columns <= 500 for rows, columns in shapes)
    assert list(got) == list(want)
    np.testing.assert_allclose([got[k] for k in want], list(want.values()), rtol=0, atol=1e-6)
    # Predictions: the same ids in the same order with the same (float32) scores.
    for file in sorted((tmp_path / "theirs").glob("*.jsonl")):
        ours = [json.loads(line)["results"] for line in (tmp_path / "ours" / file.name).read_text().splitlines()]
        theirs = [json.loads(line)["results"] for line in file.read_text().splitlines()]
        assert ours == theirs


def test_natural_fallback_on_ties_matches_sentence_transformers(monkeypatch: pytest.MonkeyPatch) -> None:
    st_eval = pytest.importorskip("sentence_transformers.sentence_transformer.evaluation")
    queries, corpus, relevant, model = _random_table()
    shapes = _slice_widths(monkeypatch)
    got = InformationRetrievalEvaluator(queries, corpus, relevant, corpus_chunk_size=1600)(model)
    want = st_eval.InformationRetrievalEvaluator(queries, corpus, relevant, corpus_chunk_size=1600)(model)
    # The duplicated documents put relevant ones in exact ties, so some chunk needed torch scoring.
    assert shapes
    assert list(got) == list(want)
    np.testing.assert_allclose([got[k] for k in want], list(want.values()), rtol=0, atol=1e-6)


@pytest.mark.parametrize("score_function", [cos_sim, dot_score, euclidean_sim])
def test_column_slices_are_bitwise_the_full_product(score_function: Any) -> None:
    # The premise of the sliced fallback, checked on this machine's BLAS at the sizes it uses:
    # many query rows, slices of a few thousand columns at arbitrary offsets.
    generator = torch.Generator().manual_seed(3)
    queries = torch.randn(information_retrieval._MIN_SLICED_QUERIES, 384, generator=generator)
    corpus = torch.randn(20000, 384, generator=generator)
    full = score_function(queries, corpus)
    for low, high in [(0, 2048), (2048, 6144), (6001, 14193), (17952, 20000)]:
        assert torch.equal(score_function(queries, corpus[low:high]), full[:, low:high])


def test_few_queries_score_the_whole_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    # Below _MIN_SLICED_QUERIES the BLAS may round slices differently, so the chunk is scored whole.
    queries, corpus, relevant, model = _random_table()
    few = dict(list(queries.items())[:5])
    monkeypatch.setattr(InformationRetrievalEvaluator, "_order_is_fragile", lambda *args: True)
    shapes = _slice_widths(monkeypatch)
    InformationRetrievalEvaluator(few, corpus, relevant, corpus_chunk_size=1000)(model)
    assert shapes == [(5, 1000)] * 3


def test_relevant_ids_outside_the_corpus_count_like_sentence_transformers() -> None:
    st_eval = pytest.importorskip("sentence_transformers.sentence_transformer.evaluation")
    queries, corpus, relevant, model = _random_table()
    # Unknown string ids, and an int id that cannot even be compared with the string corpus ids.
    relevant = {qid: docs | ({"missing", 12} if int(qid[1:]) % 3 == 0 else set()) for qid, docs in relevant.items()}
    got = InformationRetrievalEvaluator(queries, corpus, relevant)(model)
    want = st_eval.InformationRetrievalEvaluator(queries, corpus, relevant)(model)
    assert list(got) == list(want)
    np.testing.assert_allclose([got[k] for k in want], list(want.values()), rtol=0, atol=1e-6)


def test_corpus_positions_by_binary_search() -> None:
    corpus = {cid: "text" for cid in ["b", "a", "d", "c"]}
    evaluator = InformationRetrievalEvaluator({"q": "text"}, corpus, {"q": {"a"}})
    assert [evaluator._corpus_position(cid) for cid in ["a", "b", "c", "d", "e", "", 3]] == [
        1,
        0,
        3,
        2,
        None,
        None,
        None,
    ]
    assert evaluator.get_corpus_id_ranks().tolist() == [1, 0, 3, 2]


def test_static_model_evaluation_matches_sentence_transformers() -> None:
    # encode_document on a StaticEmbedding model takes the Rust path (more than one 16,384-text
    # part, filled into one array); the embeddings, hence the metrics, must be sentence-transformers'.
    st_eval = pytest.importorskip("sentence_transformers.sentence_transformer.evaluation")
    weights = static_weights(dim=48)
    ours, theirs = embedforge_static(weights), st_static(weights)
    documents = random_sentences(17000, seed=5)
    assert torch.equal(
        ours.encode_document(documents, convert_to_tensor=True, batch_size=1024),
        theirs.encode_document(documents, convert_to_tensor=True, batch_size=1024),
    )
    corpus = {f"d{i}": text for i, text in enumerate(documents[:4000])}
    queries = {f"q{i}": " ".join(documents[i * 7].split()[:3]) for i in range(200)}
    relevant = {f"q{i}": {f"d{i * 7}"} for i in range(200)}
    got = InformationRetrievalEvaluator(queries, corpus, relevant, batch_size=256)(ours)
    want = st_eval.InformationRetrievalEvaluator(queries, corpus, relevant, batch_size=256)(theirs)
    assert list(got) == list(want)
    np.testing.assert_allclose([got[k] for k in want], list(want.values()), rtol=0, atol=1e-6)


def test_rows_tied_at_the_cutoff_are_reranked_in_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    # 60 distinct documents, each repeated 25 times in scattered positions: every query's cutoff
    # falls inside a group of equal scores, which must be broken by ascending corpus id. A tiny
    # workspace forces one query per re-ranking pass.
    monkeypatch.setattr(information_retrieval, "_WORKSPACE_BYTES", 1)
    generator = np.random.default_rng(11)
    distinct = generator.standard_normal((60, 16)).astype(np.float32)
    group_of_row = generator.permutation(np.repeat(np.arange(60), 25))
    chunk = distinct[group_of_row]
    queries = generator.standard_normal((40, 16)).astype(np.float32)
    chunk_ranks = generator.permutation(len(chunk))
    values, indices = information_retrieval._engine_top_k(queries, chunk, 30, "dot", chunk_ranks)
    # Reference in float64: distinct groups score far apart, so rounding cannot reorder them.
    scores = queries.astype(np.float64) @ chunk.astype(np.float64).T
    expected = np.lexsort((np.broadcast_to(chunk_ranks, scores.shape), -scores), axis=-1)[:, :30]
    np.testing.assert_array_equal(indices[:, :30], expected)
    np.testing.assert_allclose(values[:, :30], np.take_along_axis(scores, expected, axis=1), rtol=1e-5, atol=1e-5)


def test_sparse_corpus_embeddings_are_scored_whole_like_sentence_transformers(monkeypatch: pytest.MonkeyPatch) -> None:
    st_eval = pytest.importorskip("sentence_transformers.sentence_transformer.evaluation")
    queries, corpus, relevant, model = _random_table()
    shapes = _slice_widths(monkeypatch)
    # compute_all_metrics called directly: sentence-transformers needs the score functions given.
    options = {"corpus_chunk_size": 1000, "score_functions": {"cosine": cos_sim}}
    dense = torch.stack([model.table[text] for text in corpus.values()]).clamp(min=0)
    sparse = dense.to_sparse()
    query_model = FixedModel({text: vector.clamp(min=0) for text, vector in model.table.items()})
    got = InformationRetrievalEvaluator(queries, corpus, relevant, **options).compute_all_metrics(
        query_model, corpus_embeddings=sparse
    )
    want = st_eval.InformationRetrievalEvaluator(queries, corpus, relevant, **options).compute_all_metrics(
        query_model, corpus_embeddings=sparse
    )
    assert shapes == [(N_QUERIES, 1000)] * 3

    def flat(scores: dict[str, Any]) -> dict[tuple[str, str, int], float]:
        return {
            (fn, group, k): v
            for fn, groups in scores.items()
            for group, by_k in groups.items()
            for k, v in by_k.items()
        }

    assert flat(got).keys() == flat(want).keys()
    np.testing.assert_allclose([flat(got)[key] for key in flat(want)], list(flat(want).values()), rtol=0, atol=1e-6)


@pytest.mark.parametrize("fragile_start", [0, 8])
def test_every_chunk_is_scored_by_one_source(monkeypatch: pytest.MonkeyPatch, fragile_start: int) -> None:
    # The engine and torch may round one score differently. Emulate that (the engine a hair higher)
    # and let a single chunk need torch: duplicates must still rank by corpus id, not by which
    # source scored their chunk, so every chunk size gives the one-chunk result.
    table = {"q": torch.tensor([1.0, 0.2, 0.0]), "d": torch.tensor([0.9, 0.1, 0.3])}
    corpus = {f"d{i:02d}": "d" for i in range(20)}
    relevant = {"q0": {"d00"}}
    engine_top_k = information_retrieval._engine_top_k

    def engine_rounding_up(*args: Any) -> tuple[np.ndarray, np.ndarray]:
        values, indices = engine_top_k(*args)
        return values + np.float32(1e-6), indices

    monkeypatch.setattr(information_retrieval, "_engine_top_k", engine_rounding_up)
    monkeypatch.setattr(
        InformationRetrievalEvaluator,
        "_order_is_fragile",
        lambda self, values, indices, start, relevant_sets: start == fragile_start,
    )
    results = {
        size: InformationRetrievalEvaluator({"q0": "q"}, corpus, relevant, corpus_chunk_size=size, mrr_at_k=[10])(
            FixedModel(table)
        )
        for size in (4, 50)
    }
    assert results[4] == results[50]
    assert results[4]["cosine_accuracy@1"] == 1.0
