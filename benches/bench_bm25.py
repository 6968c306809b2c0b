"""BM25 indexing and top-k queries: embedforge.util.BM25 vs bm25s, on the same texts, in one run.

Run: python benches/bench_bm25.py [--large 200000] [--repeats 3] [--busy 0]

Corpora (from ../shared/data):
- msmarco: the 5,000 BEIR MS MARCO passages (title + text), its 50 queries;
- large: every text of beir/msmarco, beir/dbpedia, quora-duplicates and stsb, topped up to
  --large documents with documents made of two random texts of that pool (seeded); 1,000 queries
  (the 100 BEIR queries and 900 quora questions).

Both sides see the same terms: embedforge lowercases and takes runs of Unicode word characters;
bm25s is given ``lower=True, token_pattern=r"(?u)\\b\\w+\\b"`` (the same runs; its default pattern
drops one-character words) and embedforge's English stop-word list. The few texts where Python's
``\\w`` and embedforge disagree (combining marks, see ``same_words_on_both_sides``) are left out of
the large corpus. Both score with ``method="lucene"``, k1 = 1.5, b = 0.75; their scores are checked
to agree to 1e-5 and their ids to agree except inside near-ties. Timed: indexing from the raw texts (bm25s: ``tokenize`` +
``index``) and top-10 retrieval for every query from the raw query texts (bm25s: ``tokenize`` +
``retrieve``). bm25s runs with its numpy backend and, when numba is installed, also with
``backend="numba"``; its best configuration is the one compared. Best of --repeats runs (the
large corpus: one run of bm25s, which takes minutes), libraries alternating.

--busy N starts N busy-looping Python processes for the whole run, to measure on a shared CPU.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import random
import re
import time
from collections.abc import Callable

import numpy as np

from common import busy_processes, require_shared, stsb_sentences

TOP_K = 10


def read_beir(name: str) -> tuple[list[str], list[str]]:
    """(passages as title + text, queries) of a BEIR folder."""
    folder = require_shared("beir", name)
    corpus = []
    with open(folder / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            corpus.append(f"{row.get('title', '')} {row['text']}".strip())
    with open(folder / "queries.jsonl", encoding="utf-8") as f:
        queries = [json.loads(line)["text"] for line in f]
    return corpus, queries


def quora_questions() -> list[str]:
    """The distinct questions of the quora-duplicates dev split."""
    seen: dict[str, None] = {}
    with open(require_shared("quora-duplicates", "quora-dev.csv"), encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t")
        next(reader)
        for row in reader:
            seen[row[2]] = None
            seen[row[3]] = None
    return [q for q in seen if q.strip()]


def same_words_on_both_sides(texts: list[str]) -> list[str]:
    """The texts both analyzers split into the same words.

    Python's ``\\w`` leaves out the combining marks Unicode counts as letters (Hebrew points, Indic
    vowel signs), so ``re`` cuts such words apart where embedforge keeps them whole; the 0.3% of
    texts with such words are left out so that both sides index exactly the same terms.
    """
    from embedforge.util import BM25

    pattern = re.compile(r"(?u)\b\w+\b")
    ours = BM25().tokenize(texts)
    return [text for text, words in zip(texts, ours) if pattern.findall(text.lower()) == words]


def large_corpus(size: int) -> tuple[list[str], list[str]]:
    """Every real text, then documents of two random texts up to ``size``; 1,000 queries."""
    msmarco, msmarco_queries = read_beir("msmarco")
    dbpedia, dbpedia_queries = read_beir("dbpedia")
    quora = quora_questions()
    pool = same_words_on_both_sides([*msmarco, *dbpedia, *quora, *stsb_sentences()])
    generator = random.Random(0)
    corpus = list(pool)
    while len(corpus) < size:
        corpus.append(f"{generator.choice(pool)} {generator.choice(pool)}")
    queries = [*msmarco_queries, *dbpedia_queries, *generator.sample(quora, 900)]
    return corpus[:size], queries


def run_ours(corpus: list[str], queries: list[str]) -> tuple[float, float, tuple[np.ndarray, np.ndarray]]:
    """(index seconds, query seconds, (ids, scores)) for embedforge."""
    from embedforge.util import BM25

    start = time.perf_counter()
    bm25 = BM25(stopwords="english").index(corpus)
    indexed = time.perf_counter()
    ids, scores = bm25.search(queries, top_k=TOP_K)
    return indexed - start, time.perf_counter() - indexed, (ids, scores)


def run_bm25s(
    corpus: list[str], queries: list[str], backend: str
) -> tuple[float, float, tuple[np.ndarray, np.ndarray]]:
    """(index seconds, query seconds, (ids, scores)) for bm25s with the same terms."""
    import bm25s

    from embedforge.util.bm25 import english_stopwords

    options = {"lower": True, "token_pattern": r"(?u)\b\w+\b", "stopwords": english_stopwords(), "show_progress": False}
    start = time.perf_counter()
    retriever = bm25s.BM25(k1=1.5, b=0.75, method="lucene", backend=backend)
    retriever.index(bm25s.tokenize(corpus, **options), show_progress=False)
    indexed = time.perf_counter()
    # n_threads=-1: bm25s' own multi-threaded retrieval (one thread per core).
    found = retriever.retrieve(bm25s.tokenize(queries, **options), k=TOP_K, show_progress=False, n_threads=-1)
    return indexed - start, time.perf_counter() - indexed, (np.asarray(found.documents), np.asarray(found.scores))


def check_agreement(
    ours: tuple[np.ndarray, np.ndarray], theirs: tuple[np.ndarray, np.ndarray], corpus: list[str], queries: list[str]
) -> str:
    """Scores within 1e-5 (relative); where the ids differ, the peer's document has (by embedforge's scoring)
    the same score to 1e-5 as embedforge's: a near-tie, ranked by rounding."""
    from embedforge.util import BM25

    diff = float(np.abs(ours[1] - theirs[1]).max())
    # Both sum float32 weights, in different orders: equal to 1e-5 relative (or absolute, near 0).
    assert np.allclose(ours[1], theirs[1], rtol=1e-5, atol=1e-5), f"scores differ by {diff}"
    differing = ours[0] != theirs[0]
    rows = sorted(set(np.nonzero(differing)[0].tolist()))
    if rows:
        bm25 = BM25(stopwords="english").index(corpus)
        for q in rows:
            full = bm25.get_scores(queries[q])
            assert np.allclose(full[theirs[0][q]], ours[1][q], rtol=1e-5, atol=1e-5), queries[q]
    return f"max score diff {diff:.1e}, {int(differing.sum())} of {differing.size} ids differ (near-ties)"


def timed(runs: dict[str, Callable[[], tuple[float, float, tuple[np.ndarray, np.ndarray]]]], repeats: dict[str, int]):
    """Best (index, query) seconds per library over its repeats, libraries alternating; last outputs."""
    best: dict[str, tuple[float, float]] = {}
    outputs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for round_ in range(max(repeats.values())):
        for name, run in runs.items():
            if round_ >= repeats[name]:
                continue
            index_s, query_s, outputs[name] = run()
            previous = best.get(name)
            if previous is None or index_s + query_s < sum(previous):
                best[name] = (index_s, query_s)
    return best, outputs


def main() -> None:
    """Time both libraries on both corpora and print a markdown table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--large", type=int, default=200_000, help="documents in the large corpus")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--busy", type=int, default=0, help="busy-looping processes to run alongside")
    args = parser.parse_args()

    from embedforge import _core

    with busy_processes(args.busy):
        print(
            f"load average before: {os.getloadavg()[0]:.2f}; cores: {os.cpu_count()}; embedforge threads: "
            f"{_core.get_num_threads()}; busy processes: {args.busy}",
            flush=True,
        )
        backends = ["numpy"] + (["numba"] if importlib.util.find_spec("numba") else [])
        datasets = {"msmarco": read_beir("msmarco"), "large": large_corpus(args.large)}
        rows = []
        for name, (corpus, queries) in datasets.items():
            runs = {"embedforge": lambda c=corpus, q=queries: run_ours(c, q)}
            repeats = {"embedforge": args.repeats}
            for backend in backends:
                runs[f"bm25s-{backend}"] = lambda c=corpus, q=queries, b=backend: run_bm25s(c, q, b)
                repeats[f"bm25s-{backend}"] = args.repeats if name == "msmarco" else 1
            if "numba" in backends:
                run_bm25s(corpus[:1000], queries[:5], "numba")  # JIT compilation outside the timings
            best, outputs = timed(runs, repeats)
            for peer in runs:
                if peer != "embedforge":
                    agreement = check_agreement(outputs["embedforge"], outputs[peer], corpus, queries)
                    print(f"{name} vs {peer}: {agreement}", flush=True)
            peer = min((p for p in best if p != "embedforge"), key=lambda p: sum(best[p]))
            ours, theirs = best["embedforge"], best[peer]
            rows.append(
                f"| {name} | {len(corpus):,} | {len(queries):,} | {ours[0]:.3f} s | {ours[1]:.3f} s "
                f"| {theirs[0]:.3f} s | {theirs[1]:.3f} s ({peer}) | **{sum(theirs) / sum(ours):.1f}x** "
                f"| {theirs[0] / ours[0]:.1f}x / {theirs[1] / ours[1]:.1f}x |"
            )
            for other in best:
                print(f"  {name} {other}: index {best[other][0]:.3f} s, query {best[other][1]:.3f} s", flush=True)
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        print(
            "| corpus | docs | queries | embedforge index | embedforge query | bm25s index | bm25s query "
            "| total speed-up | index / query |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for row in rows:
            print(row)


if __name__ == "__main__":
    main()
