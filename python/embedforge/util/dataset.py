"""``resolve_ids`` from ``sentence_transformers.util``: join ID columns of a training set to their text.

Retrieval datasets often keep queries and documents in their own datasets and refer to them by ID
from the training rows (``query_id``, ``document_ids``, ...). :func:`resolve_ids` builds a batched
transform that swaps each such ID column for the values it points at, for ``Dataset.set_transform``
(lazy) or ``Dataset.map(..., batched=True)`` (eager). Arguments, defaults, output column names and
errors follow sentence-transformers 6.2.

The transform is a :func:`functools.partial` of a module-level function over plain data (the lookup
views and their ID indices), so a dataset carrying it pickles, as DataLoader workers started with
``spawn`` require.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeAlias

import numpy as np

from ..exceptions import InvalidArgumentError

if TYPE_CHECKING:
    from datasets import Dataset

logger = logging.getLogger(__name__)

#: The columns the data collators treat as labels; they pass through the transform unresolved.
DEFAULT_LABEL_COLUMNS: tuple[str, ...] = ("label", "labels", "score", "scores")

OUTPUT_FORMATS = ("columns", "lists")

#: Widest fixed-width ID (in bytes) kept in a sorted array: numpy sizes every entry by the longest
#: one, and past this width (32 characters of ``<U``) the array outweighs a dict of the same IDs.
_MAX_SORTED_ID_BYTES = 128

#: Rows per batch when reading a lookup's ID column.
_ID_READ_BATCH = 50_000

#: numpy dtype kinds that compare with each other in a sorted index (numbers, text, bytes).
_KIND_FAMILY = {"i": "number", "u": "number", "f": "number", "U": "text", "S": "bytes"}

_FORMAT_HINT = "Call dataset.with_format(None) before applying the transform."


class _SortedIdIndex:
    """Maps IDs to row positions with two sorted numpy arrays instead of a dict.

    Compared with a dict it takes a fraction of the memory and pickles as two flat buffers, which
    matters when every DataLoader worker receives a copy; a lookup is a binary search. A duplicated
    ID maps to its last row, as a dict built row by row would.
    """

    __slots__ = ("keys", "positions")

    def __init__(self, keys: np.ndarray) -> None:
        # np.unique reports each key's first occurrence; on the reversed array that is the last one.
        reversed_keys = keys[::-1]
        unique_keys, first_in_reversed = np.unique(reversed_keys, return_index=True)
        self.keys: np.ndarray = unique_keys
        self.positions: np.ndarray = (len(keys) - 1 - first_in_reversed).astype(np.int64)

    def __len__(self) -> int:
        """The number of distinct IDs."""
        return len(self.keys)

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        """Row positions of ``ids``; raises ``KeyError`` with the first ID that is not in the index."""
        if len(ids) == 0:
            return np.empty(0, dtype=np.int64)
        if len(self.keys) == 0:
            raise KeyError(ids[0].item())
        slots = np.minimum(np.searchsorted(self.keys, ids), len(self.keys) - 1)
        hits = self.keys[slots] == ids
        if not hits.all():
            raise KeyError(ids[int(np.argmin(hits))].item())
        return self.positions[slots]


_IdIndex: TypeAlias = "_SortedIdIndex | dict[Any, int]"


class _Resolution(NamedTuple):
    """How one input column is resolved: where its values live and what its outputs are called."""

    values: Any  # a single-column view of the lookup dataset
    id_index: _IdIndex
    value_col: str
    single_name: str
    plural_name: str
    id_col: str


def _single_name(input_col: str) -> str:
    """``query_id`` -> ``query``, ``document_ids`` -> ``document``, ``doc_idx`` -> ``doc``."""
    for suffix in ("_ids", "_id", "_idx"):
        if input_col.endswith(suffix):
            return input_col[: -len(suffix)]
    return input_col


def _plural_name(input_col: str) -> str:
    """``document_ids`` -> ``documents``, ``query_ids`` -> ``queries``; other names as for one ID."""
    if input_col.endswith("y_ids"):
        return input_col[: -len("y_ids")] + "ies"
    if input_col.endswith("_ids"):
        return input_col[: -len("_ids")] + "s"
    return _single_name(input_col)


def _looks_like_encoded_list(value: object) -> bool:
    return isinstance(value, str) and value.lstrip().startswith("[")


def _decode_lists(rows: Sequence[str], column: str) -> list[list[Any]]:
    """Parse a column whose rows are Python list literals stored as strings (``"['d1', 'd2']"``)."""
    decoded = []
    for row in rows:
        preview = row[:100] if isinstance(row, str) else row
        try:
            value = ast.literal_eval(row)
        except (ValueError, SyntaxError, TypeError) as exc:
            raise InvalidArgumentError(
                f"Column {column!r} holds string-encoded lists (its first row starts with '['), but row "
                f"{preview!r} is not a valid list literal ({exc})."
            ) from None
        if not isinstance(value, (list, tuple)):
            raise InvalidArgumentError(
                f"Column {column!r} holds string-encoded lists (its first row starts with '['), but row "
                f"{preview!r} parses to a {type(value).__name__}, expected a list."
            )
        decoded.append(list(value))
    return decoded


def _gather(ids: list[Any], resolution: _Resolution, input_col: str) -> list[Any]:
    """The looked-up values of ``ids``, in order."""
    if not ids:
        return []
    index = resolution.id_index
    try:
        if isinstance(index, _SortedIdIndex):
            query = np.asarray(ids)
            if _KIND_FAMILY.get(query.dtype.kind) != _KIND_FAMILY.get(index.keys.dtype.kind):
                # IDs of another type (or of mixed types) can never equal the typed keys.
                raise KeyError(ids[0])
            rows = index.lookup(query).tolist()
        else:
            rows = [index[key] for key in ids]
    except TypeError:
        raise TypeError(
            f"IDs in input column {input_col!r} are not hashable, expected plain Python values; this "
            f"usually means the train dataset has a format such as with_format('numpy'). {_FORMAT_HINT}"
        ) from None
    except KeyError as exc:
        missing = exc.args[0]
        hint = ""
        if _looks_like_encoded_list(missing):
            hint = (
                " The ID looks like a string-encoded list; only columns whose first row is one are "
                "parsed, so convert the column to real lists first."
            )
        raise KeyError(
            f"ID {missing!r} from input column {input_col!r} was not found in its lookup dataset "
            f"(ID column {resolution.id_col!r}); expected every ID to have a row there.{hint}"
        ) from None
    return list(resolution.values[rows][resolution.value_col])


def _put(out: dict[str, Any], name: str, values: Any) -> None:
    # Output names depend on the rows (one ID or a list, list length), so clashes show up per batch.
    if name in out:
        raise InvalidArgumentError(
            f"Output column {name!r} is produced more than once (by two lookups entries, an expanded "
            "list column, or a kept column with the same name); expected distinct output names. "
            "Rename the input columns."
        )
    out[name] = values


def _truncate(rows: Sequence[Any], max_list_length: int | None) -> Sequence[Any]:
    if max_list_length is None:
        return rows
    return [row[:max_list_length] for row in rows]


def _resolve_batch(
    batch: dict[str, Any],
    *,
    resolutions: dict[str, _Resolution],
    keep_columns: tuple[str, ...],
    max_list_length: int | None,
    output_format: str,
) -> dict[str, Any]:
    """The transform :func:`resolve_ids` returns, with its settings bound by ``functools.partial``."""
    if not isinstance(batch, Mapping):
        raise TypeError(
            f"resolve_ids expects each batch as a dict of column lists, got a {type(batch).__name__}; "
            f"the train dataset has a format such as with_format('pandas'). {_FORMAT_HINT}"
        )
    out: dict[str, Any] = {}
    for input_col, resolution in resolutions.items():
        column = batch[input_col]
        if not isinstance(column, list):
            raise TypeError(
                f"Input column {input_col!r} arrives as a {type(column).__name__}, expected a list; the "
                f"train dataset has a format such as with_format('numpy'). {_FORMAT_HINT}"
            )
        if column and _looks_like_encoded_list(column[0]):
            column = _decode_lists(column, input_col)
        if not column or not isinstance(column[0], (list, tuple)):
            _put(out, resolution.single_name, _gather(list(column), resolution, input_col))
            continue

        id_lists = _truncate(column, max_list_length)
        flat = _gather([key for row in id_lists for key in row], resolution, input_col)
        if output_format == "lists":
            nested, start = [], 0
            for row in id_lists:
                nested.append(flat[start : start + len(row)])
                start += len(row)
            _put(out, resolution.plural_name, nested)
            continue

        lengths = sorted({len(row) for row in id_lists})
        if len(lengths) > 1:
            raise InvalidArgumentError(
                f"Rows of input column {input_col!r} hold ID lists of differing lengths {lengths}; "
                'output_format="columns" turns position i of every list into its own column, so it expects '
                "one length on every row. Pass max_list_length to cut all rows to a common length, or "
                'output_format="lists" to keep (ragged) nested lists.'
            )
        width = lengths[0]
        if width == 0:
            raise InvalidArgumentError(
                f"Rows of input column {input_col!r} hold empty ID lists, so there is nothing to expand "
                'into columns; expected at least one ID per row. Filter those rows out, or use output_format="lists".'
            )
        for position in range(width):
            # flat is row-major: every width-th value starting at `position` is that position's column.
            _put(out, f"{resolution.single_name}_{position + 1}", flat[position::width])

    for keep_col in keep_columns:
        if keep_col not in batch:
            continue
        values = batch[keep_col]
        if len(values) > 0 and _looks_like_encoded_list(values[0]):
            values = _decode_lists(values, keep_col)
        # A per-row list (or tensor/array, for a formatted dataset) is cut in step with the ID lists.
        if len(values) > 0 and not isinstance(values[0], (str, bytes)) and hasattr(values[0], "__len__"):
            values = _truncate(values, max_list_length)
        _put(out, keep_col, values)
    return out


def _parse_spec(input_col: str, spec: Any) -> tuple[Any, str | None, str | None]:
    """``lookups[input_col]`` as (dataset, id_col or None, value_col or None)."""
    if not isinstance(spec, tuple):
        return spec, None, None
    if len(spec) not in (2, 3):
        raise InvalidArgumentError(
            f"lookups[{input_col!r}] is a tuple of length {len(spec)}; expected a Dataset, (dataset, id_col), "
            "or (dataset, id_col, value_col)."
        )
    return spec[0], spec[1], spec[2] if len(spec) == 3 else None


def _pick_id_col(dataset: Dataset, input_col: str) -> str:
    candidates = [name for name in dataset.column_names if name == "id" or name.endswith("_id")]
    if len(candidates) != 1:
        raise InvalidArgumentError(
            f"Cannot infer the ID column of lookups[{input_col!r}]: expected exactly one column named 'id' "
            f"or ending in '_id', found {candidates or 'none'} among columns {sorted(dataset.column_names)}. "
            "Pass (dataset, id_col) instead."
        )
    return candidates[0]


def _pick_value_col(dataset: Dataset, id_col: str, input_col: str) -> str:
    others = [name for name in dataset.column_names if name != id_col]
    if len(others) != 1:
        raise InvalidArgumentError(
            f"Cannot infer the value column of lookups[{input_col!r}]: expected exactly one column besides "
            f"the ID column {id_col!r}, found {others or 'none'}. Pass (dataset, id_col, value_col) instead."
        )
    return others[0]


def _check_column(dataset: Dataset, input_col: str, role: str, name: str) -> None:
    if name not in dataset.column_names:
        raise InvalidArgumentError(
            f"lookups[{input_col!r}]: {role} column {name!r} is not a column of the lookup dataset; "
            f"expected one of {sorted(dataset.column_names)}."
        )


def _build_index(dataset: Dataset, id_col: str, input_col: str) -> _IdIndex:
    """The ID -> row position index of a lookup dataset (a sorted index where the IDs allow one)."""
    # Reading in batches respects select/shuffle/filter (an indices mapping) and is faster than
    # materialising the column with dataset[id_col].
    ids: list[Any] = []
    for chunk in dataset.select_columns([id_col]).iter(batch_size=_ID_READ_BATCH):
        ids.extend(chunk[id_col])
    keys = np.asarray(ids)
    sortable = (
        keys.ndim == 1
        and keys.dtype.kind in _KIND_FAMILY
        and keys.itemsize <= _MAX_SORTED_ID_BYTES
        # uint64 IDs past the int64 range would not compare reliably with the int64 queries numpy builds.
        and getattr(dataset.features[id_col], "dtype", None) != "uint64"
    )
    # None among the IDs, very long strings, or other types: a dict takes any hashable ID.
    index: _IdIndex = _SortedIdIndex(keys) if sortable else {key: position for position, key in enumerate(ids)}
    shadowed = len(ids) - len(index)
    if shadowed:
        logger.warning(
            f"lookups[{input_col!r}] has duplicate values in its ID column {id_col!r} ({shadowed} rows "
            "shadowed); each duplicated ID resolves to its last row."
        )
    return index


def resolve_ids(
    lookups: dict[str, Dataset | tuple[Dataset, str] | tuple[Dataset, str, str]],
    keep_columns: list[str] | tuple[str, ...] = DEFAULT_LABEL_COLUMNS,
    max_list_length: int | None = None,
    output_format: Literal["columns", "lists"] = "columns",
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Build a batched transform that replaces ID columns by the values they point at in lookup datasets.

    Args:
        lookups: ``{input_col: lookup}``, one entry per ID column of the training set. ``lookup`` is a
            ``datasets.Dataset`` (its ID column, the one column named ``id`` or ending in ``_id``, and
            its one other column, the values, are inferred), ``(dataset, id_col)``, or
            ``(dataset, id_col, value_col)``. A column holds one ID per row or a list of IDs per row
            (seen from the rows). The outputs come in the order of ``lookups`` (the losses read
            columns by position, so put the anchor first); other input columns are dropped.
        keep_columns: input columns passed through unresolved (absent ones are skipped); by default the
            label columns ``label``, ``labels``, ``score``, ``scores``.
        max_list_length: keep only the first ``max_list_length`` entries of every list per row (ID lists
            and list-valued kept columns alike); ``None`` keeps all.
        output_format: ``"columns"`` turns a list column ``document_ids`` into ``document_1`` ...
            ``document_N`` (every row needs the same list length); ``"lists"`` keeps it as one nested
            column ``documents`` (rows may differ in length, as CrossEncoder listwise losses expect).

    Returns:
        A picklable function from a batch dict to the resolved batch dict, for
        ``Dataset.set_transform`` or ``Dataset.map(..., batched=True, remove_columns=list(lookups))``
        (``map`` passes batches in the dataset's format: call ``with_format(None)`` first). An ID
        missing from its lookup raises ``KeyError`` when the batch is read.

    Example::

        train.set_transform(resolve_ids({"query_id": queries, "document_ids": documents}, max_list_length=8))
        # rows: {"query": str, "document_1": str, ..., "document_8": str, "scores": list[float]}
    """
    try:
        from datasets import Dataset, DatasetDict
    except ImportError as exc:  # pragma: no cover - datasets ships with the train extra
        raise ImportError("resolve_ids needs `datasets`: pip install 'embedforge[train]'") from exc

    if isinstance(keep_columns, str):
        raise TypeError(
            f"keep_columns must be a list or tuple of column names, got the string {keep_columns!r}; "
            f"write [{keep_columns!r}] for a single column."
        )
    if max_list_length is not None and (
        isinstance(max_list_length, bool) or not isinstance(max_list_length, (int, np.integer)) or max_list_length < 1
    ):
        raise InvalidArgumentError(f"max_list_length must be a positive integer or None, got {max_list_length!r}.")
    if output_format not in OUTPUT_FORMATS:
        raise InvalidArgumentError(f'output_format must be "columns" or "lists", got {output_format!r}.')

    resolutions: dict[str, _Resolution] = {}
    # Entries that share a dataset and ID column (positive_id / negative_id) share one index. The key
    # is the caller's object: with_format(None) below returns a new one every time.
    indices: dict[tuple[int, str], _IdIndex] = {}
    for input_col, spec in lookups.items():
        dataset, id_col, value_col = _parse_spec(input_col, spec)
        if isinstance(dataset, DatasetDict):
            raise TypeError(
                f"lookups[{input_col!r}] holds a `DatasetDict`, expected a `Dataset`: pass one split, "
                "e.g. dataset_dict['train'] or load_dataset(..., split='train')."
            )
        if not isinstance(dataset, Dataset):
            raise TypeError(f"lookups[{input_col!r}] must hold a `Dataset`, got {type(dataset).__name__}.")
        index_key = id(dataset)
        # Plain Python keys and values even if the caller formatted the lookup (torch tensors don't hash).
        dataset = dataset.with_format(None)

        if id_col is None:
            id_col = _pick_id_col(dataset, input_col)
        else:
            _check_column(dataset, input_col, "ID", id_col)
        if value_col is None:
            value_col = _pick_value_col(dataset, id_col, input_col)
        else:
            _check_column(dataset, input_col, "value", value_col)

        if (index_key, id_col) not in indices:
            indices[index_key, id_col] = _build_index(dataset, id_col, input_col)
        resolutions[input_col] = _Resolution(
            values=dataset.select_columns([value_col]),
            id_index=indices[index_key, id_col],
            value_col=value_col,
            single_name=_single_name(input_col),
            plural_name=_plural_name(input_col),
            id_col=id_col,
        )

    return partial(
        _resolve_batch,
        resolutions=resolutions,
        keep_columns=tuple(keep_columns),
        max_list_length=max_list_length,
        output_format=output_format,
    )
