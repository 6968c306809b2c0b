"""Labelling silver pairs with a cross-encoder (against transformers' logits and sentence-transformers'
CrossEncoder), and the dataset helpers both_orders and gold_and_silver, checked by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from datasets import Dataset, Features, Value

from conftest import random_sentences, write_tiny_classifier
from embedforge import CrossEncoder
from embedforge.data_augmentation import both_orders, gold_and_silver, label_pairs
from embedforge.exceptions import InvalidArgumentError

PAIRS = list(zip(random_sentences(23, seed=4), random_sentences(23, seed=5, max_words=16)))


def sigmoid_of_logits(folder: Path, pairs: list[tuple[str, str]]) -> np.ndarray:
    """The one-label cross-encoder's score written out: sigmoid of the sequence classifier's logit for the pair."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
    batch = tokenizer([a for a, _ in pairs], [b for _, b in pairs], padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
    return torch.sigmoid(logits[:, 0]).double().numpy()


@pytest.fixture(scope="module")
def two_label_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_classifier(tmp_path_factory.mktemp("ce-2"), num_labels=2)


class ScriptedCrossEncoder:
    """A stand-in cross-encoder with fixed scores, counting its predict calls."""

    num_labels = 1

    def __init__(self, scores: list[float]) -> None:
        self.scores = scores
        self.calls = 0

    def predict(self, pairs: list[Any], **kwargs: Any) -> np.ndarray:
        self.calls += 1
        return np.asarray(self.scores[: len(pairs)], dtype=np.float32)


# --- label_pairs --------------------------------------------------------------------------------------------------


def test_labels_are_the_cross_encoders_scores(scorer_dir: Path) -> None:
    model = CrossEncoder(str(scorer_dir), device="cpu")
    silver = label_pairs(model, PAIRS, batch_size=5)
    assert silver.column_names == ["sentence1", "sentence2", "score"]
    assert list(zip(silver["sentence1"], silver["sentence2"])) == PAIRS
    expected = sigmoid_of_logits(scorer_dir, PAIRS)
    np.testing.assert_allclose(silver["score"], expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(silver["score"], model.predict(PAIRS), rtol=0, atol=1e-6)
    assert float(np.ptp(expected)) > 0.05  # the scores differ, so a mix-up of rows would show


def test_labels_equal_sentence_transformers_cross_encoder_on_the_same_folder(scorer_dir: Path) -> None:
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import CrossEncoder as StCrossEncoder

    silver = label_pairs(CrossEncoder(str(scorer_dir), device="cpu"), PAIRS)
    expected = StCrossEncoder(str(scorer_dir), device="cpu").predict(PAIRS)
    np.testing.assert_allclose(silver["score"], expected, rtol=0, atol=1e-6)


def test_a_threshold_gives_zero_one_integer_labels(scorer_dir: Path) -> None:
    scores = sigmoid_of_logits(scorer_dir, PAIRS)
    threshold = float(np.median(scores))
    silver = label_pairs(CrossEncoder(str(scorer_dir), device="cpu"), PAIRS, threshold=threshold)
    assert silver.features["score"] == Value("int64")
    assert silver["score"] == [int(score >= threshold) for score in scores]
    assert 0 < sum(silver["score"]) < len(PAIRS)


def test_a_threshold_counts_a_score_equal_to_it_as_positive() -> None:
    silver = label_pairs(ScriptedCrossEncoder([0.25, 0.5, 0.75]), [("a", "b"), ("c", "d"), ("e", "f")], threshold=0.5)
    assert silver["score"] == [0, 1, 1]


def test_column_names_can_be_chosen() -> None:
    silver = label_pairs(ScriptedCrossEncoder([0.5]), [["q", "d"]], columns=("query", "passage", "label"))
    assert silver.to_dict() == {"query": ["q"], "passage": ["d"], "label": [0.5]}


def test_no_pairs_give_an_empty_dataset_without_calling_the_model() -> None:
    model = ScriptedCrossEncoder([])
    silver = label_pairs(model, [])
    assert len(silver) == 0 and silver.column_names == ["sentence1", "sentence2", "score"]
    assert model.calls == 0


def test_a_model_with_two_labels_is_refused(two_label_dir: Path) -> None:
    model = CrossEncoder(str(two_label_dir), device="cpu")
    assert model.num_labels == 2
    with pytest.raises(InvalidArgumentError, match=r"num_labels=2; labelling pairs needs a model with one output"):
        label_pairs(model, PAIRS[:2])


@pytest.mark.parametrize(
    ("pairs", "columns", "message"),
    [
        ([("a", "b", "c")], ("s1", "s2", "score"), r"pairs\[0\]=\('a', 'b', 'c'\); expected a pair of two texts"),
        ([("a", "b"), ("a", 1)], ("s1", "s2", "score"), r"pairs\[1\]=\('a', 1\)"),
        # A string is not a pair, even one of two characters.
        ([("a", "b"), "ab"], ("s1", "s2", "score"), r"pairs\[1\]='ab'; expected a pair of two texts"),
        ([("a", "b")], ("s1", "s1", "score"), r"columns=\('s1', 's1', 'score'\); expected three distinct names"),
        ([("a", "b")], "abc", r"columns='abc'"),
    ],
)
def test_bad_pairs_and_columns_are_refused(pairs: list[Any], columns: Any, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        label_pairs(ScriptedCrossEncoder([0.1, 0.2]), pairs, columns=columns)


# --- both_orders, gold_and_silver ---------------------------------------------------------------------------------


def test_both_orders_appends_the_swapped_pairs() -> None:
    features = Features({"left": Value("string"), "right": Value("string"), "label": Value("float32")})
    dataset = Dataset.from_dict({"left": ["a", "c"], "right": ["b", "d"], "label": [1.0, 0.25]}, features=features)
    doubled = both_orders(dataset)
    assert doubled.features == features
    assert doubled.to_dict() == {
        "left": ["a", "c", "b", "d"],
        "right": ["b", "d", "a", "c"],
        "label": [1.0, 0.25, 1.0, 0.25],
    }


def test_gold_and_silver_takes_golds_column_names_and_types() -> None:
    features = Features({"anchor": Value("string"), "other": Value("string"), "label": Value("float32")})
    gold = Dataset.from_dict({"anchor": ["g1"], "other": ["g2"], "label": [0.5]}, features=features)
    silver = Dataset.from_dict({"sentence1": ["s1", "s3"], "sentence2": ["s2", "s4"], "score": [0.125, 1.0]})
    assert silver.features["score"] == Value("float64")
    joined = gold_and_silver(gold, silver)
    assert joined.features == features
    assert joined.to_dict() == {"anchor": ["g1", "s1", "s3"], "other": ["g2", "s2", "s4"], "label": [0.5, 0.125, 1.0]}


def test_integer_gold_labels_do_not_truncate_fractional_silver_scores() -> None:
    # 0/1 gold labels (a classification set read from CSV) with the cross-encoder's probabilities as silver labels.
    gold = Dataset.from_dict({"s1": ["a", "b"], "s2": ["c", "d"], "label": [0, 1]})
    silver = Dataset.from_dict({"sentence1": ["e"], "sentence2": ["f"], "score": [0.75]})
    joined = gold_and_silver(gold, silver)
    assert joined.column_names == ["s1", "s2", "label"]
    assert joined["label"] == [0.0, 1.0, 0.75]
    # Thresholded (integer) silver labels keep the integer type.
    thresholded = Dataset.from_dict({"sentence1": ["e"], "sentence2": ["f"], "score": [1]})
    assert gold_and_silver(gold, thresholded).features["label"] == Value("int64")


def test_gold_and_silver_need_the_same_number_of_columns() -> None:
    gold = Dataset.from_dict({"s1": ["a"], "s2": ["b"], "label": [1.0]})
    silver = Dataset.from_dict({"s1": ["c"], "s2": ["d"]})
    with pytest.raises(InvalidArgumentError, match=r"gold has columns \['s1', 's2', 'label'\] but silver has"):
        gold_and_silver(gold, silver)
