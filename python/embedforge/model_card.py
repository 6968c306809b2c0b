"""The ``README.md`` model card written next to every saved model."""

from __future__ import annotations

import os
from typing import Any


def write_model_card(
    model: Any,
    folder: str,
    model_name: str | None = None,
    train_datasets: list[str] | None = None,
) -> None:
    """Write a short card: architecture, output width, similarity function, prompts and a usage snippet."""
    name = model_name or "embedforge model"
    architecture = "\n".join(f"  ({key}): {module!r}" for key, module in model._modules.items())
    lines = [
        "---",
        "library_name: sentence-transformers",
        "tags:",
        "- sentence-transformers",
        "- embedforge",
        "- feature-extraction",
        "---",
        "",
        f"# {name}",
        "",
        "A sentence-embedding model saved by embedforge in the sentence-transformers folder layout; it loads in",
        "both `embedforge.SentenceTransformer` and `sentence_transformers.SentenceTransformer`.",
        "",
        "## Model details",
        "",
        f"- Output dimensions: {model.get_embedding_dimension()}",
        f"- Maximum sequence length: {model.max_seq_length}",
        f"- Similarity function: {model.similarity_fn_name}",
    ]
    if model.prompts:
        lines.append(f"- Prompts: {model.prompts}")
    if train_datasets:
        lines.append(f"- Training datasets: {', '.join(train_datasets)}")
    lines += [
        "",
        "### Architecture",
        "",
        "```",
        "SentenceTransformer(",
        architecture,
        ")",
        "```",
        "",
        "## Usage",
        "",
        "```python",
        "from embedforge import SentenceTransformer",
        "",
        'model = SentenceTransformer("path/to/this/folder")',
        'embeddings = model.encode(["The weather is lovely today.", "It is sunny outside."])',
        "similarities = model.similarity(embeddings, embeddings)",
        "```",
        "",
    ]
    with open(os.path.join(folder, "README.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
