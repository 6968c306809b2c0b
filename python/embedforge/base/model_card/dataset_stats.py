"""Describe a training or evaluation dataset for the model card: size, columns, statistics, samples, loss."""

from __future__ import annotations

import itertools
import json
import logging
import math
from collections import Counter
from collections.abc import Iterable, Iterator
from pprint import pformat
from typing import Any

from torch import nn

from embedforge.base.modality.detection import format_modality, infer_modality
from embedforge.base.model_card import media
from embedforge.base.model_card.markdown import html_list, markdown_table

logger = logging.getLogger(__name__)

#: Statistics look at this many leading rows, as sentence-transformers does (enough for a feel, cheap on big sets).
STATS_ROWS = 100
#: Rows tokenised per call while computing statistics (bounds memory on long texts).
STATS_CHUNK = 8
#: Samples shown per dataset.
SAMPLE_ROWS = 3
#: Longer sample texts are cut (the card is for reading, not for reproducing the data).
MAX_SAMPLE_CHARS = 1000
#: Lists longer than this show their first elements only.
MAX_SAMPLE_LIST = 5
#: The column the multi-dataset batch samplers add; it is bookkeeping, not model input.
DATASET_NAME_COLUMN = "dataset_name"


class RunningStats:
    """Minimum, mean and maximum of a stream of numbers, without keeping the numbers."""

    def __init__(self) -> None:
        self.min = math.inf
        self.max = -math.inf
        self.total = 0.0
        self.count = 0

    def add(self, values: Iterable[float]) -> None:
        """Fold ``values`` into the running figures."""
        for value in values:
            self.min = min(self.min, value)
            self.max = max(self.max, value)
            self.total += value
            self.count += 1

    @property
    def mean(self) -> float:
        """Mean of the values seen (0 when none)."""
        return self.total / self.count if self.count else 0.0


def fullname(obj: Any) -> str:
    """``module.ClassName`` of an object's class (builtins without the module)."""
    cls = type(obj)
    module = cls.__module__
    return cls.__qualname__ if module in (None, "builtins") else f"{module}.{cls.__qualname__}"


def is_sized_dataset(dataset: Any) -> bool:
    """A map-style dataset: knows its length and serves rows and column slices by index."""
    return hasattr(dataset, "column_names") and hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")


def dataset_columns(dataset: Any) -> list[str]:
    """The input and label columns of a dataset, without the sampler's bookkeeping column."""
    if is_sized_dataset(dataset) and len(dataset) > 0:
        # The first row reflects a set_transform, the declared column names do not.
        names = list(dataset[0].keys())
    else:
        names = list(getattr(dataset, "column_names", None) or [])
    return [name for name in names if name != DATASET_NAME_COLUMN]


def _chunks(dataset: Any, column: str, rows: int) -> Iterator[list[Any]]:
    # Whole chunks, as sentence-transformers reads them: the last may run past ``rows`` (up to 104 of 100),
    # which keeps the figures identical to the cards sentence-transformers writes for the same data.
    for start in range(0, rows, STATS_CHUNK):
        yield list(dataset[start : start + STATS_CHUNK][column])


def _text_lengths(model: Any, texts: list[str], task: str | None) -> tuple[list[int], str]:
    """Token counts when the model's tokeniser can give them, else character counts."""
    if model is not None and hasattr(model, "preprocess"):
        # Without a router mapping, columns count as documents (a Router needs some task to pick a route).
        try:
            features = model.preprocess(texts, task=task or "document")
        except Exception as error:  # noqa: BLE001 - a statistic is not worth failing the trainer's set-up over
            logger.warning("Model card: counting characters, the model could not tokenise %r: %s", texts[:1], error)
            return [len(text) for text in texts], "characters"
        if "attention_mask" in features:
            return [int(count) for count in features["attention_mask"].sum(dim=1).tolist()], "tokens"
        if "offsets" in features and "input_ids" in features:
            # Static models: one flat id list, each text starting at its offset.
            starts = [int(offset) for offset in features["offsets"].tolist()] + [len(features["input_ids"])]
            return [end - start for start, end in itertools.pairwise(starts)], "tokens"
    return [len(text) for text in texts], "characters"


def column_stats(dataset: Any, column: str, model: Any = None, task: str | None = None) -> dict[str, Any]:
    """Type and summary of one column over the first :data:`STATS_ROWS` rows.

    Texts: min/mean/max length in tokens (characters when the model cannot tokenise);
    integers and booleans: the share of each value; floats: min/mean/max; lists: their sizes.
    """
    rows = min(len(dataset), STATS_ROWS)
    first = dataset[0][column]
    raw_modality = _column_modality(first, model)
    modality = format_modality(raw_modality) if raw_modality else ""
    stats_entry = _column_stats_by_type(dataset, column, first, raw_modality, rows, model, task)
    stats_entry["modality"] = modality
    return stats_entry


def _column_modality(first: Any, model: Any) -> Any:
    """The modality of a column's first value ("" for numbers, lists and other non-inputs)."""
    try:
        return infer_modality(first, supported_modalities=getattr(model, "modalities", None))
    except ValueError:
        return ""


def _column_stats_by_type(
    dataset: Any, column: str, first: Any, raw_modality: Any, rows: int, model: Any, task: str | None
) -> dict[str, Any]:
    """The ``dtype`` and ``data`` of a column's statistics, by the type of its first value."""
    if isinstance(first, str):
        if raw_modality in ("image", "video", "audio"):
            # Paths or URLs of media: tokenising them would load every file for a number nobody needs.
            return {"dtype": "string", "data": {}}
        stats, unit = RunningStats(), "characters"
        for chunk in _chunks(dataset, column, rows):
            lengths, unit = _text_lengths(model, chunk, task)
            stats.add(lengths)
        return {
            "dtype": "string",
            "data": {
                "min": f"{round(stats.min, 2)} {unit}",
                "mean": f"{round(stats.mean, 2)} {unit}",
                "max": f"{round(stats.max, 2)} {unit}",
            },
        }
    if isinstance(first, (bool, int)):
        counts: Counter = Counter()
        for chunk in _chunks(dataset, column, rows):
            counts.update(chunk)
        seen = sum(counts.values())
        approx = "~" if len(counts) > 1 else ""
        return {
            "dtype": type(first).__name__,
            "data": {value: f"{approx}{counts[value] / seen:.2%}" for value in sorted(counts)},
        }
    if isinstance(first, float):
        stats = RunningStats()
        for chunk in _chunks(dataset, column, rows):
            stats.add(float(value) for value in chunk)
        return {
            "dtype": "float",
            "data": {"min": round(stats.min, 2), "mean": round(stats.mean, 2), "max": round(stats.max, 2)},
        }
    if isinstance(first, list):
        stats = RunningStats()
        for chunk in _chunks(dataset, column, rows):
            stats.add(len(value) for value in chunk)
        if stats.min == stats.max:
            return {"dtype": "list", "data": {"size": f"{int(stats.min)} elements"}}
        return {
            "dtype": "list",
            "data": {
                "min": f"{int(stats.min)} elements",
                "mean": f"{stats.mean:.2f} elements",
                "max": f"{int(stats.max)} elements",
            },
        }
    if media.is_pil_image(first):
        widths, heights = RunningStats(), RunningStats()
        for chunk in _chunks(dataset, column, rows):
            images = [image for image in chunk if media.is_pil_image(image)]
            widths.add(image.width for image in images)
            heights.add(image.height for image in images)
        return {
            "dtype": "image",
            "data": {
                name: f"{int(width)}x{int(height)} px"
                for name, width, height in (
                    ("min", widths.min, heights.min),
                    ("mean", widths.mean, heights.mean),
                    ("max", widths.max, heights.max),
                )
            },
        }
    if media.is_audio_dict(first) and raw_modality == "audio":
        durations = RunningStats()
        for chunk in _chunks(dataset, column, rows):
            durations.add(len(clip["array"]) / clip["sampling_rate"] for clip in chunk if media.is_audio_dict(clip))
        data: dict[str, Any] = {}
        if durations.count:
            data = {"min": f"{durations.min:.2f}s", "mean": f"{durations.mean:.2f}s", "max": f"{durations.max:.2f}s"}
        data["sampling_rate"] = f"{first['sampling_rate']} Hz"
        return {"dtype": "audio", "data": data}
    return {"dtype": fullname(first), "data": {}}


def format_sample_value(value: Any) -> str:
    """One table cell: long texts and lists shortened, Markdown table syntax neutralised."""
    if isinstance(value, list) and len(value) > MAX_SAMPLE_LIST:
        value = str(value[:MAX_SAMPLE_LIST])[:-1] + ", ...]"
    elif isinstance(value, str) and len(value) > MAX_SAMPLE_CHARS:
        value = value[:MAX_SAMPLE_CHARS] + "..."
    text = str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("\n", "<br>").replace("|", "\\|")


def describe_loss(loss: Any) -> dict[str, Any]:
    """The loss's class path and, when it has one, its configuration as indented JSON."""
    described: dict[str, Any] = {"fullname": fullname(loss)}
    config = {key: _describe_config_value(value) for key, value in getattr(loss, "get_config_dict", dict)().items()}
    # An empty configuration shows nothing, as for a loss without one (a "{}" block says nothing).
    if config:
        try:
            described["config_code"] = json.dumps(config, indent=4)
        except TypeError:
            described["config_code"] = pformat(config, indent=4)
        described["config"] = config
    return described


def _describe_config_value(value: Any) -> Any:
    """Modules inside a loss config (a wrapped loss, a teacher model) become a readable call-like string."""
    if not isinstance(value, nn.Module):
        return value
    parts = []
    card_data = getattr(value, "model_card_data", None)
    if card_data is not None and getattr(card_data, "base_model", None):
        parts.append(repr(card_data.base_model))
    get_config = getattr(value, "get_config_dict", None)
    if callable(get_config):
        parts += [f"{key}={item!r}" for key, item in get_config().items()]
    return f"{type(value).__name__}({', '.join(parts)})" if parts else type(value).__name__


def compute_dataset_metrics(
    dataset: Any,
    dataset_info: dict[str, Any],
    loss: Any,
    model: Any = None,
    router_mapping: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Fill ``dataset_info`` with size, columns, per-column statistics, samples and the loss description."""
    if dataset is None:
        return dataset_info
    columns = dataset_columns(dataset)
    dataset_info["columns"] = columns
    dataset_info["stats"] = {}
    if is_sized_dataset(dataset):
        dataset_info["size"] = len(dataset)
        if len(dataset) > 0:
            for column in columns:
                dataset_info["stats"][column] = column_stats(
                    dataset, column, model=model, task=(router_mapping or {}).get(column)
                )
            head = dataset[: min(SAMPLE_ROWS, len(dataset))]
            dataset_info["examples"] = [
                {column: head[column][row] for column in columns} for row in range(len(head[columns[0]]))
            ]
    if loss is not None:
        dataset_info["loss"] = describe_loss(loss)
    return dataset_info


def stats_table(dataset_info: dict[str, Any]) -> str:
    """Markdown table: one column per dataset column, rows for the type and the statistics."""
    stats = dataset_info.get("stats") or {}
    if not stats:
        return ""
    rows = [
        {"": "type", **{column: entry["dtype"] for column, entry in stats.items()}},
        {"": "modality", **{column: entry.get("modality", "") for column, entry in stats.items()}},
        {"": "details", **{column: html_list(entry["data"]) for column, entry in stats.items()}},
    ]
    return markdown_table(rows)


def samples_table(dataset_info: dict[str, Any], format_cell: Any = None) -> str:
    """Markdown table of the first few rows, each cell in <code> (or as ``format_cell(value)`` makes it)."""
    examples = dataset_info.get("examples") or []
    if not examples:
        return ""
    if format_cell is None:
        format_cell = code_cell
    rows = [{column: format_cell(value) for column, value in row.items()} for row in examples]
    return markdown_table(rows)


def code_cell(value: Any) -> str:
    """A samples-table cell: media described in words, any other value as escaped code."""
    if media.is_pil_image(value) or media.is_typed_media_dict(value):
        return f"<code>{media.format_example_value(value)}</code>"
    return f"<code>{format_sample_value(value)}</code>"
