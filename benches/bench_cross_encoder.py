"""CrossEncoder.predict: embedforge vs sentence-transformers on the same cross-encoder folder.

Run: python benches/bench_cross_encoder.py [--pairs 2000] [--repeats 3]
The cross-encoder is all-MiniLM-L6-v2's encoder with a sequence-classification head (one label),
created once by sentence-transformers with a fixed seed and saved, so both libraries load the
same folder. Workload: scoring STS benchmark sentence pairs, default arguments (batch 32). The
scores must agree to 1e-5 before anything is timed; runs alternate between the libraries.
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np
import torch

from bench_encode import minilm_folder
from common import best_time, report, stsb_sentences


def main() -> None:
    """Build the folder, check that both libraries agree, then time predict on each."""
    from sentence_transformers import CrossEncoder as StCrossEncoder

    from embedforge import CrossEncoder

    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    sentences = stsb_sentences()
    pairs = [(sentences[2 * i], sentences[2 * i + 1]) for i in range(args.pairs)]
    with tempfile.TemporaryDirectory() as folder:
        torch.manual_seed(0)
        StCrossEncoder(minilm_folder(), num_labels=1, device="cpu").save(folder)
        ours = CrossEncoder(folder)
        theirs = StCrossEncoder(folder, device="cpu")
    np.testing.assert_allclose(ours.predict(pairs[:256]), theirs.predict(pairs[:256]), rtol=0, atol=1e-5)
    ours_times, theirs_times = [], []
    for _ in range(args.repeats):
        ours_times.append(best_time(lambda: ours.predict(pairs), repeats=1, warmup=0))
        theirs_times.append(best_time(lambda: theirs.predict(pairs), repeats=1, warmup=0))
    print(f"torch threads: {torch.get_num_threads()}")
    print("| workload | embedforge | sentence-transformers | speed-up | target |")
    print("|---|---|---|---|---|")
    report(
        f"CrossEncoder.predict, MiniLM-L6 cross-encoder, {len(pairs):,} STS pairs",
        min(ours_times),
        min(theirs_times),
        len(pairs),
        "pairs",
        "same scores, not slower",
    )


if __name__ == "__main__":
    main()
