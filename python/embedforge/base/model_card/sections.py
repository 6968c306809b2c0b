"""The parts of a model card that depend on the model kind, for embedding models: facts, intro, details, usage.

:class:`~embedforge.base.model_card.data.BaseModelCardData` calls these through its ``card_*``
methods; another kind's card data (the CrossEncoder's) overrides those methods with its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from embedforge.base.modality.detection import format_modality
from embedforge.base.model_card.markdown import code_block, join_names

if TYPE_CHECKING:
    from embedforge.base.model_card.data import BaseModelCardData

#: Readable names of the similarity functions.
SIMILARITY_NAMES = {
    "cosine": "Cosine Similarity",
    "dot": "Dot Product",
    "euclidean": "Euclidean Distance",
    "manhattan": "Manhattan Distance",
}
#: What the usage snippet loads when the card has no model_id (sentence-transformers' placeholder, which
#: readers of both libraries' cards recognise).
PLACEHOLDER_MODEL_PATH = "sentence_transformers_model_id"
#: Why the card mentions sentence-transformers: the saved folder is also one of its models.
SENTENCE_TRANSFORMERS_NOTE = (
    "The folder uses the sentence-transformers layout, so `from sentence_transformers import "
    "{class_name}` loads it as well and gives the same {outputs}."
)


def base_model_reference(data: BaseModelCardData) -> str:
    """The base model's name, with the folder it was loaded from when that is a local path."""
    name = data.base_model_name()
    if data.base_model_hub_id() or name == data.base_model:
        return f"`{name}`"
    return f"{name} (`{data.base_model}`)"


def trained_on(data: BaseModelCardData) -> str:
    """ "finetuned from X on A and B" (or "trained"), the middle of every kind's intro sentence."""
    named = [entry["name"] for entry in data.train_datasets if entry.get("name")]
    text = f"finetuned from {base_model_reference(data)}" if data.base_model else "trained"
    if named:
        text += f" on {len(named)} datasets" if len(", ".join(named)) > 200 else f" on {join_names(named)}"
    return text


def common_details(data: BaseModelCardData) -> tuple[list[str], list[str]]:
    """Model-description lines every kind shows: (base model line(s), datasets/language/license lines)."""
    head: list[str] = []
    if data.base_model:
        revision = f" (revision `{data.base_model_revision}`)" if data.base_model_revision else ""
        head.append(f"- **Base model:** {base_model_reference(data)}{revision}")
    tail: list[str] = []
    named = [entry for entry in data.train_datasets if entry.get("name")]
    if named:
        tail.append(f"- **Training Dataset{'s' if len(named) > 1 else ''}:**")
        tail += [f"    - {entry['name']}" for entry in named]
    if data.language:
        tail.append(f"- **Language{'s' if len(data.language) > 1 else ''}:** {', '.join(data.language)}")
    if data.license:
        tail.append(f"- **License:** {data.license}")
    return head, tail


def embedding_facts(data: BaseModelCardData) -> dict[str, Any]:
    """What the card states about an embedding model: length limit, dimensions, similarity, architecture."""
    model = data.model
    similarity = getattr(model, "similarity_fn_name", None) or "cosine"
    return {
        "max_seq_length": getattr(model, "max_seq_length", None),
        "output_dim": model.get_embedding_dimension() if model is not None else None,
        "similarity": SIMILARITY_NAMES.get(similarity, similarity.replace("_", " ").title()),
        "architecture": str(model) if model is not None else "",
    }


def embedding_intro(data: BaseModelCardData, facts: dict[str, Any]) -> str:
    """The card's opening paragraph for an embedding model."""
    text = (
        f"This is a sentence-embedding model in the sentence-transformers format, {trained_on(data)} with embedforge."
    )
    if facts["output_dim"]:
        text += f" It maps texts to {facts['output_dim']}-dimensional dense vectors"
        text += f" for {data.task_name}." if data.task_name else "."
    return text


def embedding_details(data: BaseModelCardData, facts: dict[str, Any]) -> list[str]:
    """The "Model Description" list for an embedding model."""
    head, tail = common_details(data)
    details = ["- **Model Type:** Sentence Transformer", *head]
    details.append(f"- **Maximum Sequence Length:** {facts['max_seq_length']} tokens")
    # Per-task caps (ColBERT-style query/document lengths) override the sequence length for that task.
    transformer = next((module for module in _children(data.model) if type(module).__name__ == "Transformer"), None)
    for label, attribute in (("Query", "query_length"), ("Document", "document_length")):
        if (length := getattr(transformer, attribute, None)) is not None:
            details.append(f"    - **Maximum {label} Length:** {length} tokens")
    details += [
        f"- **Output Dimensionality:** {facts['output_dim']} dimensions",
        f"- **Similarity Function:** {facts['similarity']}",
    ]
    modalities = getattr(data.model, "modalities", None) or ["text"]
    names = ", ".join(format_modality(modality).title() for modality in modalities)
    details.append(f"- **Supported Modalit{'ies' if len(modalities) > 1 else 'y'}:** {names}")
    if prompts := getattr(data.model, "prompts", None):
        import json

        details.append(f"- **Prompts:** {json.dumps(prompts, ensure_ascii=False)}")
    return details + tail


def _snippet_output_dim(data: BaseModelCardData) -> int | str:
    """The embedding size printed in the snippet's shape comments ("?" when the model cannot say)."""
    if data.model is None:
        return "?"
    try:
        return data.model.get_embedding_dimension()
    except Exception:  # noqa: BLE001 - a comment in the snippet is not worth failing the card over
        return "?"


def _children(model: Any) -> list[Any]:
    """The model's modules in order (none for a card without a model)."""
    return list(model.children()) if hasattr(model, "children") else []


def embedding_usage_snippet(data: BaseModelCardData, examples: list[Any]) -> str:
    """Python code loading the embedding model with embedforge and comparing the texts ``examples``."""
    model_path = data.model_id or PLACEHOLDER_MODEL_PATH
    output_dim = _snippet_output_dim(data)
    lines = ["from embedforge import SentenceTransformer", "", f'model = SentenceTransformer("{model_path}")']
    if data.ir_model and len(examples) > 1:
        lines += ["queries = [", f"    {examples[0]!r},", "]", "documents = ["]
        lines += [f"    {text!r}," for text in examples[1:]]
        lines += [
            "]",
            "query_embeddings = model.encode_query(queries)",
            "document_embeddings = model.encode_document(documents)",
            "print(query_embeddings.shape, document_embeddings.shape)",
            f"# [1, {output_dim}] [{len(examples) - 1}, {output_dim}]",
            "",
            "similarities = model.similarity(query_embeddings, document_embeddings)",
        ]
        shape = f"# [1, {len(examples) - 1}]"
    else:
        lines += ["sentences = ["]
        lines += [f"    {text!r}," for text in examples]
        lines += [
            "]",
            "embeddings = model.encode(sentences)",
            "print(embeddings.shape)",
            f"# [{len(examples)}, {output_dim}]",
            "",
            "similarities = model.similarity(embeddings, embeddings)",
        ]
        shape = f"# [{len(examples)}, {len(examples)}]"
    if data.similarities:
        lines += ["print(similarities)", data.similarities]
    else:
        lines += ["print(similarities.shape)", shape]
    return code_block("\n".join(lines), "python")


def media_usage_snippet(data: BaseModelCardData, formatted_inputs: list[str]) -> str:
    """Python code embedding media inputs; ``formatted_inputs`` are already Python source (URLs for saved files)."""
    model_path = data.model_id or PLACEHOLDER_MODEL_PATH
    output_dim = _snippet_output_dim(data)
    count = len(formatted_inputs)
    lines = ["from embedforge import SentenceTransformer", "", f'model = SentenceTransformer("{model_path}")']
    lines += ["inputs = [", *(f"    {value}," for value in formatted_inputs), "]"]
    lines += [
        "embeddings = model.encode(inputs)",
        "print(embeddings.shape)",
        f"# [{count}, {output_dim}]",
        "",
        "similarities = model.similarity(embeddings, embeddings)",
    ]
    if data.similarities:
        lines += ["print(similarities)", data.similarities]
    else:
        lines += ["print(similarities.shape)", f"# [{count}, {count}]"]
    return code_block("\n".join(lines), "python")


def usage_section(data: BaseModelCardData, class_name: str, what: str, outputs: str) -> list[str]:
    """The "Usage" section: the embedforge snippet, then the note that sentence-transformers loads the folder too."""
    return [
        "## Usage",
        "",
        "### Direct Usage (embedforge)",
        "",
        f"Install embedforge (`pip install embedforge`), then load the model and {what}:",
        "",
        data.generate_usage_snippet(),
        "",
        "### Direct Usage (Sentence Transformers)",
        "",
        SENTENCE_TRANSFORMERS_NOTE.format(class_name=class_name, outputs=outputs),
        "",
    ]
