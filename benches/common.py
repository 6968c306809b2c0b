"""Shared helpers for the side-by-side benchmarks (embedforge vs sentence-transformers, one process)."""

from __future__ import annotations

import contextlib
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("EMBEDFORGE_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def require_shared(*parts: str) -> Path:
    """A path under ../shared/data, or exit with a clear message when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        sys.exit(f"benchmark needs {path} (the shared data folder); it is not available")
    return path


def stsb_sentences() -> list[str]:
    """The unique sentences of the STS benchmark (real English text of varied length)."""
    import csv

    sentences: dict[str, None] = {}
    for split in ("sts-train.csv", "sts-dev.csv", "sts-test.csv"):
        with open(require_shared("stsb", split), encoding="utf-8") as f:
            for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
                if len(row) >= 7:
                    sentences[row[5]] = None
                    sentences[row[6]] = None
    return list(sentences)


def sentences_of_words(count: int, min_words: int, max_words: int, seed: int = 0) -> list[str]:
    """``count`` sentences of min..max words drawn from the STS benchmark's vocabulary."""
    words = [word for sentence in stsb_sentences() for word in sentence.split()]
    generator = random.Random(seed)
    return [" ".join(generator.choices(words, k=generator.randint(min_words, max_words))) for _ in range(count)]


def best_time(function: Callable[[], object], repeats: int = 3, warmup: int = 1) -> float:
    """The fastest of ``repeats`` timed runs after ``warmup`` untimed ones, in seconds."""
    for _ in range(warmup):
        function()
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        timings.append(time.perf_counter() - start)
    return min(timings)


def report(name: str, ours_seconds: float, theirs_seconds: float, unit_count: int, unit: str, target: str) -> str:
    """Print and return one markdown table row: throughput of both and the speed ratio."""
    ratio = theirs_seconds / ours_seconds
    row = (
        f"| {name} | {unit_count / ours_seconds:,.0f} {unit}/s | {unit_count / theirs_seconds:,.0f} {unit}/s "
        f"| **{ratio:.2f}x** | {target} |"
    )
    print(row, flush=True)
    return row


def median(values: list[float]) -> float:
    """Median of a list of floats."""
    return statistics.median(values)


@contextlib.contextmanager
def busy_processes(count: int) -> Iterator[None]:
    """Run ``count`` busy-looping Python processes (ordinary priority) while the block runs.

    They stand for the other work on a shared CPU (a browser, a DataLoader worker, another job):
    each wants a whole core, so with as many of them as cores every thread of the measured process
    competes for its time slices.
    """
    processes = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        if count:
            time.sleep(0.5)  # let them reach the run queue before the timed work starts
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait()
