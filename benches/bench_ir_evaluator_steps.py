"""Where the peak memory of one embedforge InformationRetrievalEvaluator call goes, step by step.

Run: cd benches && python bench_ir_evaluator_steps.py [--corpus 1000000] [--calls 2] [--chunk 50000]
Same workload and model as bench_ir_evaluator.py (embedforge only). The evaluator's steps are
wrapped; around each one the kernel's peak-RSS mark (VmHWM) is read and reset, so every step gets
its own peak, nested steps included. Per step the table gives: calls, the highest peak RSS above
the RSS at the start of the evaluator call, the highest growth within one call of the step, the RSS
after the step, and the total seconds. tracemalloc would miss torch's and Rust's allocations.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable
from typing import Any

import torch

from bench_ir_evaluator import DIM, peak_bytes, reset_peak, rss_bytes, workload
from common import require_shared

MB = 2**20


class StepPeaks:
    """Per-step peak RSS through VmHWM resets around wrapped functions."""

    def __init__(self) -> None:
        self.call_start = 0
        self.call_peak = 0
        self.open_steps: list[list[int]] = []
        self.rows: dict[str, list[float]] = {}

    def _fold(self) -> None:
        """Credit the peak since the last reset to the call and to every open step, then reset."""
        peak = peak_bytes()
        self.call_peak = max(self.call_peak, peak)
        for step in self.open_steps:
            step[0] = max(step[0], peak)
        reset_peak()

    def start_call(self) -> None:
        """Start measuring one evaluator call."""
        self.rows.clear()
        reset_peak()
        self.call_start = rss_bytes()
        self.call_peak = 0

    def end_call(self) -> float:
        """The call's peak RSS growth in MB."""
        self._fold()
        return (self.call_peak - self.call_start) / MB

    def wrap(self, owner: Any, attribute: str, label: str) -> None:
        """Measure every call of ``owner.attribute`` under ``label``."""
        function: Callable[..., Any] = getattr(owner, attribute)

        @functools.wraps(function)
        def measured(*args: Any, **kwargs: Any) -> Any:
            self._fold()
            before = rss_bytes()
            started = time.perf_counter()
            step = [0]
            self.open_steps.append(step)
            try:
                return function(*args, **kwargs)
            finally:
                self._fold()
                self.open_steps.pop()
                row = self.rows.setdefault(label, [0, 0.0, 0.0, 0.0, 0.0])
                row[0] += 1
                row[1] = max(row[1], (step[0] - self.call_start) / MB)
                row[2] = max(row[2], (step[0] - before) / MB)
                row[3] = max(row[3], (rss_bytes() - self.call_start) / MB)
                row[4] += time.perf_counter() - started

        setattr(owner, attribute, measured)

    def print_table(self) -> None:
        """One line per step."""
        print(f"  {'step':28s} {'calls':>5s} {'peak':>7s} {'growth':>7s} {'rss after':>9s} {'seconds':>8s}  (MB)")
        for label, (calls, peak, growth, after, seconds) in self.rows.items():
            print(f"  {label:28s} {calls:5.0f} {peak:7.0f} {growth:7.0f} {after:9.0f} {seconds:8.1f}")


def main() -> None:
    """Build the bench's model and evaluator, wrap the steps, run the evaluator ``--calls`` times."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--chunk", type=int, default=50_000, help="corpus_chunk_size")
    parser.add_argument("--calls", type=int, default=2, help="evaluator calls in this process (the first is cold)")
    args = parser.parse_args()

    from tokenizers import Tokenizer

    from embedforge import SentenceTransformer
    from embedforge.sentence_transformer.evaluation import InformationRetrievalEvaluator, information_retrieval
    from embedforge.sentence_transformer.modules import StaticEmbedding

    tokenizer = Tokenizer.from_file(str(require_shared("tokenizers", "bert-base-uncased.json")))
    weights = torch.randn(tokenizer.get_vocab_size(), DIM, generator=torch.Generator().manual_seed(0))
    model = SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_weights=weights)], device="cpu")
    queries, corpus, relevant = workload(args.corpus, args.queries)
    evaluator = InformationRetrievalEvaluator(
        queries, corpus, relevant, batch_size=args.batch_size, corpus_chunk_size=args.chunk, name="bench"
    )

    peaks = StepPeaks()
    peaks.wrap(InformationRetrievalEvaluator, "embed_inputs", "embed_inputs")
    peaks.wrap(StaticEmbedding, "embed_fast", "  Rust embed (per part)")
    peaks.wrap(InformationRetrievalEvaluator, "get_corpus_id_ranks", "corpus id ranks")
    peaks.wrap(InformationRetrievalEvaluator, "_relevant_positions", "relevant positions")
    peaks.wrap(information_retrieval, "_engine_top_k", "Rust top-k per chunk")
    peaks.wrap(InformationRetrievalEvaluator, "_order_is_fragile", "near-tie check")
    peaks.wrap(InformationRetrievalEvaluator, "_torch_top_k", "torch fallback (sliced)")
    peaks.wrap(information_retrieval, "_merge_best", "running top-k merge")
    peaks.wrap(InformationRetrievalEvaluator, "_score_ranked", "Rust metrics")
    for call in range(args.calls):
        peaks.start_call()
        started = time.perf_counter()
        metrics = evaluator(model)
        seconds = time.perf_counter() - started
        growth = peaks.end_call()
        ndcg = metrics[evaluator.primary_metric]
        print(
            f"call {call + 1}: {seconds:.1f} s, peak RSS growth {growth:.0f} MB, {evaluator.primary_metric} {ndcg:.6f}"
        )
        peaks.print_table()


if __name__ == "__main__":
    main()
