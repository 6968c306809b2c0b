"""Read a dataset's columns once and give every row the texts the no-duplicates rule compares.

The rule (sentence-transformers' ``NoDuplicatesBatchSampler``): every value of a row, in every
column except ``dataset_name`` (and the label columns, which the sampler removes first), is turned
into a string key; two rows conflict when they share a key, in any pair of columns. Plain values
key as ``str(value)`` (so the int ``1`` and the text ``"1"`` are the same key), lists and dicts of
plain values as their ``str()``, anything else (images, audio) by a digest of its content.

Columns are read as whole Arrow arrays; string columns without nulls go to Rust as their raw
offset and data buffers, everything else is turned into keys here first.
"""

from __future__ import annotations

import hashlib
import pickle
from typing import Any

import numpy as np
import pyarrow as pa

EXCLUDED_COLUMNS = frozenset({"dataset_name"})

_PLAIN_TYPES = (str, int, float, bool, bytes, type(None), np.integer, np.floating, np.bool_)

# One column as Arrow string chunks: (offsets int64, utf-8 data uint8) per chunk.
StringChunks = list[tuple[np.ndarray, np.ndarray]]


def value_key(value: Any) -> str:
    """The string under which ``value`` is compared with every other value of a batch."""
    if isinstance(value, _PLAIN_TYPES):
        return str(value)
    if isinstance(value, (list, tuple)):
        if all(isinstance(item, _PLAIN_TYPES) for item in value):
            return str(value)
        return "[" + ", ".join(value_key(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key!r}: {value_key(item)}" for key, item in value.items()) + "}"
    # Media objects print their memory address, which differs on every access, so they are keyed
    # by a digest of their content instead (the encoded source when datasets kept it). The bytes
    # are hashed only, never loaded back.
    content = getattr(value, "_hf_encoded", None)
    if content is None:
        content = value
    try:
        return hashlib.sha256(pickle.dumps(content)).hexdigest()
    except Exception:  # noqa: BLE001 - an unpicklable value just keys by str() and never matches
        return str(value)


def compared_columns(dataset: Any) -> list[str]:
    """The columns whose values take part in the comparison."""
    return [column for column in dataset.column_names if column not in EXCLUDED_COLUMNS]


def _string_chunk(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The offsets (int64, one per row plus one) and data buffer of a null-free string array."""
    _, offsets_buffer, data_buffer = array.buffers()
    offset_type = np.int64 if pa.types.is_large_string(array.type) else np.int32
    offsets = np.frombuffer(offsets_buffer, dtype=offset_type)[array.offset : array.offset + len(array) + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    return offsets.astype(np.int64, copy=False), data


def _keys_chunk(keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Python keys as one Arrow-style string chunk."""
    return _string_chunk(pa.array(keys, type=pa.large_string()))


def _as_arrow_dataset(dataset: Any) -> Any | None:
    """``dataset`` without output format if it is a ``datasets.Dataset`` whose rows read as its Arrow values."""
    try:
        from datasets import Dataset
        from datasets.features.features import require_decoding
    except ImportError:
        return None
    if not isinstance(dataset, Dataset):
        return None
    if any(require_decoding(feature) for feature in dataset.features.values()):
        return None
    # A torch/numpy format hands out fresh tensors whose str() and pickle hold a memory address,
    # so (unlike sentence-transformers, where such rows never match) values are compared as stored.
    return dataset.with_format(None) if dataset.format.get("type") is not None else dataset


def read_string_columns(dataset: Any) -> list[StringChunks]:
    """Every compared column of ``dataset`` as string chunks of its per-row keys."""
    columns = compared_columns(dataset)
    plain = _as_arrow_dataset(dataset)
    if plain is None:
        # Media columns and other containers: read rows the way a training step would
        # (``dataset[i]``), so the keys are those of the values a loss would see.
        rows = [dataset[index] for index in range(len(dataset))]
        return [[_keys_chunk([value_key(row[column]) for row in rows])] for column in columns]

    arrow = plain.with_format("arrow")
    out: list[StringChunks] = []
    for column in columns:
        chunked = arrow[column]
        chunks = chunked.chunks if isinstance(chunked, pa.ChunkedArray) else [chunked]
        column_chunks: StringChunks = []
        for chunk in chunks:
            is_text = pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)
            if is_text and chunk.null_count == 0:
                column_chunks.append(_string_chunk(chunk))
            else:
                column_chunks.append(_keys_chunk([value_key(value) for value in chunk.to_pylist()]))
        out.append(column_chunks)
    return out


__all__ = ["EXCLUDED_COLUMNS", "compared_columns", "read_string_columns", "value_key"]
