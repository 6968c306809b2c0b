"""CrossEncoderNanoBEIREvaluator on local BEIR folders: hand-computed cases and parity with sentence-transformers."""

from __future__ import annotations

import csv
import json
import logging
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import random_sentences, shared_path
from embedforge import CrossEncoder
from embedforge.base.evaluation.beir import DATA_DIR_ENV, bm25_candidates, load_beir_titles
from embedforge.cross_encoder.evaluation import CrossEncoderNanoBEIREvaluator, CrossEncoderRerankingEvaluator
from embedforge.exceptions import InvalidArgumentError

# -- helpers -------------------------------------------------------------------------------------------


def write_beir(
    folder: Path,
    corpus: dict[str, tuple[str, str]],
    queries: dict[str, str],
    qrels: list[tuple[str, str, int]],
    candidates: dict[str, list[str]] | None = None,
    header: bool = False,
) -> Path:
    """A BEIR folder: corpus {id: (title, text)}, queries, graded qrels and optionally bm25.jsonl."""
    (folder / "qrels").mkdir(parents=True)
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as f:
        for doc_id, (title, text) in corpus.items():
            f.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    with open(folder / "queries.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps({"_id": query_id, "text": text}) + "\n" for query_id, text in queries.items())
    rows = (["query-id\tcorpus-id\tscore"] if header else []) + [f"{q}\t{d}\t{s}" for q, d, s in qrels]
    (folder / "qrels" / "test.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    if candidates is not None:
        write_candidates(folder, candidates)
    return folder


def write_candidates(folder: Path, candidates: dict[str, list[str]]) -> None:
    with open(folder / "bm25.jsonl", "w", encoding="utf-8") as f:
        for query_id, ids in candidates.items():
            f.write(json.dumps({"query-id": query_id, "corpus-ids": ids}) + "\n")


class _CardData:
    def __init__(self) -> None:
        self.recorded: list[tuple[str, dict[str, Any]]] = []

    def set_evaluation_metrics(self, evaluator: Any, metrics: dict[str, Any], *args: Any) -> None:
        self.recorded.append((type(evaluator).__name__, metrics))


class TableScorer:
    """A stand-in CrossEncoder with a fixed score per (query, document) pair."""

    def __init__(self, table: dict[tuple[str, str], float]) -> None:
        self.table = table
        self.model_card_data = _CardData()
        self.calls: list[dict[str, Any]] = []

    def predict(self, pairs: list[tuple[str, str]], **kwargs: Any) -> np.ndarray:
        self.calls.append(kwargs)
        return np.array([self.table[tuple(pair)] for pair in pairs])


def mrr_at(relevant: list[int], k: int) -> float:
    hits = np.flatnonzero(np.asarray(relevant[:k]))
    return 1.0 / (hits[0] + 1) if hits.size else 0.0


def ndcg_at(relevant: list[int], k: int) -> float:
    """Binary gains, log2 discount, ideal = the same labels sorted; ``relevant`` is in ranked order."""
    gains = np.asarray(relevant, dtype=float)
    discount = 1.0 / np.log2(np.arange(2, gains.size + 2))
    ideal = np.sort(gains)[::-1]
    return float((gains[:k] * discount[:k]).sum() / (ideal[:k] * discount[:k]).sum())


def average_precision(relevant: list[int]) -> float:
    """Mean precision at the rank of each relevant document of the list."""
    hits = np.flatnonzero(np.asarray(relevant))
    return float(np.mean([(i + 1) / (rank + 1) for i, rank in enumerate(hits)]))


def metrics_of(rankings: list[list[int]], k: int) -> tuple[float, float, float]:
    """(MAP, MRR@k, NDCG@k) averaged over queries, each given as relevance in ranked order."""
    return (
        float(np.mean([average_precision(r) for r in rankings])),
        float(np.mean([mrr_at(r, k) for r in rankings])),
        float(np.mean([ndcg_at(r, k) for r in rankings])),
    )


# -- a hand-computed case --------------------------------------------------------------------------------

DOCS = {f"d{i}": (f"title {i}", f"document {i}") for i in range(1, 7)}
QUERIES = {"q1": "first query", "q2": "second query", "q3": "third query"}
# q1: d1 and d6 relevant (BM25 misses d6); q2: d4 relevant, d2 judged 0; q3: only a 0 judgement.
QRELS = [("q1", "d1", 1), ("q1", "d6", 2), ("q2", "d4", 1), ("q2", "d2", 0), ("q3", "d5", 0)]
CANDIDATES = {"q1": ["d3", "d1", "d5"], "q2": ["d2", "d4", "d6", "d1"], "q3": ["d5"]}
SCORES = {
    ("first query", "document 1"): 0.2,
    ("first query", "document 6"): 0.9,
    ("first query", "document 3"): 0.5,
    ("first query", "document 5"): 0.1,
    ("second query", "document 2"): 0.8,
    ("second query", "document 4"): 0.3,
    ("second query", "document 6"): 0.1,
    ("second query", "document 1"): 0.7,
}


@pytest.fixture
def hand_root(tmp_path: Path) -> Path:
    """Two datasets: msmarco as above; NanoNQ (with a qrels header) where the reranker finds q2's document first."""
    root = tmp_path / "beir"
    write_beir(root / "msmarco", DOCS, QUERIES, QRELS, CANDIDATES)
    nq_candidates = {"q2": ["d4", "d1", "d2"], "q1": ["d1", "d3", "d6"]}  # the file's order is kept
    write_beir(root / "NanoNQ", DOCS, QUERIES, QRELS, nq_candidates, header=True)
    return root


def test_given_candidates_by_hand(hand_root: Path, tmp_path: Path) -> None:
    model = TableScorer(SCORES)
    evaluator = CrossEncoderNanoBEIREvaluator(["msmarco", "nq"], data_dir=hand_root, rerank_k=3, at_k=2, batch_size=5)
    assert evaluator.name == "NanoBEIR_R3_mean"
    assert [e.name for e in evaluator.evaluators] == ["NanoMSMARCO_R3", "NanoNQ_R3"]
    out = tmp_path / "out"
    metrics = evaluator(model, output_path=str(out), epoch=1, steps=7)

    # Relevance in reranked order, worked out by hand from SCORES. msmarco, top 3 candidates:
    # q1 reranks [d1, d6] + [d3, d5] -> d6 .9, d3 .5, d1 .2, d5 .1; q2 reranks [d4] + [d2, d6] -> d2, d4, d6.
    # BM25's own order, with positives it missed appended: q1 [d3, d1, d5] + d6; q2 [d2, d4, d6].
    expected = {
        "msmarco": (metrics_of([[1, 0, 1, 0], [0, 1, 0]], 2), metrics_of([[0, 1, 0, 1], [0, 1, 0]], 2)),
        # nq, in the file's query order: q2 reranks [d4] + [d1, d2] -> d2 .8, d1 .7, d4 .3;
        # q1 reranks [d1, d6] + [d3] -> d6 .9, d3 .5, d1 .2. BM25: q2 [d4, d1, d2]; q1 [d1, d3, d6].
        "nq": (metrics_of([[0, 0, 1], [1, 0, 1]], 2), metrics_of([[1, 0, 0], [1, 0, 1]], 2)),
    }
    for short, name in (("msmarco", "NanoMSMARCO_R3"), ("nq", "NanoNQ_R3")):
        (ap, mrr, ndcg), (base_ap, base_mrr, base_ndcg) = expected[short]
        assert metrics[f"{name}_map"] == pytest.approx(ap)
        assert metrics[f"{name}_mrr@2"] == pytest.approx(mrr)
        assert metrics[f"{name}_ndcg@2"] == pytest.approx(ndcg)
        assert metrics[f"{name}_base_map"] == pytest.approx(base_ap)
        assert metrics[f"{name}_base_mrr@2"] == pytest.approx(base_mrr)
        assert metrics[f"{name}_base_ndcg@2"] == pytest.approx(base_ndcg)
    names = ["map", "mrr@2", "ndcg@2", "base_map", "base_mrr@2", "base_ndcg@2"]
    assert list(metrics) == [f"{d}_{m}" for d in ("NanoMSMARCO_R3", "NanoNQ_R3", "NanoBEIR_R3_mean") for m in names]
    for metric in names:
        mean = (metrics[f"NanoMSMARCO_R3_{metric}"] + metrics[f"NanoNQ_R3_{metric}"]) / 2
        assert metrics[f"NanoBEIR_R3_mean_{metric}"] == pytest.approx(mean)
    assert evaluator.primary_metric == "NanoBEIR_R3_mean_ndcg@2"
    assert all(call["batch_size"] == 5 and call["prompt_name"] is None for call in model.calls)

    # The model card gets each dataset's and the aggregated reranked metrics with their change over BM25.
    aggregate = dict(model.model_card_data.recorded)["CrossEncoderNanoBEIREvaluator"]
    ap, base_ap = metrics["NanoBEIR_R3_mean_map"], metrics["NanoBEIR_R3_mean_base_map"]
    assert aggregate["NanoBEIR_R3_mean_map"] == f"{ap:.4f} ({ap - base_ap:+.4f})"
    assert list(aggregate) == ["NanoBEIR_R3_mean_map", "NanoBEIR_R3_mean_mrr@2", "NanoBEIR_R3_mean_ndcg@2"]

    with open(out / "NanoBEIR_evaluation_mean_results.csv", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["epoch", "steps", "MAP", "MRR@2", "NDCG@2"]
    assert [float(value) for value in rows[1]] == pytest.approx(
        [1, 7, ap, metrics["NanoBEIR_R3_mean_mrr@2"], metrics["NanoBEIR_R3_mean_ndcg@2"]]
    )
    assert (out / "CrossEncoderRerankingEvaluator_NanoMSMARCO_R3_results_@2.csv").is_file()


def test_without_always_rerank_positives_only_retrieved_positives_count(hand_root: Path) -> None:
    model = TableScorer(SCORES)
    evaluator = CrossEncoderNanoBEIREvaluator(
        ["msmarco"], data_dir=hand_root, rerank_k=3, at_k=2, always_rerank_positives=False, aggregate_key="max",
        aggregate_fn=np.max, write_csv=False,
    )  # fmt: skip
    metrics = evaluator(model)
    # q1 reranks only BM25's [d3, d1, d5] -> d3 .5, d1 .2, d5 .1; q2 [d2, d4, d6] -> d2, d4, d6.
    ap, mrr, ndcg = metrics_of([[0, 1, 0], [0, 1, 0]], 2)
    assert metrics["NanoMSMARCO_R3_map"] == pytest.approx(ap)
    assert metrics["NanoMSMARCO_R3_mrr@2"] == pytest.approx(mrr)
    assert metrics["NanoMSMARCO_R3_ndcg@2"] == pytest.approx(ndcg)
    assert metrics["NanoBEIR_R3_max_ndcg@2"] == metrics["NanoMSMARCO_R3_ndcg@2"]
    assert evaluator.primary_metric == "NanoBEIR_R3_max_ndcg@2"
    assert evaluator.get_config_dict() == {
        "dataset_names": ["msmarco"],
        "dataset_id": "sentence-transformers/NanoBEIR-en",
        "rerank_k": 3,
        "at_k": 2,
        "always_rerank_positives": False,
    }


def test_samples_equal_a_direct_reranking_evaluator(hand_root: Path) -> None:
    samples = CrossEncoderNanoBEIREvaluator.load_samples(hand_root / "msmarco", rerank_k=2)
    # q3 has no relevant document and is left out; positives in corpus order, candidates cut at rerank_k.
    assert samples == [
        {"query": "first query", "positive": ["document 1", "document 6"], "documents": ["document 3", "document 1"]},
        {"query": "second query", "positive": ["document 4"], "documents": ["document 2", "document 4"]},
    ]
    evaluator = CrossEncoderNanoBEIREvaluator(["msmarco"], data_dir=hand_root, rerank_k=2, at_k=2)
    model = TableScorer(SCORES)
    direct = CrossEncoderRerankingEvaluator(samples, at_k=2, name="NanoMSMARCO_R2")(model)
    metrics = evaluator(model)
    assert {key: value for key, value in metrics.items() if key.startswith("NanoMSMARCO")} == direct


def test_dataset_folders_and_defaults(hand_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(hand_root))
    evaluator = CrossEncoderNanoBEIREvaluator(["MSMARCO"], rerank_k=3)
    assert evaluator.evaluators[0].name == "NanoMSMARCO_R3"
    monkeypatch.delenv(DATA_DIR_ENV)
    evaluator = CrossEncoderNanoBEIREvaluator(["nq"], data_dir={"nq": hand_root / "NanoNQ"})
    assert evaluator.name == "NanoBEIR_R100_mean" and evaluator.at_k == 10
    assert evaluator.evaluators[0].always_rerank_positives is True
    # Without names: every dataset but the two argument-retrieval ones (their folders are missing here).
    with pytest.raises(InvalidArgumentError, match="climatefever"):
        CrossEncoderNanoBEIREvaluator(data_dir=hand_root)
    import embedforge.cross_encoder.evaluation.nano_beir as module

    loaded: list[str] = []
    monkeypatch.setattr(
        module, "find_dataset_folder", lambda name, *_: loaded.append(name) or str(hand_root / "msmarco")
    )
    CrossEncoderNanoBEIREvaluator(rerank_k=2)
    assert loaded == [
        "climatefever", "dbpedia", "fever", "fiqa2018", "hotpotqa", "msmarco", "nfcorpus", "nq", "quoraretrieval",
        "scidocs", "scifact",
    ]  # fmt: skip


def test_errors_name_the_argument_and_the_file(hand_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    with pytest.raises(InvalidArgumentError, match="rerank_k"):
        CrossEncoderNanoBEIREvaluator(["msmarco"], data_dir=hand_root, rerank_k=0)
    with pytest.raises(InvalidArgumentError, match="at_k"):
        CrossEncoderNanoBEIREvaluator(["msmarco"], data_dir=hand_root, at_k=-1)
    with pytest.raises(InvalidArgumentError, match="not valid NanoBEIR datasets"):
        CrossEncoderNanoBEIREvaluator(["mydata"], data_dir=hand_root)
    with pytest.raises(InvalidArgumentError, match="empty"):
        CrossEncoderNanoBEIREvaluator([], data_dir=hand_root)
    with pytest.raises(InvalidArgumentError, match=DATA_DIR_ENV):
        CrossEncoderNanoBEIREvaluator(["msmarco"])

    folder = hand_root / "msmarco"
    bad_files = {
        '{"query-id": "q9", "corpus-ids": ["d1"]}\n': "q9",
        '{"query-id": "q1", "corpus-ids": ["d1", "d99"]}\n': "d99",
        '{"query-id": "q1", "corpus-ids": "d1"}\n': "must be a list",
        '{"query-id": "q1"}\n': "corpus-ids",
        '{"query-id": "q1", "corpus-ids": []}\n{"query-id": "q1", "corpus-ids": []}\n': "second time",
        "not json\n": "bm25.jsonl:1",
    }
    for content, message in bad_files.items():
        (folder / "bm25.jsonl").write_text(content, encoding="utf-8")
        with pytest.raises(InvalidArgumentError, match=message):
            CrossEncoderNanoBEIREvaluator(["msmarco"], data_dir=hand_root)
    # Only q3, which has no relevant document: nothing to evaluate.
    write_candidates(folder, CANDIDATES)
    (folder / "qrels" / "test.tsv").write_text("q3\td5\t0\n", encoding="utf-8")
    with pytest.raises(InvalidArgumentError, match="no query with a relevant document"):
        CrossEncoderNanoBEIREvaluator(["msmarco"], data_dir=hand_root)


def test_judged_queries_missing_from_the_candidates_file_are_reported(
    hand_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_candidates(hand_root / "msmarco", {"q2": ["d2", "d4"]})
    with caplog.at_level(logging.WARNING):
        samples = CrossEncoderNanoBEIREvaluator.load_samples(hand_root / "msmarco", rerank_k=5)
    assert [sample["query"] for sample in samples] == ["second query"]
    assert "no candidates for 1 judged queries" in caplog.text and "q1" in caplog.text


# -- BM25 candidates (no bm25.jsonl in the folder) -------------------------------------------------------


def test_bm25_candidates_index_titles_and_texts(tmp_path: Path) -> None:
    corpus = {
        "a": ("", "the cat sat on the road"),
        "b": ("river music", "a dog in the house"),  # the query's words only in the title
        "c": ("", "water and light at night"),
        "d": ("", "the bird and the fish"),
    }
    queries = {"q": "river music", "r": "cat road", "s": "nothing"}
    folder = write_beir(tmp_path / "msmarco", corpus, queries, [("q", "b", 1), ("r", "d", 1)])
    samples = CrossEncoderNanoBEIREvaluator.load_samples(folder, rerank_k=2)
    assert [sample["query"] for sample in samples] == ["river music", "cat road"]  # "s" has no judgement
    assert samples[0]["documents"][0] == "a dog in the house"  # texts only are reranked, as in NanoBEIR
    assert samples[1]["documents"][0] == "the cat sat on the road"
    assert all(len(sample["documents"]) == 2 for sample in samples)

    # The same ranking as embedforge's BM25 over title + " " + text, asked directly.
    from embedforge.util.bm25 import BM25

    texts = [f"{title} {text}".strip() for title, text in corpus.values()]
    ids, _ = BM25().index(texts).search(["river music", "cat road"], top_k=2)
    texts_only = [text for _, text in corpus.values()]
    assert [sample["documents"] for sample in samples] == [[texts_only[i] for i in row] for row in ids]
    # rerank_k above the corpus size takes the whole corpus.
    assert all(len(s["documents"]) == 4 for s in CrossEncoderNanoBEIREvaluator.load_samples(folder, rerank_k=50))


def test_bm25_and_a_candidates_file_with_its_ranking_agree(tmp_path: Path) -> None:
    sentences = random_sentences(60, seed=11, min_words=4, max_words=14)
    corpus = {f"d{i}": ("", text) for i, text in enumerate(sentences[:50])}
    queries = {f"q{i}": " ".join(text.split()[:3]) for i, text in enumerate(sentences[:10])}
    qrels = [(f"q{i}", f"d{i}", 1) for i in range(10)] + [(f"q{i}", f"d{i + 20}", 1) for i in range(0, 10, 3)]
    computed = write_beir(tmp_path / "a" / "msmarco", corpus, queries, qrels)
    ranked = bm25_candidates(
        {d: t for d, (_, t) in corpus.items()}, queries, top_k=7, titles=load_beir_titles(computed)
    )
    write_beir(tmp_path / "b" / "msmarco", corpus, queries, qrels, candidates=ranked)
    model = TableScorer({(q, t): random.Random(f"{q}|{t}").random() for q in queries.values() for t in sentences[:50]})
    first = CrossEncoderNanoBEIREvaluator(["msmarco"], data_dir=tmp_path / "a", rerank_k=7, write_csv=False)(model)
    second = CrossEncoderNanoBEIREvaluator(["msmarco"], data_dir=tmp_path / "b", rerank_k=7, write_csv=False)(model)
    assert first == second
    assert 0 < first["NanoBEIR_R7_mean_base_ndcg@10"] < 1


# -- parity with sentence-transformers' CrossEncoderNanoBEIREvaluator ------------------------------------


def patch_st_loader(monkeypatch: pytest.MonkeyPatch, folders: dict[str, Path], bm25: dict[str, dict]) -> Any:
    """sentence-transformers' evaluator reading the hub subsets from local files (split name -> folder).

    The test reads the files itself (not through embedforge), as the hub holds them: qrels only
    relevant pairs, a bm25 row per judged query.
    """
    pytest.importorskip("sentence_transformers")
    datasets = pytest.importorskip("datasets")
    from sentence_transformers.cross_encoder.evaluation import nano_beir as st_nano_beir

    def read_jsonl(path: Path) -> list[dict[str, Any]]:
        with open(path, encoding="utf-8") as f:
            return [{"_id": r["_id"], "text": r["text"]} for r in map(json.loads, f) if r["text"]]

    def load(self: Any, subset: str, split: str, required_columns: list[str]) -> Any:
        folder = folders[split]
        if subset in ("corpus", "queries"):
            rows = read_jsonl(folder / f"{subset}.jsonl")
        elif subset == "qrels":
            with open(folder / "qrels" / "test.tsv", encoding="utf-8") as f:
                lines = [line.rstrip("\n").split("\t") for line in f if line.strip()]
            rows = [{"query-id": q, "corpus-id": d} for q, d, s in lines if s != "score" and float(s) > 0]
        else:
            rows = [{"query-id": q, "corpus-ids": ids} for q, ids in bm25[split].items()]
        return datasets.Dataset.from_list(rows)

    monkeypatch.setattr(st_nano_beir.CrossEncoderNanoBEIREvaluator, "_load_dataset_subset_split", load)
    return st_nano_beir.CrossEncoderNanoBEIREvaluator


def random_beir(folder: Path, seed: int, n_docs: int = 40, n_queries: int = 8) -> dict[str, list[str]]:
    """A generated folder with a bm25.jsonl of 12 random candidates per query; returns the judged queries' rows."""
    generator = random.Random(seed)
    texts = random_sentences(n_docs + n_queries, seed=seed, min_words=3, max_words=16)
    corpus = {f"doc{i}": (f"title {i}", text) for i, text in enumerate(texts[:n_docs])}
    queries = {f"query{i}": text for i, text in enumerate(texts[n_docs:])}
    qrels = []
    for index, query_id in enumerate(queries):
        if index == 3:
            qrels.append((query_id, "doc0", 0))  # judged, nothing relevant: not evaluated
            continue
        for doc_id in generator.sample(list(corpus), 1 + index % 4):
            qrels.append((query_id, doc_id, generator.choice([1, 2])))
    candidates = {query_id: generator.sample(list(corpus), 12) for query_id in queries}
    write_beir(folder, corpus, queries, qrels, candidates, header=seed % 2 == 1)
    judged = {q for q, _, s in qrels if s > 0}
    return {query_id: ids for query_id, ids in candidates.items() if query_id in judged}


def st_cross_encoder(path: Path) -> Any:
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import CrossEncoder as StCrossEncoder

    return StCrossEncoder(str(path), device="cpu")


@pytest.mark.parametrize("always_rerank_positives", [True, False])
def test_matches_sentence_transformers(
    tmp_path: Path, scorer_dir: Path, monkeypatch: pytest.MonkeyPatch, always_rerank_positives: bool
) -> None:
    root = tmp_path / "beir"
    bm25 = {"NanoSciFact": random_beir(root / "scifact", seed=1), "NanoFiQA2018": random_beir(root / "fiqa2018", 2)}
    st_class = patch_st_loader(monkeypatch, {"NanoSciFact": root / "scifact", "NanoFiQA2018": root / "fiqa2018"}, bm25)
    options: dict[str, Any] = {"rerank_k": 8, "at_k": 5, "always_rerank_positives": always_rerank_positives}
    ours = CrossEncoderNanoBEIREvaluator(["scifact", "fiqa2018"], data_dir=root, batch_size=7, **options)
    theirs = st_class(["scifact", "fiqa2018"], batch_size=7, **options)
    got = ours(CrossEncoder(str(scorer_dir)), output_path=str(tmp_path / "ours"))
    expected = theirs(st_cross_encoder(scorer_dir), output_path=str(tmp_path / "theirs"))
    assert list(got) == list(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-6), key
    assert 0 < got["NanoBEIR_R8_mean_ndcg@5"] < 1
    assert ours.primary_metric == theirs.primary_metric == "NanoBEIR_R8_mean_ndcg@5"
    assert ours.get_config_dict() == theirs.get_config_dict()
    assert ours.description == theirs.description
    for name in (ours.csv_file, "CrossEncoderRerankingEvaluator_NanoSciFact_R8_results_@5.csv"):
        ours_csv = (tmp_path / "ours" / name).read_text(encoding="utf-8").splitlines()
        theirs_csv = (tmp_path / "theirs" / name).read_text(encoding="utf-8").splitlines()
        assert ours_csv[0] == theirs_csv[0]
        assert [float(v) for v in ours_csv[1].split(",")] == pytest.approx(
            [float(v) for v in theirs_csv[1].split(",")], abs=1e-6
        )


def test_real_msmarco_with_bm25_matches_sentence_transformers(
    tmp_path: Path, scorer_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real folder has no bm25.jsonl, so embedforge ranks its 5,000 documents with BM25. Reranking
    # only the retrieved top 10 keeps this fast (msmarco judges ~95 documents relevant per query).
    folder = shared_path("beir", "msmarco")
    options: dict[str, Any] = {"rerank_k": 10, "at_k": 10, "always_rerank_positives": False, "batch_size": 64}
    ours = CrossEncoderNanoBEIREvaluator(["msmarco"], data_dir=folder.parent, **options)
    got = ours(CrossEncoder(str(scorer_dir)))

    # sentence-transformers, given the same BM25 ranking as its hub's bm25 subset would give it.
    with open(folder / "corpus.jsonl", encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    corpus = {r["_id"]: r["text"] for r in records if r["text"]}
    titles = {r["_id"]: r["title"] for r in records if r["text"]}
    with open(folder / "queries.jsonl", encoding="utf-8") as f:
        queries = {r["_id"]: r["text"] for r in map(json.loads, f)}
    with open(folder / "qrels" / "test.tsv", encoding="utf-8") as f:
        judged = {line.split("\t")[0] for line in f if line.strip() and float(line.rstrip("\n").split("\t")[2]) > 0}
    ranked = bm25_candidates(corpus, {q: t for q, t in queries.items() if q in judged}, 10, titles=titles)
    st_class = patch_st_loader(monkeypatch, {"NanoMSMARCO": folder}, {"NanoMSMARCO": ranked})
    expected = st_class(["msmarco"], **options)(st_cross_encoder(scorer_dir))
    assert list(got) == list(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-6), key
    # BM25 finds relevant documents for most queries: far better than chance among 5,000 documents.
    assert got["NanoBEIR_R10_mean_base_mrr@10"] > 0.3
