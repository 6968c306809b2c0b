"""Opening the readers' text files: gzip by suffix, utf-8 always."""

from __future__ import annotations

import gzip
import os
from typing import IO

from embedforge.exceptions import InvalidArgumentError


def open_text(path: str | os.PathLike[str]) -> IO[str]:
    """Open ``path`` for reading as utf-8 text, decompressing it when its name ends in ``.gz``."""
    path = os.fspath(path)
    if str(path).endswith(".gz"):
        return gzip.open(path, mode="rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def column(row: list[str], index: int, name: str, where: str) -> str:
    """``row[index]``, or an error naming the reader argument, the row and how many columns it has."""
    try:
        return row[index]
    except IndexError:
        raise InvalidArgumentError(
            f"{where} has {len(row)} column(s); {name}={index} asks for a column that is not there"
        ) from None


def reached(count: int, max_examples: int | None) -> bool:
    """Whether ``count`` examples fill the reader's limit (0 or None means no limit)."""
    return max_examples is not None and 0 < max_examples <= count
