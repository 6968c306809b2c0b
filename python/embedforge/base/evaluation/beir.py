"""Local BEIR-format folders for the NanoBEIR evaluators of every model kind.

sentence-transformers reads NanoBEIR from the Hugging Face hub; embedforge never reaches a network, so
each dataset is a local BEIR folder: ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl``
(``_id``, ``text``) and ``qrels/test.tsv`` (query-id, corpus-id, score). Rerankers also need ranked
candidates per query (the hub's ``bm25`` subset): an optional ``bm25.jsonl`` in the same folder, one
``{"query-id": ..., "corpus-ids": [...]}`` object per line, best candidate first. Without it they are
computed here with embedforge's BM25.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping
from typing import Any, Literal

from embedforge.exceptions import InvalidArgumentError

#: Environment variable naming the folder that holds the NanoBEIR datasets.
DATA_DIR_ENV = "EMBEDFORGE_NANOBEIR_DIR"

#: File of a BEIR folder with ranked candidate documents per query (the hub's "bm25" subset).
CANDIDATES_FILE = "bm25.jsonl"

DatasetNameType = Literal[
    "climatefever",
    "dbpedia",
    "fever",
    "fiqa2018",
    "hotpotqa",
    "msmarco",
    "nfcorpus",
    "nq",
    "quoraretrieval",
    "scidocs",
    "arguana",
    "scifact",
    "touche2020",
]

#: Short dataset name -> the name used in metric keys (after "Nano").
DATASET_NAME_TO_HUMAN_READABLE = {
    "climatefever": "ClimateFEVER",
    "dbpedia": "DBPedia",
    "fever": "FEVER",
    "fiqa2018": "FiQA2018",
    "hotpotqa": "HotpotQA",
    "msmarco": "MSMARCO",
    "nfcorpus": "NFCorpus",
    "nq": "NQ",
    "quoraretrieval": "QuoraRetrieval",
    "scidocs": "SCIDOCS",
    "arguana": "ArguAna",
    "scifact": "SciFact",
    "touche2020": "Touche2020",
}


def validate_dataset_names(dataset_names: list[str]) -> None:
    """Raise InvalidArgumentError unless ``dataset_names`` is a non-empty list of NanoBEIR names."""
    if len(dataset_names) == 0:
        raise InvalidArgumentError("dataset_names cannot be empty. Use None to evaluate on all datasets.")
    unknown = [name for name in dataset_names if name.lower() not in DATASET_NAME_TO_HUMAN_READABLE]
    if unknown:
        raise InvalidArgumentError(
            f"Dataset(s) {unknown} are not valid NanoBEIR datasets. "
            f"Valid dataset names are: {list(DATASET_NAME_TO_HUMAN_READABLE)}."
        )


def find_dataset_folder(
    dataset_name: str,
    data_dir: str | os.PathLike[str] | Mapping[str, str | os.PathLike[str]] | None,
    dataset_id: str,
) -> str:
    """The local folder of ``dataset_name``, or an error naming every place that was looked at.

    ``data_dir`` is a folder with one subfolder per dataset or a mapping from dataset name to
    folder; without it the ``EMBEDFORGE_NANOBEIR_DIR`` environment variable, then ``dataset_id``
    when it is a local folder. Subfolders may be named ``msmarco``, ``NanoMSMARCO`` or ``MSMARCO``.
    """
    short = dataset_name.lower()
    human = DATASET_NAME_TO_HUMAN_READABLE[short]
    if isinstance(data_dir, Mapping):
        for key in (dataset_name, short, human, f"Nano{human}"):
            if key in data_dir:
                folder = os.fspath(data_dir[key])
                if not os.path.isdir(folder):
                    raise InvalidArgumentError(
                        f"invalid value for `data_dir[{key!r}]`: {folder!r} is not a folder; expected a BEIR-format "
                        "folder with corpus.jsonl, queries.jsonl and qrels/test.tsv"
                    )
                return folder
        raise InvalidArgumentError(
            f"invalid value for `data_dir`: it has no folder for dataset {dataset_name!r} "
            f"(looked for the keys {[dataset_name, short, human, f'Nano{human}']}); it has {list(data_dir)}"
        )

    if data_dir is not None:
        root, source = os.fspath(data_dir), "data_dir"
    elif os.environ.get(DATA_DIR_ENV):
        root, source = os.environ[DATA_DIR_ENV], f"the environment variable {DATA_DIR_ENV}"
    elif os.path.isdir(dataset_id):
        root, source = dataset_id, "dataset_id"
    else:
        raise InvalidArgumentError(
            f"NanoBEIR dataset {dataset_name!r} has no local folder: embedforge never downloads, and "
            f"dataset_id={dataset_id!r} is not a local folder. Pass data_dir= (a folder with one BEIR-format "
            f"subfolder per dataset, e.g. {short}/, or a dict dataset name -> folder) or set {DATA_DIR_ENV}."
        )
    candidates = [os.path.join(root, name) for name in dict.fromkeys((dataset_name, short, f"Nano{human}", human))]
    for folder in candidates:
        if os.path.isdir(folder):
            return folder
    raise InvalidArgumentError(
        f"NanoBEIR dataset {dataset_name!r} was not found under {root!r} (from {source}): looked for {candidates}. "
        f"Each dataset needs a BEIR-format folder (corpus.jsonl, queries.jsonl, qrels/test.tsv); set data_dir= "
        f"or {DATA_DIR_ENV} to the folder that holds them."
    )


def load_beir_folder(folder: str | os.PathLike[str]) -> tuple[dict[str, str], dict[str, str], dict[str, set[str]]]:
    """Read a BEIR-format folder into (corpus, queries, relevant_docs) keyed by string ids.

    Texts come from the ``text`` field (titles are not prepended, as in NanoBEIR); empty texts are
    skipped. ``qrels/test.tsv`` may start with a header row; rows with a score column keep only
    scores above 0 (BEIR's graded relevance, where 0 means judged not relevant).
    """
    folder = os.fspath(folder)
    corpus = _read_jsonl_texts(os.path.join(folder, "corpus.jsonl"))
    queries = _read_jsonl_texts(os.path.join(folder, "queries.jsonl"))
    qrels_path = os.path.join(folder, "qrels", "test.tsv")
    if not os.path.isfile(qrels_path):
        raise InvalidArgumentError(f"BEIR folder {folder!r} has no qrels/test.tsv; expected {qrels_path!r}")
    relevant: dict[str, set[str]] = {}
    with open(qrels_path, encoding="utf-8", newline="") as f:
        for line_number, row in enumerate(csv.reader(f, delimiter="\t"), start=1):
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) < 2:
                raise InvalidArgumentError(
                    f"{qrels_path}:{line_number}: expected query-id, corpus-id[, score] separated by tabs, got {row!r}"
                )
            query_id, corpus_id = row[0].strip(), row[1].strip()
            score_text = row[2].strip() if len(row) > 2 else ""
            if line_number == 1 and (query_id == "query-id" or (score_text and not _is_number(score_text))):
                continue  # header row
            if score_text:
                if not _is_number(score_text):
                    raise InvalidArgumentError(f"{qrels_path}:{line_number}: score {score_text!r} is not a number")
                if float(score_text) <= 0:
                    continue
            relevant.setdefault(query_id, set()).add(corpus_id)
    return corpus, queries, relevant


def load_beir_titles(folder: str | os.PathLike[str]) -> dict[str, str]:
    """``{_id: title}`` of the documents :func:`load_beir_folder` keeps (a missing or null title is "")."""
    path = os.path.join(os.fspath(folder), "corpus.jsonl")
    return {
        doc_id: str(record.get("title") or "")
        for doc_id, record in _read_jsonl_records(path)
        if len(record["text"] or "") > 0
    }


def load_beir_candidates(path: str | os.PathLike[str]) -> dict[str, list[str]]:
    """``{query-id: [corpus-id, ...]}`` from a candidates file, best candidate first, in the file's order.

    Each line is a JSON object with ``query-id`` and ``corpus-ids`` (a list), as in the rows of the
    hub's NanoBEIR ``bm25`` subset; blank lines are skipped; a query listed twice is an error.
    """
    path = os.fspath(path)
    candidates: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as f:
        for line_number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            record = _parse_json_line(path, line_number, line)
            if "query-id" not in record or "corpus-ids" not in record:
                raise InvalidArgumentError(
                    f"{path}:{line_number}: expected the fields query-id and corpus-ids, got {sorted(record)}"
                )
            corpus_ids = record["corpus-ids"]
            if not isinstance(corpus_ids, list):
                raise InvalidArgumentError(
                    f"{path}:{line_number}: corpus-ids must be a list of corpus ids, got {type(corpus_ids).__name__}"
                )
            query_id = str(record["query-id"])
            if query_id in candidates:
                raise InvalidArgumentError(f"{path}:{line_number}: query-id {query_id!r} is listed a second time")
            candidates[query_id] = [str(corpus_id) for corpus_id in corpus_ids]
    return candidates


def bm25_candidates(
    corpus: Mapping[str, str],
    queries: Mapping[str, str],
    top_k: int,
    titles: Mapping[str, str] | None = None,
) -> dict[str, list[str]]:
    """The ``top_k`` corpus ids per query by BM25 (embedforge's Lucene variant, k1=1.5, b=0.75), best first.

    A document is indexed as ``title + " " + text`` when ``titles`` gives it a title, as BEIR's
    BM25 baseline indexes both fields; ``top_k`` is capped at the corpus size.
    """
    if top_k < 1:
        raise InvalidArgumentError(f"invalid value for `top_k`: {top_k}; expected a positive number of candidates")
    if not corpus or not queries:
        return {query_id: [] for query_id in queries}
    # Imported here: the BM25 index is only needed when a folder brings no candidates of its own.
    from embedforge.util.bm25 import BM25

    doc_ids = list(corpus)
    titles = titles or {}
    texts = [f"{titles[doc_id]} {corpus[doc_id]}" if titles.get(doc_id) else corpus[doc_id] for doc_id in doc_ids]
    query_ids = list(queries)
    rows, _ = BM25().index(texts).search([queries[query_id] for query_id in query_ids], top_k=min(top_k, len(texts)))
    return {query_id: [doc_ids[int(index)] for index in row] for query_id, row in zip(query_ids, rows)}


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parse_json_line(path: str, line_number: int, line: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise InvalidArgumentError(f"{path}:{line_number}: not a JSON object ({error})") from error
    if not isinstance(record, dict):
        raise InvalidArgumentError(f"{path}:{line_number}: expected a JSON object, got {type(record).__name__}")
    return record


def _read_jsonl_records(path: str) -> list[tuple[str, dict[str, Any]]]:
    """``(_id, record)`` for each line of a BEIR JSON-lines file that has ``_id`` and ``text``."""
    if not os.path.isfile(path):
        raise InvalidArgumentError(f"BEIR file {path!r} does not exist; expected a JSON-lines file with _id and text")
    records: list[tuple[str, dict[str, Any]]] = []
    with open(path, encoding="utf-8") as f:
        for line_number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            record = _parse_json_line(path, line_number, line)
            if "_id" not in record or "text" not in record:
                raise InvalidArgumentError(
                    f"{path}:{line_number}: expected the fields _id and text, got {sorted(record)}"
                )
            records.append((str(record["_id"]), record))
    return records


def _read_jsonl_texts(path: str) -> dict[str, str]:
    """``{_id: text}`` from a BEIR JSON-lines file, skipping empty texts."""
    texts: dict[str, str] = {}
    for doc_id, record in _read_jsonl_records(path):
        text = record["text"] or ""
        if len(text) > 0:
            texts[doc_id] = text
    return texts


__all__ = [
    "CANDIDATES_FILE",
    "DATASET_NAME_TO_HUMAN_READABLE",
    "DATA_DIR_ENV",
    "DatasetNameType",
    "bm25_candidates",
    "find_dataset_folder",
    "load_beir_candidates",
    "load_beir_folder",
    "load_beir_titles",
    "validate_dataset_names",
]
