"""Seed optimisation on STSb: train the bi-encoder with several seeds, stop each early, finish the best.

Run:  python examples/training/data_augmentation/train_sts_seed_optimization.py [--seeds 5]
      [--stop-after 0.3] [--keep 1] [--gold N] [--model FOLDER] [--data-dir shared/data]
      add --smoke for a few steps on a few rows (what the test suite runs)

Each seed trains a fresh bi-encoder (CosineSimilarityLoss, batch 16, one epoch planned) for
``stop-after`` of its steps and is scored on STSb dev (Spearman); the ``keep`` best seeds then
train the whole epoch, and the best of them is evaluated on test and saved. With a small training
set the seed (data order, new layers' initialisation) moves the result noticeably; 20-30% of an
epoch is usually enough to tell good seeds from bad (Dodge et al., 2020).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # local_data.py, shared by the examples

from local_data import default_model, find_data_dir, stsb_dataset

from embedforge import SentenceTransformer
from embedforge.data_augmentation import seed_search
from embedforge.data_augmentation.recipe import bi_encoder_evaluator
from embedforge.sentence_transformer.losses import CosineSimilarityLoss


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Search the seeds; returns the early and final scores per seed and the best seed's test metrics."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="base model folder (default: all-MiniLM-L6-v2)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--output-dir", default="output/sts-seed-optimization")
    parser.add_argument("--gold", type=int, default=None, help="use a seeded sample of this many train pairs")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--stop-after", type=float, default=0.3)
    parser.add_argument("--keep", type=int, default=1)
    parser.add_argument("--smoke", action="store_true", help="a few steps on a few rows")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(message)s", level=logging.INFO)

    data_dir = find_data_dir(args.data_dir)
    folder = args.model or default_model()
    limit = 40 if args.smoke else None
    train = stsb_dataset(data_dir, "train", limit=64 if args.smoke else args.gold, seed=0)
    dev_evaluator = bi_encoder_evaluator(stsb_dataset(data_dir, "dev", limit=limit), "similarity", "sts-dev")
    result = seed_search(
        lambda: SentenceTransformer(folder),
        train,
        CosineSimilarityLoss,
        dev_evaluator,
        seeds=range(2 if args.smoke else args.seeds),
        stop_after=args.stop_after,
        keep=args.keep,
        training_args={"per_device_train_batch_size": 16, "num_train_epochs": 1},
    )
    print(f"dev Spearman after {args.stop_after:.0%} of an epoch, per seed: {result.early_scores}")
    print(f"dev Spearman after the whole epoch: {result.final_scores}; best seed {result.best_seed}")
    assert result.best_model is not None
    test_metrics = bi_encoder_evaluator(stsb_dataset(data_dir, "test", limit=limit), "similarity", "sts-test")(
        result.best_model
    )
    print(f"best seed on STSb test: {test_metrics}")
    result.best_model.save(str(Path(args.output_dir) / f"seed-{result.best_seed}"))
    return {
        "early": result.early_scores,
        "final": result.final_scores,
        "best_seed": result.best_seed,
        "test": test_metrics,
    }


if __name__ == "__main__":
    main()
