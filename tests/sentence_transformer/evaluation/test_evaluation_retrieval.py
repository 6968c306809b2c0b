"""InformationRetrievalEvaluator and the Rust retrieval metrics: hand-computed cases and parity."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conftest import shared_path
from embedforge import SentenceTransformer, _core
from embedforge.exceptions import InvalidArgumentError
from embedforge.sentence_transformer.evaluation.information_retrieval import InformationRetrievalEvaluator
from embedforge.util import cos_sim, dot_score

ALL_KS = {
    "accuracy_at_k": [1, 3],
    "precision_recall_at_k": [1, 3],
    "mrr_at_k": [3],
    "ndcg_at_k": [3],
    "map_at_k": [3],
}


class _CardData:
    def set_evaluation_metrics(self, *args: Any) -> None:
        pass


class FixedModel:
    """A stand-in model returning precomputed embeddings, so both libraries score identical vectors."""

    def __init__(self, table: dict[str, torch.Tensor], similarity_fn_name: str = "cosine") -> None:
        self.table = table
        self.similarity_fn_name = similarity_fn_name
        self.model_card_data = _CardData()
        self.calls: list[dict[str, Any]] = []

    def similarity(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return cos_sim(a, b) if self.similarity_fn_name == "cosine" else dot_score(a, b)

    def encode(self, texts: list[str], **kwargs: Any) -> torch.Tensor:
        self.calls.append(kwargs)
        out = torch.stack([self.table[t] for t in texts])
        if kwargs.get("truncate_dim") is not None:
            out = out[:, : kwargs["truncate_dim"]]
        return out

    def encode_query(self, texts: list[str], **kwargs: Any) -> torch.Tensor:
        return self.encode(texts, task="query", **kwargs)

    def encode_document(self, texts: list[str], **kwargs: Any) -> torch.Tensor:
        return self.encode(texts, task="document", **kwargs)


# -- Rust metrics ------------------------------------------------------------------------------------


def test_rust_metrics_by_hand() -> None:
    # q0: relevant {2, 5}, hits at ranks 2 and 4; q1: relevant {1}, no hit.
    out = _core.retrieval_metrics([[7, 2, 9, 5], [3, 4]], [[2, 5], [1]], **ALL_KS)
    assert list(out) == sorted(["accuracy@k", "precision@k", "recall@k", "mrr@k", "ndcg@k", "map@k"])
    assert out["accuracy@k"] == {1: 0.0, 3: 0.5}
    assert out["precision@k"][3] == pytest.approx((1 / 3) / 2)
    assert out["recall@k"][3] == pytest.approx(0.5 / 2)
    assert out["mrr@k"][3] == pytest.approx(0.5 / 2)
    ndcg_q0 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert out["ndcg@k"][3] == pytest.approx(ndcg_q0 / 2)
    assert out["map@k"][3] == pytest.approx(0.25 / 2)


def test_rust_metrics_errors() -> None:
    with pytest.raises(InvalidArgumentError, match="map_at_k"):
        _core.retrieval_metrics([[1]], [[1]], **{**ALL_KS, "map_at_k": [0]})
    with pytest.raises(InvalidArgumentError, match="relevant"):
        _core.retrieval_metrics([[1]], [[1], [2]], **ALL_KS)
    with pytest.raises(InvalidArgumentError, match=r"relevant\[0\]"):
        _core.retrieval_metrics([[1]], [[]], **ALL_KS)
    with pytest.raises(InvalidArgumentError, match="ranked"):
        _core.retrieval_metrics([[-1]], [[1]], **ALL_KS)


# -- the evaluator on a hand-built case -----------------------------------------------------------


def _tiny_case() -> tuple[dict[str, str], dict[str, str], dict[str, set[str]], FixedModel]:
    # Query "q" points along x; documents at decreasing cosine: d1 (1.0), d2, d3, d4 (orthogonal).
    table = {
        "q": torch.tensor([1.0, 0.0]),
        "q_unrelated": torch.tensor([0.0, 1.0]),
        "d1": torch.tensor([1.0, 0.0]),
        "d2": torch.tensor([1.0, 0.5]),
        "d3": torch.tensor([1.0, 1.0]),
        "d4": torch.tensor([0.0, 1.0]),
    }
    queries = {"a": "q", "b": "q_unrelated", "no_judgements": "q"}
    corpus = {"c1": "d1", "c2": "d2", "c3": "d3", "c4": "d4"}
    relevant = {"a": {"c2", "c4"}, "b": {"c1"}}
    return queries, corpus, relevant, FixedModel(table)


def test_evaluator_by_hand(tmp_path: Path) -> None:
    queries, corpus, relevant, model = _tiny_case()
    evaluator = InformationRetrievalEvaluator(queries, corpus, relevant, name="tiny", **ALL_KS)
    assert evaluator.queries_ids == ["a", "b"]
    metrics = evaluator(model, output_path=str(tmp_path))
    # a ranks c1, c2, c3, c4: relevant at ranks 2 and 4. b ranks c4, c3, c2, c1: relevant at rank 4.
    assert metrics["tiny_cosine_accuracy@1"] == 0.0
    assert metrics["tiny_cosine_accuracy@3"] == 0.5
    assert metrics["tiny_cosine_precision@3"] == pytest.approx((1 / 3) / 2)
    assert metrics["tiny_cosine_recall@3"] == pytest.approx(0.5 / 2)
    assert metrics["tiny_cosine_mrr@3"] == pytest.approx(0.5 / 2)
    assert metrics["tiny_cosine_ndcg@3"] == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)) / 2)
    assert metrics["tiny_cosine_map@3"] == pytest.approx((0.5 / 2) / 2)
    assert evaluator.primary_metric == "tiny_cosine_ndcg@3"
    lines = (tmp_path / "Information-Retrieval_evaluation_tiny_results.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,steps,cosine-Accuracy@1,cosine-Accuracy@3,cosine-Precision@1,cosine-Recall@1")
    assert len(lines) == 2


def test_prompts_and_truncation_reach_the_model() -> None:
    queries, corpus, relevant, model = _tiny_case()
    evaluator = InformationRetrievalEvaluator(
        queries,
        corpus,
        relevant,
        truncate_dim=1,
        query_prompt="query: ",
        corpus_prompt_name="doc",
        batch_size=7,
        **ALL_KS,
    )
    evaluator(model)
    query_call, doc_call = model.calls
    assert query_call["task"] == "query" and query_call["prompt"] == "query: " and query_call["truncate_dim"] == 1
    assert doc_call["task"] == "document" and doc_call["prompt_name"] == "doc" and doc_call["batch_size"] == 7
    assert evaluator.get_config_dict() == {"truncate_dim": 1, "query_prompt": "query: ", "corpus_prompt_name": "doc"}


def test_bad_cutoffs_are_rejected() -> None:
    queries, corpus, relevant, _ = _tiny_case()
    with pytest.raises(InvalidArgumentError, match="ndcg_at_k"):
        InformationRetrievalEvaluator(queries, corpus, relevant, ndcg_at_k=[0])


# -- parity with sentence-transformers on MS MARCO ---------------------------------------------------


def _lines(path: Path) -> list[str]:
    # Not splitlines(): the texts contain Unicode line separators that are not record boundaries.
    return [line for line in path.read_text(encoding="utf-8").split("\n") if line]


def _load_msmarco() -> tuple[dict[str, str], dict[str, str], dict[str, set[str]]]:
    root = shared_path("beir", "msmarco")
    queries = {}
    for line in _lines(root / "queries.jsonl"):
        row = json.loads(line)
        queries[row["_id"]] = row["text"]
    corpus = {}
    for line in _lines(root / "corpus.jsonl"):
        row = json.loads(line)
        corpus[row["_id"]] = (row.get("title", "") + " " + row["text"]).strip()
    relevant: dict[str, set[str]] = {}
    for line in _lines(root / "qrels" / "test.tsv"):
        qid, cid, score = line.split("\t")
        if int(score) > 0:
            relevant.setdefault(qid, set()).add(cid)
    # 20 queries, their judged documents and 1,000 others keep the test fast and the task non-trivial.
    relevant = {qid: relevant[qid] for qid in sorted(relevant)[:20]}
    judged = set().union(*relevant.values())
    others = sorted(set(corpus) - judged)
    keep = judged | set(random.Random(0).sample(others, min(1000, len(others))))
    return queries, {cid: text for cid, text in corpus.items() if cid in keep}, relevant


@pytest.fixture(scope="module")
def msmarco_model(tiny_bert_dir: Path) -> tuple[dict[str, str], dict[str, str], dict[str, set[str]], FixedModel]:
    queries, corpus, relevant = _load_msmarco()
    model = SentenceTransformer(str(tiny_bert_dir))
    texts = list(dict.fromkeys([*queries.values(), *corpus.values()]))
    embeddings = model.encode(texts, convert_to_tensor=True, batch_size=128)
    return queries, corpus, relevant, FixedModel(dict(zip(texts, embeddings)))


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"corpus_chunk_size": 700, "mrr_at_k": [5, 10], "ndcg_at_k": [1, 10, 100], "map_at_k": [10, 1000]},
        {"score_functions": {"cosine": cos_sim, "dot": dot_score}, "truncate_dim": 16},
    ],
)
def test_msmarco_matches_sentence_transformers(msmarco_model: Any, options: dict[str, Any], tmp_path: Path) -> None:
    st_eval = pytest.importorskip("sentence_transformers.sentence_transformer.evaluation")
    queries, corpus, relevant, model = msmarco_model
    kwargs = {"name": "msmarco", "write_predictions": True, **options}
    ours = InformationRetrievalEvaluator(queries, corpus, relevant, **kwargs)
    theirs = st_eval.InformationRetrievalEvaluator(queries, corpus, relevant, **kwargs)
    got = ours(model, output_path=str(tmp_path / "ours"), epoch=1, steps=5)
    want = theirs(model, output_path=str(tmp_path / "theirs"), epoch=1, steps=5)
    assert list(got) == list(want)
    np.testing.assert_allclose([got[k] for k in want], list(want.values()), rtol=0, atol=1e-6)
    assert ours.primary_metric == theirs.primary_metric
    assert 0 < got[ours.primary_metric] < 1
    for file in sorted((tmp_path / "theirs").iterdir()):
        ours_file = tmp_path / "ours" / file.name
        if file.suffix == ".csv":
            ours_rows = [line.split(",") for line in ours_file.read_text().splitlines()]
            their_rows = [line.split(",") for line in file.read_text().splitlines()]
            assert ours_rows[0] == their_rows[0]
            np.testing.assert_allclose(np.array(ours_rows[1], float), np.array(their_rows[1], float), atol=1e-6)
        else:
            ours_preds = [json.loads(line) for line in ours_file.read_text().splitlines()]
            their_preds = [json.loads(line) for line in file.read_text().splitlines()]
            assert [[h["corpus_id"] for h in p["results"]] for p in ours_preds] == [
                [h["corpus_id"] for h in p["results"]] for p in their_preds
            ]


def test_ties_rank_by_corpus_id_for_any_chunk_size() -> None:
    # Every document has the same embedding: the ranking must be the ascending corpus ids.
    table = {"q": torch.tensor([1.0, 0.0]), "d": torch.tensor([1.0, 1.0])}
    corpus = {f"c{i:02d}": "d" for i in range(30)}
    relevant = {"a": {"c03", "c20"}}
    results = [
        InformationRetrievalEvaluator({"a": "q"}, corpus, relevant, corpus_chunk_size=size, **ALL_KS)(FixedModel(table))
        for size in (4, 7, 100)
    ]
    assert results[0] == results[1] == results[2]
    assert results[0]["cosine_mrr@3"] == pytest.approx(0.0)
    assert results[0]["cosine_accuracy@3"] == 0.0


# -- RerankingEvaluator ------------------------------------------------------------------------------


def _reranking_samples(queries: dict[str, str], corpus: dict[str, str], relevant: dict[str, set[str]]) -> list:
    others = sorted(set(corpus) - set().union(*relevant.values()))
    generator = random.Random(1)
    samples = []
    for qid, docs in sorted(relevant.items()):
        positives = [corpus[cid] for cid in sorted(docs) if cid in corpus][:5]
        negatives = [corpus[cid] for cid in generator.sample(others, 20)]
        # A repeated document gives tied scores, which sklearn's NDCG and AP average over.
        samples.append({"query": queries[qid], "positive": positives, "negative": [*negatives, positives[0]]})
    samples.append({"query": samples[0]["query"], "positive": [], "negative": ["dropped"]})
    return samples


@pytest.mark.parametrize("options", [{}, {"at_k": 3, "use_batched_encoding": False, "truncate_dim": 16}])
def test_reranking_matches_sentence_transformers(msmarco_model: Any, options: dict[str, Any], tmp_path: Path) -> None:
    st_eval = pytest.importorskip("sentence_transformers.sentence_transformer.evaluation")
    from embedforge.sentence_transformer.evaluation.reranking import RerankingEvaluator

    queries, corpus, relevant, model = msmarco_model
    samples = _reranking_samples(queries, corpus, relevant)
    kwargs = {"name": "rr", "similarity_fct": cos_sim, **options}
    ours = RerankingEvaluator(samples, **kwargs)
    theirs = st_eval.RerankingEvaluator(samples, **kwargs)
    got = ours(model, output_path=str(tmp_path / "ours"))
    want = theirs(model, output_path=str(tmp_path / "theirs"))
    assert list(got) == list(want)
    np.testing.assert_allclose([got[k] for k in want], list(want.values()), rtol=0, atol=1e-6)
    assert ours.primary_metric == theirs.primary_metric
    assert ours.get_config_dict() == theirs.get_config_dict()
    name = ours.csv_file
    assert (tmp_path / "ours" / name).read_text().splitlines()[0] == (
        (tmp_path / "theirs" / name).read_text().splitlines()[0]
    )


def test_reranking_ndcg_by_hand() -> None:
    from embedforge.sentence_transformer.evaluation.reranking import ndcg_at_k

    # Positive first of three: 1.0; positive tied with one negative at the top: mean gain 0.5 over ranks 1-2.
    assert ndcg_at_k(np.array([1.0, 0, 0]), np.array([0.9, 0.5, 0.1]), 10) == pytest.approx(1.0)
    tied = 0.5 * (1 + 1 / math.log2(3))
    assert ndcg_at_k(np.array([1.0, 0, 0]), np.array([0.9, 0.9, 0.1]), 10) == pytest.approx(tied)


def test_compute_metrics_matches_sentence_transformers_on_hit_lists() -> None:
    st_eval = pytest.importorskip("sentence_transformers.sentence_transformer.evaluation")
    generator = random.Random(3)
    queries = {f"q{i}": "x" for i in range(200)}
    corpus = {f"c{i}": "y" for i in range(50)}
    # Relevant ids partly outside the corpus still count in recall and the ideal DCG.
    relevant = {qid: {f"c{generator.randrange(80)}" for _ in range(generator.randint(1, 6))} for qid in queries}
    hits = [
        [{"corpus_id": f"c{c}", "score": generator.choice([0.1, 0.2, 0.3, generator.random()])} for c in range(50)]
        for _ in queries
    ]
    kwargs = {"mrr_at_k": [1, 10], "ndcg_at_k": [5, 10, 50], "map_at_k": [3, 100]}
    got = InformationRetrievalEvaluator(queries, corpus, relevant, **kwargs).compute_metrics(hits)
    want = st_eval.InformationRetrievalEvaluator(queries, corpus, relevant, **kwargs).compute_metrics(hits)
    assert list(got) == list(want)
    for group in want:
        assert list(got[group]) == list(want[group])
        np.testing.assert_allclose(list(got[group].values()), list(want[group].values()), rtol=0, atol=1e-12)
