"""Two-process DistributedDataParallel training on CPU (gloo) through torchrun."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("datasets")
pytest.importorskip("accelerate")

from conftest import run_torchrun

TESTS_DIR = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import os, sys
    import numpy
    sys.path.insert(0, {tests_dir!r})
    import torch
    from conftest import embedforge_static, random_sentences, static_weights
    from datasets import Dataset
    from embedforge import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from embedforge.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator
    from embedforge.sentence_transformer.losses import MultipleNegativesRankingLoss

    output_dir = sys.argv[1]
    model = embedforge_static(static_weights())
    data = Dataset.from_dict({{"anchor": random_sentences(64, seed=1), "positive": random_sentences(64, seed=2)}})
    args = SentenceTransformerTrainingArguments(
        output_dir=output_dir, per_device_train_batch_size=8, num_train_epochs=1, learning_rate=0.05,
        ddp_backend="gloo", use_cpu=True, report_to="none", save_strategy="steps", save_steps=2, disable_tqdm=True, seed=3,
    )
    evaluator = EmbeddingSimilarityEvaluator(
        random_sentences(16, seed=5), random_sentences(16, seed=6), [i / 16 for i in range(16)], name="dev"
    )
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=data, loss=MultipleNegativesRankingLoss(model), evaluator=evaluator
    )
    assert trainer.args.world_size == 2, trainer.args.world_size
    trainer.train()
    trainer.save_model(os.path.join(output_dir, "final"))
    rank = int(os.environ["RANK"])
    # Every rank writes its final weights: DDP keeps the replicas identical.
    numpy.save(os.path.join(output_dir, f"weights-{{rank}}.npy"), model[0].embedding.weight.detach().numpy())
    # The evaluator runs on rank 0 only; every rank receives its metrics.
    score = trainer.evaluate()["eval_dev_spearman_cosine"]
    # A file per rank, not stdout: the two processes share one pipe and their writes can interleave.
    with open(os.path.join(output_dir, f"result-{{rank}}.txt"), "w", encoding="utf-8") as handle:
        handle.write(f"{{trainer.state.global_step}} {{score!r}}")
    # Shut down explicitly: left to interpreter exit, gloo's threads were once torn down while
    # still joinable ("terminate called without an active exception", SIGABRT in CI).
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
    sys.stdout.flush()
    os._exit(0)
    """
)


def test_torchrun_two_processes_train_and_save_a_loadable_model(tmp_path: Path) -> None:
    run_torchrun(SCRIPT.format(tests_dir=str(TESTS_DIR)), tmp_path)
    # 64 rows, batch 8 per rank, 2 ranks -> 4 optimizer steps on each rank.
    results = {rank: (tmp_path / "out" / f"result-{rank}.txt").read_text(encoding="utf-8").split() for rank in (0, 1)}
    assert results[0][0] == "4" and results[1][0] == "4", results
    scores = {rank: float(score) for rank, (_, score) in results.items()}
    assert scores[0] == scores[1], scores

    from embedforge import SentenceTransformer

    rank0 = np.load(tmp_path / "out" / "weights-0.npy")
    rank1 = np.load(tmp_path / "out" / "weights-1.npy")
    np.testing.assert_array_equal(rank0, rank1)
    loaded = SentenceTransformer(str(tmp_path / "out" / "final"))
    # Checkpoints are written by rank 0 alone (a concurrent write from rank 1 used to race it).
    checkpoint = SentenceTransformer(str(tmp_path / "out" / "checkpoint-4"))
    np.testing.assert_array_equal(checkpoint[0].embedding.weight.detach().numpy(), rank0)
    np.testing.assert_array_equal(loaded[0].embedding.weight.detach().numpy(), rank0)
    from conftest import random_sentences
    from embedforge.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    evaluator = EmbeddingSimilarityEvaluator(
        random_sentences(16, seed=5), random_sentences(16, seed=6), [i / 16 for i in range(16)], name="dev"
    )
    assert scores[0] == pytest.approx(evaluator(loaded)["dev_spearman_cosine"], abs=1e-6)
