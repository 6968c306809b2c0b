"""Augmented SBERT, domain transfer: a cross-encoder trained on STSb labels Quora question pairs for a bi-encoder.

Run:  python examples/training/data_augmentation/train_sts_qqp_crossdomain.py [--model FOLDER]
      [--data-dir shared/data] [--loss MultipleNegativesRankingLoss] [--threshold 0.5]
      add --smoke for a few steps on a few rows (what the test suite runs)

1. A cross-encoder trains one epoch on STSb train (the annotated source), pairs in both orders.
2. It scores the Quora train split's question pairs (the target; their labels are not used).
3. The bi-encoder trains on the target: with MultipleNegativesRankingLoss (default) on the pairs
   scored >= threshold, or with CosineSimilarityLoss on the scores themselves.
Duplicate detection on the Quora dev and test splits (average precision of cosine similarity
and friends) is printed before and after. The Quora file is the local dev split of the Quora
duplicate questions, cut 80/10/10 with a fixed shuffle.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # local_data.py, shared by the examples

from datasets import Dataset
from local_data import default_model, find_data_dir, read_quora_splits, stsb_dataset

from embedforge import CrossEncoder, SentenceTransformer
from embedforge.data_augmentation import TrainingSettings, augment_domain_transfer


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the scenario; returns the report's metrics per stage."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="base model folder for both models (default: all-MiniLM-L6-v2)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--output-dir", default="output/augsbert-stsb-to-quora")
    parser.add_argument("--loss", default="MultipleNegativesRankingLoss", help="bi-encoder loss")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--smoke", action="store_true", help="a few steps on a few rows")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(message)s", level=logging.INFO)

    data_dir = find_data_dir(args.data_dir)
    quora = read_quora_splits(data_dir)
    limit = 40 if args.smoke else None
    target_pairs = list(zip(quora["train"]["question1"], quora["train"]["question2"]))[:limit]
    target_dev, target_test = (
        Dataset.from_dict(quora[split]).select(range(limit or len(quora[split]["label"]))) for split in ("dev", "test")
    )
    folder = args.model or default_model()
    max_steps = 3 if args.smoke else -1
    report = augment_domain_transfer(
        stsb_dataset(data_dir, "train", limit=48 if args.smoke else None),
        target_pairs,
        CrossEncoder(folder, num_labels=1),
        SentenceTransformer(folder),
        source_dev=stsb_dataset(data_dir, "dev", limit=limit),
        target_dev=target_dev,
        target_test=target_test,
        threshold=args.threshold,
        cross_encoder_settings=TrainingSettings(max_steps=max_steps),
        bi_encoder_settings=TrainingSettings(loss=args.loss, max_steps=max_steps),
        output_dir=args.output_dir,
    )
    print(report.format())
    return report.metrics


if __name__ == "__main__":
    main()
