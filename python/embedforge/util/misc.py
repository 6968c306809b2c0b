"""Small helpers sentence-transformers exposes in ``util``: class names, imports, quiet blocks, CSV rows."""

from __future__ import annotations

import csv
import importlib
import logging
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from inspect import isclass
from typing import Any


def fullname(obj: Any) -> str:
    """``package.module.ClassName`` of a class or of an object's class (builtins by bare name).

    This is the name model folders store (``modules.json``, loss configs) to find classes again.
    """
    cls = obj if isclass(obj) else type(obj)
    module = cls.__module__
    if module is None or module == str.__module__:
        return cls.__name__
    return f"{module}.{cls.__name__}"


def import_from_string(dotted_path: str) -> Any:
    """The attribute named by the last part of ``dotted_path``, after importing the module before it.

    Raises ImportError naming the path when it has no dot, the module cannot be imported or
    lacks the attribute.
    """
    if not isinstance(dotted_path, str) or "." not in dotted_path:
        raise ImportError(f"{dotted_path!r} is not a dotted path such as 'package.module.ClassName'")
    module_path, attribute = dotted_path.rsplit(".", 1)
    with warnings.catch_warnings():
        # Old paths re-exported for compatibility warn on import; the caller asked for them.
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            # The whole path may name a module holding a class of the same name (the old
            # ``models.Transformer`` file layout): then the class is taken from that module.
            module = importlib.import_module(dotted_path)
        except ImportError:
            module = importlib.import_module(module_path)
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ImportError(f"module {module_path!r} has no attribute {attribute!r}") from None


@contextmanager
def disable_logging(highest_level: int = logging.CRITICAL) -> Iterator[None]:
    """Drop every log record up to ``highest_level`` inside the block, then restore the previous setting."""
    previous = logging.root.manager.disable
    logging.disable(highest_level)
    try:
        yield
    finally:
        logging.disable(previous)


@contextmanager
def disable_datasets_caching() -> Iterator[None]:
    """Turn off Hugging Face ``datasets`` caching inside the block (if it was on)."""
    from datasets import disable_caching, enable_caching, is_caching_enabled

    was_enabled = is_caching_enabled()
    if was_enabled:
        disable_caching()
    try:
        yield
    finally:
        if was_enabled:
            enable_caching()


def append_to_last_row(csv_path: str, additional_data: Iterable[Any]) -> bool:
    """Extend the last data row of a CSV file with ``additional_data``.

    Returns False (and leaves the file alone) when the file has no data row below its header.
    """
    with open(csv_path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if len(rows) < 2:
        return False
    rows[-1].extend(str(value) for value in additional_data)
    with open(csv_path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return True
