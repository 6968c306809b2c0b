"""InformationRetrievalEvaluator over a large corpus: embedforge vs sentence-transformers, time and memory.

Run: python benches/bench_ir_evaluator.py [--corpus 1000000] [--queries 1000] [--batch-size 1024] [--runs 3]
Each library runs in its own subprocess (so peak-memory figures do not mix): build the same
384-dim StaticEmbedding (bert-base-uncased tokenizer, seeded random weights) in that library,
generate the same documents (8-40 STS-benchmark words) and queries (3-10 words taken from one
document, which is the query's relevant document), then time one evaluator call (embedding the
corpus chunk by chunk, scoring, metrics) and record the peak RSS growth during it (VmHWM after
a reset through /proc/self/clear_refs, minus RSS before). Both get the same evaluator arguments (batch_size given to both,
default corpus_chunk_size 50,000) and must report the same metrics. With --runs N each library runs in
N fresh processes and the figures are given as ranges.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from common import require_shared, sentences_of_words

DIM = 384


def rss_bytes() -> int:
    """Current resident set size of this process."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0), so earlier peaks (data generation) do not count."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_bytes() -> int:
    """Peak resident set size since the last reset (VmHWM), else since the process started."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def workload(corpus_size: int, n_queries: int) -> tuple[dict[str, str], dict[str, str], dict[str, set[str]]]:
    """Documents, queries drawn from documents' words, and each query's relevant document."""
    documents = sentences_of_words(corpus_size, 8, 40, seed=1)
    corpus = {f"d{i}": text for i, text in enumerate(documents)}
    generator = random.Random(2)
    queries, relevant = {}, {}
    for q in range(n_queries):
        doc = generator.randrange(corpus_size)
        words = documents[doc].split()
        queries[f"q{q}"] = " ".join(generator.sample(words, k=min(len(words), generator.randint(3, 10))))
        relevant[f"q{q}"] = {f"d{doc}"}
    return queries, corpus, relevant


def run_one(library: str, corpus_size: int, n_queries: int, batch_size: int) -> dict[str, object]:
    """Build the model and evaluator in ``library``, run once, return time, memory and metrics."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(require_shared("tokenizers", "bert-base-uncased.json")))
    weights = torch.randn(tokenizer.get_vocab_size(), DIM, generator=torch.Generator().manual_seed(0))
    if library == "embedforge":
        from embedforge import SentenceTransformer
        from embedforge.sentence_transformer.evaluation import InformationRetrievalEvaluator
        from embedforge.sentence_transformer.modules import StaticEmbedding
    else:
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.evaluation import InformationRetrievalEvaluator
        from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    model = SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_weights=weights)], device="cpu")
    queries, corpus, relevant = workload(corpus_size, n_queries)
    evaluator = InformationRetrievalEvaluator(queries, corpus, relevant, batch_size=batch_size, name="bench")
    reset_peak()
    before = rss_bytes()
    start = time.perf_counter()
    metrics = evaluator(model)
    seconds = time.perf_counter() - start
    peak = peak_bytes()
    return {
        "seconds": seconds,
        "peak_growth_mb": max(0, peak - before) / 2**20,
        "metrics": {k: float(v) for k, v in metrics.items()},
    }


def _span(values: list[float], digits: int) -> str:
    """``low-high`` of repeated runs (one value when there was one run)."""
    low, high = min(values), max(values)
    return (
        f"{low:.{digits}f}"
        if len(values) == 1 or f"{low:.{digits}f}" == f"{high:.{digits}f}"
        else (f"{low:.{digits}f}-{high:.{digits}f}")
    )


def main() -> None:
    """Run both libraries in subprocesses (``--runs`` fresh processes each) and print a comparison."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument(
        "--runs", type=int, default=1, help="fresh processes per library (figures vary on a busy machine)"
    )
    parser.add_argument("--library", choices=["embedforge", "st"], help="internal: run one library and print JSON")
    parser.add_argument("--only", choices=["embedforge", "st"], help="run only this library")
    args = parser.parse_args()

    if args.library:
        print(json.dumps(run_one(args.library, args.corpus, args.queries, args.batch_size)))
        return

    # For scale: the whole corpus's embeddings, which the evaluator never holds at once (it embeds
    # and ranks one corpus_chunk_size chunk at a time).
    print(f"all corpus embeddings would take {args.corpus * DIM * 4 / 2**20:.0f} MB")
    runs: dict[str, list[dict[str, object]]] = {}
    for library in [args.only] if args.only else ["embedforge", "st"]:
        for _ in range(args.runs):
            command = [sys.executable, str(Path(__file__).resolve()), "--library", library]
            command += [
                "--corpus",
                str(args.corpus),
                "--queries",
                str(args.queries),
                "--batch-size",
                str(args.batch_size),
            ]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            result = json.loads(output.strip().splitlines()[-1])
            runs.setdefault(library, []).append(result)
            print(
                f"{library}: {result['seconds']:.1f} s, peak RSS growth {result['peak_growth_mb']:.0f} MB", flush=True
            )
    seconds = {library: [float(r["seconds"]) for r in results] for library, results in runs.items()}
    memory = {library: [float(r["peak_growth_mb"]) for r in results] for library, results in runs.items()}
    if len(runs) == 2:
        ours, theirs = runs["embedforge"], runs["st"]
        want = theirs[0]["metrics"]
        diff = max(abs(run["metrics"][k] - want[k]) for run in [*ours, *theirs] for k in want)
        same_keys = all(list(run["metrics"]) == list(want) for run in ours)
        print(f"largest metric difference: {diff:.2e}; same metric keys: {same_keys}")
        speedup = [t / o for t in seconds["st"] for o in seconds["embedforge"]]
        print(
            f"| InformationRetrievalEvaluator, {args.corpus:,} docs x {args.queries:,} queries, 384-dim static model | "
            f"{_span(seconds['embedforge'], 1)} s, +{_span(memory['embedforge'], 0)} MB | "
            f"{_span(seconds['st'], 1)} s, +{_span(memory['st'], 0)} MB | **{_span(speedup, 2)}x** |"
        )


if __name__ == "__main__":
    main()
