"""The trainer's input pipeline: one epoch of collated batches, embedforge vs sentence-transformers, one process.

Run: python benches/bench_trainer_dataloader.py [--rows 16384] [--repeats 3]
Each side builds its SentenceTransformerTrainer on the same (anchor, positive) ``datasets.Dataset`` and a
StaticEmbedding model over the bert-base-uncased tokenizer, then iterates ``get_train_dataloader()``
once: sampling, reading rows from arrow, the data collator and tokenization, as during training
(the model forward/backward is not included). Both sides must yield the same batches.
"""

from __future__ import annotations

import argparse
import importlib
import tempfile
from typing import Any

import torch

from common import best_time, report, require_shared, sentences_of_words


def static_model(library: str, weights: torch.Tensor) -> Any:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(require_shared("tokenizers", "bert-base-uncased.json")))
    if library == "embedforge":
        from embedforge import SentenceTransformer
        from embedforge.sentence_transformer.modules import StaticEmbedding
    else:
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    return SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_weights=weights.clone())], device="cpu")


def trainer(library: str, dataset: Any, weights: torch.Tensor, batch_size: int, sampler: str, output_dir: str) -> Any:
    if library == "embedforge":
        import embedforge as lib

        losses = importlib.import_module("embedforge.sentence_transformer.losses")
    else:
        import sentence_transformers as lib

        losses = importlib.import_module("sentence_transformers.sentence_transformer.losses")
    model = static_model(library, weights)
    args = lib.SentenceTransformerTrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=batch_size,
        batch_sampler=sampler,
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        seed=12,
    )
    return lib.SentenceTransformerTrainer(
        model=model, args=args, train_dataset=dataset, loss=losses.MultipleNegativesRankingLoss(model)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=16384)
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()

    from datasets import Dataset

    dataset = Dataset.from_dict(
        {
            "anchor": sentences_of_words(options.rows, 4, 24, seed=1),
            "positive": sentences_of_words(options.rows, 4, 24, seed=2),
        }
    )
    weights = torch.randn(30522, 64, generator=torch.Generator().manual_seed(0))
    print("| workload | embedforge | sentence-transformers | speed-up | target |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as output_dir:
        for sampler in ("batch_sampler", "no_duplicates"):
            for batch_size in (64, 1024):
                ours = trainer("embedforge", dataset, weights, batch_size, sampler, output_dir)
                theirs = trainer("sentence_transformers", dataset, weights, batch_size, sampler, output_dir)
                first_ours = next(iter(ours.get_train_dataloader()))
                first_theirs = next(iter(theirs.get_train_dataloader()))
                for key in ("anchor_input_ids", "anchor_offsets", "positive_input_ids"):
                    assert torch.equal(first_ours[key], first_theirs[key]), key
                ours_seconds = best_time(lambda t=ours: sum(1 for _ in t.get_train_dataloader()), options.repeats)
                theirs_seconds = best_time(lambda t=theirs: sum(1 for _ in t.get_train_dataloader()), options.repeats)
                report(
                    f"one epoch of collated batches, {sampler}, batch {batch_size}",
                    ours_seconds,
                    theirs_seconds,
                    options.rows,
                    "rows",
                    "faster than sentence-transformers",
                )


if __name__ == "__main__":
    main()
