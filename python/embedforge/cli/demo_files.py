"""Write the demo set as ordinary files plus a config, so ``embedforge train DIR/config.yaml`` runs on them.

It shows the file formats the command reads and is the quickest way to start a config of one's own.
"""

from __future__ import annotations

import csv
import json
import os
from typing import Any

#: The config written beside the files (paths relative to it); the same recipe as the no-argument demo.
DEMO_CONFIG_TEXT = """\
# embedforge train config for the generated demo files in this folder (a demo, not a benchmark).
# Run: embedforge train {folder}/config.yaml
model:
  tokenizer: tokenizer.json       # a new StaticEmbedding model over this tokenizer ...
  embedding_dim: 256              # ... with 256-dimensional token vectors
data:
  train: train.csv                # columns anchor, positive: inputs matched to the loss by position
loss:
  name: MultipleNegativesRankingLoss
  kwargs: {{scale: 20.0}}
  matryoshka_dims: [256, 128, 64, 32]
evaluator:
  type: information_retrieval
  queries: queries.jsonl          # _id, text
  corpus: corpus.jsonl            # _id, text (an optional title column is prepended)
  qrels: qrels.tsv                # query-id, corpus-id, score (score > 0 is relevant)
  name: demo
args:                             # any SentenceTransformerTrainingArguments field
  output_dir: output/embedforge-train-demo-files
  num_train_epochs: 1
  per_device_train_batch_size: 128
  learning_rate: 0.2
  warmup_steps: 0.1
  batch_sampler: no_duplicates
  save_strategy: "no"
  logging_steps: 10
  seed: 12
"""


def _write_jsonl(path: str, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in rows)


def write_demo_files(folder: str, num_train_pairs: int) -> str:
    """Write train.csv, queries.jsonl, corpus.jsonl, qrels.tsv, tokenizer.json and config.yaml; return the config."""
    from embedforge.cli.demo_data import make_demo_data, vocabulary_texts
    from embedforge.cli.demo_tokenizer import build_wordpiece_tokenizer

    os.makedirs(folder, exist_ok=True)
    data = make_demo_data(num_train_pairs=num_train_pairs)
    with open(os.path.join(folder, "train.csv"), "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["anchor", "positive"])
        writer.writerows(zip(data.train_anchors, data.train_positives))
    _write_jsonl(os.path.join(folder, "queries.jsonl"), [{"_id": k, "text": v} for k, v in data.queries.items()])
    _write_jsonl(os.path.join(folder, "corpus.jsonl"), [{"_id": k, "text": v} for k, v in data.corpus.items()])
    with open(os.path.join(folder, "qrels.tsv"), "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(["query-id", "corpus-id", "score"])
        writer.writerows(
            (query, document, 1) for query, documents in data.relevant_docs.items() for document in sorted(documents)
        )
    build_wordpiece_tokenizer(vocabulary_texts()).save(os.path.join(folder, "tokenizer.json"))
    config_path = os.path.join(folder, "config.yaml")
    with open(config_path, "w", encoding="utf-8") as handle:
        handle.write(DEMO_CONFIG_TEXT.format(folder=folder))
    return config_path
