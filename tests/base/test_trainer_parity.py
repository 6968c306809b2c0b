"""Step-by-step parity with sentence-transformers' trainer: same init, data, seed, sampler and loss -> same run."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

pytest.importorskip("datasets")
pytest.importorskip("accelerate")
pytest.importorskip("sentence_transformers")

from datasets import Dataset, DatasetDict
from transformers import TrainerCallback

import embedforge
from conftest import embedforge_static, random_sentences, st_static, static_weights
from embedforge.sentence_transformer import losses as ef_losses


class LossRecorder(TrainerCallback):
    """Keeps the training loss of every logged step."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if logs and "loss" in logs:
            self.losses.append(logs["loss"])


def st_library() -> tuple[Any, Any, Any]:
    """sentence-transformers' trainer, arguments and losses module."""
    st = importlib.import_module("sentence_transformers")
    return (
        st.SentenceTransformerTrainer,
        st.SentenceTransformerTrainingArguments,
        importlib.import_module("sentence_transformers.sentence_transformer.losses"),
    )


def quiet_args(args_class: Any, output_dir: Path, **overrides: Any) -> Any:
    """Small, quiet, CPU-only training arguments of ``args_class`` (either library's), with ``overrides``."""
    options: dict[str, Any] = {
        "output_dir": str(output_dir),
        "per_device_train_batch_size": 8,
        "num_train_epochs": 1,
        "logging_steps": 1,
        "report_to": "none",
        "save_strategy": "no",
        "use_cpu": True,
        "disable_tqdm": True,
    }
    return args_class(**{**options, **overrides})


def run(
    library: str, output_dir: Path, train_dataset: Any, make_loss: Any, **arguments: Any
) -> tuple[list[float], Any]:
    """Train a fresh copy of the shared static model with ``library``; return the logged losses and final weights."""
    weights = static_weights(dim=16)
    if library == "embedforge":
        model = embedforge_static(weights)
        trainer_class, args_class, losses = (
            embedforge.SentenceTransformerTrainer,
            embedforge.SentenceTransformerTrainingArguments,
            ef_losses,
        )
    else:
        model = st_static(weights)
        trainer_class, args_class, losses = st_library()
    args = quiet_args(
        args_class,
        output_dir / library,
        num_train_epochs=2,
        learning_rate=0.05,
        warmup_steps=2,
        seed=7,
        **arguments,
    )
    recorder = LossRecorder()
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=train_dataset,
        loss=make_loss(losses, model),
        callbacks=[recorder],
    )
    trainer.train()
    return recorder.losses, model[0].embedding.weight.detach().clone()


def anchor_positive(count: int = 40) -> Dataset:
    anchors = random_sentences(count, seed=21)
    # Repeated texts, so NO_DUPLICATES has something to avoid and its batches differ from the default's.
    positives = [random_sentences(count // 4, seed=22)[index % (count // 4)] for index in range(count)]
    return Dataset.from_dict({"anchor": anchors, "positive": positives})


def assert_same_run(ours: tuple[list[float], Any], theirs: tuple[list[float], Any]) -> None:
    assert len(ours[0]) == len(theirs[0]) > 0
    np.testing.assert_allclose(ours[0], theirs[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(ours[1], theirs[1], atol=1e-5, rtol=0)


@pytest.mark.parametrize("batch_sampler", ["batch_sampler", "no_duplicates"])
def test_mnrl_run_matches_sentence_transformers_step_by_step(tmp_path: Path, batch_sampler: str) -> None:
    data = anchor_positive()

    def make_loss(losses: Any, model: Any) -> Any:
        return losses.MultipleNegativesRankingLoss(model)

    ours = run("embedforge", tmp_path, data, make_loss, batch_sampler=batch_sampler)
    theirs = run("sentence_transformers", tmp_path, data, make_loss, batch_sampler=batch_sampler)
    assert_same_run(ours, theirs)


@pytest.mark.parametrize("multi_dataset_batch_sampler", ["proportional", "round_robin"])
def test_multi_dataset_run_with_loss_dict_matches_sentence_transformers(
    tmp_path: Path, multi_dataset_batch_sampler: str
) -> None:
    scores = np.random.default_rng(3).random(24).round(3).tolist()
    sts = Dataset.from_dict(
        {"sentence1": random_sentences(24, seed=31), "sentence2": random_sentences(24, seed=32), "score": scores}
    )
    data = DatasetDict({"pairs": anchor_positive(), "sts": sts})

    def make_loss(losses: Any, model: Any) -> Any:
        return {"pairs": losses.MultipleNegativesRankingLoss(model), "sts": losses.CoSENTLoss(model)}

    ours = run("embedforge", tmp_path, data, make_loss, multi_dataset_batch_sampler=multi_dataset_batch_sampler)
    theirs = run(
        "sentence_transformers", tmp_path, data, make_loss, multi_dataset_batch_sampler=multi_dataset_batch_sampler
    )
    assert_same_run(ours, theirs)


def test_bert_run_with_prompts_excluded_from_pooling_matches_sentence_transformers(
    tmp_path: Path, tiny_bert_dir: Path
) -> None:
    """The transformer path: prompts, prompt_length for include_prompt=False pooling, dropout under the seed."""
    data = Dataset.from_dict({"anchor": random_sentences(32, seed=1), "positive": random_sentences(32, seed=2)})
    results = {}
    for library in ("embedforge", "sentence_transformers"):
        if library == "embedforge":
            from embedforge.sentence_transformer.modules import Pooling, Transformer

            trainer_class, args_class, losses = (
                embedforge.SentenceTransformerTrainer,
                embedforge.SentenceTransformerTrainingArguments,
                ef_losses,
            )
            model_class: Any = embedforge.SentenceTransformer
        else:
            from sentence_transformers import SentenceTransformer as StModel
            from sentence_transformers.sentence_transformer.modules import Pooling, Transformer  # type: ignore[no-redef]

            trainer_class, args_class, losses = st_library()
            model_class = StModel
        transformer = Transformer(str(tiny_bert_dir))
        pooling = Pooling(transformer.get_embedding_dimension(), "mean", include_prompt=False)
        model = model_class(modules=[transformer, pooling], device="cpu")
        recorder = LossRecorder()
        args = quiet_args(args_class, tmp_path / library, learning_rate=1e-3, seed=5, prompts={"anchor": "query: "})
        trainer_class(
            model=model,
            args=args,
            train_dataset=data,
            loss=losses.MultipleNegativesRankingLoss(model),
            callbacks=[recorder],
        ).train()
        results[library] = (recorder.losses, model.encode(["the time of the new one"], prompt="query: "))
    ours, theirs = results["embedforge"], results["sentence_transformers"]
    assert len(ours[0]) == len(theirs[0]) == 4
    np.testing.assert_allclose(ours[0], theirs[0], atol=1e-5, rtol=0)
    np.testing.assert_allclose(ours[1], theirs[1], atol=1e-5, rtol=0)


@pytest.mark.parametrize("multi_dataset", [False, True])
def test_bert_triplet_run_with_dropout_matches_sentence_transformers(
    tmp_path: Path, tiny_bert_dir: Path, multi_dataset: bool
) -> None:
    """Dropout draws follow the forward passes: the candidate columns must share one padded forward as in ST 6."""

    def triplets(count: int, seed: int) -> Dataset:
        return Dataset.from_dict(
            {
                "anchor": random_sentences(count, seed=seed, max_words=6),
                "positive": random_sentences(count, seed=seed + 1, max_words=12),
                "negative": random_sentences(count, seed=seed + 2, max_words=20),
            }
        )

    data: Any = DatasetDict({"a": triplets(24, 1), "b": triplets(16, 11)}) if multi_dataset else triplets(24, 1)
    results = {}
    for library in ("embedforge", "sentence_transformers"):
        if library == "embedforge":
            model: Any = embedforge.SentenceTransformer(str(tiny_bert_dir), device="cpu")
            trainer_class, args_class, losses = (
                embedforge.SentenceTransformerTrainer,
                embedforge.SentenceTransformerTrainingArguments,
                ef_losses,
            )
        else:
            from sentence_transformers import SentenceTransformer as StModel

            model = StModel(str(tiny_bert_dir), device="cpu")
            trainer_class, args_class, losses = st_library()
        assert model[0].auto_model.config.hidden_dropout_prob > 0
        recorder = LossRecorder()
        args = quiet_args(args_class, tmp_path / library, learning_rate=1e-3, seed=11)
        trainer_class(
            model=model,
            args=args,
            train_dataset=data,
            loss=losses.MultipleNegativesRankingLoss(model),
            callbacks=[recorder],
        ).train()
        results[library] = recorder.losses
    assert len(results["embedforge"]) == len(results["sentence_transformers"]) == (5 if multi_dataset else 3)
    np.testing.assert_allclose(results["embedforge"], results["sentence_transformers"], atol=1e-5, rtol=0)
