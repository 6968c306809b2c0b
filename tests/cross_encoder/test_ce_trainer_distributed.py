"""CrossEncoderTrainer under torchrun (two CPU processes) and in a hyperparameter search."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("datasets")
pytest.importorskip("accelerate")

from datasets import Dataset

from conftest import random_sentences, run_torchrun, write_tiny_classifier

TESTS_DIR = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, {tests_dir!r})
    import torch
    from conftest import random_sentences
    from datasets import Dataset
    from embedforge import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from embedforge.cross_encoder.losses import BinaryCrossEntropyLoss

    output_dir = sys.argv[1]
    model = CrossEncoder({model_dir!r}, device="cpu")
    data = Dataset.from_dict({{
        "query": random_sentences(32, seed=1), "document": random_sentences(32, seed=2),
        "label": [float(i % 2) for i in range(32)],
    }})
    args = CrossEncoderTrainingArguments(
        output_dir=output_dir, per_device_train_batch_size=4, num_train_epochs=1, learning_rate=1e-3,
        ddp_backend="gloo", use_cpu=True, report_to="none", save_strategy="no", disable_tqdm=True, seed=3,
    )
    trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=data, loss=BinaryCrossEntropyLoss(model))
    assert trainer.args.world_size == 2, trainer.args.world_size
    trainer.train()
    trainer.save_model(os.path.join(output_dir, "final"))
    rank = int(os.environ["RANK"])
    scores = model.predict([("a b c", "d e f"), ("g h", "i j k")], convert_to_numpy=True)
    with open(os.path.join(output_dir, f"result-{{rank}}.txt"), "w", encoding="utf-8") as handle:
        handle.write(f"{{trainer.state.global_step}} {{float(scores[0])!r}} {{float(scores[1])!r}}")
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
    sys.stdout.flush()
    os._exit(0)
    """
)


def test_torchrun_two_processes_train_one_cross_encoder(tmp_path: Path) -> None:
    """Both ranks take 4 steps (32 rows, batch 4 per rank) and end with the same weights; rank 0's folder loads."""
    model_dir = write_tiny_classifier(tmp_path / "ce", num_labels=1)
    run_torchrun(SCRIPT.format(tests_dir=str(TESTS_DIR), model_dir=str(model_dir)), tmp_path)
    results = {rank: (tmp_path / "out" / f"result-{rank}.txt").read_text(encoding="utf-8").split() for rank in (0, 1)}
    assert results[0][0] == results[1][0] == "4", results
    assert results[0][1:] == results[1][1:], results

    from embedforge import CrossEncoder

    loaded = CrossEncoder(str(tmp_path / "out" / "final"), device="cpu")
    scores = loaded.predict([("a b c", "d e f"), ("g h", "i j k")])
    np.testing.assert_allclose(scores, [float(value) for value in results[0][1:]], rtol=1e-6)


def test_hyperparameter_search_builds_a_fresh_model_and_loss_per_trial(tmp_path: Path, scorer_dir: Path) -> None:
    pytest.importorskip("optuna")
    from embedforge import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from embedforge.cross_encoder.evaluation import CrossEncoderCorrelationEvaluator
    from embedforge.cross_encoder.losses import BinaryCrossEntropyLoss

    built: list[Any] = []
    losses: list[Any] = []

    def model_init(trial: Any = None) -> Any:
        built.append(CrossEncoder(str(scorer_dir), device="cpu"))
        return built[-1]

    def loss_factory(model: Any) -> Any:
        losses.append(BinaryCrossEntropyLoss(model))
        return losses[-1]

    queries, documents = random_sentences(16, seed=1), random_sentences(16, seed=2)
    data = Dataset.from_dict({"query": queries, "document": documents, "label": [float(i % 2) for i in range(16)]})
    trainer = CrossEncoderTrainer(
        model_init=model_init,
        args=CrossEncoderTrainingArguments(
            output_dir=str(tmp_path), max_steps=2, report_to="none", use_cpu=True, disable_tqdm=True
        ),
        train_dataset=data,
        loss=loss_factory,
        evaluator=CrossEncoderCorrelationEvaluator(
            list(zip(queries, documents)), [i / 16 for i in range(16)], name="dev"
        ),
    )
    best = trainer.hyperparameter_search(
        hp_space=lambda trial: {"learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True)},
        compute_objective=lambda metrics: metrics["eval_dev_spearman"],
        n_trials=2,
        direction="maximize",
        backend="optuna",
    )
    assert "learning_rate" in best.hyperparameters
    assert len(built) >= 3 and len(losses) >= 3
    assert all(loss.model is model for loss, model in zip(losses[-2:], built[-2:]))
