"""Train a binary cross-encoder on Quora duplicate questions: does a question pair ask the same thing?

Run:  python examples/training/cross_encoder/training_quora_duplicate_questions.py [--model FOLDER] [--data-dir DIR]
      add --smoke for a few steps on a few rows (what the test suite runs)

The local Quora file (20,214 labelled pairs) is split 80/10/10 by a fixed shuffle. The base model
is all-MiniLM-L6-v2's encoder with a fresh one-label head, trained with BinaryCrossEntropyLoss;
CrossEncoderClassificationEvaluator reports accuracy, F1 and average precision at the best threshold.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # local_data.py, shared by the examples

from datasets import Dataset
from local_data import default_model, find_data_dir, read_quora_splits

from embedforge.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
from embedforge.cross_encoder.evaluation import CrossEncoderClassificationEvaluator
from embedforge.cross_encoder.losses import BinaryCrossEntropyLoss


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Train, evaluate on the test split, save; returns the test metrics."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="base model folder (default: all-MiniLM-L6-v2)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--output-dir", default="output/cross-encoder-quora")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--smoke", action="store_true", help="a few steps on a few rows")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(message)s", level=logging.INFO)

    splits = read_quora_splits(find_data_dir(args.data_dir))
    if args.smoke:
        splits = {name: {key: values[:64] for key, values in split.items()} for name, split in splits.items()}
    train_dataset = Dataset.from_dict(splits["train"])

    model = CrossEncoder(args.model or default_model(), num_labels=1)
    evaluators = {
        name: CrossEncoderClassificationEvaluator(
            sentence_pairs=list(zip(splits[name]["question1"], splits[name]["question2"])),
            labels=splits[name]["label"],
            name=f"quora-{name}",
        )
        for name in ("dev", "test")
    }
    training_args = CrossEncoderTrainingArguments(
        output_dir=args.output_dir,
        num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size,
        learning_rate=2e-5,
        warmup_ratio=0.1,
        eval_strategy="steps",
        eval_steps=2 if args.smoke else 200,
        save_strategy="no",
        logging_steps=2 if args.smoke else 50,
        max_steps=4 if args.smoke else -1,
        report_to="none",
        seed=12,
    )
    trainer = CrossEncoderTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        loss=BinaryCrossEntropyLoss(model),
        evaluator=evaluators["dev"],
    )
    trainer.train()
    metrics = evaluators["test"](model)
    print(f"Quora duplicates test: {metrics}")
    model.save(str(Path(args.output_dir) / "final"))
    return metrics


if __name__ == "__main__":
    main()
