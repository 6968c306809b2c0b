"""SentenceTransformerTrainer on tiny static models: datasets, losses, evaluators, checkpoints, optimizer groups."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

pytest.importorskip("datasets")
pytest.importorskip("accelerate")

from datasets import Dataset, DatasetDict, IterableDataset
from transformers import TrainerCallback

from conftest import embedforge_static, random_sentences, static_weights
from embedforge import SentenceTransformer
from embedforge.exceptions import InvalidArgumentError
from embedforge.sentence_transformer.evaluation import BaseEvaluator, EmbeddingSimilarityEvaluator
from embedforge.sentence_transformer.losses import CoSENTLoss, MultipleNegativesRankingLoss, SoftmaxLoss
from embedforge.sentence_transformer.trainer import SentenceTransformerTrainer
from embedforge.sentence_transformer.training_args import (
    BatchSamplers,
    MultiDatasetBatchSamplers,
    SentenceTransformerTrainingArguments,
)


class LogRecorder(TrainerCallback):
    """Keeps every log dict the trainer emits."""

    def __init__(self) -> None:
        self.logs: list[dict[str, Any]] = []

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if logs:
            self.logs.append(dict(logs))

    def train_losses(self) -> list[float]:
        return [log["loss"] for log in self.logs if "loss" in log]


def make_args(output_dir: Path | str, **overrides: Any) -> SentenceTransformerTrainingArguments:
    """Small, quiet, CPU-only arguments (overridable)."""
    options: dict[str, Any] = {
        "output_dir": str(output_dir),
        "per_device_train_batch_size": 8,
        "per_device_eval_batch_size": 8,
        "num_train_epochs": 1,
        "learning_rate": 0.05,
        "logging_steps": 1,
        "seed": 3,
        "report_to": "none",
        "save_strategy": "no",
        "use_cpu": True,
        "disable_tqdm": True,
    }
    options.update(overrides)
    return SentenceTransformerTrainingArguments(**options)


def pairs(count: int = 48, seed: int = 1) -> Dataset:
    return Dataset.from_dict(
        {"anchor": random_sentences(count, seed=seed), "positive": random_sentences(count, seed=seed + 100)}
    )


def scored_pairs(count: int = 48, seed: int = 5) -> Dataset:
    scores = np.random.default_rng(seed).random(count).round(3).tolist()
    return Dataset.from_dict(
        {
            "sentence1": random_sentences(count, seed=seed),
            "sentence2": random_sentences(count, seed=seed + 100),
            "score": scores,
        }
    )


def weights_of(model: SentenceTransformer) -> torch.Tensor:
    return model[0].embedding.weight.detach().clone()


# -- basic training ------------------------------------------------------------------------------------


def test_training_updates_weights_and_saves_a_folder_both_libraries_load(tmp_path: Path) -> None:
    model = embedforge_static(static_weights())
    before = weights_of(model)
    recorder = LogRecorder()
    args = make_args(tmp_path, save_strategy="steps", save_steps=3, max_steps=3)
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=pairs(), loss=MultipleNegativesRankingLoss(model), callbacks=[recorder]
    )
    trainer.train()
    assert not torch.equal(before, weights_of(model))
    assert len(recorder.train_losses()) == 3

    checkpoint = tmp_path / "checkpoint-3"
    assert (checkpoint / "modules.json").is_file()
    assert json.loads((checkpoint / "training_args.json").read_text())["learning_rate"] == 0.05
    texts = random_sentences(10, seed=9)
    expected = model.encode(texts)
    np.testing.assert_allclose(SentenceTransformer(str(checkpoint)).encode(texts), expected, atol=1e-6)
    st = pytest.importorskip("sentence_transformers")
    np.testing.assert_allclose(st.SentenceTransformer(str(checkpoint), device="cpu").encode(texts), expected, atol=1e-6)


def test_default_loss_is_cosent_and_iterable_datasets_train(tmp_path: Path) -> None:
    model = embedforge_static(static_weights())
    data = scored_pairs()
    trainer = SentenceTransformerTrainer(
        model=model, args=make_args(tmp_path, max_steps=2), train_dataset=data.to_iterable_dataset()
    )
    assert isinstance(trainer.loss, CoSENTLoss)
    before = weights_of(model)
    trainer.train()
    assert not torch.equal(before, weights_of(model))


def test_iterable_dataset_without_features_is_rejected(tmp_path: Path) -> None:
    model = embedforge_static(static_weights())

    def rows() -> Any:
        yield {"anchor": "a b", "positive": "c d", "scores": [1.0, 0.5], "flag": True}

    with pytest.raises(InvalidArgumentError, match="must have Features") as raised:
        SentenceTransformerTrainer(
            model=model,
            args=make_args(tmp_path),
            train_dataset=IterableDataset.from_generator(rows),
            loss=MultipleNegativesRankingLoss(model),
        )
    # The hint is a Features expression for the sample row, list columns included.
    hint = str(raised.value)
    assert "'anchor': Value('string')" in hint and "'scores': List(Value('float32'))" in hint
    assert "'flag': Value('bool')" in hint


# -- dataset-format checks -------------------------------------------------------------------------------


def test_loss_given_wrong_columns_fails_before_training(tmp_path: Path) -> None:
    model = embedforge_static(static_weights())
    with pytest.raises(InvalidArgumentError, match=r"train_dataset.*CoSENTLoss.*\['anchor', 'positive'\]"):
        SentenceTransformerTrainer(model=model, args=make_args(tmp_path), train_dataset=pairs(), loss=CoSENTLoss(model))
    one_column = Dataset.from_dict({"text": random_sentences(8)})
    with pytest.raises(InvalidArgumentError, match="MultipleNegativesRankingLoss needs at least 2 text columns"):
        SentenceTransformerTrainer(
            model=model, args=make_args(tmp_path), train_dataset=one_column, loss=MultipleNegativesRankingLoss(model)
        )
    # A dict of datasets is checked per dataset against its own loss.
    with pytest.raises(InvalidArgumentError, match=r"train_dataset\['sts'\]"):
        SentenceTransformerTrainer(
            model=model,
            args=make_args(tmp_path),
            train_dataset={"pairs": pairs(), "sts": pairs()},
            loss={"pairs": MultipleNegativesRankingLoss(model), "sts": CoSENTLoss(model)},
        )


def test_label_column_for_a_label_free_loss_is_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # sentence-transformers trains MNRL on data with a label column and ignores the labels; so do we.
    model = embedforge_static(static_weights())
    labelled = pairs().add_column("label", [1.0] * 48)
    with caplog.at_level("WARNING"):
        trainer = SentenceTransformerTrainer(
            model=model,
            args=make_args(tmp_path, max_steps=2),
            train_dataset=labelled,
            loss=MultipleNegativesRankingLoss(model),
        )
    assert "MultipleNegativesRankingLoss does not use labels; the label column 'label' is ignored" in caplog.text
    before = weights_of(model)
    trainer.train()
    assert not torch.equal(before, weights_of(model))


def test_reserved_column_names_and_missing_losses_are_rejected(tmp_path: Path) -> None:
    model = embedforge_static(static_weights())
    reserved = pairs().add_column("dataset_name", ["x"] * 48)
    with pytest.raises(InvalidArgumentError, match="reserved"):
        SentenceTransformerTrainer(
            model=model, args=make_args(tmp_path), train_dataset=reserved, loss=MultipleNegativesRankingLoss(model)
        )
    with pytest.raises(
        InvalidArgumentError, match=r"Currently, \['other'\] occurs in `train_dataset` but not in `loss`"
    ):
        SentenceTransformerTrainer(
            model=model,
            args=make_args(tmp_path),
            train_dataset={"pairs": pairs(), "other": pairs()},
            loss={"pairs": MultipleNegativesRankingLoss(model)},
        )
    with pytest.raises(InvalidArgumentError, match="must be a `DatasetDict`"):
        SentenceTransformerTrainer(
            model=model,
            args=make_args(tmp_path),
            train_dataset=pairs(),
            loss={"pairs": MultipleNegativesRankingLoss(model)},
        )
    with pytest.raises(InvalidArgumentError, match="eval_strategy"):
        SentenceTransformerTrainer(
            model=model,
            args=make_args(tmp_path, eval_strategy="steps"),
            train_dataset=pairs(),
            loss=MultipleNegativesRankingLoss(model),
        )


# -- multi-dataset ----------------------------------------------------------------------------------------


class LossSpy(torch.nn.Module):
    """Wraps a loss and records the label presence and column count of every batch it sees."""

    def __init__(self, inner: torch.nn.Module, name: str, seen: list[tuple[str, int, bool]]) -> None:
        super().__init__()
        self.inner, self.name, self.seen = inner, name, seen

    @property
    def model(self) -> Any:
        return self.inner.model

    def forward(self, features: Any, labels: Any) -> torch.Tensor:
        features = list(features)
        self.seen.append((self.name, len(features), labels is not None))
        return self.inner(features, labels)


@pytest.mark.parametrize("sampler", [MultiDatasetBatchSamplers.PROPORTIONAL, MultiDatasetBatchSamplers.ROUND_ROBIN])
def test_multi_dataset_training_routes_each_batch_to_its_loss(tmp_path: Path, sampler: Any) -> None:
    model = embedforge_static(static_weights())
    seen: list[tuple[str, int, bool]] = []
    losses = {
        "pairs": LossSpy(MultipleNegativesRankingLoss(model), "pairs", seen),
        "sts": LossSpy(CoSENTLoss(model), "sts", seen),
    }
    train = DatasetDict({"pairs": pairs(48), "sts": scored_pairs(16)})
    args = make_args(tmp_path, multi_dataset_batch_sampler=sampler)
    SentenceTransformerTrainer(model=model, args=args, train_dataset=train, loss=losses).train()
    # Every batch reached the loss of its own dataset, with its own columns and label.
    assert {entry for entry in seen} == {("pairs", 2, False), ("sts", 2, True)}
    counts = {name: sum(1 for entry in seen if entry[0] == name) for name in ("pairs", "sts")}
    if sampler == MultiDatasetBatchSamplers.PROPORTIONAL:
        assert counts == {"pairs": 6, "sts": 2}  # every batch of both datasets
    else:
        assert counts == {"pairs": 2, "sts": 2}  # alternate until the smaller dataset runs out


# -- evaluation ----------------------------------------------------------------------------------------------


def test_evaluator_metrics_are_logged_with_eval_prefix_without_eval_dataset(tmp_path: Path) -> None:
    model = embedforge_static(static_weights())
    data = scored_pairs(24, seed=7)
    evaluator = EmbeddingSimilarityEvaluator(data["sentence1"], data["sentence2"], data["score"], name="dev")
    recorder = LogRecorder()
    args = make_args(tmp_path, eval_strategy="steps", eval_steps=3, max_steps=6)
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=pairs(),
        loss=MultipleNegativesRankingLoss(model),
        evaluator=evaluator,
        callbacks=[recorder],
    )
    trainer.train()
    evaluations = [log for log in recorder.logs if "eval_dev_spearman_cosine" in log]
    assert len(evaluations) == 2  # steps 3 and 6
    assert "eval_loss" not in evaluations[0]
    # The last evaluation ran on the final weights: the evaluator agrees when called directly.
    direct = evaluator(model)
    assert evaluations[-1]["eval_dev_spearman_cosine"] == pytest.approx(direct["dev_spearman_cosine"], abs=1e-6)


def test_eval_dataset_gives_eval_loss_and_list_of_evaluators_is_sequential(tmp_path: Path) -> None:
    model = embedforge_static(static_weights())
    data = scored_pairs(24, seed=7)
    evaluators = [
        EmbeddingSimilarityEvaluator(data["sentence1"], data["sentence2"], data["score"], name="a"),
        EmbeddingSimilarityEvaluator(data["sentence1"], data["sentence2"], data["score"], name="b"),
    ]
    eval_data = pairs(16, seed=11)
    trainer = SentenceTransformerTrainer(
        model=model,
        args=make_args(tmp_path, per_device_eval_batch_size=16),
        train_dataset=pairs(),
        eval_dataset=eval_data,
        loss=MultipleNegativesRankingLoss(model),
        evaluator=evaluators,
    )
    metrics = trainer.evaluate()
    assert "eval_a_spearman_cosine" in metrics and "eval_b_spearman_cosine" in metrics
    # eval_loss is the loss over the eval set, here one batch (the row order within it does not matter).
    features = [model.preprocess(eval_data["anchor"]), model.preprocess(eval_data["positive"])]
    with torch.no_grad():
        expected = MultipleNegativesRankingLoss(model)(features, None).item()
    assert metrics["eval_loss"] == pytest.approx(expected, abs=1e-5)


class DecliningEvaluator(BaseEvaluator):
    """Scores 1.0 at the first evaluation and less after, so the first checkpoint is the best."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.primary_metric = "score"

    def __call__(self, model: Any, output_path: str | None = None, epoch: float = -1, steps: int = -1) -> Any:
        self.calls += 1
        return {"score": 1.0 / self.calls}


def test_load_best_model_at_end_restores_the_best_checkpoint(tmp_path: Path) -> None:
    model = embedforge_static(static_weights())
    args = make_args(
        tmp_path,
        eval_strategy="steps",
        eval_steps=2,
        save_strategy="steps",
        save_steps=2,
        max_steps=6,
        load_best_model_at_end=True,
        metric_for_best_model="eval_score",
    )
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=pairs(),
        loss=MultipleNegativesRankingLoss(model),
        evaluator=DecliningEvaluator(),
    )
    trainer.train()
    assert trainer.state.best_model_checkpoint.endswith("checkpoint-2")
    best = SentenceTransformer(str(tmp_path / "checkpoint-2"))
    last = SentenceTransformer(str(tmp_path / "checkpoint-6"))
    assert torch.equal(weights_of(model), weights_of(best))
    assert not torch.equal(weights_of(model), weights_of(last))


# -- checkpoints -----------------------------------------------------------------------------------------


def test_resume_from_checkpoint_matches_uninterrupted_training(tmp_path: Path) -> None:
    weights = static_weights()
    data = pairs(64)
    uninterrupted = embedforge_static(weights)
    args = make_args(tmp_path / "full", num_train_epochs=2, save_strategy="steps", save_steps=5)
    full = LogRecorder()
    SentenceTransformerTrainer(
        model=uninterrupted,
        args=args,
        train_dataset=data,
        loss=MultipleNegativesRankingLoss(uninterrupted),
        callbacks=[full],
    ).train()

    resumed = embedforge_static(weights)
    args = make_args(tmp_path / "resumed", num_train_epochs=2, save_strategy="steps", save_steps=5)
    tail = LogRecorder()
    trainer = SentenceTransformerTrainer(
        model=resumed,
        args=args,
        train_dataset=data,
        loss=MultipleNegativesRankingLoss(resumed),
        callbacks=[tail],
    )
    # Resume mid-way through the second epoch from the uninterrupted run's checkpoint.
    trainer.train(resume_from_checkpoint=str(tmp_path / "full" / "checkpoint-10"))
    assert tail.train_losses() == pytest.approx(full.train_losses()[10:], abs=1e-6)
    torch.testing.assert_close(weights_of(resumed), weights_of(uninterrupted), atol=1e-6, rtol=0)


# -- losses with weights, optimizer groups ----------------------------------------------------------------


def test_softmax_loss_classifier_is_trained(tmp_path: Path) -> None:
    model = embedforge_static(static_weights())
    rows = 32
    data = Dataset.from_dict(
        {
            "premise": random_sentences(rows, seed=1),
            "hypothesis": random_sentences(rows, seed=2),
            "label": [i % 3 for i in range(rows)],
        }
    )
    loss = SoftmaxLoss(model, model.get_embedding_dimension(), num_labels=3)
    before = loss.classifier.weight.detach().clone()
    SentenceTransformerTrainer(model=model, args=make_args(tmp_path), train_dataset=data, loss=loss).train()
    assert not torch.equal(before, loss.classifier.weight.detach())
    assert loss.classifier.weight.grad is None or not loss.classifier.weight.grad.any()


def test_learning_rate_mapping_makes_its_own_parameter_group(tmp_path: Path) -> None:
    model = embedforge_static(static_weights())
    args = make_args(tmp_path, learning_rate_mapping='{"embedding\\\\.weight": 0.5}')
    assert args.learning_rate_mapping == {"embedding\\.weight": 0.5}
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=pairs(), loss=MultipleNegativesRankingLoss(model)
    )
    optimizer = trainer.create_optimizer()
    groups = [(group["lr"], len(group["params"])) for group in optimizer.param_groups]
    assert (0.5, 1) in groups
    assert sum(count for _, count in groups) == 1  # the embedding left the default groups
    assert optimizer.param_groups[-1]["params"][0] is model[0].embedding.weight

    bad = make_args(tmp_path, learning_rate_mapping={"no_such_parameter": 0.1})
    trainer = SentenceTransformerTrainer(
        model=model, args=bad, train_dataset=pairs(), loss=MultipleNegativesRankingLoss(model)
    )
    with pytest.raises(InvalidArgumentError, match="no_such_parameter"):
        trainer.create_optimizer()


# -- prompts and router ------------------------------------------------------------------------------------


def test_prompts_reach_the_tokenizer_during_training(tmp_path: Path) -> None:
    model = embedforge_static(static_weights())
    calls: list[tuple[str | None, str | None]] = []
    original = model.preprocess

    def spy(inputs: list[str], prompt: str | None = None, **kwargs: Any) -> Any:
        calls.append((prompt, kwargs.get("task")))
        return original(inputs, prompt=prompt, **kwargs)

    model.preprocess = spy  # type: ignore[method-assign]
    args = make_args(tmp_path, max_steps=1, prompts={"anchor": "query: "})
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=pairs(), loss=MultipleNegativesRankingLoss(model)
    )
    calls.clear()  # the model card callback tokenizes samples at set-up; keep only training batches
    trainer.train()
    # Each batch: the anchor column with its prompt, then the positive column without one.
    assert calls and len(calls) % 2 == 0
    assert calls == [("query: ", None), (None, None)] * (len(calls) // 2)


def test_router_mapping_sends_columns_to_their_routes(tmp_path: Path) -> None:
    from conftest import word_level_tokenizer
    from embedforge.sentence_transformer.modules import Router, StaticEmbedding

    query = StaticEmbedding(word_level_tokenizer(), embedding_weights=static_weights(seed=1))
    document = StaticEmbedding(word_level_tokenizer(), embedding_weights=static_weights(seed=2))
    model = SentenceTransformer(modules=[Router.for_query_document([query], [document])])
    data = pairs()
    with pytest.raises(InvalidArgumentError, match="router_mapping"):
        SentenceTransformerTrainer(
            model=model, args=make_args(tmp_path), train_dataset=data, loss=MultipleNegativesRankingLoss(model)
        )
    query_before, document_before = query.embedding.weight.detach().clone(), document.embedding.weight.detach().clone()
    args = make_args(tmp_path, max_steps=2, router_mapping={"anchor": "query", "positive": "document"})
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=data, loss=MultipleNegativesRankingLoss(model)
    )
    batch = trainer.data_collator([data[0], data[1]])
    assert batch["anchor_task"] == "query" and batch["positive_task"] == "document"
    trainer.train()
    assert not torch.equal(query_before, query.embedding.weight.detach())
    assert not torch.equal(document_before, document.embedding.weight.detach())


# -- arguments ---------------------------------------------------------------------------------------------


def test_training_arguments_parse_strings_like_sentence_transformers(tmp_path: Path) -> None:
    args = make_args(
        tmp_path,
        batch_sampler="no_duplicates",
        multi_dataset_batch_sampler="round_robin",
        prompts='{"anchor": "query: "}',
        router_mapping='{"anchor": "query"}',
        warmup_ratio=0.1,
    )
    assert args.batch_sampler is BatchSamplers.NO_DUPLICATES
    assert args.multi_dataset_batch_sampler is MultiDatasetBatchSamplers.ROUND_ROBIN
    assert args.prompts == {"anchor": "query: "}
    assert args.router_mapping == {"anchor": "query"}
    assert args.warmup_steps == 0.1 and args.warmup_ratio is None
    assert args.prediction_loss_only is True
    assert make_args(tmp_path, prompts="query: ").prompts == "query: "  # not JSON: one prompt for all columns
    with pytest.raises(InvalidArgumentError, match="batch_sampler='nope'"):
        make_args(tmp_path, batch_sampler="nope")
    with pytest.raises(InvalidArgumentError, match="router_mapping"):
        make_args(tmp_path, router_mapping="not json")
    # Sampler callables are left out of to_dict (they do not serialise).
    custom = make_args(tmp_path, batch_sampler=lambda dataset, **kwargs: None)
    assert "batch_sampler" not in custom.to_dict()
    json.dumps(make_args(tmp_path).to_dict(), default=str)


def test_hyperparameter_search_with_optuna_runs_trials_with_fresh_models(tmp_path: Path) -> None:
    pytest.importorskip("optuna")
    weights = static_weights()
    built: list[SentenceTransformer] = []

    def model_init(trial: Any = None) -> SentenceTransformer:
        built.append(embedforge_static(weights))
        return built[-1]

    losses: list[MultipleNegativesRankingLoss] = []

    def loss_factory(model: SentenceTransformer) -> MultipleNegativesRankingLoss:
        losses.append(MultipleNegativesRankingLoss(model))
        return losses[-1]

    data = scored_pairs(24, seed=7)
    args = make_args(tmp_path, max_steps=2, eval_strategy="no")
    trainer = SentenceTransformerTrainer(
        model_init=model_init,
        args=args,
        train_dataset=pairs(),
        eval_dataset=pairs(16, seed=4),
        loss=loss_factory,
        evaluator=EmbeddingSimilarityEvaluator(data["sentence1"], data["sentence2"], data["score"], name="dev"),
    )

    def space(trial: Any) -> dict[str, Any]:
        return {"learning_rate": trial.suggest_float("learning_rate", 1e-3, 1e-1, log=True)}

    best = trainer.hyperparameter_search(
        hp_space=space,
        compute_objective=lambda metrics: metrics["eval_dev_spearman_cosine"],
        n_trials=2,
        direction="maximize",
        backend="optuna",
    )
    assert best.run_id is not None and "learning_rate" in best.hyperparameters
    # One model and one loss per trial (plus the ones built in __init__), each loss on its own model.
    assert len(built) >= 3 and len(losses) >= 3
    assert all(loss.model is model for loss, model in zip(losses[-2:], built[-2:]))
    assert os.path.isdir(tmp_path)


def test_eval_dataset_dict_logs_one_loss_per_dataset_and_the_evaluator_once(tmp_path: Path) -> None:
    model = embedforge_static(static_weights())
    data = scored_pairs(24, seed=7)
    recorder = LogRecorder()
    args = make_args(tmp_path, eval_strategy="steps", eval_steps=3, max_steps=3)
    SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset={"pairs": pairs()},
        eval_dataset={"pairs": pairs(16, seed=4), "sts": scored_pairs(16, seed=8)},
        loss={"pairs": MultipleNegativesRankingLoss(model), "sts": CoSENTLoss(model)},
        evaluator=EmbeddingSimilarityEvaluator(data["sentence1"], data["sentence2"], data["score"], name="dev"),
        callbacks=[recorder],
    ).train()
    evaluated = {key for log in recorder.logs for key in log if key.startswith("eval_") and "runtime" not in key}
    assert {"eval_pairs_loss", "eval_sts_loss", "eval_dev_spearman_cosine"} <= evaluated
    assert not any(key.startswith(("eval_pairs_dev", "eval_sts_dev")) for key in evaluated)


def test_tensorboard_callback_writes_events_and_the_card_records_the_run(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    model = embedforge_static(static_weights())
    args = make_args(tmp_path, max_steps=2, report_to="tensorboard")
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=pairs(), loss=MultipleNegativesRankingLoss(model)
    )
    trainer.train()
    events = [name for _, _, names in os.walk(tmp_path) for name in names if "tfevents" in name]
    assert events
    trainer.save_model(str(tmp_path / "final"))
    card = (tmp_path / "final" / "README.md").read_text(encoding="utf-8")
    assert "MultipleNegativesRankingLoss" in card


def test_tokenizer_is_the_old_name_of_processing_class(tmp_path: Path) -> None:
    model = embedforge_static(static_weights())
    with pytest.warns(FutureWarning, match="processing_class"):
        trainer = SentenceTransformerTrainer(
            model=model,
            args=make_args(tmp_path),
            train_dataset=pairs(),
            loss=MultipleNegativesRankingLoss(model),
            tokenizer=None,
        )
    assert trainer.processing_class is None


def test_embed_distill_projection_is_trained(tmp_path: Path) -> None:
    from embedforge.sentence_transformer.losses import EmbedDistillLoss

    model = embedforge_static(static_weights())
    teacher = np.random.default_rng(0).standard_normal((32, 12)).astype(np.float32)
    data = Dataset.from_dict({"text": random_sentences(32, seed=3), "label": teacher.tolist()})
    loss = EmbedDistillLoss(model, projection_dim=12)
    assert loss.projection is not None
    before = loss.projection.weight.detach().clone()
    SentenceTransformerTrainer(model=model, args=make_args(tmp_path), train_dataset=data, loss=loss).train()
    assert not torch.equal(before, loss.projection.weight.detach())
