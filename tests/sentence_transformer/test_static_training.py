"""The trainer with SparseGradientAdamW trains a StaticEmbedding model exactly as with torch's AdamW."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from conftest import embedforge_static, random_sentences, static_weights
from embedforge.optim import SparseGradientAdamW
from embedforge.sentence_transformer.static_training import sparse_static_optimizer_cls, static_embedding_modules


def train_and_log(tmp_path: Path, sparse: bool) -> tuple[list[float], torch.Tensor, Any]:
    """Per-step losses, final weights and optimizer of 4 steps of MatryoshkaLoss(MNRL) on a tiny static model."""
    from datasets import Dataset
    from transformers import TrainerCallback

    from embedforge import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from embedforge.sentence_transformer.losses import MatryoshkaLoss, MultipleNegativesRankingLoss
    from embedforge.sentence_transformer.training_args import BatchSamplers

    class DenseStaticTrainer(SentenceTransformerTrainer):
        # The reference: what the trainer did before it learnt to swap in SparseGradientAdamW.
        def get_optimizer_cls_and_kwargs(self, args: Any, model: Any = None) -> tuple[Any, dict[str, Any]]:
            optimizer_cls, optimizer_kwargs = super().get_optimizer_cls_and_kwargs(args, model)
            assert optimizer_cls is SparseGradientAdamW
            for module in static_embedding_modules(self.model):
                module.sparse_gradients = False
            return torch.optim.AdamW, optimizer_kwargs

    class LossLog(TrainerCallback):
        def __init__(self) -> None:
            self.losses: list[float] = []

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            if logs and "loss" in logs:
                self.losses.append(float(logs["loss"]))

    model = embedforge_static(static_weights(seed=8, dim=8))
    dataset = Dataset.from_dict({"anchor": random_sentences(64, seed=9), "positive": random_sentences(64, seed=10)})
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / ("sparse" if sparse else "dense")),
        max_steps=4,
        per_device_train_batch_size=16,
        learning_rate=0.2,
        weight_decay=0.01,
        warmup_steps=1,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        seed=11,
    )
    log = LossLog()
    trainer_cls = SentenceTransformerTrainer if sparse else DenseStaticTrainer
    loss = MatryoshkaLoss(model, MultipleNegativesRankingLoss(model), [8, 4, 2])
    trainer = trainer_cls(model=model, args=args, train_dataset=dataset, loss=loss, callbacks=[log])
    trainer.train()
    return log.losses, model[0].embedding.weight.detach().clone(), trainer.optimizer


def test_trainer_with_sparse_gradients_matches_the_standard_path(tmp_path: Path) -> None:
    dense_losses, dense_weights, dense_optimizer = train_and_log(tmp_path, sparse=False)
    sparse_losses, sparse_weights, sparse_optimizer = train_and_log(tmp_path, sparse=True)
    assert not isinstance(getattr(dense_optimizer, "optimizer", dense_optimizer), SparseGradientAdamW)
    assert isinstance(getattr(sparse_optimizer, "optimizer", sparse_optimizer), SparseGradientAdamW)
    assert len(dense_losses) == 4 and dense_losses[0] != dense_losses[-1]
    assert sparse_losses == pytest.approx(dense_losses, rel=1e-5, abs=1e-6)
    torch.testing.assert_close(sparse_weights, dense_weights, rtol=1e-5, atol=1e-6)


def test_optimizer_class_is_left_alone_when_it_does_not_apply() -> None:
    from torch import nn

    model = embedforge_static(static_weights(seed=8, dim=8))
    args = type("Args", (), {"world_size": 1})()
    assert sparse_static_optimizer_cls(model, args, torch.optim.SGD, {}) is torch.optim.SGD
    assert sparse_static_optimizer_cls(model, args, torch.optim.AdamW, {"amsgrad": True}) is torch.optim.AdamW
    assert sparse_static_optimizer_cls(nn.Linear(2, 2), args, torch.optim.AdamW, {}) is torch.optim.AdamW
    two_processes = type("Args", (), {"world_size": 2})()
    assert sparse_static_optimizer_cls(model, two_processes, torch.optim.AdamW, {}) is torch.optim.AdamW
    assert model[0].sparse_gradients is False
    assert sparse_static_optimizer_cls(model, args, torch.optim.AdamW, {}) is SparseGradientAdamW
    assert model[0].sparse_gradients is True
    # Another optimizer later on the same model gets dense gradients again.
    assert sparse_static_optimizer_cls(model, args, torch.optim.SGD, {}) is torch.optim.SGD
    assert model[0].sparse_gradients is False


def test_sparse_gradient_keeps_its_coalesced_flag_and_accumulates_exactly() -> None:
    model = embedforge_static(static_weights(seed=5))
    model[0].sparse_gradients = True
    features = model.preprocess(["the cat sat on the mat", "a dog", "the dog and the cat"])
    model(dict(features))["sentence_embedding"].square().sum().backward()
    once = model[0].embedding.weight.grad
    # Unique sorted rows: flagged coalesced, so clipping and the optimizer do not merge them again.
    assert once.is_sparse and once.is_coalesced()
    dense_once = once.to_dense().clone()
    model(dict(features))["sentence_embedding"].square().sum().backward()
    torch.testing.assert_close(model[0].embedding.weight.grad.to_dense(), 2 * dense_once)
    # The dense EmbeddingBag's own gradient agrees.
    dense_model = embedforge_static(static_weights(seed=5))
    dense_model(dict(features))["sentence_embedding"].square().sum().backward()
    torch.testing.assert_close(dense_once, dense_model[0].embedding.weight.grad, rtol=1e-6, atol=1e-7)
