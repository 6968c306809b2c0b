"""Seed optimisation: the early-stopping callback, and seed_search on a tiny static model, checked against
independent runs of the trainer (same seed, constant learning rate, max_steps) scored with scipy's Spearman."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from datasets import Dataset
from scipy.stats import spearmanr

from conftest import random_sentences, word_level_tokenizer
from embedforge import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from embedforge.data_augmentation import SeedSearchResult, StopAfterStepsCallback, seed_search
from embedforge.exceptions import InvalidArgumentError
from embedforge.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator
from embedforge.sentence_transformer.losses import CosineSimilarityLoss
from embedforge.sentence_transformer.modules import StaticEmbedding

ROWS, BATCH, EPOCHS = 24, 8, 2
STEPS_PER_EPOCH = ROWS // BATCH  # 3
TRAIN = Dataset.from_dict(
    {
        "sentence1": random_sentences(ROWS, seed=21, max_words=8),
        "sentence2": random_sentences(ROWS, seed=22, max_words=8),
        "score": np.random.default_rng(0).random(ROWS).round(3).tolist(),
    }
)
DEV_A, DEV_B = random_sentences(20, seed=23), random_sentences(20, seed=24)
DEV_SCORES = np.random.default_rng(1).random(20).round(3).tolist()
#: A constant learning rate: a run stopped early after n steps equals a run with max_steps=n.
ARGS: dict[str, Any] = {
    "per_device_train_batch_size": BATCH,
    "num_train_epochs": EPOCHS,
    "learning_rate": 0.05,
    "lr_scheduler_type": "constant",
    "warmup_steps": 0,
    "disable_tqdm": True,
    "logging_steps": 100,
}


def new_model() -> SentenceTransformer:
    """A fresh StaticEmbedding model, initialised from torch's current seed."""
    return SentenceTransformer(modules=[StaticEmbedding(word_level_tokenizer(), embedding_dim=8)], device="cpu")


def evaluator() -> EmbeddingSimilarityEvaluator:
    return EmbeddingSimilarityEvaluator(DEV_A, DEV_B, DEV_SCORES, name="dev")


def spearman_of_cosine(model: SentenceTransformer) -> float:
    """The dev score written out: Spearman correlation of the gold scores with the cosine of the two embeddings."""
    a, b = model.encode(DEV_A), model.encode(DEV_B)
    cosine = (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return float(spearmanr(DEV_SCORES, cosine).statistic)


def train_independently(seed: int, tmp_path: Any, **overrides: Any) -> SentenceTransformer:
    """One training run without seed_search: seed everything, build the model, train."""
    from transformers import set_seed

    set_seed(seed)
    model = new_model()
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / f"run-{seed}"), report_to="none", seed=seed, **{**ARGS, **overrides}
    )
    SentenceTransformerTrainer(model=model, args=args, train_dataset=TRAIN, loss=CosineSimilarityLoss(model)).train()
    return model


# --- StopAfterStepsCallback ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("num_steps", [1, 4])
def test_the_callback_stops_training_after_exactly_n_steps(num_steps: int, tmp_path: Any) -> None:
    model = new_model()
    args = SentenceTransformerTrainingArguments(output_dir=str(tmp_path), report_to="none", **ARGS)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=TRAIN, loss=CosineSimilarityLoss(model))
    trainer.add_callback(StopAfterStepsCallback(num_steps))
    trainer.train()
    assert trainer.state.global_step == num_steps
    assert trainer.state.max_steps == STEPS_PER_EPOCH * EPOCHS  # the schedule still planned the whole run


@pytest.mark.parametrize("num_steps", [0, -2, 1.5, True, "3"])
def test_the_callback_needs_a_positive_step_count(num_steps: Any) -> None:
    with pytest.raises(InvalidArgumentError, match=f"num_steps={num_steps!r}; expected a positive integer"):
        StopAfterStepsCallback(num_steps)


# --- seed_search --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def search() -> tuple[SeedSearchResult, list[int]]:
    calls: list[int] = []

    def factory() -> SentenceTransformer:
        calls.append(1)
        return new_model()

    result = seed_search(
        factory,
        TRAIN,
        CosineSimilarityLoss,
        evaluator(),
        seeds=[0, 1, 2, 3],
        stop_after=0.5,
        keep=2,
        training_args=ARGS,
    )
    return result, calls


def test_seed_search_scores_every_seed_and_finishes_the_best_ones(search: tuple[SeedSearchResult, list[int]]) -> None:
    result, calls = search
    assert sorted(result.early_scores) == [0, 1, 2, 3]
    ranked = sorted(result.early_scores, key=lambda seed: -result.early_scores[seed])
    assert len(set(result.early_scores.values())) == 4  # no tie, so "the two best" is well defined
    assert sorted(result.final_scores) == sorted(ranked[:2])
    assert result.best_seed == max(result.final_scores, key=lambda seed: result.final_scores[seed])
    assert result.best_model is not None
    assert len(calls) == 4 + 2  # one early run per seed, one whole run per kept seed


def test_an_early_score_is_the_score_after_half_the_steps(
    search: tuple[SeedSearchResult, list[int]], tmp_path: Any
) -> None:
    result, _ = search
    steps = math.ceil(STEPS_PER_EPOCH * EPOCHS * 0.5)  # stop_after=0.5 of 6 steps
    for seed in (0, 3):
        model = train_independently(seed, tmp_path, max_steps=steps)
        assert result.early_scores[seed] == pytest.approx(spearman_of_cosine(model), abs=1e-9)


def test_a_rerun_of_the_best_seed_reproduces_its_final_score(
    search: tuple[SeedSearchResult, list[int]], tmp_path: Any
) -> None:
    result, _ = search
    assert result.best_seed is not None and result.best_model is not None
    model = train_independently(result.best_seed, tmp_path)
    assert spearman_of_cosine(model) == pytest.approx(result.final_scores[result.best_seed], abs=1e-9)
    assert spearman_of_cosine(result.best_model) == pytest.approx(result.final_scores[result.best_seed], abs=1e-9)
    np.testing.assert_array_equal(model.encode(DEV_A), result.best_model.encode(DEV_A))


@pytest.mark.parametrize(
    ("overrides", "early_steps"),
    [
        ({"max_steps": 4}, 2),  # half of max_steps, not of the epochs
        ({"gradient_accumulation_steps": 3}, 1),  # 3 batches make 1 optimizer step: 2 steps in all, half is 1
    ],
)
def test_the_early_stop_is_a_fraction_of_the_optimizer_steps_the_run_plans(
    overrides: dict[str, Any], early_steps: int, tmp_path: Any
) -> None:
    args = {**ARGS, **overrides}
    result = seed_search(
        new_model, TRAIN, CosineSimilarityLoss, evaluator(), seeds=[4], stop_after=0.5, keep=1, training_args=args
    )
    early = train_independently(4, tmp_path, **{**overrides, "max_steps": early_steps})
    assert result.early_scores[4] == pytest.approx(spearman_of_cosine(early), abs=1e-9)
    whole = train_independently(4, tmp_path, **overrides)
    assert result.final_scores[4] == pytest.approx(spearman_of_cosine(whole), abs=1e-9)
    assert result.early_scores[4] != pytest.approx(result.final_scores[4], abs=1e-6)  # the early run did stop early


def test_stop_after_one_trains_each_seed_once(tmp_path: Any) -> None:
    calls: list[int] = []

    def factory() -> SentenceTransformer:
        calls.append(1)
        return new_model()

    args = {**ARGS, "num_train_epochs": 1}
    result = seed_search(
        factory, TRAIN, CosineSimilarityLoss, evaluator(), seeds=[5, 6], stop_after=1.0, keep=2, training_args=args
    )
    assert len(calls) == 2
    assert result.final_scores == result.early_scores
    assert result.best_seed is not None
    reference = train_independently(result.best_seed, tmp_path, num_train_epochs=1)
    assert spearman_of_cosine(reference) == pytest.approx(result.final_scores[result.best_seed], abs=1e-9)


def test_a_chosen_metric_ranks_the_seeds() -> None:
    result = seed_search(
        new_model,
        TRAIN,
        CosineSimilarityLoss,
        evaluator(),
        seeds=[7],
        stop_after=1.0,
        training_args={**ARGS, "max_steps": 1},
        metric="dev_pearson_cosine",
    )
    assert result.best_model is not None
    a, b = result.best_model.encode(DEV_A), result.best_model.encode(DEV_B)
    cosine = (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert result.early_scores[7] == pytest.approx(np.corrcoef(DEV_SCORES, cosine)[0, 1], abs=1e-6)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"seeds": []}, r"seeds=\[\]; expected a non-empty list of integers"),
        ({"seeds": [1, "2"]}, r"seeds=\[1, '2'\]"),
        ({"stop_after": 0.0}, r"stop_after=0.0; expected a fraction of the training in \(0, 1\]"),
        ({"stop_after": 1.5}, r"stop_after=1.5"),
        ({"keep": 0}, r"keep=0; expected an integer from 1 to the number of seeds \(3\)"),
        ({"keep": 4}, r"keep=4"),
    ],
)
def test_seed_search_argument_errors(options: dict[str, Any], message: str) -> None:
    arguments = {"seeds": [0, 1, 2], **options}
    with pytest.raises(InvalidArgumentError, match=message):
        seed_search(new_model, TRAIN, CosineSimilarityLoss, evaluator(), training_args=ARGS, **arguments)


def test_an_unknown_metric_names_the_evaluators_scores() -> None:
    with pytest.raises(
        InvalidArgumentError, match=r"metric='dev_nope' is not among the evaluator's scores \[.*'dev_spearman_cosine'"
    ):
        seed_search(
            new_model,
            TRAIN,
            CosineSimilarityLoss,
            evaluator(),
            seeds=[0],
            stop_after=1.0,
            training_args={**ARGS, "max_steps": 1},
            metric="dev_nope",
        )
