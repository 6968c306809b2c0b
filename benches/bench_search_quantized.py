"""Quantized exact search: int8 and binary corpora vs float32, speed and recall@10 after rescoring.

Run: python benches/bench_search_quantized.py [--corpus 500000] [--queries 1000] [--repeats 2]
Embeddings: a 384-dim StaticEmbedding over the bert-base-uncased tokenizer with seeded random
weights (bench stand-in for a real model: documents that share words get similar embeddings),
over documents and queries generated from STS-benchmark words. The float32 baseline is
embedforge's exact cosine top-10 (`util.semantic_search`); the quantized runs use
`util.quantization.semantic_search_quantized` with float queries, rescore=True and
rescore_multiplier 4 (int8 ranges from 10k calibration embeddings). recall@10 = share of the
exact float top-10 ids found by the quantized search.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from common import require_shared, sentences_of_words

DIM = 384
TOP_K = 10


def static_model(seed: int = 0):
    """An embedforge StaticEmbedding model over the bert-base-uncased tokenizer with seeded weights."""
    from tokenizers import Tokenizer

    from embedforge import SentenceTransformer
    from embedforge.sentence_transformer.modules import StaticEmbedding

    tokenizer = Tokenizer.from_file(str(require_shared("tokenizers", "bert-base-uncased.json")))
    weights = torch.randn(tokenizer.get_vocab_size(), DIM, generator=torch.Generator().manual_seed(seed))
    return SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_weights=weights)])


def best_of(repeats: int, run):
    """(fastest seconds, last result) of ``repeats`` runs."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    """Embed, quantize, time each precision and measure recall against the exact float search."""
    from embedforge.util import quantize_embeddings, semantic_search
    from embedforge.util.quantization import semantic_search_quantized

    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=int, default=500_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--multiplier", type=int, default=4)
    args = parser.parse_args()

    model = static_model()
    documents = sentences_of_words(args.corpus, 8, 40, seed=1)
    queries_text = sentences_of_words(args.queries, 3, 10, seed=2)
    start = time.perf_counter()
    corpus = model.encode(documents, batch_size=4096, normalize_embeddings=True, convert_to_numpy=True)
    queries = model.encode(queries_text, normalize_embeddings=True, convert_to_numpy=True)
    print(f"embedded {len(documents)} documents in {time.perf_counter() - start:.1f} s")

    float_seconds, exact = best_of(args.repeats, lambda: semantic_search(queries, corpus, top_k=TOP_K))
    exact_ids = [{hit["corpus_id"] for hit in row} for row in exact]
    print(f"float32 cosine: {float_seconds:.2f} s")

    calibration = corpus[np.random.default_rng(3).choice(len(corpus), 10_000, replace=False)]
    rows = []
    for precision in ("int8", "binary"):
        quantized = quantize_embeddings(corpus, precision, calibration_embeddings=calibration)
        for rescore in (False, True):
            seconds, (hits, _) = best_of(
                args.repeats,
                lambda q=quantized, p=precision, r=rescore: semantic_search_quantized(
                    queries,
                    q,
                    p,
                    top_k=TOP_K,
                    calibration_embeddings=calibration,
                    rescore=r,
                    rescore_multiplier=args.multiplier,
                ),
            )
            recall = np.mean(
                [len(exact & {h["corpus_id"] for h in row}) / TOP_K for exact, row in zip(exact_ids, hits)]
            )
            rows.append((precision, rescore, seconds, recall, quantized.nbytes))
            print(f"{precision} rescore={rescore}: {seconds:.2f} s, recall@10 {recall:.3f}")

    print()
    print(
        f"| corpus ({args.corpus:,} x {DIM}, {args.queries:,} queries, top-{TOP_K}) | search time | speed-up vs float32 | recall@10 vs exact | corpus bytes |"
    )
    print("|---|---|---|---|---|")
    print(f"| float32 cosine (exact) | {float_seconds:.2f} s | 1.00x | 1.000 | {corpus.nbytes / 2**20:.0f} MiB |")
    for precision, rescore, seconds, recall, nbytes in rows:
        label = f"{precision}, rescore x{args.multiplier}" if rescore else f"{precision}, no rescoring"
        print(
            f"| {label} | {seconds:.2f} s | {float_seconds / seconds:.2f}x | {recall:.3f} | {nbytes / 2**20:.0f} MiB |"
        )


if __name__ == "__main__":
    main()
