"""Augmented SBERT, in-domain, semantic-search sampling: gold STSb pairs -> cross-encoder -> silver pairs -> bi-encoder.

Run:  python examples/training/data_augmentation/train_sts_indomain_semantic.py [--gold 1000] [--top-k 3]
      [--model FOLDER] [--sampling-model FOLDER] [--data-dir shared/data]
      add --smoke for a few steps on a few rows (what the test suite runs)

As train_sts_indomain_bm25.py, except that each gold sentence is paired with its top-k nearest
sentences by the cosine similarity of a pretrained bi-encoder's embeddings (``--sampling-model``,
default: the base model as it is), found by embedforge's exact top-k search.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # local_data.py, shared by the examples

from local_data import default_model, find_data_dir, stsb_dataset

from embedforge import CrossEncoder, SentenceTransformer
from embedforge.data_augmentation import TrainingSettings, augment_in_domain


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the recipe; returns the report's metrics per stage."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="base model folder for both models (default: all-MiniLM-L6-v2)")
    parser.add_argument(
        "--sampling-model", default=None, help="bi-encoder that finds the neighbours (default: --model)"
    )
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--output-dir", default="output/augsbert-indomain-semantic")
    parser.add_argument("--gold", type=int, default=None, help="use a seeded sample of this many train pairs")
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="a few steps on a few rows")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(message)s", level=logging.INFO)

    data_dir = find_data_dir(args.data_dir)
    folder = args.model or default_model()
    settings = TrainingSettings(max_steps=3 if args.smoke else -1)
    report = augment_in_domain(
        stsb_dataset(data_dir, "train", limit=48 if args.smoke else args.gold, seed=0),
        CrossEncoder(folder, num_labels=1),
        SentenceTransformer(folder),
        strategy="semantic",
        top_k=args.top_k,
        sampling_model=SentenceTransformer(args.sampling_model or folder),
        dev=stsb_dataset(data_dir, "dev", limit=40 if args.smoke else None),
        test=stsb_dataset(data_dir, "test", limit=40 if args.smoke else None),
        cross_encoder_settings=settings,
        bi_encoder_settings=settings,
        output_dir=args.output_dir,
    )
    print(report.format())
    return report.metrics


if __name__ == "__main__":
    main()
