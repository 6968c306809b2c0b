"""The Augmented SBERT scenarios end to end on a tiny cross-encoder and a tiny static bi-encoder (two training
steps each): what each model trains on, the metrics of each stage against scipy/sklearn formulas, saved folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from datasets import Dataset
from scipy.stats import pearsonr, spearmanr

from conftest import embedforge_static, random_sentences, static_weights
from embedforge import CrossEncoder, SentenceTransformer
from embedforge.data_augmentation import (
    AugmentationReport,
    TrainingSettings,
    augment_domain_transfer,
    augment_in_domain,
    random_pairs,
    sample_pairs,
    semantic_pairs,
    train_bi_encoder,
    unique_sentences,
)
from embedforge.data_augmentation.training import shape_for_loss
from embedforge.exceptions import InvalidArgumentError

SETTINGS = TrainingSettings(max_steps=2, batch_size=4, learning_rate=0.05, extra_args={"disable_tqdm": True})
WEIGHTS_SEED = 5


def pairs_dataset(count: int, seed: int, labels: list[Any], names: tuple[str, str, str]) -> Dataset:
    first = random_sentences(count, seed=seed, min_words=3, max_words=9)
    second = random_sentences(count, seed=seed + 100, min_words=3, max_words=9)
    return Dataset.from_dict({names[0]: first, names[1]: second, names[2]: labels})


GOLD = pairs_dataset(12, 1, np.random.default_rng(1).random(12).round(2).tolist(), ("s1", "s2", "score"))
DEV = pairs_dataset(10, 2, np.random.default_rng(2).random(10).round(2).tolist(), ("s1", "s2", "score"))
TEST = pairs_dataset(8, 3, np.random.default_rng(3).random(8).round(2).tolist(), ("s1", "s2", "score"))


def column(dataset: Dataset, name: str) -> list[Any]:
    return list(dataset[name])


GOLD_PAIRS = list(zip(column(GOLD, "s1"), column(GOLD, "s2")))


def bi_encoder() -> SentenceTransformer:
    """The tiny bi-encoder, always with the same initial weights (so a fresh copy shows the untrained model)."""
    return embedforge_static(static_weights(seed=WEIGHTS_SEED, dim=8))


def cosine(model: SentenceTransformer, first: list[str], second: list[str]) -> np.ndarray:
    a, b = model.encode(first), model.encode(second)
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def average_precision(labels: list[int], scores: np.ndarray) -> float:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    return float(sklearn_metrics.average_precision_score(labels, scores))


def record_training_sets(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Dataset]]:
    """Make both trainers record the dataset they are given (they still train as usual)."""
    import embedforge.cross_encoder.trainer as ce_trainer
    import embedforge.sentence_transformer.trainer as st_trainer

    seen: dict[str, list[Dataset]] = {"cross-encoder": [], "bi-encoder": []}

    class BiEncoderTrainer(st_trainer.SentenceTransformerTrainer):  # type: ignore[misc, name-defined]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            seen["bi-encoder"].append(kwargs["train_dataset"])
            super().__init__(*args, **kwargs)

    class CrossEncoderTrainer(ce_trainer.CrossEncoderTrainer):  # type: ignore[misc, name-defined]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            seen["cross-encoder"].append(kwargs["train_dataset"])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(st_trainer, "SentenceTransformerTrainer", BiEncoderTrainer)
    monkeypatch.setattr(ce_trainer, "CrossEncoderTrainer", CrossEncoderTrainer)
    return seen


# --- in-domain ----------------------------------------------------------------------------------------------------


def test_in_domain_with_bm25_trains_on_gold_plus_cross_encoder_labelled_bm25_pairs(
    scorer_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = record_training_sets(monkeypatch)
    cross_encoder, model = CrossEncoder(str(scorer_dir), device="cpu"), bi_encoder()
    report = augment_in_domain(
        GOLD,
        cross_encoder,
        model,
        strategy="bm25",
        top_k=2,
        dev=DEV,
        test=TEST,
        cross_encoder_settings=SETTINGS,
        bi_encoder_settings=SETTINGS,
        output_dir=str(tmp_path / "out"),
    )

    # The cross-encoder trained on the gold pairs in both orders.
    assert len(seen["cross-encoder"]) == 1
    assert seen["cross-encoder"][0].to_dict() == {
        "s1": column(GOLD, "s1") + column(GOLD, "s2"),
        "s2": column(GOLD, "s2") + column(GOLD, "s1"),
        "score": column(GOLD, "score") * 2,
    }
    untrained = CrossEncoder(str(scorer_dir), device="cpu")
    assert not np.allclose(cross_encoder.predict(GOLD_PAIRS), untrained.predict(GOLD_PAIRS))

    # The bi-encoder trained on gold, then the BM25 pairs of the gold sentences with the trained cross-encoder's scores.
    pairs = sample_pairs(unique_sentences(GOLD_PAIRS), "bm25", top_k=2, exclude=GOLD_PAIRS)
    assert 0 < len(pairs) == report.num_silver
    assert report.num_gold == len(GOLD)
    assert report.num_train_rows == len(GOLD) + len(pairs)
    (trained_on,) = seen["bi-encoder"]
    assert trained_on.column_names == ["s1", "s2", "score"]
    assert trained_on[: len(GOLD)] == GOLD[:]
    assert list(zip(column(trained_on, "s1"), column(trained_on, "s2")))[len(GOLD) :] == pairs
    np.testing.assert_allclose(
        column(trained_on, "score")[len(GOLD) :], cross_encoder.predict(pairs), rtol=0, atol=1e-6
    )

    # Metrics of each stage, from the formulas: Spearman/Pearson of cosine (bi-encoder) and of scores (cross-encoder).
    assert list(report.metrics) == ["bi-encoder before", "cross-encoder", "bi-encoder after"]
    before, after = report.metrics["bi-encoder before"], report.metrics["bi-encoder after"]
    for split, data in (("dev", DEV), ("test", TEST)):
        expected_before = spearmanr(
            column(data, "score"), cosine(bi_encoder(), column(data, "s1"), column(data, "s2"))
        ).statistic
        assert before[f"{split}_spearman_cosine"] == pytest.approx(expected_before, abs=1e-9)
        assert after[f"{split}_spearman_cosine"] == pytest.approx(
            spearmanr(column(data, "score"), cosine(model, column(data, "s1"), column(data, "s2"))).statistic, abs=1e-9
        )
        scores = cross_encoder.predict(list(zip(column(data, "s1"), column(data, "s2"))))
        assert report.metrics["cross-encoder"][f"{split}_spearman"] == pytest.approx(
            spearmanr(column(data, "score"), scores).statistic, abs=1e-9
        )
        assert report.metrics["cross-encoder"][f"{split}_pearson"] == pytest.approx(
            pearsonr(column(data, "score"), scores).statistic, abs=1e-6
        )
    assert not np.allclose(
        model.encode(column(DEV, "s1")), bi_encoder().encode(column(DEV, "s1"))
    )  # the bi-encoder did train

    # Both models are saved and load again with the same predictions.
    assert report.cross_encoder_path == str(tmp_path / "out" / "cross-encoder")
    assert report.bi_encoder_path == str(tmp_path / "out" / "bi-encoder")
    reloaded = CrossEncoder(report.cross_encoder_path, device="cpu")
    np.testing.assert_allclose(reloaded.predict(GOLD_PAIRS), cross_encoder.predict(GOLD_PAIRS), rtol=0, atol=1e-6)
    np.testing.assert_allclose(
        SentenceTransformer(report.bi_encoder_path, device="cpu").encode(column(DEV, "s1")),
        model.encode(column(DEV, "s1")),
        atol=1e-6,
    )
    assert list(report.seconds) == [
        "evaluate",
        "train cross-encoder",
        "sample pairs (bm25)",
        "label pairs",
        "train bi-encoder",
    ]
    table = report.format()
    assert "Augmented SBERT (in-domain, bm25 sampling, top_k=2): 12 gold pairs" in table
    assert "dev_spearman_cosine" in table and "bi-encoder after" in table


def test_in_domain_with_random_pairs_and_integer_labels_for_classification(
    scorer_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """0/1 gold labels (a classification set) with fractional silver scores; evaluation by average precision."""
    seen = record_training_sets(monkeypatch)
    gold = pairs_dataset(12, 1, [0, 1] * 6, ("s1", "s2", "label"))
    dev = pairs_dataset(10, 2, [1, 0, 0, 1, 1, 0, 1, 0, 0, 1], ("s1", "s2", "label"))
    cross_encoder, model = CrossEncoder(str(scorer_dir), device="cpu"), bi_encoder()
    report = augment_in_domain(
        gold,
        cross_encoder,
        model,
        strategy="random",
        num_pairs=7,
        dev=dev,
        task="classification",
        cross_encoder_settings=SETTINGS,
        bi_encoder_settings=SETTINGS,
    )
    gold_pairs = list(zip(column(gold, "s1"), column(gold, "s2")))
    pairs = random_pairs(unique_sentences(gold_pairs), 7, exclude=gold_pairs)
    assert report.num_silver == 7
    (trained_on,) = seen["bi-encoder"]
    assert list(zip(column(trained_on, "s1"), column(trained_on, "s2")))[12:] == pairs
    assert column(trained_on, "label")[:12] == column(gold, "label")
    np.testing.assert_allclose(column(trained_on, "label")[12:], cross_encoder.predict(pairs), rtol=0, atol=1e-6)
    assert report.cross_encoder_path is None and report.bi_encoder_path is None

    labels = column(dev, "label")
    assert report.metrics["bi-encoder before"]["dev_cosine_ap"] == pytest.approx(
        average_precision(labels, cosine(bi_encoder(), column(dev, "s1"), column(dev, "s2"))), abs=1e-9
    )
    assert report.metrics["bi-encoder after"]["dev_cosine_ap"] == pytest.approx(
        average_precision(labels, cosine(model, column(dev, "s1"), column(dev, "s2"))), abs=1e-9
    )
    scores = cross_encoder.predict(list(zip(column(dev, "s1"), column(dev, "s2"))))
    assert report.metrics["cross-encoder"]["dev_average_precision"] == pytest.approx(
        average_precision(labels, scores), abs=1e-9
    )


def test_in_domain_semantic_sampling_uses_the_untrained_bi_encoder_and_an_already_trained_cross_encoder(
    scorer_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = record_training_sets(monkeypatch)
    cross_encoder, model = CrossEncoder(str(scorer_dir), device="cpu"), bi_encoder()
    report = augment_in_domain(
        GOLD,
        cross_encoder,
        model,
        strategy="semantic",
        top_k=1,
        train_cross_encoder_first=False,
        bi_encoder_settings=SETTINGS,
    )
    assert seen["cross-encoder"] == []
    assert "train cross-encoder" not in report.seconds
    assert report.metrics == {}  # no dev or test data
    pairs = semantic_pairs(unique_sentences(GOLD_PAIRS), bi_encoder(), top_k=1, exclude=GOLD_PAIRS)
    (trained_on,) = seen["bi-encoder"]
    assert list(zip(column(trained_on, "s1"), column(trained_on, "s2")))[len(GOLD) :] == pairs
    untrained = CrossEncoder(str(scorer_dir), device="cpu")
    np.testing.assert_allclose(column(trained_on, "score")[len(GOLD) :], untrained.predict(pairs), rtol=0, atol=1e-6)


def test_in_domain_argument_errors(scorer_dir: Path) -> None:
    cross_encoder = CrossEncoder(str(scorer_dir), device="cpu")
    with pytest.raises(
        InvalidArgumentError, match=r"task='ranking'; expected one of \['similarity', 'classification'\]"
    ):
        augment_in_domain(GOLD, cross_encoder, bi_encoder(), task="ranking")
    with pytest.raises(InvalidArgumentError, match=r"strategy='nearest' is not a sampling strategy"):
        augment_in_domain(GOLD, cross_encoder, bi_encoder(), strategy="nearest", train_cross_encoder_first=False)


# --- domain transfer ----------------------------------------------------------------------------------------------


def test_domain_transfer_with_mnrl_trains_on_the_target_pairs_scoring_at_least_the_threshold(
    scorer_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = record_training_sets(monkeypatch)
    source = pairs_dataset(8, 4, np.random.default_rng(4).random(8).round(2).tolist(), ("a", "b", "score"))
    target_pairs = list(zip(random_sentences(14, seed=5, min_words=3), random_sentences(14, seed=6, min_words=3)))
    target_dev = pairs_dataset(10, 7, [1, 1, 0, 0, 1, 0, 1, 0, 0, 1], ("q", "d", "label"))
    cross_encoder, model = CrossEncoder(str(scorer_dir), device="cpu"), bi_encoder()
    # The cross-encoder is used as it is, so its scores and the pairs at or above the threshold are known beforehand.
    scores = cross_encoder.predict(target_pairs)
    threshold = float(np.sort(scores)[5])  # 9 of the 14 pairs score at least this
    kept = [pair for pair, score in zip(target_pairs, scores) if score >= threshold]
    assert len(kept) == 9

    report = augment_domain_transfer(
        source,
        target_pairs,
        cross_encoder,
        model,
        target_dev=target_dev,
        threshold=threshold,
        train_cross_encoder_first=False,
        bi_encoder_settings=TrainingSettings(
            max_steps=2, batch_size=4, loss="MultipleNegativesRankingLoss", extra_args={"disable_tqdm": True}
        ),
    )
    assert report.scenario == "domain transfer"
    assert (report.num_gold, report.num_silver, report.num_train_rows) == (8, 14, 9)
    (trained_on,) = seen["bi-encoder"]
    assert trained_on.column_names == ["sentence1", "sentence2"]
    assert list(zip(column(trained_on, "sentence1"), column(trained_on, "sentence2"))) == kept

    labels = column(target_dev, "label")
    assert list(report.metrics) == ["bi-encoder before", "cross-encoder", "bi-encoder after"]
    assert report.metrics["bi-encoder before"]["dev_cosine_ap"] == pytest.approx(
        average_precision(labels, cosine(bi_encoder(), column(target_dev, "q"), column(target_dev, "d"))), abs=1e-9
    )
    assert report.metrics["bi-encoder after"]["dev_cosine_ap"] == pytest.approx(
        average_precision(labels, cosine(model, column(target_dev, "q"), column(target_dev, "d"))), abs=1e-9
    )
    dev_scores = cross_encoder.predict(list(zip(column(target_dev, "q"), column(target_dev, "d"))))
    assert report.metrics["cross-encoder"]["dev_average_precision"] == pytest.approx(
        average_precision(labels, dev_scores), abs=1e-9
    )


def test_domain_transfer_trains_the_cross_encoder_on_the_source_and_labels_the_target(
    scorer_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = record_training_sets(monkeypatch)
    source = pairs_dataset(8, 4, np.random.default_rng(4).random(8).round(2).tolist(), ("a", "b", "score"))
    source_dev = pairs_dataset(8, 8, np.random.default_rng(8).random(8).round(2).tolist(), ("a", "b", "score"))
    target_pairs = list(zip(random_sentences(6, seed=5), random_sentences(6, seed=6)))
    cross_encoder = CrossEncoder(str(scorer_dir), device="cpu")
    report = augment_domain_transfer(
        source,
        target_pairs,
        cross_encoder,
        bi_encoder(),
        source_dev=source_dev,
        cross_encoder_settings=SETTINGS,
        bi_encoder_settings=SETTINGS,
    )
    (ce_data,) = seen["cross-encoder"]
    assert ce_data.to_dict() == {
        "a": column(source, "a") + column(source, "b"),
        "b": column(source, "b") + column(source, "a"),
        "score": column(source, "score") * 2,
    }
    (bi_data,) = seen["bi-encoder"]  # CosineSimilarityLoss: every target pair, with the trained cross-encoder's score
    assert list(zip(column(bi_data, "sentence1"), column(bi_data, "sentence2"))) == target_pairs
    np.testing.assert_allclose(column(bi_data, "score"), cross_encoder.predict(target_pairs), rtol=0, atol=1e-6)
    scores = cross_encoder.predict(list(zip(column(source_dev, "a"), column(source_dev, "b"))))
    assert report.metrics == {
        "cross-encoder": {
            "source-dev_pearson": pytest.approx(pearsonr(column(source_dev, "score"), scores).statistic, abs=1e-6),
            "source-dev_spearman": pytest.approx(spearmanr(column(source_dev, "score"), scores).statistic, abs=1e-9),
        }
    }


# --- shaping for the loss, settings -------------------------------------------------------------------------------

SILVER = Dataset.from_dict({"x": ["a", "b", "c", "d"], "y": ["e", "f", "g", "h"], "score": [0.2, 0.5, 0.9, 0.49]})


def test_shape_for_loss_by_hand() -> None:
    positive = shape_for_loss(SILVER, "MultipleNegativesRankingLoss", 0.5)
    assert positive.to_dict() == {"x": ["b", "c"], "y": ["f", "g"]}
    assert shape_for_loss(SILVER, "CachedMultipleNegativesRankingLoss", 0.3).to_dict() == {
        "x": ["b", "c", "d"],
        "y": ["f", "g", "h"],
    }
    assert column(shape_for_loss(SILVER, "ContrastiveLoss", 0.5), "score") == [0, 1, 1, 0]
    assert column(shape_for_loss(SILVER, "OnlineContrastiveLoss", 0.1), "score") == [1, 1, 1, 1]
    for loss in ("CosineSimilarityLoss", "CoSENTLoss", "AnglELoss"):
        assert shape_for_loss(SILVER, loss, 0.5).to_dict() == SILVER.to_dict()


def test_training_settings_from_a_mapping() -> None:
    settings = TrainingSettings.from_dict({"epochs": 2, "loss": "CoSENTLoss", "extra_args": {"fp16": False}}, "x")
    assert settings == TrainingSettings(epochs=2, loss="CoSENTLoss", extra_args={"fp16": False})
    assert TrainingSettings.from_dict(None, "x") == TrainingSettings()
    arguments = settings.arguments("folder")
    assert arguments["output_dir"] == "folder" and arguments["num_train_epochs"] == 2
    assert arguments["per_device_train_batch_size"] == 16 and arguments["learning_rate"] == 2e-5
    assert arguments["save_strategy"] == "no" and arguments["fp16"] is False


def test_training_settings_reject_unknown_keys() -> None:
    with pytest.raises(
        InvalidArgumentError, match=r"config section 'bi_encoder' has unknown setting\(s\) \['epoch', 'lr'\]; valid"
    ):
        TrainingSettings.from_dict({"epoch": 1, "lr": 0.1, "seed": 3}, "config section 'bi_encoder'")


def test_an_unknown_loss_names_the_known_ones() -> None:
    with pytest.raises(
        InvalidArgumentError, match=r"loss='NoSuchLoss' is not a bi-encoder loss; expected one of \[.*'CoSENTLoss'"
    ):
        train_bi_encoder(bi_encoder(), SILVER, TrainingSettings(loss="NoSuchLoss"))


def test_report_table_lists_every_metric_of_every_stage() -> None:
    report = AugmentationReport(scenario="x", num_gold=3, num_silver=4, num_train_rows=7)
    report.metrics = {"first": {"m1": 0.5}, "second": {"m1": 0.25, "m2": 1.0}}
    report.seconds = {"train": 2.0, "label": 0.5}
    lines = report.format().splitlines()
    assert lines[0] == "Augmented SBERT (x): 3 gold pairs, 4 silver pairs, bi-encoder trained on 7 rows"
    row = {line.split()[0]: line.split()[1:] for line in lines[4:6]}
    assert row == {"m1": ["0.5000", "0.2500"], "m2": ["1.0000"]}
    assert "time: 2.5 s in all" in lines
