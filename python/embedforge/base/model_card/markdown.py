"""Small Markdown building blocks for the model card: tables, HTML lists, number formatting."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: Decimals kept for floats in tables (more is noise in a card).
DECIMALS = 4


def format_cell(value: Any) -> str:
    """A table cell: floats with at most :data:`DECIMALS` decimals, everything else as ``str``."""
    if isinstance(value, float):
        text = str(value)
        if "." in text and "e" not in text and len(text.split(".")[1]) > DECIMALS:
            return f"{value:.{DECIMALS}f}"
        return text
    return str(value)


def round_value(value: Any) -> Any:
    """Floats rounded to :data:`DECIMALS` decimals; other values unchanged."""
    return round(value, DECIMALS) if isinstance(value, float) else value


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A GitHub-flavoured Markdown table; the first row's keys are the header, cells padded for readability."""
    if not rows:
        return ""
    headers = list(rows[0].keys())
    cells = [[format_cell(row.get(header, "-")) for header in headers] for row in rows]
    widths = [max(len(str(header)), *(len(line[index]) for line in cells)) for index, header in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(value.ljust(width) for value, width in zip(values, widths)) + " |"

    separator = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([line([str(header) for header in headers]), separator, *(line(row) for row in cells)])


def html_list(items: Mapping[Any, Any]) -> str:
    """``<ul><li>key: value</li>...</ul>`` (table cells cannot hold Markdown lists)."""
    if not items:
        return ""
    return "<ul><li>" + "</li><li>".join(f"{key}: {value}" for key, value in items.items()) + "</li></ul>"


def join_names(names: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def code_block(text: str, language: str, prefix: str = "") -> str:
    """A fenced code block, every line prefixed with ``prefix`` (to nest it in a list item)."""
    return indent(f"```{language}\n{text}\n```", prefix)


def indent(text: str, prefix: str) -> str:
    """``text`` with ``prefix`` before every non-empty line."""
    return "\n".join(prefix + line if line else line for line in text.splitlines())
