"""Local data for ``embedforge train``: datasets from CSV/TSV, JSON Lines or Parquet files, and the evaluators."""

from __future__ import annotations

import inspect
import os
from typing import Any

from embedforge.cli.train_config import TrainConfigError

#: File extension -> (``datasets`` builder, extra builder arguments).
BUILDERS: dict[str, tuple[str, dict[str, Any]]] = {
    # keep_default_na=False: a text such as "NA" or "null" stays text instead of becoming a missing value.
    ".csv": ("csv", {"keep_default_na": False}),
    ".tsv": ("csv", {"keep_default_na": False, "delimiter": "\t"}),
    ".json": ("json", {}),
    ".jsonl": ("json", {}),
    ".parquet": ("parquet", {}),
}

#: Column names sentence-transformers treats as the label.
LABEL_COLUMNS = ("label", "labels", "score", "scores")

#: Column names recognised in queries/corpus files (BEIR uses ``_id``, ``text`` and ``title``).
ID_COLUMNS = ("_id", "id", "query-id", "query_id", "qid", "corpus-id", "corpus_id", "doc_id", "docid", "pid")
TEXT_COLUMNS = ("text", "query", "question", "passage", "document", "content", "sentence")
QRELS_QUERY_COLUMNS = ("query-id", "query_id", "qid", "query")
QRELS_CORPUS_COLUMNS = ("corpus-id", "corpus_id", "doc_id", "docid", "pid", "corpus", "document")


def load_table(paths: list[str], key: str) -> Any:
    """Load one or more files of the same format as one ``datasets.Dataset``."""
    from datasets import load_dataset

    extensions = {os.path.splitext(path)[1].lower() for path in paths}
    unknown = sorted(extensions - set(BUILDERS))
    if unknown:
        raise TrainConfigError(
            f"config key {key!r} has file(s) with extension {unknown}; expected one of {sorted(BUILDERS)}"
        )
    if len({BUILDERS[extension][0] for extension in extensions}) > 1 or extensions == {".csv", ".tsv"}:
        raise TrainConfigError(f"config key {key!r} mixes file formats {sorted(extensions)}; use one format per key")
    builder, options = BUILDERS[extensions.pop()]
    return load_dataset(builder, data_files={"train": paths}, split="train", **options)


def select_columns(dataset: Any, columns: list[str] | None, key: str) -> Any:
    """Keep ``columns`` in that order (inputs are matched to the loss by position), or the dataset as it is."""
    if not columns:
        return dataset
    missing = [column for column in columns if column not in dataset.column_names]
    if missing:
        raise TrainConfigError(
            f"config key 'data.columns' asks for {missing}, which {key} does not have; its columns are "
            f"{dataset.column_names}"
        )
    return dataset.select_columns(columns)


def _pick_column(columns: list[str], candidates: tuple[str, ...], what: str, key: str) -> str:
    for candidate in candidates:
        if candidate in columns:
            return candidate
    raise TrainConfigError(f"{key} needs a {what} column named one of {list(candidates)}; its columns are {columns}")


def read_id_texts(path: str, key: str) -> dict[str, str]:
    """An id -> text mapping from a queries or corpus file (a ``title`` column is prepended to the text)."""
    table = load_table([path], key)
    columns = table.column_names
    id_column = _pick_column(columns, ID_COLUMNS, "id", key)
    text_column = _pick_column([c for c in columns if c != id_column], TEXT_COLUMNS, "text", key)
    titles = table["title"] if "title" in columns else None
    texts: dict[str, str] = {}
    for index, (identifier, text) in enumerate(zip(table[id_column], table[text_column])):
        title = titles[index] if titles is not None else None
        texts[str(identifier)] = f"{title} {text}".strip() if title else str(text)
    return texts


def read_qrels(path: str, key: str) -> dict[str, set[str]]:
    """query id -> relevant corpus ids; rows with a ``score`` of 0 or less are not relevant."""
    table = load_table([path], key)
    columns = table.column_names
    query_column = _pick_column(columns, QRELS_QUERY_COLUMNS, "query id", key)
    corpus_column = _pick_column(columns, QRELS_CORPUS_COLUMNS, "corpus id", key)
    scores = table["score"] if "score" in columns else [1] * len(table)
    relevant: dict[str, set[str]] = {}
    for query_id, corpus_id, score in zip(table[query_column], table[corpus_column], scores):
        if score is not None and float(score) > 0:
            relevant.setdefault(str(query_id), set()).add(str(corpus_id))
    return relevant


def read_scored_pairs(path: str, key: str) -> tuple[list[str], list[str], list[float]]:
    """(sentences1, sentences2, scores): the first two text columns and the label column of a pairs file."""
    table = load_table([path], key)
    columns = table.column_names
    label = next((column for column in columns if column in LABEL_COLUMNS), None)
    inputs = [column for column in columns if column not in LABEL_COLUMNS]
    if label is None or len(inputs) != 2:
        raise TrainConfigError(
            f"{key} needs two text columns and a score column named one of {list(LABEL_COLUMNS)}; "
            f"its columns are {columns}"
        )
    return list(table[inputs[0]]), list(table[inputs[1]]), [float(score) for score in table[label]]


def build_evaluator(evaluator_config: dict[str, Any]) -> Any:
    """The InformationRetrievalEvaluator or EmbeddingSimilarityEvaluator the config describes, or None."""
    if not evaluator_config:
        return None
    from embedforge.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator, InformationRetrievalEvaluator

    is_retrieval = evaluator_config["type"] == "information_retrieval"
    evaluator_class = InformationRetrievalEvaluator if is_retrieval else EmbeddingSimilarityEvaluator
    kwargs: dict[str, Any] = {"name": evaluator_config.get("name") or "dev", "show_progress_bar": True}
    kwargs.update(evaluator_config.get("kwargs") or {})
    # The data arguments come from the files; everything else may be set through evaluator.kwargs.
    from_files = ("self", "queries", "corpus", "relevant_docs", "sentences1", "sentences2", "scores")
    accepted = [name for name in inspect.signature(evaluator_class.__init__).parameters if name not in from_files]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TrainConfigError(
            f"evaluator.kwargs {unknown} are not arguments of {evaluator_class.__name__}; it accepts {accepted}"
        )
    if is_retrieval:
        queries = read_id_texts(evaluator_config["queries"], "evaluator.queries")
        corpus = read_id_texts(evaluator_config["corpus"], "evaluator.corpus")
        relevant = read_qrels(evaluator_config["qrels"], "evaluator.qrels")
        unknown_queries = sorted(set(relevant) - set(queries))
        unknown_documents = sorted({doc for docs in relevant.values() for doc in docs} - set(corpus))
        if unknown_queries or unknown_documents:
            raise TrainConfigError(
                "evaluator.qrels names ids missing from the queries/corpus files: "
                f"queries {unknown_queries[:5]}, documents {unknown_documents[:5]}"
            )
        return InformationRetrievalEvaluator(queries, corpus, relevant, **kwargs)
    sentences1, sentences2, scores = read_scored_pairs(evaluator_config["pairs"], "evaluator.pairs")
    return EmbeddingSimilarityEvaluator(sentences1, sentences2, scores, **kwargs)
