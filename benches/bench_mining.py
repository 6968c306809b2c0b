"""Mining utilities: paraphrase_mining_embeddings, community_detection and mine_hard_negatives vs sentence-transformers.

Run: python benches/bench_mining.py
All three run on the same precomputed float32 embeddings in both libraries (one process, best of
``REPEATS`` runs each), so only the search and bookkeeping are timed, not a model:

- paraphrase_mining_embeddings: 10,000 x 384 clustered vectors, top_k=100, default max_pairs;
- community_detection: 20,000 x 384 clustered vectors, threshold 0.75, min_community_size 10;
- mine_hard_negatives: 20,000 (query, answer) pairs + 30,000 extra passages, dim 384, a model that
  looks vectors up in a table, relative_margin=0.05, num_negatives=5 (as the NV-Retriever recipe).

Results are checked to agree (pairs, communities and mined negatives up to float-rounding ties)
before the timings are reported.
"""

from __future__ import annotations

import random
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


def bench_paraphrase() -> str:
    from sentence_transformers.util import paraphrase_mining_embeddings as theirs_fn

    from embedforge.util import paraphrase_mining_embeddings as ours_fn

    embeddings = clustered(10_000, 500, 0.6, seed=0)
    ours, theirs = ours_fn(embeddings), theirs_fn(embeddings)
    assert len(ours) == len(theirs)
    overlap = len({tuple(p[1:]) for p in ours} & {tuple(p[1:]) for p in theirs}) / len(theirs)
    print(f"paraphrase pairs: {len(ours):,}, shared with sentence-transformers: {overlap:.6f}")
    assert overlap > 0.999
    ours_s = best_time(lambda: ours_fn(embeddings), repeats=REPEATS, warmup=0)
    theirs_s = best_time(lambda: theirs_fn(embeddings), repeats=REPEATS, warmup=0)
    return report("paraphrase_mining_embeddings 10k x 384, top_k=100", ours_s, theirs_s, 10_000, "texts", "> 1x")


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
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rows = [bench_paraphrase(), bench_community(), bench_hard_negatives()]
    print("\n".join(rows))


if __name__ == "__main__":
    main()
