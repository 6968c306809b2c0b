"""The per-row work of the no-duplicates sampler, in Rust (``embedforge._core``)."""

from __future__ import annotations

import numpy as np

from embedforge import _core
from embedforge.base.sampler.row_values import StringChunks


def value_ids(columns: list[StringChunks], num_rows: int) -> np.ndarray:
    """Intern every row's keys across all columns: ``[rows, columns]`` uint32 ids, equal keys equal ids."""
    return _core.intern_text_columns(columns, num_rows)


def no_duplicates_pass(
    value_ids: np.ndarray, order: np.ndarray, batch_size: int, drop_last: bool
) -> tuple[np.ndarray, np.ndarray]:
    """One greedy pass over ``order``: ``(rows, bounds)``, batch ``b`` being ``rows[bounds[b]:bounds[b + 1]]``."""
    return _core.no_duplicates_pass(value_ids, order.astype(np.int64, copy=False), batch_size, drop_last)
