"""The per-row work of the no-duplicates sampler (pure-Python stand-in for the Rust kernels)."""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from embedforge.sampler.row_values import StringChunks


def value_ids(columns: list[StringChunks], num_rows: int) -> np.ndarray:
    """Intern every row's keys across all columns: ``[rows, columns]`` uint32 ids."""
    table: dict[bytes, int] = {}
    out = np.zeros((num_rows, len(columns)), dtype=np.uint32)
    for column_index, chunks in enumerate(columns):
        row = 0
        for offsets, data in chunks:
            raw = data.tobytes()
            bounds = offsets.tolist()
            for start, end in pairwise(bounds):
                out[row, column_index] = table.setdefault(raw[start:end], len(table))
                row += 1
    return out


def no_duplicates_pass(
    value_ids: np.ndarray, order: np.ndarray, batch_size: int, drop_last: bool
) -> tuple[np.ndarray, np.ndarray]:
    """One greedy pass: ``(rows, bounds)`` with batch ``b`` = ``rows[bounds[b]:bounds[b+1]]``."""
    num_values = int(value_ids.max()) + 1 if value_ids.size else 0
    stamp = [-1] * num_values
    ids = value_ids.tolist()
    pending = order.tolist()
    rows: list[int] = []
    bounds = [0]
    batch_number = 0
    while pending:
        batch: list[int] = []
        waiting: list[int] = []
        full = False
        for position, row in enumerate(pending):
            if full:
                waiting.extend(pending[position:])
                break
            row_ids = ids[row]
            if any(stamp[value] == batch_number for value in row_ids):
                waiting.append(row)
                continue
            batch.append(row)
            if len(batch) == batch_size:
                full = True
                continue
            for value in row_ids:
                stamp[value] = batch_number
        batch_number += 1
        pending = waiting
        if full or not drop_last:
            rows.extend(batch)
            bounds.append(len(rows))
    return np.asarray(rows, dtype=np.int64), np.asarray(bounds, dtype=np.int64)
