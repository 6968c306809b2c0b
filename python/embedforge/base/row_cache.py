"""Training rows served from Python lists read once, instead of an Arrow gather per batch.

A DataLoader over a ``datasets.Dataset`` fetches each batch with ``Dataset.__getitems__``: an Arrow
``take`` of the batch's rows, their conversion to Python objects, and one dict per row. For a batch of
2,048 text pairs that is ~20 ms, about as long as a whole StaticEmbedding training step's embedding
lookups. Reading the columns once into Python lists (~10 ms for 31k pairs) makes each batch a few
list lookups. The rows are the same objects ``__getitems__`` would build (both convert with Arrow's
``to_pylist``); only plain scalar columns of datasets of moderate size are cached, so images, audio
or nested features are never decoded up front and a huge dataset is never copied into memory.
"""

from __future__ import annotations

from typing import Any

from torch.utils.data import Dataset as TorchDataset

from embedforge.exceptions import InvalidArgumentError

#: Cache only datasets of at most this many cells (rows x columns): memory stays in the hundreds of MB.
MAX_CACHED_CELLS = 4_000_000


class CachedRows(TorchDataset):
    """A map-style dataset whose rows come from per-column Python lists."""

    def __init__(self, columns: dict[str, list[Any]]) -> None:
        self.columns = columns
        self.names = list(columns)
        lengths = {len(values) for values in columns.values()}
        if len(lengths) > 1:
            raise InvalidArgumentError(f"columns have different lengths {sorted(lengths)}; expected one length")
        self.num_rows = lengths.pop() if lengths else 0

    def __len__(self) -> int:
        return self.num_rows

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {name: self.columns[name][index] for name in self.names}

    def __getitems__(self, indices: list[int]) -> list[dict[str, Any]]:
        columns = [self.columns[name] for name in self.names]
        return [dict(zip(self.names, [column[i] for column in columns])) for i in indices]


def cache_rows(dataset: Any) -> Any:
    """``dataset`` as :class:`CachedRows` when it is a plain, moderately sized ``datasets.Dataset``; else unchanged.

    Plain means: no output formatting or transform (rows are Python objects) and only scalar
    ``Value`` columns (strings, numbers, booleans).
    """
    try:
        from datasets import Dataset, Value
    except ImportError:
        return dataset
    if not isinstance(dataset, Dataset) or dataset.format.get("type") is not None:
        return dataset
    if not all(isinstance(feature, Value) for feature in dataset.features.values()):
        return dataset
    if dataset.num_rows * max(len(dataset.column_names), 1) > MAX_CACHED_CELLS:
        return dataset
    return CachedRows(dataset.to_dict())
