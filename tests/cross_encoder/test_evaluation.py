"""CrossEncoder evaluators: same metric keys and values as sentence-transformers' on the same models."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import random_sentences
from embedforge import CrossEncoder
from embedforge.cross_encoder import evaluation as ours
from embedforge.cross_encoder.evaluation.classification import f1_averages

PAIRS = [list(pair) for pair in zip(random_sentences(60, seed=3), random_sentences(60, seed=4, max_words=20))]


def st_models(path: Path) -> tuple[Any, Any]:
    """(embedforge CrossEncoder, sentence-transformers CrossEncoder) of one folder, and ST's evaluation module."""
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import CrossEncoder as StCrossEncoder

    return CrossEncoder(str(path)), StCrossEncoder(str(path), device="cpu")


def st_evaluation() -> Any:
    pytest.importorskip("sentence_transformers")
    from sentence_transformers.cross_encoder import evaluation

    return evaluation


def assert_same_metrics(got: dict[str, Any], expected: dict[str, Any]) -> None:
    assert list(got) == list(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-6), key


def test_f1_averages_equal_sklearn() -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    generator = np.random.default_rng(5)
    for _ in range(20):
        labels = generator.integers(0, 4, size=30)
        predicted = generator.integers(0, 5, size=30)  # class 4 is never true
        got = f1_averages(labels, predicted)
        for average in ("macro", "micro", "weighted"):
            expected = sklearn_metrics.f1_score(labels, predicted, average=average, zero_division=0)
            assert got[f"f1_{average}"] == pytest.approx(expected, abs=1e-12), average


def test_binary_classification_matches_sentence_transformers(tmp_path: Path, scorer_dir: Path) -> None:
    model, st_model = st_models(scorer_dir)
    labels = [random.Random(index).randint(0, 1) for index in range(len(PAIRS))]
    evaluator = ours.CrossEncoderClassificationEvaluator(PAIRS, labels, name="dev", batch_size=7)
    theirs = st_evaluation().CrossEncoderClassificationEvaluator(PAIRS, labels, name="dev", batch_size=7)
    got = evaluator(model, output_path=str(tmp_path / "ours"))
    assert_same_metrics(got, theirs(st_model, output_path=str(tmp_path / "theirs")))
    assert evaluator.primary_metric == theirs.primary_metric == "dev_average_precision"
    csv_name = "CrossEncoderClassificationEvaluator_dev_results.csv"
    assert (tmp_path / "ours" / csv_name).read_text().splitlines()[0] == (
        (tmp_path / "theirs" / csv_name).read_text().splitlines()[0]
    )


def test_multi_class_classification_matches_sentence_transformers(classifier_dir: Path) -> None:
    model, st_model = st_models(classifier_dir)
    labels = [index % 3 for index in range(len(PAIRS))]
    got = ours.CrossEncoderClassificationEvaluator(PAIRS, labels)(model)
    expected = st_evaluation().CrossEncoderClassificationEvaluator(PAIRS, labels)(st_model)
    assert_same_metrics(got, expected)


def test_correlation_matches_sentence_transformers(scorer_dir: Path) -> None:
    model, st_model = st_models(scorer_dir)
    gold = [random.Random(index).random() for index in range(len(PAIRS))]
    evaluator = ours.CrossEncoderCorrelationEvaluator(PAIRS, gold, name="sts")
    got = evaluator(model)
    assert_same_metrics(got, st_evaluation().CrossEncoderCorrelationEvaluator(PAIRS, gold, name="sts")(st_model))
    assert evaluator.primary_metric == "sts_spearman"


def reranking_samples() -> list[dict[str, Any]]:
    texts = random_sentences(80, seed=9, max_words=16)
    generator = random.Random(2)
    samples: list[dict[str, Any]] = []
    for index in range(12):
        query = f"query {texts[index]}"
        positives = generator.sample(texts[12:], 1 + index % 3)
        others = [text for text in generator.sample(texts[12:], 10) if text not in positives]
        if index % 2:
            samples.append({"query": query, "positive": positives, "negative": others})
        else:
            # Retrieved lists: some hold every positive, some only part, one none of them.
            found = positives[: index % 3] if index != 4 else []
            documents = others[:6] + found
            generator.shuffle(documents)
            samples.append({"query": query, "positive": positives, "documents": documents})
    return samples


@pytest.mark.parametrize("always_rerank_positives", [True, False])
def test_reranking_matches_sentence_transformers(scorer_dir: Path, always_rerank_positives: bool) -> None:
    model, st_model = st_models(scorer_dir)
    samples = reranking_samples()
    options = {"at_k": 5, "name": "rr", "always_rerank_positives": always_rerank_positives}
    document_samples = [sample for sample in samples if "documents" in sample]
    negative_samples = [sample for sample in samples if "negative" in sample]
    for subset in (document_samples, negative_samples):
        evaluator = ours.CrossEncoderRerankingEvaluator(subset, **options)
        got = evaluator(model)
        expected = st_evaluation().CrossEncoderRerankingEvaluator(subset, **options)(st_model)
        assert_same_metrics(got, expected)
        assert evaluator.primary_metric == "rr_ndcg@5"
    # Mixed samples (documents and negatives together) work as well.
    assert_same_metrics(
        ours.CrossEncoderRerankingEvaluator(samples, **options)(model),
        st_evaluation().CrossEncoderRerankingEvaluator(samples, **options)(st_model),
    )


def test_reranking_rejects_malformed_samples(scorer_dir: Path) -> None:
    from embedforge.exceptions import InvalidArgumentError

    model = CrossEncoder(str(scorer_dir))
    with pytest.raises(InvalidArgumentError, match=r"samples\[0\]"):
        ours.CrossEncoderRerankingEvaluator([{"query": "q", "positive": ["p"]}])(model)
    with pytest.raises(InvalidArgumentError, match="'query' and 'positive'"):
        ours.CrossEncoderRerankingEvaluator([{"positive": ["p"], "negative": ["n"]}])(model)


def test_old_names_warn_and_still_evaluate(scorer_dir: Path) -> None:
    from embedforge.sentence_transformer.readers import InputExample

    model = CrossEncoder(str(scorer_dir))
    examples = [InputExample(texts=pair, label=float(index % 2)) for index, pair in enumerate(PAIRS)]
    with pytest.warns(DeprecationWarning, match="CrossEncoderCorrelationEvaluator"):
        old = ours.CECorrelationEvaluator.from_input_examples(examples, name="old")
    new = ours.CrossEncoderCorrelationEvaluator.from_input_examples(examples, name="old")
    assert old(model) == new(model)
    with pytest.warns(DeprecationWarning, match="CrossEncoderClassificationEvaluator"):
        ours.CEBinaryClassificationEvaluator.from_input_examples(examples)
