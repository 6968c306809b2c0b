"""In-domain augmentation by synonym replacement: each gold STSb pair gets a copy with some words swapped.

Run:  python examples/training/data_augmentation/train_sts_indomain_synonyms.py [--gold N]
      [--synonyms-from STATIC_FOLDER] [--aug-p 0.3] [--model FOLDER] [--data-dir shared/data]
      add --smoke for a few steps on a few rows (what the test suite runs)

sentence-transformers' version of this example (train_sts_indomain_nlpaug.py) uses the nlpaug
package, whose synonym sources (WordNet, word2vec GoogleNews vectors, a BERT masked-language
model) are downloads. Here the synonyms are the nearest whole-word neighbours in a local static
embedding table: ``--synonyms-from`` a StaticEmbedding/model2vec folder, or by default one
distilled from the base model (model2vec's recipe, about a minute on a CPU). A pair (A, B, score)
gives the silver pair (A', B', score); the bi-encoder trains on gold + silver with
CosineSimilarityLoss. Embedding neighbours are related words, not always synonyms ("cheap" can
become "expensive"), which is why only a share of each sentence's words is replaced.
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
from embedforge.data_augmentation import SynonymAugmenter, TrainingSettings, augment_dataset, train_bi_encoder
from embedforge.data_augmentation.labeling import gold_and_silver
from embedforge.data_augmentation.recipe import bi_encoder_evaluator
from embedforge.sentence_transformer.modules import StaticEmbedding


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Augment, train, evaluate; returns the test metrics before and after."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="bi-encoder base model folder (default: all-MiniLM-L6-v2)")
    parser.add_argument("--synonyms-from", default=None, help="static model folder whose table gives the synonyms")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--output-dir", default="output/augsbert-indomain-synonyms")
    parser.add_argument("--gold", type=int, default=None, help="use a seeded sample of this many train pairs")
    parser.add_argument("--aug-p", type=float, default=0.3, help="share of replaceable words to replace")
    parser.add_argument("--smoke", action="store_true", help="a few steps on a few rows")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(message)s", level=logging.INFO)

    data_dir = find_data_dir(args.data_dir)
    folder = args.model or default_model()
    if args.synonyms_from:
        table: Any = args.synonyms_from
    elif args.smoke:
        table = str(data_dir / "model2vec-fixture")  # tiny: the run checks the plumbing, not the synonyms
    else:
        table = StaticEmbedding.from_distillation(folder, pca_dims=256)
    augmenter = SynonymAugmenter.from_static_model(table, aug_p=args.aug_p)
    gold = stsb_dataset(data_dir, "train", limit=48 if args.smoke else args.gold, seed=0)
    silver = augment_dataset(gold, augmenter)
    for row in silver.select(range(min(3, len(silver)))):
        print(f"  silver: {row['sentence1']!r} / {row['sentence2']!r} ({row['score']:.2f})")
    print(f"{len(silver)} silver pairs from {len(gold)} gold pairs")

    test_evaluator = bi_encoder_evaluator(
        stsb_dataset(data_dir, "test", limit=40 if args.smoke else None), "similarity", "sts-test"
    )
    model = SentenceTransformer(folder)
    before = test_evaluator(model)
    train_bi_encoder(model, gold_and_silver(gold, silver), TrainingSettings(max_steps=3 if args.smoke else -1))
    after = test_evaluator(model)
    print(f"STSb test before: {before}\nSTSb test after:  {after}")
    model.save(str(Path(args.output_dir) / "bi-encoder"))
    return {"before": before, "after": after, "num_silver": len(silver)}


if __name__ == "__main__":
    main()
