"""model.fit / model.old_fit, the pre-v3 training API.

old_fit is compared with sentence-transformers' old_fit weight for weight. fit is checked in two
ways: what it hands to the trainer (datasets, arguments, optimizer groups, schedule, losses,
callbacks) against what sentence-transformers' fit hands to its trainer, with both trainers replaced
by recorders; and, further down, by real training runs.
"""

from __future__ import annotations

import math
import os
import random
import sys
import types
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from conftest import embedforge_static, random_sentences, st_static, static_weights
from embedforge.exceptions import InvalidArgumentError

DIM = 8


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Any:
    """Tiny tensors: one intra-op thread is faster than contending for a busy machine's cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def library(name: str) -> types.SimpleNamespace:
    """The classes a fit script uses, from embedforge or from sentence-transformers."""
    if name == "embedforge":
        from embedforge import InputExample
        from embedforge.sentence_transformer import losses
        from embedforge.sentence_transformer.datasets import (
            NoDuplicatesDataLoader,
            ParallelSentencesDataset,
            SentenceLabelDataset,
        )
        from embedforge.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

        return types.SimpleNamespace(
            InputExample=InputExample,
            losses=losses,
            NoDuplicatesDataLoader=NoDuplicatesDataLoader,
            ParallelSentencesDataset=ParallelSentencesDataset,
            SentenceLabelDataset=SentenceLabelDataset,
            EmbeddingSimilarityEvaluator=EmbeddingSimilarityEvaluator,
            model=embedforge_static,
        )
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import InputExample
    from sentence_transformers.sentence_transformer import losses
    from sentence_transformers.sentence_transformer.datasets import (
        NoDuplicatesDataLoader,
        ParallelSentencesDataset,
        SentenceLabelDataset,
    )
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    return types.SimpleNamespace(
        InputExample=InputExample,
        losses=losses,
        NoDuplicatesDataLoader=NoDuplicatesDataLoader,
        ParallelSentencesDataset=ParallelSentencesDataset,
        SentenceLabelDataset=SentenceLabelDataset,
        EmbeddingSimilarityEvaluator=EmbeddingSimilarityEvaluator,
        model=st_static,
    )


def scored_pairs(lib: types.SimpleNamespace, count: int, seed: int = 0) -> list[Any]:
    """Pairs with a similarity score in [0, 1] that depends on the words they share."""
    first, second = random_sentences(count, seed=seed, max_words=6), random_sentences(count, seed=seed + 1, max_words=6)
    examples = []
    for index, (left, right) in enumerate(zip(first, second)):
        if index % 2 == 0:
            right = left.lower()  # half the pairs are near-duplicates with score 1
        shared = len(set(left.lower().split()) & set(right.lower().split()))
        examples.append(lib.InputExample(texts=[left, right], label=min(1.0, shared / 3)))
    return examples


def plain_pairs(lib: types.SimpleNamespace, count: int, seed: int = 5) -> list[Any]:
    anchors, positives = random_sentences(count, seed=seed), random_sentences(count, seed=seed + 1)
    return [lib.InputExample(texts=[a, p]) for a, p in zip(anchors, positives)]


def labelled_sentences(lib: types.SimpleNamespace, count: int) -> list[Any]:
    return [lib.InputExample(texts=[text], label=index % 4) for index, text in enumerate(random_sentences(count, 9))]


def embedding_weights(model: Any) -> np.ndarray:
    return model[0].embedding.weight.detach().cpu().numpy().copy()


# -- old_fit -------------------------------------------------------------------------------------------


def run_old_fit(name: str, weights: torch.Tensor, **kwargs: Any) -> Any:
    lib = library(name)
    model = lib.model(weights)
    scored = DataLoader(scored_pairs(lib, 24), batch_size=4, shuffle=False)
    plain = DataLoader(plain_pairs(lib, 20), batch_size=5, shuffle=False)
    objectives = [
        (scored, lib.losses.CosineSimilarityLoss(model)),
        (plain, lib.losses.MultipleNegativesRankingLoss(model)),
    ]
    model.old_fit(objectives, show_progress_bar=False, **kwargs)
    return model


def test_old_fit_matches_sentence_transformers() -> None:
    weights = static_weights(seed=3, dim=DIM)
    kwargs = {"epochs": 2, "warmup_steps": 3, "optimizer_params": {"lr": 0.05}, "scheduler": "WarmupCosine"}
    ours = run_old_fit("embedforge", weights, **kwargs)
    theirs = run_old_fit("sentence_transformers", weights, **kwargs)
    assert not np.allclose(embedding_weights(ours), weights.numpy())
    np.testing.assert_allclose(embedding_weights(ours), embedding_weights(theirs), rtol=1e-5, atol=1e-6)


def test_old_fit_evaluates_calls_back_saves_and_checkpoints(tmp_path: Path) -> None:
    lib = library("embedforge")
    model = lib.model(static_weights(seed=4, dim=DIM))
    dev = scored_pairs(lib, 30, seed=40)
    evaluator = lib.EmbeddingSimilarityEvaluator(
        [e.texts[0] for e in dev], [e.texts[1] for e in dev], [e.label for e in dev], name="dev", write_csv=False
    )
    calls: list[tuple[float, int, int]] = []
    loader = DataLoader(scored_pairs(lib, 24), batch_size=4, shuffle=True)
    model.old_fit(
        [(loader, lib.losses.CosineSimilarityLoss(model))],
        evaluator=evaluator,
        epochs=2,
        evaluation_steps=4,
        warmup_steps=0,
        optimizer_params={"lr": 0.05},
        output_path=str(tmp_path / "out"),
        checkpoint_path=str(tmp_path / "ckpt"),
        checkpoint_save_steps=5,
        checkpoint_save_total_limit=2,
        callback=lambda score, epoch, steps: calls.append((score, epoch, steps)),
        show_progress_bar=False,
    )
    # 6 steps per epoch: evaluation after step 4 and at each epoch end (steps=-1).
    assert [(epoch, steps) for _, epoch, steps in calls] == [(0, 4), (0, -1), (1, 4), (1, -1)]
    final = evaluator(model)[evaluator.primary_metric]
    assert calls[-1][0] == pytest.approx(final)
    assert sorted(os.listdir(tmp_path / "ckpt"), key=int) == ["10", "12"]  # steps 5 and 10, then the end; keep 2
    assert (tmp_path / "out" / "modules.json").is_file() and (tmp_path / "out" / "eval").is_dir()
    best = lib.model(static_weights(seed=4, dim=DIM)).__class__(str(tmp_path / "out"))
    assert evaluator(best)[evaluator.primary_metric] == pytest.approx(max(score for score, _, _ in calls), abs=1e-6)


def test_unknown_scheduler_is_rejected() -> None:
    from embedforge.sentence_transformer.fit_mixin import FitMixin

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(InvalidArgumentError, match="scheduler='warmupquadratic'"):
        FitMixin._get_scheduler(optimizer, "warmupquadratic", 1, 10)


# -- fit: what it hands to the trainer ------------------------------------------------------------------


class RecordingTrainer:
    """Stands in for SentenceTransformerTrainer: keeps its arguments, trains nothing."""

    last: RecordingTrainer | None = None

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.callback_handler = types.SimpleNamespace(callbacks=list(kwargs.get("callbacks") or []))
        self.resume: Any = "not called"
        RecordingTrainer.last = self

    def add_callback(self, callback: Any) -> None:
        self.callback_handler.callbacks.append(callback)

    def train(self, resume_from_checkpoint: Any = None) -> None:
        self.resume = resume_from_checkpoint


class RecordingArguments:
    """Stands in for SentenceTransformerTrainingArguments: keeps its keyword arguments."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


def objectives_for(case: str, lib: types.SimpleNamespace, model: Any) -> tuple[list[Any], dict[str, Any]]:
    """The fit() call of each scenario, built from one library's classes."""
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    if case == "one-loader":
        loader = DataLoader(scored_pairs(lib, 26), batch_size=4, shuffle=True)
        return [(loader, lib.losses.CosineSimilarityLoss(model))], {"epochs": 3, "warmup_steps": 5}
    if case == "no-duplicates-and-evaluator":
        dev = scored_pairs(lib, 10, seed=40)
        evaluator = lib.EmbeddingSimilarityEvaluator(
            [e.texts[0] for e in dev], [e.texts[1] for e in dev], [e.label for e in dev], write_csv=False
        )
        objectives = [
            (
                lib.NoDuplicatesDataLoader(plain_pairs(lib, 30), batch_size=6),
                lib.losses.MultipleNegativesRankingLoss(model),
            ),
            (DataLoader(scored_pairs(lib, 21), batch_size=3), lib.losses.CosineSimilarityLoss(model)),
        ]
        kwargs = {
            "evaluator": evaluator,
            "steps_per_epoch": 4,
            "scheduler": "warmupcosinewithhardrestarts",
            "warmup_steps": 2,
            "evaluation_steps": 2,
            "callback": print,
            "output_path": "out",
            "checkpoint_path": "ckpt",
            "checkpoint_save_steps": 3,
            "checkpoint_save_total_limit": 1,
            "optimizer_params": {"lr": 1e-3, "eps": 1e-7},
            "weight_decay": 0.1,
            "max_grad_norm": 0.5,
        }
        return objectives, kwargs
    if case == "group-by-label":
        dataset = lib.SentenceLabelDataset(labelled_sentences(lib, 24), samples_per_label=2)
        loader = DataLoader(dataset, batch_size=4)
        return [(loader, lib.losses.BatchAllTripletLoss(model))], {"scheduler": "ConstantLR", "epochs": 2}
    raise AssertionError(case)


def plain(value: Any) -> Any:
    """Enum members as their values, for comparing the two libraries' argument objects."""
    return getattr(value, "value", value)


def capture_st_fit(case: str, weights: torch.Tensor, monkeypatch: pytest.MonkeyPatch, folder: Path) -> Any:
    lib = library("sentence_transformers")
    import sentence_transformers.sentence_transformer.trainer as st_trainer_module

    monkeypatch.setattr(st_trainer_module, "SentenceTransformerTrainer", RecordingTrainer)
    folder.mkdir()
    monkeypatch.chdir(folder)
    model = lib.model(weights)
    objectives, kwargs = objectives_for(case, lib, model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(objectives, show_progress_bar=False, **kwargs)
    return RecordingTrainer.last


def capture_our_fit(case: str, weights: torch.Tensor, monkeypatch: pytest.MonkeyPatch, folder: Path) -> Any:
    lib = library("embedforge")
    monkeypatch.setitem(
        sys.modules,
        "embedforge.sentence_transformer.trainer",
        types.SimpleNamespace(SentenceTransformerTrainer=RecordingTrainer),
    )
    monkeypatch.setitem(
        sys.modules,
        "embedforge.sentence_transformer.training_args",
        types.SimpleNamespace(SentenceTransformerTrainingArguments=RecordingArguments),
    )
    folder.mkdir()
    monkeypatch.chdir(folder)
    model = lib.model(weights)
    objectives, kwargs = objectives_for(case, lib, model)
    model.fit(objectives, show_progress_bar=False, **kwargs)
    return RecordingTrainer.last


def lr_trajectory(scheduler: Any, steps: int) -> list[list[float]]:
    trajectory = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # stepping a schedule without optimizer steps warns
        for _ in range(steps):
            trajectory.append(list(scheduler.get_last_lr()))
            scheduler.step()
    return trajectory


@pytest.mark.parametrize("case", ["one-loader", "no-duplicates-and-evaluator", "group-by-label"])
def test_fit_hands_the_trainer_what_sentence_transformers_does(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = static_weights(seed=6, dim=DIM)
    theirs = capture_st_fit(case, weights, monkeypatch, tmp_path / "st")
    ours = capture_our_fit(case, weights, monkeypatch, tmp_path / "ef")

    # Datasets: same names, columns and rows.
    our_data, their_data = ours.kwargs["train_dataset"], theirs.kwargs["train_dataset"]
    assert list(our_data) == list(their_data)
    for name in their_data:
        assert our_data[name].column_names == their_data[name].column_names
        ours_rows, theirs_rows = our_data[name].to_dict(), their_data[name].to_dict()
        for column in theirs_rows:
            if column == "label":
                np.testing.assert_allclose(ours_rows[column], theirs_rows[column], rtol=1e-6)
            else:
                assert ours_rows[column] == theirs_rows[column]

    # Training arguments: every value fit sets agrees with sentence-transformers' resulting arguments.
    their_args = theirs.kwargs["args"]
    for key, value in ours.kwargs["args"].kwargs.items():
        assert plain(value) == plain(getattr(their_args, key)), key

    # Losses, callbacks, and the resume request.
    assert list(ours.kwargs["loss"]) == list(theirs.kwargs["loss"])
    assert [type(loss).__name__ for loss in ours.kwargs["loss"].values()] == [
        type(loss).__name__ for loss in theirs.kwargs["loss"].values()
    ]
    assert [type(c).__name__ for c in ours.callback_handler.callbacks] == [
        type(c).__name__ for c in theirs.callback_handler.callbacks
    ]
    assert ours.kwargs["evaluator"] is not None if case == "no-duplicates-and-evaluator" else True
    assert ours.resume is theirs.resume is False

    # Optimizer: same groups (sizes, decay, hyper-parameters) and the same learning-rate schedule.
    our_optimizer, our_scheduler = ours.kwargs["optimizers"]
    their_optimizer, their_scheduler = theirs.kwargs["optimizers"]
    assert type(our_optimizer) is type(their_optimizer)
    for our_group, their_group in zip(our_optimizer.param_groups, their_optimizer.param_groups, strict=True):
        assert [p.shape for p in our_group["params"]] == [p.shape for p in their_group["params"]]
        for key in ("lr", "weight_decay", "eps", "betas"):
            assert our_group[key] == their_group[key], key
    np.testing.assert_allclose(lr_trajectory(our_scheduler, 30), lr_trajectory(their_scheduler, 30), rtol=1e-12)


def test_fit_rejects_examples_with_different_text_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from embedforge import InputExample

    lib = library("embedforge")
    model = lib.model(static_weights(seed=1, dim=DIM))
    examples = [InputExample(texts=["a", "b"]), InputExample(texts=["c", "d", "e"])]
    loader = DataLoader(examples, batch_size=2)
    with pytest.raises(InvalidArgumentError, match=r"train_objectives\[0\].*\[2, 3\]"):
        model.fit([(loader, lib.losses.MultipleNegativesRankingLoss(model))])
    with pytest.raises(InvalidArgumentError, match="train_objectives is empty"):
        model.fit([])


def test_fit_steps_per_epoch_only_with_one_epoch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        sys.modules,
        "embedforge.sentence_transformer.trainer",
        types.SimpleNamespace(SentenceTransformerTrainer=RecordingTrainer),
    )
    monkeypatch.setitem(
        sys.modules,
        "embedforge.sentence_transformer.training_args",
        types.SimpleNamespace(SentenceTransformerTrainingArguments=RecordingArguments),
    )
    monkeypatch.chdir(tmp_path)
    lib = library("embedforge")
    model = lib.model(static_weights(seed=1, dim=DIM))
    loader = DataLoader(scored_pairs(lib, 16), batch_size=4)
    model.fit([(loader, lib.losses.CosineSimilarityLoss(model))], epochs=2, steps_per_epoch=3, warmup_steps=0)
    args = RecordingTrainer.last.kwargs["args"].kwargs
    assert args["max_steps"] == -1 and args["num_train_epochs"] == 2
    # The schedule spans the full 2 epochs of 4 batches: linear decay reaches 0 after 8 steps.
    _, scheduler = RecordingTrainer.last.kwargs["optimizers"]
    assert [round(lr[0] / 2e-5, 6) for lr in lr_trajectory(scheduler, 9)] == [1 - step / 8 for step in range(9)]
    assert math.isclose(args["per_device_train_batch_size"], 4)


# -- fit: real training runs ----------------------------------------------------------------------------


def mean_loss(loss_model: Any, examples: list[Any]) -> float:
    """The loss over all examples in one batch, without gradients."""
    model = loss_model.model
    columns = list(zip(*[example.texts for example in examples]))
    features = [model.preprocess(list(column)) for column in columns]
    labels = torch.tensor([example.label for example in examples], dtype=torch.float32)
    if getattr(loss_model, "requires_label", None) is False:
        labels = None
    with torch.no_grad():
        return float(loss_model(features, labels))


def st_load(path: Path) -> Any:
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import SentenceTransformer as StModel

    return StModel(str(path), device="cpu")


def test_migration_guide_snippet_runs_with_a_local_model(
    tiny_bert_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sentence-transformers' v2 training flow (migration guide), imports changed, hub name -> local folder."""
    monkeypatch.chdir(tmp_path)
    from torch.utils.data import DataLoader

    from embedforge import InputExample, SentenceTransformer
    from embedforge.sentence_transformer import losses

    # 1. Define the model. Either from scratch of by loading a pre-trained model
    model = SentenceTransformer(str(tiny_bert_dir))

    # 2. Define your train examples. You need more than just two examples...
    train_examples = [
        InputExample(
            texts=[
                "A person on a horse jumps over a broken down airplane.",
                "A person is outdoors, on a horse.",
                "A person is at a diner, ordering an omelette.",
            ]
        ),
        InputExample(
            texts=[
                "Children smiling and waving at camera",
                "There are children present",
                "The kids are frowning",
            ]
        ),
    ]
    train_dataloader = DataLoader(train_examples, shuffle=True, batch_size=16)

    # 3. Define a loss function
    train_loss = losses.MultipleNegativesRankingLoss(model)

    # 4. Finetune the model
    model.fit(
        train_objectives=[(train_dataloader, train_loss)],
        epochs=1,
        warmup_steps=100,
    )

    # 5. Save the trained model
    model.save_pretrained("models/mpnet-base-all-nli")

    texts = ["There are children present", "A person is outdoors, on a horse."]
    reloaded = st_load(tmp_path / "models" / "mpnet-base-all-nli")
    np.testing.assert_allclose(reloaded.encode(texts), model.encode(texts), rtol=1e-5, atol=1e-6)


def test_fit_lowers_the_loss_and_saves_to_output_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    lib = library("embedforge")
    model = lib.model(static_weights(seed=7, dim=DIM))
    examples = scored_pairs(lib, 48, seed=3)
    loss = lib.losses.CosineSimilarityLoss(model)
    before = mean_loss(loss, examples)
    loader = DataLoader(examples, shuffle=True, batch_size=8)
    model.fit(
        [(loader, loss)],
        epochs=4,
        warmup_steps=2,
        optimizer_params={"lr": 0.05},
        output_path=str(tmp_path / "out"),
        show_progress_bar=False,
    )
    after = mean_loss(loss, examples)
    assert after < 0.7 * before
    texts = [example.texts[0] for example in examples[:5]]
    np.testing.assert_allclose(st_load(tmp_path / "out").encode(texts), model.encode(texts), rtol=1e-5, atol=1e-6)


def run_fit(name: str, weights: torch.Tensor, folder: Path, case: str) -> tuple[Any, list[tuple[float, float, int]]]:
    """One fit() run of a scenario in ``folder`` with one library; returns the model and the callback calls."""
    lib = library(name)
    model = lib.model(weights)
    torch.manual_seed(1)
    random.seed(1)
    calls: list[tuple[float, float, int]] = []
    kwargs: dict[str, Any] = {"epochs": 2, "warmup_steps": 2, "optimizer_params": {"lr": 0.05}}
    if case == "evaluator":
        dev = scored_pairs(lib, 20, seed=41)
        evaluator = lib.EmbeddingSimilarityEvaluator(
            [e.texts[0] for e in dev], [e.texts[1] for e in dev], [e.label for e in dev], name="dev", write_csv=False
        )
        objectives = [
            (DataLoader(scored_pairs(lib, 30, seed=2), shuffle=True, batch_size=4), lib.losses.CoSENTLoss(model))
        ]
        kwargs.update(
            evaluator=evaluator,
            evaluation_steps=3,
            callback=lambda score, epoch, steps: calls.append((score, epoch, steps)),
            output_path=str(folder / "best"),
            checkpoint_path=str(folder / "ckpt"),
            checkpoint_save_steps=4,
            checkpoint_save_total_limit=2,
        )
    elif case == "group-by-label":
        np.random.seed(1)
        dataset = lib.SentenceLabelDataset(labelled_sentences(lib, 32), samples_per_label=2)
        objectives = [(DataLoader(dataset, batch_size=8), lib.losses.BatchHardTripletLoss(model))]
    elif case == "distillation":
        teacher = lib.model(static_weights(seed=9, dim=DIM))
        dataset = lib.ParallelSentencesDataset(student_model=model, teacher_model=teacher)
        english, other = random_sentences(16, seed=30, max_words=6), random_sentences(16, seed=31, max_words=6)
        dataset.add_dataset([[e, o] for e, o in zip(english, other)], weight=4)
        objectives = [(DataLoader(dataset, shuffle=True, batch_size=4), lib.losses.MSELoss(model))]
    else:
        objectives = [
            (
                lib.NoDuplicatesDataLoader(plain_pairs(lib, 40), batch_size=6),
                lib.losses.MultipleNegativesRankingLoss(model),
            ),
            (DataLoader(scored_pairs(lib, 20), shuffle=True, batch_size=4), lib.losses.CosineSimilarityLoss(model)),
        ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(objectives, show_progress_bar=False, **kwargs)
    return model, calls


@pytest.mark.parametrize("case", ["evaluator", "two-objectives", "group-by-label", "distillation"])
def test_fit_matches_sentence_transformers(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = static_weights(seed=8, dim=DIM)
    results = {}
    for name in ("sentence_transformers", "embedforge"):
        folder = tmp_path / name
        folder.mkdir()
        monkeypatch.chdir(folder)
        results[name] = run_fit(name, weights, folder, case)
    (ours, our_calls), (theirs, their_calls) = results["embedforge"], results["sentence_transformers"]
    assert not np.allclose(embedding_weights(ours), weights.numpy())
    np.testing.assert_allclose(embedding_weights(ours), embedding_weights(theirs), rtol=1e-5, atol=1e-6)
    assert [(epoch, steps) for _, epoch, steps in our_calls] == [(epoch, steps) for _, epoch, steps in their_calls]
    np.testing.assert_allclose([s for s, _, _ in our_calls], [s for s, _, _ in their_calls], rtol=1e-5, atol=1e-6)
    if case == "evaluator":
        # 30 examples / 4 = 8 steps per epoch: evaluations at steps 3, 6, 8 (epoch end), 9, 12, 15, 16 (end).
        assert [steps for _, _, steps in our_calls] == [3, 6, 8, 9, 12, 15, 16, 16]
        ours_dir, theirs_dir = tmp_path / "embedforge", tmp_path / "sentence_transformers"
        assert sorted(os.listdir(ours_dir / "ckpt")) == sorted(os.listdir(theirs_dir / "ckpt"))
        assert sorted(name for name in os.listdir(ours_dir / "ckpt") if name.startswith("checkpoint-")) == [
            "checkpoint-12",
            "checkpoint-16",
        ]
        # The saved model is the best one seen by the evaluator, and loads in sentence-transformers.
        best_dir = ours_dir / "best"
        texts = ["a cat is on the road.", "the dog was in the river."]
        np.testing.assert_allclose(
            st_load(best_dir).encode(texts), st_load(theirs_dir / "best").encode(texts), rtol=1e-5, atol=1e-6
        )


def test_fit_resumes_from_the_latest_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        sys.modules,
        "embedforge.sentence_transformer.trainer",
        types.SimpleNamespace(SentenceTransformerTrainer=RecordingTrainer),
    )
    monkeypatch.setitem(
        sys.modules,
        "embedforge.sentence_transformer.training_args",
        types.SimpleNamespace(SentenceTransformerTrainingArguments=RecordingArguments),
    )
    lib = library("embedforge")
    model = lib.model(static_weights(seed=1, dim=DIM))
    checkpoints = tmp_path / "ckpt"
    for name in ("checkpoint-9", "checkpoint-12", "checkpoint-100x", "runs"):
        (checkpoints / name).mkdir(parents=True)

    def fit(**kwargs: Any) -> Any:
        loader = DataLoader(scored_pairs(lib, 8), batch_size=4)
        model.fit([(loader, lib.losses.CosineSimilarityLoss(model))], show_progress_bar=False, **kwargs)
        return RecordingTrainer.last.resume

    assert fit(checkpoint_path=str(checkpoints), resume_from_checkpoint=True) == str(checkpoints / "checkpoint-12")
    assert fit(checkpoint_path=str(tmp_path / "missing"), resume_from_checkpoint=True) is None
    assert fit(checkpoint_path=str(checkpoints)) is False
