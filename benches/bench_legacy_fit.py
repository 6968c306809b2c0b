"""The pre-v3 training script (STSb, model.fit) end to end: embedforge vs sentence-transformers.

Run: python benches/bench_legacy_fit.py [--repeats 3] [--dim 256]
The workload is sentence-transformers v2's ``training_stsbenchmark.py`` flow with only the imports
changed: STSBenchmarkDataReader reads sts-train.csv (5,749 pairs) and sts-dev.csv, a DataLoader of
InputExamples (batch 16, shuffled) feeds ``model.fit`` with CosineSimilarityLoss for one epoch, and
EmbeddingSimilarityEvaluator.from_input_examples scores the dev split at the end (output_path set,
so the best model is saved). The model is a StaticEmbedding over the bert-base-uncased tokenizer
with the same seeded random weights in both libraries, so the runs can be compared number for number:
the dev Spearman of both is printed with the timings. Both libraries alternate, best of N each.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
import warnings
from typing import Any

import torch
from torch.utils.data import DataLoader

from common import require_shared


def build_model(library: str, weights: torch.Tensor) -> Any:
    """A StaticEmbedding model over the bert-base-uncased tokenizer with a copy of ``weights``."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(require_shared("tokenizers", "bert-base-uncased.json")))
    if library == "embedforge":
        from embedforge import SentenceTransformer
        from embedforge.sentence_transformer.modules import StaticEmbedding

        return SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_weights=weights.clone())])
    from sentence_transformers import SentenceTransformer as StModel
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding as StStatic

    return StModel(modules=[StStatic(tokenizer, embedding_weights=weights.clone())], device="cpu")


def run(library: str, weights: torch.Tensor) -> tuple[float, float]:
    """One full script run; returns (seconds, final dev Spearman)."""
    if library == "embedforge":
        from embedforge.sentence_transformer import losses
        from embedforge.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator
        from embedforge.sentence_transformer.readers import STSBenchmarkDataReader
    else:
        from sentence_transformers.sentence_transformer import losses
        from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator
        from sentence_transformers.sentence_transformer.readers import STSBenchmarkDataReader

    torch.manual_seed(0)
    random.seed(0)
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        os.chdir(folder)
        start = time.perf_counter()
        model = build_model(library, weights)
        reader = STSBenchmarkDataReader(str(require_shared("stsb")))
        train_examples = reader.get_examples("sts-train.csv")
        train_dataloader = DataLoader(train_examples, shuffle=True, batch_size=16)
        train_loss = losses.CosineSimilarityLoss(model=model)
        evaluator = EmbeddingSimilarityEvaluator.from_input_examples(reader.get_examples("sts-dev.csv"), name="sts-dev")
        model.fit(
            train_objectives=[(train_dataloader, train_loss)],
            evaluator=evaluator,
            epochs=1,
            warmup_steps=36,
            optimizer_params={"lr": 0.05},
            output_path=os.path.join(folder, "output"),
            show_progress_bar=False,
        )
        seconds = time.perf_counter() - start
        score = evaluator(model)[evaluator.primary_metric]
    return seconds, float(score)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dim", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    import transformers

    transformers.logging.set_verbosity_error()
    weights = torch.randn(30522, args.dim, generator=torch.Generator().manual_seed(0)) * 0.1
    cwd = os.getcwd()
    best: dict[str, float] = {}
    scores: dict[str, float] = {}
    try:
        for _ in range(args.repeats):
            for library in ("sentence_transformers", "embedforge"):
                seconds, score = run(library, weights)
                best[library] = min(best.get(library, float("inf")), seconds)
                scores[library] = score
                print(f"{library}: {seconds:.2f} s, dev spearman {score:.4f}", flush=True)
    finally:
        os.chdir(cwd)
    ours, theirs = best["embedforge"], best["sentence_transformers"]
    print(
        f"| STSb training script via model.fit (5,749 pairs, 1 epoch, batch 16, {args.dim}-dim static model) "
        f"| {ours:.2f} s | {theirs:.2f} s | **{theirs / ours:.2f}x** | dev spearman {scores['embedforge']:.4f} vs "
        f"{scores['sentence_transformers']:.4f} |"
    )


if __name__ == "__main__":
    main()
