"""Mining utilities: paraphrase_mining_embeddings, community_detection and mine_hard_negatives vs sentence-transformers.

Run: python benches/bench_mining.py [paraphrase] [community] [hard_negatives]   (default: all)
All three run on the same precomputed float32 embeddings in both libraries (one process, best of
``REPEATS`` runs each), so only the search and bookkeeping are timed, not a model:

- paraphrase_mining_embeddings: 10,000 x 384 clustered vectors, top_k=100 and top_k=10, default max_pairs;
- community_detection: 20,000 x 384 clustered vectors, threshold 0.75, min_community_size 10;
- mine_hard_negatives: 20,000 (query, answer) pairs + 30,000 extra passages, dim 384, a model that
  looks vectors up in a table, relative_margin=0.05, num_negatives=5 (as the NV-Retriever recipe).

Results are checked to agree (pairs, communities and mined negatives up to float-rounding ties)
before the timings are reported.
"""

from __future__ import annotations

import random
import sys
from functools import partial
from typing import Any

import numpy as np
import torch

from common import best_time, report

REPEATS = 2
DIM = 384


def clustered(rows: int, clusters: int, noise: float, seed: int) -> torch.Tensor:
    """Random cluster centres with gaussian members, shuffled."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(clusters, DIM, generator=generator)
    members = centres[torch.randint(0, clusters, (rows,), generator=generator)]
    return members + noise * torch.randn(rows, DIM, generator=generator)


class TableModel:
    """A model that returns precomputed vectors, so both libraries mine from identical embeddings."""

    def __init__(self, table: dict[str, np.ndarray], similarity: Any, similarity_pairwise: Any) -> None:
        self.table = table
        self.similarity_fn_name = "cosine"
        self.device = torch.device("cpu")
        self._similarity = similarity
        self._similarity_pairwise = similarity_pairwise

    def _encode(self, texts: list[str], normalize_embeddings: bool = False, **_: Any) -> np.ndarray:
        rows = np.stack([self.table[t] for t in texts])
        if normalize_embeddings:
            rows = rows / np.linalg.norm(rows, axis=1, keepdims=True)
        return rows

    encode_query = _encode
    encode_document = _encode

    def similarity(self, a: Any, b: Any) -> torch.Tensor:
        return self._similarity(a, b)

    def similarity_pairwise(self, a: Any, b: Any) -> torch.Tensor:
        return self._similarity_pairwise(a, b)


def row_cut_scores(embeddings: np.ndarray, top_k: int) -> np.ndarray:
    """Each row's ``top_k``-th best cosine to another row (torch, float32)."""
    unit = torch.nn.functional.normalize(torch.as_tensor(embeddings), dim=1)
    cuts = []
    for start in range(0, len(unit), 1000):
        scores = unit[start : start + 1000] @ unit.T
        rows = torch.arange(start, min(start + 1000, len(unit)))
        scores[rows - start, rows] = -float("inf")
        cuts.append(torch.topk(scores, top_k, dim=1).values[:, -1])
    return torch.cat(cuts).numpy()


def check_same_pairs(
    ours: list[list[Any]], theirs: list[list[Any]], row_cuts: np.ndarray, tol: float = 2e-6
) -> tuple[int, float]:
    """Assert both are the same pairs, best first, scores within ``tol``; return (pairs that differ, max score gap).

    Both libraries compute float32 cosines whose last bits differ (a few 1e-7 each way from the
    float64 value at dim 384), so scores may differ by ~1e-6, and pairs may differ only where
    scores tie to that rounding: at the max_pairs cut, or at one of the two rows' own top_k-th
    neighbour (``row_cuts``), where a near-tie decides whether the pair is offered at all.
    """
    assert len(ours) == len(theirs)
    ours_scores = np.array([p[0] for p in ours])
    assert np.all(np.diff(ours_scores) <= 0), "not best first"
    assert np.abs(ours_scores - np.array([p[0] for p in theirs])).max(initial=0.0) <= tol
    ours_by_pair = {(i, j): s for s, i, j in ours}
    theirs_by_pair = {(i, j): s for s, i, j in theirs}
    gap = max(
        (abs(ours_by_pair[p] - theirs_by_pair[p]) for p in ours_by_pair.keys() & theirs_by_pair.keys()), default=0.0
    )
    assert gap <= tol
    differing = ours_by_pair.keys() ^ theirs_by_pair.keys()
    cut = theirs[-1][0] if theirs else 0.0
    for i, j in differing:
        score = ours_by_pair.get((i, j), theirs_by_pair.get((i, j)))
        near = [abs(score - c) <= tol for c in (cut, row_cuts[i], row_cuts[j])]
        assert any(near), f"pair {(i, j)} (score {score}) differs away from every cut"
    return len(differing) // 2, gap


def bench_paraphrase() -> list[str]:
    from sentence_transformers.util import paraphrase_mining_embeddings as theirs_fn

    from embedforge.util import paraphrase_mining_embeddings as ours_fn

    embeddings = clustered(10_000, 500, 0.6, seed=0)
    rows = []
    # top_k=100 gives ~564k distinct pairs, so the default max_pairs=500k cut applies; top_k=10
    # gives ~60k pairs (no cut), where the neighbour search is most of the work.
    for top_k in (100, 10):
        ours, theirs = ours_fn(embeddings, top_k=top_k), theirs_fn(embeddings, top_k=top_k)
        differing, gap = check_same_pairs(ours, theirs, row_cut_scores(embeddings, top_k))
        print(
            f"paraphrase top_k={top_k}: {len(ours):,} pairs, {differing} differ from sentence-transformers' "
            f"(rounding ties at the cut), largest score gap {gap:.2e}"
        )
        ours_s = best_time(partial(ours_fn, embeddings, top_k=top_k), repeats=REPEATS, warmup=0)
        theirs_s = best_time(partial(theirs_fn, embeddings, top_k=top_k), repeats=REPEATS, warmup=0)
        name = f"paraphrase_mining_embeddings 10k x 384, top_k={top_k}, max_pairs=500k"
        rows.append(report(name, ours_s, theirs_s, 10_000, "texts", "> 1x"))
    return rows


def bench_community() -> str:
    from sentence_transformers.util import community_detection as theirs_fn

    from embedforge.util import community_detection as ours_fn

    embeddings = clustered(20_000, 800, 0.5, seed=1)
    ours, theirs = ours_fn(embeddings), theirs_fn(embeddings)
    print(f"communities: {len(ours)} (sentence-transformers {len(theirs)}), same: {ours == theirs}")
    assert [sorted(c) for c in ours] == [sorted(c) for c in theirs]
    ours_s = best_time(lambda: ours_fn(embeddings), repeats=REPEATS, warmup=0)
    theirs_s = best_time(lambda: theirs_fn(embeddings), repeats=REPEATS, warmup=0)
    return report("community_detection 20k x 384", ours_s, theirs_s, 20_000, "texts", "> 1x")


def bench_hard_negatives() -> str:
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives as theirs_fn
    from sentence_transformers.util import pairwise_cos_sim as st_pairwise
    from sentence_transformers.util.similarity import cos_sim as st_cos

    from embedforge.util import cos_sim, pairwise_cos_sim
    from embedforge.util import mine_hard_negatives as ours_fn

    pairs, extra = 20_000, 30_000
    queries = clustered(pairs, 2_000, 0.7, seed=2)
    answers = queries + 0.6 * torch.randn(pairs, DIM, generator=torch.Generator().manual_seed(3))
    passages = clustered(extra, 2_000, 0.7, seed=4)
    table = {f"q{i}": row for i, row in enumerate(queries.numpy())}
    table.update({f"a{i}": row for i, row in enumerate(answers.numpy())})
    table.update({f"p{i}": row for i, row in enumerate(passages.numpy())})
    dataset = Dataset.from_dict({"query": [f"q{i}" for i in range(pairs)], "answer": [f"a{i}" for i in range(pairs)]})
    corpus = [f"p{i}" for i in range(extra)]
    ours_model = TableModel(table, cos_sim, pairwise_cos_sim)
    theirs_model = TableModel(table, st_cos, st_pairwise)
    options = {"corpus": corpus, "relative_margin": 0.05, "num_negatives": 5, "verbose": False}

    def run(fn: Any, model: Any) -> Any:
        random.seed(0)
        return fn(dataset, model, **options)

    ours, theirs = run(ours_fn, ours_model), run(theirs_fn, theirs_model)
    assert len(ours) == len(theirs)
    # Negatives may swap only where two candidates' scores tie to float rounding.
    differing = sum(a != b for a, b in zip(ours["negative"], theirs["negative"]))
    print(f"mined rows: {len(ours):,} (sentence-transformers {len(theirs):,}), differing negatives: {differing}")
    assert differing <= len(ours) // 1000
    ours_s = best_time(lambda: run(ours_fn, ours_model), repeats=REPEATS, warmup=0)
    theirs_s = best_time(lambda: run(theirs_fn, theirs_model), repeats=REPEATS, warmup=0)
    return report("mine_hard_negatives 20k pairs + 30k passages x 384", ours_s, theirs_s, pairs, "pairs", "> 1x")


def main() -> None:
    """Run the workloads named on the command line (paraphrase, community, hard_negatives), or all."""
    torch.set_num_threads(max(1, torch.get_num_threads()))
    workloads = {
        "paraphrase": bench_paraphrase,
        "community": lambda: [bench_community()],
        "hard_negatives": lambda: [bench_hard_negatives()],
    }
    chosen = sys.argv[1:] or list(workloads)
    unknown = [name for name in chosen if name not in workloads]
    if unknown:
        sys.exit(f"unknown workload(s) {unknown}; expected some of {list(workloads)}")
    rows = [row for name in chosen for row in workloads[name]()]
    print("\n".join(rows))


if __name__ == "__main__":
    main()
