"""Train a regression cross-encoder on STSb: it reads a sentence pair and predicts its similarity in [0, 1].

Run:  python examples/training/cross_encoder/training_stsb.py [--model FOLDER] [--data-dir shared/data]
      add --smoke for a few steps on a few rows (what the test suite runs)

The base model is all-MiniLM-L6-v2's encoder with a fresh one-label head. The loss is
BinaryCrossEntropyLoss with the gold score / 5 as a soft label; CrossEncoderCorrelationEvaluator
reports Pearson and Spearman on the dev split during training and on the test split at the end.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # local_data.py, shared by the examples

from datasets import Dataset
from local_data import default_model, find_data_dir, read_stsb, stsb_smoke_sizes

from embedforge.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
from embedforge.cross_encoder.evaluation import CrossEncoderCorrelationEvaluator
from embedforge.cross_encoder.losses import BinaryCrossEntropyLoss


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Train, evaluate on test, save; returns the test metrics."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="base model folder (default: all-MiniLM-L6-v2)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--output-dir", default="output/cross-encoder-stsb")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--smoke", action="store_true", help="a few steps on a few rows")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(message)s", level=logging.INFO)

    data_dir = find_data_dir(args.data_dir)
    sizes = stsb_smoke_sizes(args.smoke)
    splits = {name: read_stsb(data_dir, name) for name in ("train", "dev", "test")}
    splits = {name: {key: values[: sizes[name]] for key, values in split.items()} for name, split in splits.items()}
    train_dataset = Dataset.from_dict(splits["train"])

    model = CrossEncoder(args.model or default_model(), num_labels=1)
    loss = BinaryCrossEntropyLoss(model)
    evaluators = {
        name: CrossEncoderCorrelationEvaluator(
            sentence_pairs=list(zip(splits[name]["sentence1"], splits[name]["sentence2"])),
            scores=splits[name]["score"],
            name=f"stsb-{name}",
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
        eval_steps=2 if args.smoke else 100,
        save_strategy="no",
        logging_steps=2 if args.smoke else 50,
        max_steps=4 if args.smoke else -1,
        report_to="none",
        seed=12,
    )
    trainer = CrossEncoderTrainer(
        model=model, args=training_args, train_dataset=train_dataset, loss=loss, evaluator=evaluators["dev"]
    )
    trainer.train()
    metrics = evaluators["test"](model)
    print(f"STSb test: {metrics}")
    model.save(str(Path(args.output_dir) / "final"))
    return metrics


if __name__ == "__main__":
    main()
