"""No-duplicates batch sampling: embedforge's NoDuplicatesBatchSampler vs sentence-transformers', one process.

Run: python benches/bench_sampler.py [--rows 1000000] [--batch-size 2048] [--st-plain-rows N]
One epoch (epoch 0, seed 12) of NO_DUPLICATES over (anchor, positive) pairs; every anchor is
unique generated text, positives are drawn from a pool of a quarter as many texts (so each
appears about 4 times and conflicts do happen, as in mined-pair datasets). Timed from a
fresh sampler over the same ``datasets.Dataset`` to the last batch, so reading the dataset's
columns (and ST's hashing pass for the hashed variant) is included on both sides. The batches
must be identical. sentence-transformers' plain variant reads every visited row through
``dataset[i]``; pass ``--st-plain-rows`` to time it on a prefix when 1M rows would take too long.
"""

from __future__ import annotations

import argparse
import random
import time
from typing import Any

import torch

from common import report

SEED = 12


def pairs(rows: int) -> Any:
    """A datasets.Dataset of (anchor, positive) texts; positives repeat about 4 times each."""
    from datasets import Dataset

    generator = random.Random(0)
    vocabulary = [f"w{i}" for i in range(5000)]
    anchors = [f"{i} " + " ".join(generator.choices(vocabulary, k=generator.randint(4, 12))) for i in range(rows)]
    positives = [" ".join(generator.choices(vocabulary, k=generator.randint(3, 10))) for _ in range(max(1, rows // 4))]
    return Dataset.from_dict(
        {"anchor": anchors, "positive": [positives[generator.randrange(len(positives))] for _ in range(rows)]}
    )


def one_epoch(cls: Any, dataset: Any, batch_size: int, **kwargs: Any) -> tuple[float, list[list[int]]]:
    """Seconds to build a sampler and draw all of epoch 0's batches, and the batches."""
    start = time.perf_counter()
    sampler = cls(dataset, batch_size, False, generator=torch.Generator(), seed=SEED, **kwargs)
    batches = [list(batch) for batch in sampler]
    return time.perf_counter() - start, batches


def best_of(repeats: int, cls: Any, dataset: Any, batch_size: int, **kwargs: Any) -> tuple[float, list[list[int]]]:
    runs = [one_epoch(cls, dataset, batch_size, **kwargs) for _ in range(repeats)]
    return min(seconds for seconds, _ in runs), runs[0][1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--st-plain-rows", type=int, default=None, help="time ST's plain variant on this prefix")
    args = parser.parse_args()

    from sentence_transformers.base.sampler import NoDuplicatesBatchSampler as StSampler

    from embedforge.base.sampler import NoDuplicatesBatchSampler

    dataset = pairs(args.rows)
    print(f"{len(dataset):,} pairs, batch {args.batch_size}", flush=True)

    ours_seconds, ours = best_of(3, NoDuplicatesBatchSampler, dataset, args.batch_size)
    print(f"embedforge: {ours_seconds:.3f} s, {len(ours)} batches", flush=True)
    warm = NoDuplicatesBatchSampler(dataset, args.batch_size, False, generator=torch.Generator(), seed=SEED)
    list(warm)
    start = time.perf_counter()
    warm.set_epoch(1)
    list(warm)
    print(f"embedforge, a later epoch (cached value ids): {time.perf_counter() - start:.3f} s", flush=True)

    hashed_seconds, hashed = one_epoch(StSampler, dataset, args.batch_size, precompute_hashes=True)
    print(f"sentence-transformers hashed: {hashed_seconds:.1f} s", flush=True)
    assert hashed == ours, "batches differ from sentence-transformers' hashed variant"

    plain_rows = args.st_plain_rows or args.rows
    plain_data = dataset if plain_rows == args.rows else dataset.select(range(plain_rows))
    plain_seconds, plain = one_epoch(StSampler, plain_data, args.batch_size)
    print(f"sentence-transformers plain on {plain_rows:,} rows: {plain_seconds:.1f} s", flush=True)
    if plain_rows == args.rows:
        assert plain == ours, "batches differ from sentence-transformers' plain variant"
    else:
        ours_small_seconds, ours_small = best_of(3, NoDuplicatesBatchSampler, plain_data, args.batch_size)
        assert plain == ours_small, "batches differ from sentence-transformers' plain variant"
        # Both sides are linear in rows here (few conflicts), so scale the measured prefix.
        plain_seconds *= args.rows / plain_rows
        print(
            f"  extrapolated to {args.rows:,} rows: {plain_seconds:.1f} s (ours on the prefix {ours_small_seconds:.3f} s)"
        )
    print("batches identical", flush=True)

    report(
        f"NO_DUPLICATES epoch, {args.rows:,} pairs, batch {args.batch_size}",
        ours_seconds,
        plain_seconds,
        args.rows,
        "rows",
        ">= 30x",
    )
    report(
        f"NO_DUPLICATES_HASHED epoch, {args.rows:,} pairs", ours_seconds, hashed_seconds, args.rows, "rows", ">= 10x"
    )


if __name__ == "__main__":
    main()
