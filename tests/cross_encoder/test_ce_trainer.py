"""CrossEncoderTrainer and the legacy fit: step-by-step parity with sentence-transformers, and what the trainer offers."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

pytest.importorskip("datasets")
pytest.importorskip("accelerate")

from datasets import Dataset, DatasetDict
from transformers import TrainerCallback

import embedforge
from conftest import random_sentences
from embedforge.cross_encoder import CrossEncoder, CrossEncoderDataCollator
from embedforge.exceptions import InvalidArgumentError

QUERIES = random_sentences(24, seed=11, max_words=6)
DOCUMENTS = random_sentences(24, seed=12, max_words=14)
NEGATIVES = random_sentences(24, seed=13, max_words=14)


class LossRecorder(TrainerCallback):
    """Keeps the training loss of every logged step."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if logs and "loss" in logs:
            self.losses.append(logs["loss"])


def quiet_args(args_class: Any, output_dir: Path, **overrides: Any) -> Any:
    """Small, quiet, CPU-only training arguments of ``args_class`` (either library's), with ``overrides``."""
    options: dict[str, Any] = {
        "output_dir": str(output_dir),
        "per_device_train_batch_size": 6,
        "num_train_epochs": 1,
        "logging_steps": 1,
        "report_to": "none",
        "save_strategy": "no",
        "use_cpu": True,
        "disable_tqdm": True,
        "learning_rate": 1e-3,
        "seed": 7,
    }
    return args_class(**{**options, **overrides})


def pair_dataset(num_labels: int = 1) -> Dataset:
    labels = (
        [float(i % 2) for i in range(len(QUERIES))]
        if num_labels == 1
        else [i % num_labels for i in range(len(QUERIES))]
    )
    return Dataset.from_dict({"query": QUERIES, "document": DOCUMENTS, "label": labels})


def listwise_dataset() -> Dataset:
    # Ragged lists: 1 to 4 documents per query, graded labels.
    docs, labels = [], []
    for index in range(len(QUERIES)):
        count = 1 + index % 4
        docs.append([DOCUMENTS[(index + k) % len(DOCUMENTS)] for k in range(count)])
        labels.append([float((index + k) % 3) for k in range(count)])
    return Dataset.from_dict({"query": QUERIES, "docs": docs, "labels": labels})


#: loss class name -> (dataset factory, loss kwargs, model labels).
LOSS_CASES: dict[str, tuple[Any, dict[str, Any], int]] = {
    "BinaryCrossEntropyLoss": (pair_dataset, {}, 1),
    "CrossEntropyLoss": (lambda: pair_dataset(3), {}, 3),
    "MSELoss": (pair_dataset, {}, 1),
    "MarginMSELoss": (
        lambda: Dataset.from_dict(
            {"query": QUERIES, "pos": DOCUMENTS, "neg": NEGATIVES, "label": [0.5 * (i % 5) for i in range(24)]}
        ),
        {},
        1,
    ),
    "MultipleNegativesRankingLoss": (
        lambda: Dataset.from_dict({"query": QUERIES, "pos": DOCUMENTS, "neg": NEGATIVES}),
        {"num_negatives": 2},
        1,
    ),
    "CachedMultipleNegativesRankingLoss": (
        lambda: Dataset.from_dict({"query": QUERIES, "pos": DOCUMENTS, "neg": NEGATIVES}),
        {"num_negatives": 2, "mini_batch_size": 4},
        1,
    ),
    "LambdaLoss": (listwise_dataset, {}, 1),
    "ListNetLoss": (listwise_dataset, {}, 1),
    "ListMLELoss": (listwise_dataset, {}, 1),
    "PListMLELoss": (listwise_dataset, {}, 1),
    "RankNetLoss": (listwise_dataset, {}, 1),
    "ADRMSELoss": (listwise_dataset, {}, 1),
}


def library_parts(library: str) -> tuple[Any, Any, Any, Any]:
    """(CrossEncoder, trainer, arguments, losses module) of ``library``."""
    if library == "embedforge":
        return (
            CrossEncoder,
            embedforge.CrossEncoderTrainer,
            embedforge.CrossEncoderTrainingArguments,
            importlib.import_module("embedforge.cross_encoder.losses"),
        )
    st = pytest.importorskip("sentence_transformers")
    return (
        st.CrossEncoder,
        st.CrossEncoderTrainer,
        st.CrossEncoderTrainingArguments,
        importlib.import_module("sentence_transformers.cross_encoder.losses"),
    )


def train(
    library: str,
    folder: Path,
    output_dir: Path,
    dataset: Any,
    loss_name: str | None,
    loss_kwargs: dict[str, Any],
    **arguments: Any,
) -> tuple[list[float], np.ndarray]:
    """Train a fresh copy of ``folder`` with ``library``; the logged losses and the final scores of a few pairs."""
    model_class, trainer_class, args_class, losses = library_parts(library)
    torch.manual_seed(0)
    model = model_class(str(folder), device="cpu")
    recorder = LossRecorder()
    loss = getattr(losses, loss_name)(model, **loss_kwargs) if loss_name else None
    trainer = trainer_class(
        model=model,
        args=quiet_args(args_class, output_dir / library, **arguments),
        train_dataset=dataset,
        loss=loss,
        callbacks=[recorder],
    )
    trainer.train()
    scores = model.predict(list(zip(QUERIES[:5], DOCUMENTS[:5])), convert_to_numpy=True, show_progress_bar=False)
    return recorder.losses, np.asarray(scores)


@pytest.mark.parametrize("loss_name", sorted(LOSS_CASES))
def test_per_step_losses_equal_sentence_transformers(
    loss_name: str, tmp_path: Path, scorer_dir: Path, classifier_dir: Path
) -> None:
    """Same init, data, seed and dropout: every logged loss and the trained model's scores agree."""
    make_dataset, loss_kwargs, num_labels = LOSS_CASES[loss_name]
    folder = scorer_dir if num_labels == 1 else classifier_dir
    ours, our_scores = train("embedforge", folder, tmp_path, make_dataset(), loss_name, loss_kwargs)
    theirs, their_scores = train("sentence_transformers", folder, tmp_path, make_dataset(), loss_name, loss_kwargs)
    assert len(ours) == len(theirs) == 4
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(our_scores, their_scores, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("num_labels", [1, 3])
def test_default_loss_and_prompts_equal_sentence_transformers(
    num_labels: int, tmp_path: Path, scorer_dir: Path, classifier_dir: Path
) -> None:
    """No loss given: BCE for one label, CE for several; a training prompt changes the run identically."""
    folder = scorer_dir if num_labels == 1 else classifier_dir
    dataset = pair_dataset(num_labels)
    ours, our_scores = train("embedforge", folder, tmp_path, dataset, None, {}, prompts="rank: ")
    theirs, their_scores = train("sentence_transformers", folder, tmp_path, dataset, None, {}, prompts="rank: ")
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(our_scores, their_scores, rtol=1e-4, atol=1e-5)
    unprompted, _ = train("embedforge", folder, tmp_path / "plain", dataset, None, {})
    assert not np.allclose(ours, unprompted)


def test_multi_dataset_training_with_a_loss_per_dataset(tmp_path: Path, scorer_dir: Path) -> None:
    """A DatasetDict with one loss each trains through both, proportionally, as in sentence-transformers."""

    def run(library: str) -> list[float]:
        model_class, trainer_class, args_class, losses = library_parts(library)
        torch.manual_seed(0)
        model = model_class(str(scorer_dir), device="cpu")
        recorder = LossRecorder()
        trainer_class(
            model=model,
            args=quiet_args(args_class, tmp_path / library),
            train_dataset=DatasetDict({"pairs": pair_dataset(), "lists": listwise_dataset()}),
            loss={"pairs": losses.BinaryCrossEntropyLoss(model), "lists": losses.ListNetLoss(model)},
            callbacks=[recorder],
        ).train()
        return recorder.losses

    ours, theirs = run("embedforge"), run("sentence_transformers")
    assert len(ours) == 8
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)


def test_collator_keeps_raw_texts_and_list_labels() -> None:
    collator = CrossEncoderDataCollator(preprocess_fn=lambda *args, **kwargs: {}, prompts={"a": "p: "})
    rows = [
        {"query": "q1", "docs": ["d1", "d2"], "labels": [1, 0], "dataset_name": "a"},
        {"query": "q2", "docs": ["d3"], "labels": [1], "dataset_name": "a"},
    ]
    batch = collator(rows)
    assert batch["query"] == ["q1", "q2"]
    assert batch["docs"] == [["d1", "d2"], ["d3"]]
    assert [label.tolist() for label in batch["label"]] == [[1, 0], [1]]
    assert batch["prompt"] == "p: "
    assert batch["dataset_name"] == "a"
    assert "task" not in batch
    scalar = CrossEncoderDataCollator(preprocess_fn=lambda *args, **kwargs: {})([{"a": "x", "b": "y", "score": 0.5}])
    assert torch.equal(scalar["label"], torch.tensor([0.5]))


@pytest.mark.parametrize("argument", ["prompts", "router_mapping"])
def test_per_column_prompts_and_routes_are_rejected(argument: str, scorer_dir: Path, tmp_path: Path) -> None:
    model = CrossEncoder(str(scorer_dir), device="cpu")
    per_column = {"train": {"query": "x", "document": "y"}}
    args = quiet_args(embedforge.CrossEncoderTrainingArguments, tmp_path, **{argument: per_column})
    with pytest.raises(InvalidArgumentError, match=f"CrossEncoder {argument} cannot be per-column"):
        embedforge.CrossEncoderTrainer(model=model, args=args, train_dataset=pair_dataset())


def test_iterable_datasets_are_rejected(scorer_dir: Path, tmp_path: Path) -> None:
    model = CrossEncoder(str(scorer_dir), device="cpu")
    streamed = pair_dataset().to_iterable_dataset()
    with pytest.raises(InvalidArgumentError, match="does not support an IterableDataset for the `train_dataset`"):
        embedforge.CrossEncoderTrainer(
            model=model, args=quiet_args(embedforge.CrossEncoderTrainingArguments, tmp_path), train_dataset=streamed
        )


def test_checkpoints_evaluation_resume_and_best_model(scorer_dir: Path, tmp_path: Path) -> None:
    """Checkpoints are CrossEncoder folders; eval loss and evaluator run on schedule; resume finishes the same run."""
    from embedforge.cross_encoder.evaluation import CrossEncoderCorrelationEvaluator

    evaluator = CrossEncoderCorrelationEvaluator(
        sentence_pairs=list(zip(QUERIES[:8], DOCUMENTS[:8])), scores=[i / 8 for i in range(8)], name="dev"
    )

    def make_trainer(output_dir: Path) -> Any:
        torch.manual_seed(0)
        model = CrossEncoder(str(scorer_dir), device="cpu")
        args = quiet_args(
            embedforge.CrossEncoderTrainingArguments,
            output_dir,
            num_train_epochs=2,
            eval_strategy="steps",
            eval_steps=2,
            save_strategy="steps",
            save_steps=2,
            load_best_model_at_end=True,
            metric_for_best_model="eval_dev_spearman",
        )
        return embedforge.CrossEncoderTrainer(
            model=model, args=args, train_dataset=pair_dataset(), eval_dataset=pair_dataset(), evaluator=evaluator
        )

    trainer = make_trainer(tmp_path / "full")
    trainer.train()
    logged = trainer.state.log_history
    assert any("eval_loss" in entry for entry in logged)
    assert any("eval_dev_spearman" in entry for entry in logged)
    checkpoint = tmp_path / "full" / "checkpoint-4"
    reloaded = CrossEncoder(str(checkpoint), device="cpu")
    assert (checkpoint / "README.md").is_file()
    assert reloaded.predict([("a", "b")]).shape == (1,)
    assert trainer.state.best_model_checkpoint is not None
    best = CrossEncoder(trainer.state.best_model_checkpoint, device="cpu")
    pairs = list(zip(QUERIES[:4], DOCUMENTS[:4]))
    np.testing.assert_allclose(trainer.model.predict(pairs), best.predict(pairs), rtol=1e-5, atol=1e-6)

    resumed = make_trainer(tmp_path / "full")
    resumed.train(resume_from_checkpoint=str(tmp_path / "full" / "checkpoint-4"))
    final = make_trainer(tmp_path / "again")
    final.train()
    np.testing.assert_allclose(resumed.model.predict(pairs), final.model.predict(pairs), rtol=1e-4, atol=1e-5)


def test_saved_model_card_describes_the_cross_encoder(scorer_dir: Path, tmp_path: Path) -> None:
    model = CrossEncoder(str(scorer_dir), device="cpu")
    embedforge.CrossEncoderTrainer(
        model=model, args=quiet_args(embedforge.CrossEncoderTrainingArguments, tmp_path), train_dataset=pair_dataset()
    ).train()
    model.save(str(tmp_path / "saved"))
    card = (tmp_path / "saved" / "README.md").read_text(encoding="utf-8")
    assert "pipeline_tag: text-ranking" in card
    assert "- cross-encoder" in card
    assert "- **Model Type:** Cross Encoder" in card
    assert "- **Number of Output Labels:** 1 label" in card
    assert "scores = model.predict(pairs)" in card
    assert f"[{QUERIES[0]!r}, {DOCUMENTS[0]!r}]," in card
    assert "ranks = model.rank(" in card
    assert "BinaryCrossEntropyLoss" in card
    # The printed scores in the snippet are the model's own predictions.
    score = model.predict([(QUERIES[0], DOCUMENTS[0])])[0]
    assert f"{score:.4f}"[:5] in card


def test_a_users_loss_without_prompt_arguments_still_trains(
    scorer_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class PlainLoss(torch.nn.Module):
        def __init__(self, model: CrossEncoder) -> None:
            super().__init__()
            self.model = model

        def forward(self, inputs: list[list[str]], labels: torch.Tensor) -> torch.Tensor:
            features = self.model.preprocess(list(zip(*inputs)))
            return torch.nn.functional.mse_loss(self.model(features)["scores"].view(-1), labels.float())

    model = CrossEncoder(str(scorer_dir), device="cpu")
    trainer = embedforge.CrossEncoderTrainer(
        model=model,
        args=quiet_args(embedforge.CrossEncoderTrainingArguments, tmp_path, prompts="p: "),
        train_dataset=pair_dataset(),
        loss=PlainLoss(model),
    )
    with caplog.at_level(logging.WARNING):
        trainer.train()
    assert "NOT applied" in caplog.text


# -- the legacy fit ------------------------------------------------------------------------------------


def input_example_loader(library: str, num_labels: int) -> Any:
    from torch.utils.data import DataLoader

    module = embedforge if library == "embedforge" else pytest.importorskip("sentence_transformers")
    examples = [
        module.InputExample(texts=[query, document], label=float(index % 2) if num_labels == 1 else index % num_labels)
        for index, (query, document) in enumerate(zip(QUERIES, DOCUMENTS))
    ]
    return DataLoader(examples, shuffle=False, batch_size=6)


@pytest.mark.parametrize("method", ["fit", "old_fit"])
@pytest.mark.parametrize("num_labels", [1, 3])
def test_legacy_fit_equals_sentence_transformers(
    method: str,
    num_labels: int,
    scorer_dir: Path,
    classifier_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # fit writes checkpoints/ relative to the working folder
    folder = scorer_dir if num_labels == 1 else classifier_dir
    pairs = list(zip(QUERIES[:5], DOCUMENTS[:5]))
    scores = {}
    for library in ("embedforge", "sentence_transformers"):
        model_class = library_parts(library)[0]
        torch.manual_seed(0)
        model = model_class(str(folder), device="cpu")
        torch.manual_seed(1)
        getattr(model, method)(
            input_example_loader(library, num_labels),
            epochs=2,
            warmup_steps=2,
            optimizer_params={"lr": 1e-3},
            show_progress_bar=False,
        )
        scores[library] = np.asarray(model.predict(pairs, show_progress_bar=False))
    np.testing.assert_allclose(scores["embedforge"], scores["sentence_transformers"], rtol=1e-4, atol=1e-5)


def test_fit_with_a_plain_torch_loss_evaluator_and_output_path(
    scorer_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from embedforge.cross_encoder.evaluation import CrossEncoderCorrelationEvaluator

    monkeypatch.chdir(tmp_path)
    model = CrossEncoder(str(scorer_dir), device="cpu")
    evaluator = CrossEncoderCorrelationEvaluator(
        sentence_pairs=list(zip(QUERIES[:8], DOCUMENTS[:8])), scores=[i / 8 for i in range(8)], name="dev"
    )
    seen: list[tuple[float, Any, Any]] = []
    model.fit(
        input_example_loader("embedforge", 1),
        evaluator=evaluator,
        loss_fct=torch.nn.MSELoss(),
        activation_fct=torch.nn.Sigmoid(),
        epochs=1,
        evaluation_steps=2,
        output_path=str(tmp_path / "best"),
        callback=lambda score, epoch, steps: seen.append((score, epoch, steps)),
        show_progress_bar=False,
    )
    assert seen and all(isinstance(score, float) for score, _, _ in seen)
    assert CrossEncoder(str(tmp_path / "best"), device="cpu").num_labels == 1


def test_trained_folders_load_in_the_other_library(scorer_dir: Path, tmp_path: Path) -> None:
    """A model trained and saved by either library predicts the same after loading in the other."""
    pairs = list(zip(QUERIES[:6], NEGATIVES[:6]))
    for library, other in (("embedforge", "sentence_transformers"), ("sentence_transformers", "embedforge")):
        model_class, trainer_class, args_class, losses = library_parts(library)
        model = model_class(str(scorer_dir), device="cpu")
        trainer_class(
            model=model,
            args=quiet_args(args_class, tmp_path / library),
            train_dataset=pair_dataset(),
            loss=losses.BinaryCrossEntropyLoss(model),
        ).train()
        model.save(str(tmp_path / f"{library}-saved"))
        reloaded = library_parts(other)[0](str(tmp_path / f"{library}-saved"), device="cpu")
        np.testing.assert_allclose(
            reloaded.predict(pairs, show_progress_bar=False),
            model.predict(pairs, show_progress_bar=False),
            rtol=1e-5,
            atol=1e-6,
        )
