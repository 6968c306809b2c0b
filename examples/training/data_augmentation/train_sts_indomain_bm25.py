"""Augmented SBERT, in-domain, BM25 sampling: few gold STSb pairs -> cross-encoder -> silver pairs -> bi-encoder.

Run:  python examples/training/data_augmentation/train_sts_indomain_bm25.py [--gold 1000] [--top-k 3]
      [--model FOLDER] [--data-dir shared/data] [--elasticsearch URL]
      add --smoke for a few steps on a few rows (what the test suite runs)

1. A cross-encoder (the base model's encoder with a fresh one-label head) trains one epoch on the
   gold pairs, in both orders.
2. The gold sentences are recombined: each sentence is paired with its top-k BM25 matches among
   the others (embedforge's Rust BM25 index; no search server needed), leaving out gold pairs,
   self pairs and repeats; the cross-encoder scores the new pairs (silver).
3. The bi-encoder trains one epoch on gold + silver with CosineSimilarityLoss; STSb dev/test
   Spearman are printed before and after.

Users who already run Elasticsearch can sample with it instead (``--elasticsearch
http://localhost:9200``, needs ``pip install elasticsearch``): the matches come from its BM25
and the rest of the recipe is unchanged. That path was not run where this example was written
(no server there).
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
from embedforge.data_augmentation import (
    PairSet,
    TrainingSettings,
    augment_in_domain,
    label_pairs,
    train_bi_encoder,
    unique_sentences,
)
from embedforge.data_augmentation.labeling import gold_and_silver


def elasticsearch_pairs(url: str, sentences: list[str], top_k: int, exclude: list[tuple[str, str]]) -> list[Any]:
    """Each sentence with its top_k Elasticsearch (BM25) matches, filtered like embedforge's samplers."""
    from elasticsearch import Elasticsearch, helpers

    client = Elasticsearch(url)
    index = "embedforge-augsbert"
    if client.indices.exists(index=index):
        client.indices.delete(index=index)
    client.indices.create(index=index, mappings={"properties": {"sentence": {"type": "text"}}})
    helpers.bulk(client, ({"_index": index, "_id": i, "sentence": s} for i, s in enumerate(sentences)), refresh=True)
    kept = PairSet(exclude)
    for query_id, sentence in enumerate(sentences):
        response = client.search(index=index, query={"match": {"sentence": sentence}}, size=top_k + 1)
        hits = [int(hit["_id"]) for hit in response["hits"]["hits"] if int(hit["_id"]) != query_id][:top_k]
        for hit in hits:
            kept.add(sentence, sentences[hit])
    return kept.pairs


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the recipe; returns the report's metrics per stage."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="base model folder for both models (default: all-MiniLM-L6-v2)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--output-dir", default="output/augsbert-indomain-bm25")
    parser.add_argument("--gold", type=int, default=None, help="use a seeded sample of this many train pairs")
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--elasticsearch", default=None, metavar="URL", help="sample with Elasticsearch's BM25")
    parser.add_argument("--smoke", action="store_true", help="a few steps on a few rows")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(message)s", level=logging.INFO)

    data_dir = find_data_dir(args.data_dir)
    gold = stsb_dataset(data_dir, "train", limit=48 if args.smoke else args.gold, seed=0)
    dev = stsb_dataset(data_dir, "dev", limit=40 if args.smoke else None)
    test = stsb_dataset(data_dir, "test", limit=40 if args.smoke else None)
    settings = TrainingSettings(max_steps=3 if args.smoke else -1)
    folder = args.model or default_model()
    cross_encoder, bi_encoder = CrossEncoder(folder, num_labels=1), SentenceTransformer(folder)

    if args.elasticsearch:
        # The same three steps, with Elasticsearch choosing the pairs.
        from embedforge.data_augmentation import train_cross_encoder
        from embedforge.data_augmentation.labeling import both_orders
        from embedforge.data_augmentation.recipe import bi_encoder_evaluator

        train_cross_encoder(cross_encoder, both_orders(gold), settings)
        gold_pairs = list(zip(gold["sentence1"], gold["sentence2"]))
        pairs = elasticsearch_pairs(args.elasticsearch, unique_sentences(gold_pairs), args.top_k, gold_pairs)
        silver = label_pairs(cross_encoder, pairs)
        train_bi_encoder(bi_encoder, gold_and_silver(gold, silver), settings)
        metrics = bi_encoder_evaluator(test, "similarity", "sts-test")(bi_encoder)
        print(f"{len(silver)} silver pairs; STSb test: {metrics}")
        bi_encoder.save(str(Path(args.output_dir) / "bi-encoder"))
        return {"bi-encoder after": metrics}

    report = augment_in_domain(
        gold,
        cross_encoder,
        bi_encoder,
        strategy="bm25",
        top_k=args.top_k,
        dev=dev,
        test=test,
        cross_encoder_settings=settings,
        bi_encoder_settings=settings,
        output_dir=args.output_dir,
    )
    print(report.format())
    return report.metrics


if __name__ == "__main__":
    main()
