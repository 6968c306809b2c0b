"""InputExample: one training example of the pre-v3 ``model.fit`` API (texts, label, id)."""

from __future__ import annotations

from typing import Any


class InputExample:
    """One example for ``model.fit``: its texts (one per input column), a label and an optional id."""

    def __init__(self, guid: str = "", texts: list[str] | None = None, label: Any = 0) -> None:
        self.guid = guid
        self.texts = texts
        self.label = label

    def __str__(self) -> str:
        texts = "; ".join(self.texts or [])
        return f"<InputExample> label: {self.label}, texts: {texts}"

    def __repr__(self) -> str:
        return f"InputExample(guid={self.guid!r}, texts={self.texts!r}, label={self.label!r})"
