"""ParaphraseMiningEvaluator and NanoBEIREvaluator: hand-computed cases and parity with sentence-transformers."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conftest import shared_path
from embedforge.exceptions import InvalidArgumentError
from embedforge.sentence_transformer.evaluation import NanoBEIREvaluator, ParaphraseMiningEvaluator
from embedforge.sentence_transformer.evaluation.nano_beir import DATA_DIR_ENV, load_beir_folder
from embedforge.util import cos_sim, dot_score


class _CardData:
    def __init__(self) -> None:
        self.recorded: list[dict[str, Any]] = []

    def set_evaluation_metrics(self, evaluator: Any, metrics: dict[str, Any], *args: Any) -> None:
        self.recorded.append(metrics)


class TableModel:
    """A stand-in model with a fixed vector per text (a prompt adds a fixed vector)."""

    def __init__(self, table: dict[str, torch.Tensor], similarity_fn_name: str = "cosine") -> None:
        self.table = table
        self.similarity_fn_name = similarity_fn_name
        self.model_card_data = _CardData()
        self.calls: list[dict[str, Any]] = []

    def similarity(self, a: Any, b: Any) -> torch.Tensor:
        return cos_sim(a, b) if self.similarity_fn_name == "cosine" else dot_score(a, b)

    def encode(self, texts: list[str], prompt: str | None = None, **kwargs: Any) -> torch.Tensor:
        self.calls.append({"prompt": prompt, **kwargs})
        dim = len(next(iter(self.table.values())))
        shift = torch.ones(dim) if prompt else torch.zeros(dim)
        out = torch.stack([self.table[t] + shift for t in texts])
        if kwargs.get("truncate_dim") is not None:
            out = out[:, : kwargs["truncate_dim"]]
        return out

    def encode_query(self, texts: list[str], **kwargs: Any) -> torch.Tensor:
        return self.encode(texts, **kwargs)

    def encode_document(self, texts: list[str], **kwargs: Any) -> torch.Tensor:
        return self.encode(texts, **kwargs)


def bert_static_models(seed: int = 0, dim: int = 32) -> tuple[Any, Any]:
    """The same random StaticEmbedding over the bert-base-uncased vocabulary in both libraries."""
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import SentenceTransformer as StModel
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding as StStatic
    from tokenizers import Tokenizer

    from embedforge import SentenceTransformer
    from embedforge.sentence_transformer.modules import StaticEmbedding

    path = str(shared_path("tokenizers", "bert-base-uncased.json"))
    weights = torch.randn(
        Tokenizer.from_file(path).get_vocab_size(), dim, generator=torch.Generator().manual_seed(seed)
    )
    ours = SentenceTransformer(modules=[StaticEmbedding(Tokenizer.from_file(path), embedding_weights=weights.clone())])
    theirs = StModel(modules=[StStatic(Tokenizer.from_file(path), embedding_weights=weights.clone())], device="cpu")
    return ours, theirs


# -- ParaphraseMiningEvaluator -----------------------------------------------------------------------


def _hand_case() -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    # Cosines between the unit vectors: (a,b)=0.96, (c,d)=0.8, (a,c)=0.6, weaker otherwise.
    vectors = {
        "a": [1.0, 0.0, 0.0],
        "b": [0.96, 0.28, 0.0],
        "c": [0.6, 0.0, 0.8],
        "d": [0.0, 0.0, 1.0],
    }
    sentences = {f"id-{k}": f"text {k}" for k in vectors}
    return sentences, {f"text {k}": torch.tensor(v) for k, v in vectors.items()}


def test_paraphrase_mining_evaluator_by_hand(tmp_path: Path) -> None:
    sentences, table = _hand_case()
    model = TableModel(table)
    # Gold: (a, b) and (c, d). Mined pairs best first: ab .96, cd .8, ac .6, then weaker ones.
    evaluator = ParaphraseMiningEvaluator(
        sentences, [("id-a", "id-b"), ("id-c", "id-d"), ("id-a", "missing")], name="toy"
    )
    assert evaluator.total_num_duplicates == 2
    metrics = evaluator(model, output_path=str(tmp_path))
    assert evaluator.primary_metric == "toy_average_precision"
    assert set(metrics) == {f"toy_{k}" for k in ("average_precision", "f1", "precision", "recall", "threshold")}
    # Both gold pairs are the top two: AP 1, best F1 1 at a threshold between 0.8 and 0.6.
    assert metrics["toy_average_precision"] == pytest.approx(1.0)
    assert metrics["toy_f1"] == pytest.approx(1.0)
    assert metrics["toy_threshold"] == pytest.approx((0.8 + 0.6) / 2, abs=1e-6)
    assert model.model_card_data.recorded == [metrics]
    with open(tmp_path / "paraphrase_mining_evaluation_toy_results.csv", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["epoch", "steps", "precision", "recall", "f1", "threshold", "average_precision"]
    assert [float(x) for x in rows[1][2:]] == pytest.approx([1.0, 1.0, 1.0, 0.7, 1.0], abs=1e-6)

    # Gold (a, c) only, given as a plain one-directional dict: found at rank 3.
    evaluator = ParaphraseMiningEvaluator(sentences, duplicates_dict={"id-a": {"id-c": True}}, write_csv=False)
    metrics = evaluator(model, output_path=str(tmp_path))
    assert metrics["average_precision"] == pytest.approx(1 / 3)
    assert metrics["precision"] == pytest.approx(1 / 3)
    assert metrics["recall"] == pytest.approx(1.0)
    assert metrics["f1"] == pytest.approx(0.5)


def test_paraphrase_mining_transitive_closure() -> None:
    sentences, _ = _hand_case()
    plain = ParaphraseMiningEvaluator(sentences, [("id-a", "id-b"), ("id-b", "id-c")])
    closed = ParaphraseMiningEvaluator(sentences, [("id-a", "id-b"), ("id-b", "id-c")], add_transitive_closure=True)
    assert plain.total_num_duplicates == 2
    assert closed.total_num_duplicates == 3  # (a, c) added
    assert closed.duplicates["id-a"]["id-c"] and closed.duplicates["id-c"]["id-a"]
    assert closed.get_config_dict() == {"add_transitive_closure": True, "max_pairs": 500000, "top_k": 100}


def _quora_subset(pairs: int) -> tuple[dict[str, str], list[tuple[str, str]]]:
    path = shared_path("quora-duplicates", "quora-dev.csv")
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))[1 : pairs + 1]
    ids: dict[str, str] = {}
    duplicates = []
    for row in rows:
        for text in (row[2], row[3]):
            ids.setdefault(text, f"q{len(ids)}")
        if float(row[4]) == 1.0:
            duplicates.append((ids[row[2]], ids[row[3]]))
    return {sentence_id: text for text, sentence_id in ids.items()}, duplicates


@pytest.mark.parametrize("options", [{}, {"top_k": 3, "max_pairs": 150, "add_transitive_closure": True}])
def test_paraphrase_mining_evaluator_matches_sentence_transformers(tmp_path: Path, options: dict[str, Any]) -> None:
    pytest.importorskip("sentence_transformers")
    from sentence_transformers.sentence_transformer.evaluation import ParaphraseMiningEvaluator as StEvaluator

    sentences, duplicates = _quora_subset(300)
    ours_model, st_model = bert_static_models(seed=5)
    ours = ParaphraseMiningEvaluator(sentences, duplicates, name="quora", **options)
    theirs = StEvaluator(sentences, duplicates, name="quora", **options)
    assert ours.total_num_duplicates == theirs.total_num_duplicates > 50
    ours_metrics = ours(ours_model, output_path=str(tmp_path / "ours"))
    theirs_metrics = theirs(st_model, output_path=str(tmp_path / "theirs"))
    assert list(ours_metrics) == list(theirs_metrics)
    for key, value in theirs_metrics.items():
        assert ours_metrics[key] == pytest.approx(value, abs=1e-6), key
    assert ours.primary_metric == theirs.primary_metric
    assert ours.get_config_dict() == theirs.get_config_dict()
    ours_csv = (tmp_path / "ours" / ours.csv_file).read_text(encoding="utf-8").splitlines()
    theirs_csv = (tmp_path / "theirs" / theirs.csv_file).read_text(encoding="utf-8").splitlines()
    assert ours_csv[0] == theirs_csv[0]


# -- NanoBEIREvaluator -------------------------------------------------------------------------------


def _write_beir(folder: Path, corpus: dict[str, str], queries: dict[str, str], qrels: list[str]) -> None:
    (folder / "qrels").mkdir(parents=True)
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps({"_id": i, "title": "ignored", "text": text}) + "\n" for i, text in corpus.items())
    with open(folder / "queries.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps({"_id": i, "text": text}) + "\n" for i, text in queries.items())
    (folder / "qrels" / "test.tsv").write_text("\n".join(qrels) + "\n", encoding="utf-8")


@pytest.fixture
def toy_beir(tmp_path: Path) -> tuple[Path, TableModel]:
    """Two tiny BEIR folders ("msmarco" without a qrels header, "NanoSciFact" with one) and a matching model."""
    table = {
        "d1": torch.tensor([1.0, 0.0]),
        "d2": torch.tensor([0.0, 1.0]),
        "d3": torch.tensor([0.7, 0.7]),
        "q1": torch.tensor([1.0, 0.1]),  # ranks d1, d3, d2
        "q2": torch.tensor([0.1, 1.0]),  # ranks d2, d3, d1
    }
    corpus = {"1": "d1", "2": "d2", "3": "d3", "4": ""}  # the empty text is skipped
    _write_beir(tmp_path / "msmarco", corpus, {"a": "q1", "b": "q2"}, ["a\t1\t1", "b\t3\t2", "b\t2\t0"])
    _write_beir(
        tmp_path / "NanoSciFact",
        corpus,
        {"a": "q1", "b": "q2", "c": "q2"},  # "c" has only a 0-score judgement: skipped
        ["query-id\tcorpus-id\tscore", "a\t2\t1", "b\t2\t1", "b\t1\t1", "c\t1\t0"],
    )
    return tmp_path, TableModel(table)


def test_load_beir_folder(toy_beir: tuple[Path, TableModel]) -> None:
    root, _ = toy_beir
    corpus, queries, relevant = load_beir_folder(root / "msmarco")
    assert corpus == {"1": "d1", "2": "d2", "3": "d3"}
    assert queries == {"a": "q1", "b": "q2"}
    assert relevant == {"a": {"1"}, "b": {"3"}}  # the score-0 judgement is not relevant
    _, _, relevant = load_beir_folder(root / "NanoSciFact")
    assert relevant == {"a": {"2"}, "b": {"1", "2"}}


def test_nano_beir_by_hand(toy_beir: tuple[Path, TableModel], tmp_path: Path) -> None:
    root, model = toy_beir
    ks = {"accuracy_at_k": [1, 3], "precision_recall_at_k": [1], "mrr_at_k": [3], "ndcg_at_k": [3], "map_at_k": [3]}
    evaluator = NanoBEIREvaluator(["msmarco", "scifact"], data_dir=root, **ks)
    out = tmp_path / "out"
    metrics = evaluator(model, output_path=str(out))
    # msmarco: q1 -> d1 at rank 1 (rr 1); q2 -> d3 at rank 2 (rr 1/2).
    assert metrics["NanoMSMARCO_cosine_accuracy@1"] == pytest.approx(0.5)
    assert metrics["NanoMSMARCO_cosine_mrr@3"] == pytest.approx(0.75)
    # scifact: q1 wants d2 (rank 3: rr 1/3); q2 wants d2 (rank 1) and d1 (rank 3).
    assert metrics["NanoSciFact_cosine_mrr@3"] == pytest.approx((1 / 3 + 1) / 2)
    assert metrics["NanoSciFact_cosine_recall@1"] == pytest.approx((0 + 0.5) / 2)
    for metric in ("accuracy@1", "accuracy@3", "precision@1", "recall@1", "mrr@3", "ndcg@3", "map@3"):
        mean = (metrics[f"NanoMSMARCO_cosine_{metric}"] + metrics[f"NanoSciFact_cosine_{metric}"]) / 2
        assert metrics[f"NanoBEIR_mean_cosine_{metric}"] == pytest.approx(mean)
    assert evaluator.primary_metric == "NanoBEIR_mean_cosine_ndcg@3"
    assert len(metrics) == 3 * 7
    assert model.model_card_data.recorded[-1] == {k: v for k, v in metrics.items() if k.startswith("NanoBEIR_mean")}
    with open(out / "NanoBEIR_evaluation_mean_results.csv", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == [
        "epoch",
        "steps",
        "cosine-Accuracy@1",
        "cosine-Accuracy@3",
        "cosine-Precision@1",
        "cosine-Recall@1",
        "cosine-MRR@3",
        "cosine-NDCG@3",
        "cosine-MAP@3",
    ]
    assert float(rows[1][6]) == pytest.approx(metrics["NanoBEIR_mean_cosine_mrr@3"])
    # Each dataset's own evaluator wrote its CSV too.
    assert (out / "Information-Retrieval_evaluation_NanoMSMARCO_results.csv").exists()


def test_nano_beir_options(toy_beir: tuple[Path, TableModel], monkeypatch: pytest.MonkeyPatch) -> None:
    root, model = toy_beir
    # The environment variable, truncate_dim in the names, a dict of folders, prompts and a custom aggregate.
    monkeypatch.setenv(DATA_DIR_ENV, str(root))
    evaluator = NanoBEIREvaluator(
        ["MSMARCO"], truncate_dim=1, aggregate_fn=np.max, aggregate_key="max", query_prompts="query: "
    )
    metrics = evaluator(model)
    assert evaluator.name == "NanoBEIR_max_1"
    assert "NanoMSMARCO_1_cosine_ndcg@10" in metrics and "NanoBEIR_max_1_cosine_ndcg@10" in metrics
    assert evaluator.primary_metric == "NanoBEIR_max_1_cosine_ndcg@10"
    assert {c["prompt"] for c in model.calls} == {"query: ", None}
    # One dataset: the aggregate would repeat its metrics, so only the dataset's own evaluator records.
    assert not any(key.startswith("NanoBEIR") for recorded in model.model_card_data.recorded for key in recorded)
    assert evaluator.get_config_dict() == {
        "dataset_names": ["MSMARCO"],
        "dataset_id": "sentence-transformers/NanoBEIR-en",
        "truncate_dim": 1,
        "query_prompts": {"MSMARCO": "query: "},
    }
    monkeypatch.delenv(DATA_DIR_ENV)
    evaluator = NanoBEIREvaluator(["scifact"], data_dir={"scifact": root / "NanoSciFact"}, main_score_function="dot")
    evaluator(TableModel(model.table, similarity_fn_name="dot"))
    assert evaluator.primary_metric == "NanoBEIR_mean_dot_ndcg@10"


def test_nano_beir_errors(toy_beir: tuple[Path, TableModel], monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = toy_beir
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    with pytest.raises(InvalidArgumentError, match=DATA_DIR_ENV):
        NanoBEIREvaluator(["msmarco"])
    with pytest.raises(InvalidArgumentError, match="nq") as error:
        NanoBEIREvaluator(["nq"], data_dir=root)
    assert str(root) in str(error.value) and DATA_DIR_ENV in str(error.value)
    with pytest.raises(InvalidArgumentError, match="not valid NanoBEIR datasets"):
        NanoBEIREvaluator(["mydata"], data_dir=root)
    with pytest.raises(InvalidArgumentError, match="cannot be empty"):
        NanoBEIREvaluator([], data_dir=root)
    with pytest.raises(InvalidArgumentError, match="corpus_prompts"):
        NanoBEIREvaluator(["msmarco", "scifact"], data_dir=root, corpus_prompts={"msmarco": "p: "})
    with pytest.raises(InvalidArgumentError, match="data_dir"):
        NanoBEIREvaluator(["msmarco"], data_dir={"scifact": root / "NanoSciFact"})
    (root / "msmarco" / "qrels" / "test.tsv").unlink()
    with pytest.raises(InvalidArgumentError, match="qrels"):
        NanoBEIREvaluator(["msmarco"], data_dir=root)


def _st_reference(folder: Path, name: str, model: Any) -> dict[str, float]:
    """sentence-transformers' InformationRetrievalEvaluator on the folder, built as its NanoBEIREvaluator builds one."""
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator as StIR

    def read(path: Path) -> dict[str, str]:
        with open(path, encoding="utf-8") as f:
            records = [json.loads(line) for line in f]
        return {str(r["_id"]): r["text"] for r in records if len(r["text"]) > 0}

    relevant: dict[str, set[str]] = {}
    with open(folder / "qrels" / "test.tsv", encoding="utf-8") as f:
        for line in f:
            query_id, corpus_id, score = line.rstrip("\n").split("\t")
            if score != "score" and int(score) > 0:  # the hub's NanoBEIR qrels list only relevant pairs
                relevant.setdefault(query_id, set()).add(corpus_id)
    evaluator = StIR(read(folder / "queries.jsonl"), read(folder / "corpus.jsonl"), relevant, name=name)
    return evaluator(model)


def _beir_subset(source: Path, target: Path, n_queries: int, extra_docs: int) -> None:
    """A copy of a BEIR folder cut to its first ``n_queries`` queries, their judged documents and ``extra_docs`` others."""
    (target / "qrels").mkdir(parents=True)
    query_lines = (source / "queries.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)[:n_queries]
    query_ids = {json.loads(line)["_id"] for line in query_lines}
    qrels = (source / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
    qrels = [line for i, line in enumerate(qrels) if i == 0 or line.split("\t")[0] in query_ids]
    judged = {line.split("\t")[1] for line in qrels}
    kept = []
    with open(source / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            doc_id = json.loads(line)["_id"]
            if doc_id in judged or extra_docs > 0:
                extra_docs -= doc_id not in judged
                kept.append(line)
    (target / "queries.jsonl").write_text("".join(query_lines), encoding="utf-8")
    (target / "qrels" / "test.tsv").write_text("".join(qrels), encoding="utf-8")
    (target / "corpus.jsonl").write_text("".join(kept), encoding="utf-8")


def test_nano_beir_matches_sentence_transformers_on_beir_folders(tmp_path: Path) -> None:
    # The real msmarco and dbpedia sets, cut to 20 queries, their judged documents and 1,000
    # other documents to keep the test fast.
    root = tmp_path / "beir"
    for short in ("msmarco", "dbpedia"):
        _beir_subset(shared_path("beir", short), root / short, n_queries=20, extra_docs=1000)
    ours_model, st_model = bert_static_models(seed=2)
    evaluator = NanoBEIREvaluator(["msmarco", "dbpedia"], data_dir=root, batch_size=64)
    ours = evaluator(ours_model, output_path=str(tmp_path / "out"))
    reference: dict[str, float] = {}
    per_metric: dict[str, list[float]] = {}
    for short, name in (("msmarco", "NanoMSMARCO"), ("dbpedia", "NanoDBPedia")):
        for key, value in _st_reference(root / short, name, st_model).items():
            reference[key] = value
            per_metric.setdefault(key[len(name) + 1 :], []).append(value)
    # The aggregation sentence-transformers' NanoBEIREvaluator applies: the mean per metric.
    reference.update({f"NanoBEIR_mean_{metric}": float(np.mean(values)) for metric, values in per_metric.items()})
    assert list(ours) == list(reference)
    for key, value in reference.items():
        assert ours[key] == pytest.approx(value, abs=1e-6), key
    assert evaluator.primary_metric == "NanoBEIR_mean_cosine_ndcg@10"
    assert ours["NanoBEIR_mean_cosine_ndcg@10"] > 0
