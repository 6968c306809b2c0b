"""The evaluators that need no retrieval engine, checked against sentence-transformers as an oracle."""

from __future__ import annotations

import csv
import json
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conftest import embedforge_static, random_sentences, shared_path, st_static, static_weights
from embedforge import SentenceTransformer
from embedforge.sentence_transformer import evaluation as ours_eval
from embedforge.sentence_transformer.evaluation.binary_classification import average_precision, matthews_corrcoef

ROWS = 120


# -- data --------------------------------------------------------------------------------------------


def stsb_rows(count: int = ROWS) -> list[tuple[str, str, float]]:
    """(sentence1, sentence2, score) from the STS benchmark dev split."""
    rows = []
    with open(shared_path("stsb", "sts-dev.csv"), encoding="utf-8") as f:
        for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            rows.append((row[5], row[6], float(row[4])))
            if len(rows) == count:
                break
    return rows


def quora_rows(count: int = ROWS) -> list[tuple[str, str, int]]:
    """(sentence1, sentence2, 0/1 duplicate label) from the Quora duplicates dev split."""
    rows = []
    with open(shared_path("quora-duplicates", "quora-dev.csv"), encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t")
        next(reader)
        for row in reader:
            rows.append((row[2], row[3], int(float(row[4]))))
            if len(rows) == count:
                break
    return rows


def snli_pairs() -> list[tuple[str, str, str]]:
    """(premise, hypothesis, gold label) from the SNLI sample, without no-consensus rows."""
    pairs = []
    with open(shared_path("snli-sample", "snli_1.0_dev.jsonl"), encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            if record["gold_label"] != "-":
                pairs.append((record["sentence1"], record["sentence2"], record["gold_label"]))
    return pairs


def snli_triplets(count: int = ROWS) -> tuple[list[str], list[str], list[str]]:
    """(premise, entailed hypothesis, contradicting hypothesis) triplets."""
    entailed: dict[str, str] = {}
    contradicted: dict[str, str] = {}
    for premise, hypothesis, label in snli_pairs():
        if label == "entailment":
            entailed.setdefault(premise, hypothesis)
        elif label == "contradiction":
            contradicted.setdefault(premise, hypothesis)
    anchors = [premise for premise in entailed if premise in contradicted][:count]
    return anchors, [entailed[a] for a in anchors], [contradicted[a] for a in anchors]


# -- models ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def st_eval() -> types.ModuleType:
    pytest.importorskip("sentence_transformers")
    from sentence_transformers.sentence_transformer import evaluation

    return evaluation


@pytest.fixture(scope="module")
def bert_pair(tiny_bert_dir: Path, st_eval: types.ModuleType) -> tuple[Any, Any]:
    """The same tiny BERT in embedforge and in sentence-transformers."""
    from sentence_transformers import SentenceTransformer as StModel

    return SentenceTransformer(str(tiny_bert_dir)).eval(), StModel(str(tiny_bert_dir), device="cpu").eval()


@pytest.fixture(scope="module")
def static_pair(st_eval: types.ModuleType) -> tuple[Any, Any]:
    """The same StaticEmbedding model in both libraries: fast enough for every variant."""
    weights = static_weights(seed=7, dim=32)
    return embedforge_static(weights), st_static(weights)


def read_csv(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


def assert_same_csv(ours_dir: Path, theirs_dir: Path) -> None:
    """Same file names, identical headers, and numerically equal rows."""
    names = sorted(p.name for p in ours_dir.iterdir())
    assert names == sorted(p.name for p in theirs_dir.iterdir())
    assert names
    for name in names:
        ours, theirs = read_csv(ours_dir / name), read_csv(theirs_dir / name)
        assert ours[0] == theirs[0]
        assert len(ours) == len(theirs)
        for ours_row, theirs_row in zip(ours[1:], theirs[1:]):
            assert len(ours_row) == len(theirs_row)
            assert [float(v) for v in ours_row] == pytest.approx([float(v) for v in theirs_row], abs=1e-6)


def run_both(ours: Any, theirs: Any, models: tuple[Any, Any], tmp_path: Path, **kwargs: Any) -> dict[str, float]:
    """Call both evaluators (twice, to check CSV appending) and compare metrics, primary metric and CSVs."""
    ours_dir, theirs_dir = tmp_path / "ours", tmp_path / "theirs"
    for epoch, steps in ((-1, -1), (1, 10)):
        ours_metrics = ours(models[0], output_path=str(ours_dir), epoch=epoch, steps=steps, **kwargs)
        theirs_metrics = theirs(models[1], output_path=str(theirs_dir), epoch=epoch, steps=steps, **kwargs)
        assert list(ours_metrics) == list(theirs_metrics)
        for key, value in theirs_metrics.items():
            assert ours_metrics[key] == pytest.approx(value, abs=1e-6), key
        assert ours.primary_metric == theirs.primary_metric
        assert ours.primary_metric in ours_metrics
    assert ours.greater_is_better == theirs.greater_is_better
    assert ours.description == theirs.description
    assert ours.get_config_dict() == theirs.get_config_dict()
    assert_same_csv(ours_dir, theirs_dir)
    return ours_metrics


# -- metric helpers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_average_precision_and_mcc_match_sklearn(seed: int) -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    generator = np.random.default_rng(seed)
    labels = generator.integers(0, 2, 300)
    # Rounding creates ties, which is where threshold handling differs between implementations.
    scores = np.round(generator.normal(size=300) + labels * 0.5, 1).astype(np.float32)
    assert average_precision(labels, scores) == pytest.approx(
        metrics.average_precision_score(labels, scores), abs=1e-12
    )
    predicted = scores >= 0.2
    assert matthews_corrcoef(labels, predicted) == pytest.approx(
        metrics.matthews_corrcoef(labels, predicted), abs=1e-12
    )
    constant = np.ones(300, dtype=bool)
    assert matthews_corrcoef(labels, constant) == metrics.matthews_corrcoef(labels, constant) == 0.0


# -- parity per evaluator ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({}, "sts_dev"),
        ({"similarity_fn_names": ["cosine", "euclidean", "manhattan", "dot"]}, ""),
        ({"main_similarity": "dot", "similarity_fn_names": ["cosine", "dot"]}, "x"),
        ({"precision": "int8"}, "q"),
        ({"precision": "ubinary", "truncate_dim": 16}, "b"),
    ],
)
def test_embedding_similarity_parity(static_pair: Any, st_eval: Any, tmp_path: Path, kwargs: dict, name: str) -> None:
    s1, s2, scores = zip(*stsb_rows())

    def make(module: Any) -> Any:
        return module.EmbeddingSimilarityEvaluator(list(s1), list(s2), list(scores), name=name, **kwargs)

    run_both(make(ours_eval), make(st_eval), static_pair, tmp_path)


@pytest.mark.parametrize(
    "kwargs", [{}, {"similarity_fn_names": ["cosine", "dot", "euclidean", "manhattan"]}, {"truncate_dim": 8}]
)
def test_binary_classification_parity(static_pair: Any, st_eval: Any, tmp_path: Path, kwargs: dict) -> None:
    s1, s2, labels = zip(*quora_rows())

    def make(module: Any) -> Any:
        return module.BinaryClassificationEvaluator(list(s1), list(s2), list(labels), name="quora", **kwargs)

    metrics = run_both(make(ours_eval), make(st_eval), static_pair, tmp_path)
    assert 0.0 <= metrics["quora_cosine_ap" if not kwargs.get("similarity_fn_names") else "quora_max_ap"] <= 1.0


def test_binary_classification_threshold_helpers_match(st_eval: Any) -> None:
    generator = np.random.default_rng(3)
    labels = generator.integers(0, 2, 200)
    scores = np.round(generator.normal(size=200), 1).astype(np.float32)
    ours, theirs = ours_eval.BinaryClassificationEvaluator, st_eval.BinaryClassificationEvaluator
    for higher in (True, False):
        assert ours.find_best_acc_and_threshold(scores, labels, higher) == theirs.find_best_acc_and_threshold(
            scores, labels, higher
        )
        assert ours.find_best_f1_and_threshold(scores, labels, higher) == theirs.find_best_f1_and_threshold(
            scores, labels, higher
        )


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"similarity_fn_names": ["cosine", "dot", "euclidean", "manhattan"]},
        {"main_similarity_function": "euclidean", "margin": {"euclidean": 0.05}},
        {"margin": 0.01, "truncate_dim": 16},
    ],
)
def test_triplet_parity(static_pair: Any, st_eval: Any, tmp_path: Path, kwargs: dict) -> None:
    anchors, positives, negatives = snli_triplets()

    def make(module: Any) -> Any:
        return module.TripletEvaluator(anchors, positives, negatives, name="snli", **kwargs)

    run_both(make(ours_eval), make(st_eval), static_pair, tmp_path)


def test_translation_parity(static_pair: Any, st_eval: Any, tmp_path: Path) -> None:
    s1, s2, _ = zip(*stsb_rows(80))
    for name in ("", "sts"):

        def make(module: Any, name: str = name) -> Any:
            return module.TranslationEvaluator(list(s1), list(s2), name=name)

        run_both(make(ours_eval), make(st_eval), static_pair, tmp_path / name)


def test_translation_counts_duplicates_as_correct(static_pair: Any) -> None:
    sources = ["the cat", "the cat", "a dog"]
    metrics = ours_eval.TranslationEvaluator(sources, ["x y", "x y", "a dog"])(static_pair[0])
    assert metrics["mean_accuracy"] == pytest.approx((metrics["src2trg_accuracy"] + metrics["trg2src_accuracy"]) / 2)


def test_mse_parity(static_pair: Any, st_eval: Any, tmp_path: Path) -> None:
    sentences = random_sentences(60, seed=5)
    weights = static_weights(seed=2, dim=32)
    students = (embedforge_static(weights), st_static(weights))
    for name in ("", "distill"):
        ours = ours_eval.MSEEvaluator(sentences, sentences, teacher_model=static_pair[0], name=name)
        theirs = st_eval.MSEEvaluator(sentences, sentences, teacher_model=static_pair[1], name=name)
        metrics = run_both(ours, theirs, students, tmp_path / (name or "none"))
        assert ours.primary_metric == ("distill_negative_mse" if name else "negative_mse")
        assert next(iter(metrics.values())) < 0


def test_mse_from_dataframe_parity(static_pair: Any, st_eval: Any, tmp_path: Path) -> None:
    en, de, fr = random_sentences(40, seed=1), random_sentences(40, seed=2), random_sentences(40, seed=3)
    rows = [{"en": e, "de": d if i % 7 else " ", "fr": f} for i, (e, d, f) in enumerate(zip(en, de, fr))]
    combinations = [("en", "de"), ("en", "fr")]
    weights = static_weights(seed=4, dim=32)
    students = (embedforge_static(weights), st_static(weights))
    for name in ("", "multi"):
        ours = ours_eval.MSEEvaluatorFromDataFrame(rows, static_pair[0], combinations, name=name)
        theirs = st_eval.MSEEvaluatorFromDataFrame(rows, static_pair[1], combinations, name=name)
        run_both(ours, theirs, students, tmp_path / (name or "none"))


def test_label_accuracy_parity(static_pair: Any, st_eval: Any, tmp_path: Path) -> None:
    from sentence_transformers import InputExample
    from sentence_transformers.sentence_transformer.losses import SoftmaxLoss as StSoftmax
    from torch.utils.data import DataLoader

    from embedforge.sentence_transformer.losses import SoftmaxLoss

    label_ids = {"entailment": 0, "neutral": 1, "contradiction": 2}
    examples = [InputExample(texts=[p, h], label=label_ids[g]) for p, h, g in snli_pairs()[:ROWS]]
    ours_model, theirs_model = static_pair
    torch.manual_seed(0)
    theirs_loss = StSoftmax(theirs_model, sentence_embedding_dimension=32, num_labels=3)
    ours_loss = SoftmaxLoss(ours_model, sentence_embedding_dimension=32, num_labels=3)
    ours_loss.classifier.load_state_dict(theirs_loss.classifier.state_dict())
    for name in ("", "snli"):
        ours = ours_eval.LabelAccuracyEvaluator(DataLoader(examples, batch_size=16), name=name, softmax_model=ours_loss)
        theirs = st_eval.LabelAccuracyEvaluator(
            DataLoader(examples, batch_size=16), name=name, softmax_model=theirs_loss
        )
        run_both(ours, theirs, static_pair, tmp_path / (name or "none"))


# -- SequentialEvaluator and the base class -------------------------------------------------------


class ConstantEvaluator(ours_eval.SentenceEvaluator):
    """Returns a plain float, like evaluators written before metric dicts existed."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def __call__(self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> float:
        return self.value


def test_sequential_parity_and_aggregation(bert_pair: Any, static_pair: Any, st_eval: Any, tmp_path: Path) -> None:
    s1, s2, scores = zip(*stsb_rows(40))
    q1, q2, labels = zip(*quora_rows(40))

    def build(module: Any, **kwargs: Any) -> Any:
        return module.SequentialEvaluator(
            [
                module.EmbeddingSimilarityEvaluator(list(s1), list(s2), list(scores), name="sts"),
                module.BinaryClassificationEvaluator(list(q1), list(q2), list(labels), name="quora"),
            ],
            **kwargs,
        )

    metrics = run_both(build(ours_eval), build(st_eval), bert_pair, tmp_path / "last")
    assert metrics["sequential_score"] == metrics["quora_cosine_ap"]

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    metrics = run_both(
        build(ours_eval, main_score_function=mean),
        build(st_eval, main_score_function=mean),
        static_pair,
        tmp_path / "m",
    )
    assert metrics["sequential_score"] == pytest.approx(
        (metrics["sts_spearman_cosine"] + metrics["quora_cosine_ap"]) / 2
    )


def test_sequential_plain_floats_and_empty() -> None:
    sequential = ours_eval.SequentialEvaluator(
        [ConstantEvaluator(0.25), ConstantEvaluator(0.75)], main_score_function=max
    )
    assert sequential(None) == {"evaluator_0": 0.25, "evaluator_1": 0.75, "sequential_score": 0.75}
    assert sequential.primary_metric == "sequential_score"
    assert ours_eval.SequentialEvaluator([])(None) == {"sequential_score": 0.0}


def test_base_evaluator_helpers() -> None:
    evaluator = ConstantEvaluator(1.0)
    evaluator.primary_metric = "accuracy"
    assert evaluator.prefix_name_to_metrics({"accuracy": np.float32(0.5), "note": "x"}, "dev") == {
        "dev_accuracy": 0.5,
        "dev_note": "x",
    }
    assert evaluator.primary_metric == "dev_accuracy"
    evaluator.prefix_name_to_metrics({"accuracy": 1}, "dev")
    assert evaluator.primary_metric == "dev_accuracy"
    assert evaluator.description == "Constant"
    assert evaluator.get_config_dict() == {}
    assert ours_eval.BaseEvaluator is ours_eval.SentenceEvaluator
    with pytest.raises(NotImplementedError):
        ours_eval.BaseEvaluator()(None)
    # Models without card data are fine: nothing is recorded.
    evaluator.store_metrics_in_model_card_data(types.SimpleNamespace(model_card_data=None), {"a": 1.0})


def test_package_exports_and_lazy_names() -> None:
    from embedforge.util import SimilarityFunction

    assert ours_eval.SimilarityFunction is SimilarityFunction
    for name in (
        "InformationRetrievalEvaluator",
        "NanoBEIREvaluator",
        "RerankingEvaluator",
        "ParaphraseMiningEvaluator",
    ):
        assert name in ours_eval.__all__
        assert name in dir(ours_eval)
    with pytest.raises(AttributeError):
        _ = ours_eval.NoSuchEvaluator


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: ours_eval.BinaryClassificationEvaluator(["a", "b"], ["c"], [0, 1]),
        lambda: ours_eval.BinaryClassificationEvaluator(["a"], ["c"], [0, 1]),
        lambda: ours_eval.BinaryClassificationEvaluator(["a"], ["c"], [2]),
        lambda: ours_eval.BinaryClassificationEvaluator(["a"], ["c"], [1], similarity_fn_names=["cos"]),
        lambda: ours_eval.EmbeddingSimilarityEvaluator(["a"], ["b", "c"], [1.0]),
        lambda: ours_eval.EmbeddingSimilarityEvaluator(["a"], ["b"], [1.0, 2.0]),
        lambda: ours_eval.EmbeddingSimilarityEvaluator(["a"], ["b"], [1.0], main_similarity="angle"),
        lambda: ours_eval.TripletEvaluator(["a"], ["b"], []),
        lambda: ours_eval.TripletEvaluator(["a"], ["b"], ["c"], margin={"cosin": 0.1}),
        lambda: ours_eval.TripletEvaluator(["a"], ["b"], ["c"], margin="big"),
        lambda: ours_eval.TripletEvaluator(["a"], ["b"], ["c"], similarity_fn_names=["l2"]),
        lambda: ours_eval.TranslationEvaluator(["a", "b"], ["c"]),
        lambda: ours_eval.MSEEvaluator(["a"], ["b", "c"], teacher_model=None),
    ],
)
def test_bad_input_raises_value_error(build: Any) -> None:
    with pytest.raises(ValueError):
        build()


def test_bad_input_messages_name_the_argument() -> None:
    from embedforge.exceptions import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match=r"sentences2 has 1 rows; expected as many as sentences1 \(2\)"):
        ours_eval.BinaryClassificationEvaluator(["a", "b"], ["c"], [0, 1])
    with pytest.raises(InvalidArgumentError, match="labels contains 2"):
        ours_eval.BinaryClassificationEvaluator(["a"], ["c"], [2])
    with pytest.raises(InvalidArgumentError, match="softmax_model=None"):
        ours_eval.LabelAccuracyEvaluator([])(embedforge_static(static_weights()))
