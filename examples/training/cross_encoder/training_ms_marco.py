"""Train an MS MARCO-style reranker with mined hard negatives, evaluated by reranking BM25 candidates.

Run:  python examples/training/cross_encoder/training_ms_marco.py [--model FOLDER] [--data-dir DIR]
      add --smoke for a few steps on a few queries (what the test suite runs)

Data: the local BEIR-format MS MARCO folder (5,000 passages, 50 queries with relevance judgements).
Its queries are split in two: training queries and held-out queries (written as a BEIR folder of
their own, so evaluation never sees a training query). For each training query and relevant
passage, ``mine_hard_negatives`` finds passages that a bi-encoder (all-MiniLM-L6-v2) ranks high but
that are not judged relevant, and writes (query, passage, label) rows ("labeled-pair" format).
The cross-encoder (MiniLM's encoder with a fresh one-label head) trains on them with
BinaryCrossEntropyLoss, positives weighted by the number of negatives per positive.
CrossEncoderNanoBEIREvaluator reranks each held-out query's top BM25 candidates (embedforge's
Rust BM25) before and after training, and also on DBpedia-entity as an out-of-domain check.

This local set is small (50 queries), so the reranker learns little from it: the example shows
the whole pipeline on real data; train on the full MS MARCO triples for a useful model. Its
judgements are TREC-DL style (graded, about 95 relevant passages per query), so BM25's top
candidates are mostly relevant and the MS MARCO scores start high; DBpedia-entity is the harder check.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # local_data.py, shared by the examples

import torch
from datasets import Dataset
from local_data import default_model, find_data_dir

from embedforge import SentenceTransformer
from embedforge.base.evaluation.beir import load_beir_folder
from embedforge.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
from embedforge.cross_encoder.evaluation import CrossEncoderNanoBEIREvaluator
from embedforge.cross_encoder.losses import BinaryCrossEntropyLoss
from embedforge.util import mine_hard_negatives


def split_queries(
    queries: dict[str, str], relevant: dict[str, set[str]], held_out: int, seed: int = 12
) -> tuple[list[str], list[str]]:
    """(training query ids, held-out query ids): a fixed shuffle of the judged queries."""
    judged = sorted(query_id for query_id in queries if relevant.get(query_id))
    random.Random(seed).shuffle(judged)
    return judged[held_out:], judged[:held_out]


def write_beir_subset(source: Path, target: Path, query_ids: list[str], relevant: dict[str, set[str]]) -> Path:
    """A BEIR folder with the source corpus and only ``query_ids`` (queries and judgements)."""
    (target / "qrels").mkdir(parents=True, exist_ok=True)
    (target / "corpus.jsonl").write_bytes((source / "corpus.jsonl").read_bytes())
    keep = set(query_ids)
    with open(source / "queries.jsonl", encoding="utf-8") as f:
        lines = [line for line in f if line.strip() and json.loads(line)["_id"] in keep]
    (target / "queries.jsonl").write_text("".join(lines), encoding="utf-8")
    rows = [f"{query_id}\t{doc_id}\t1\n" for query_id in query_ids for doc_id in sorted(relevant[query_id])]
    (target / "qrels" / "test.tsv").write_text("".join(rows), encoding="utf-8")
    return target


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Mine, train, evaluate before and after; returns both evaluations."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="base model folder (default: all-MiniLM-L6-v2)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--output-dir", default="output/cross-encoder-msmarco")
    parser.add_argument("--held-out", type=int, default=15, help="queries kept for evaluation")
    parser.add_argument("--num-negatives", type=int, default=5)
    parser.add_argument("--rerank-k", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--smoke", action="store_true", help="a few steps on a few queries")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(message)s", level=logging.INFO)

    beir = find_data_dir(args.data_dir) / "beir"
    corpus, queries, relevant = load_beir_folder(beir / "msmarco")
    train_ids, held_out_ids = split_queries(queries, relevant, args.held_out)
    if args.smoke:
        train_ids, held_out_ids = train_ids[:4], held_out_ids[:3]
    output = Path(args.output_dir)
    eval_folder = write_beir_subset(beir / "msmarco", output / "msmarco-held-out", held_out_ids, relevant)

    pairs = Dataset.from_dict(
        {
            "query": [queries[q] for q in train_ids for d in sorted(relevant[q])],
            "answer": [corpus[d] for q in train_ids for d in sorted(relevant[q])],
        }
    )
    model_folder = args.model or default_model()
    embedder = SentenceTransformer(model_folder)
    mining_corpus = list(corpus.values())
    if args.smoke:
        # Encoding all 5,000 passages is most of a smoke run's time: mine among the first 300 (plus the positives).
        mining_corpus = list(dict.fromkeys(mining_corpus[:300] + list(pairs["answer"])))
    train_dataset = mine_hard_negatives(
        pairs,
        embedder,
        corpus=mining_corpus,
        num_negatives=args.num_negatives,
        range_min=10,  # skip the very top: unjudged passages there are often relevant (false negatives)
        range_max=100,
        output_format="labeled-pair",
        verbose=False,
    )
    print(f"training rows: {len(train_dataset)} ({len(pairs)} positives), columns {train_dataset.column_names}")

    rerank_k = 10 if args.smoke else args.rerank_k
    evaluator = CrossEncoderNanoBEIREvaluator(
        dataset_names=["msmarco"] if args.smoke else ["msmarco", "dbpedia"],
        data_dir={"msmarco": eval_folder, "dbpedia": beir / "dbpedia"},
        rerank_k=rerank_k,
        write_csv=False,
    )
    model = CrossEncoder(model_folder, num_labels=1)
    before = evaluator(model)
    print(f"before training: {before}")

    training_args = CrossEncoderTrainingArguments(
        output_dir=str(output / "checkpoints"),
        num_train_epochs=args.epochs,
        per_device_train_batch_size=16,
        learning_rate=2e-5,
        warmup_ratio=0.1,
        save_strategy="no",
        logging_steps=2 if args.smoke else 10,
        max_steps=3 if args.smoke else -1,
        report_to="none",
        seed=12,
    )
    loss = BinaryCrossEntropyLoss(model, pos_weight=torch.tensor(float(args.num_negatives)))
    CrossEncoderTrainer(model=model, args=training_args, train_dataset=train_dataset, loss=loss).train()
    after = evaluator(model)
    print(f"after training: {after}")
    model.save(str(output / "final"))
    return {"before": before, "after": after}


if __name__ == "__main__":
    main()
