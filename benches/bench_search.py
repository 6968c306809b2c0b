"""Exact semantic search: embedforge.util.semantic_search vs sentence-transformers', one process.

Run: python benches/bench_search.py
Top-100 by cosine for 1,000 queries over 500,000 x 384 float32 random-normal vectors, both
libraries with their default chunk sizes; the returned ids must be identical (except rows whose
scores tie to float rounding, which are counted and reported).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from common import report

QUERIES = 1_000
CORPUS = 500_000
DIM = 384
TOP_K = 100


def main() -> None:
    """Time both searches once each on the same data and compare their results."""
    from sentence_transformers.util import semantic_search as st_search

    from embedforge.util import semantic_search

    rng = np.random.default_rng(0)
    corpus = rng.standard_normal((CORPUS, DIM), dtype=np.float32)
    queries = rng.standard_normal((QUERIES, DIM), dtype=np.float32)

    start = time.perf_counter()
    ours = semantic_search(queries, corpus, top_k=TOP_K)
    ours_seconds = time.perf_counter() - start

    start = time.perf_counter()
    theirs = st_search(torch.from_numpy(queries), torch.from_numpy(corpus), top_k=TOP_K)
    theirs_seconds = time.perf_counter() - start

    ours_ids = np.array([[hit["corpus_id"] for hit in hits] for hits in ours])
    theirs_ids = np.array([[hit["corpus_id"] for hit in hits] for hits in theirs])
    ours_scores = np.array([[hit["score"] for hit in hits] for hits in ours])
    theirs_scores = np.array([[hit["score"] for hit in hits] for hits in theirs])
    differing = ours_ids != theirs_ids
    # A differing id is only acceptable where the two rows' scores tie to float rounding.
    assert np.abs(ours_scores - theirs_scores).max() < 1e-5
    print(
        f"{differing.sum()} of {differing.size} ids differ (near-ties), max score diff "
        f"{np.abs(ours_scores - theirs_scores).max():.2e}"
    )
    print(f"ours {ours_seconds:.2f} s, sentence-transformers {theirs_seconds:.2f} s")
    report("semantic_search top-100, 1k queries x 500k x 384", ours_seconds, theirs_seconds, QUERIES, "queries", "> 1x")


if __name__ == "__main__":
    main()
