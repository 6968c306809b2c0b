"""Lazy package attributes: names served from their module on first use, so importing a package stays cheap."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(
    package: str, modules_by_name: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: each name in ``modules_by_name`` is imported from its module.

    The value is cached in ``namespace`` (the package's globals), so the import runs once.
    """

    def __getattr__(name: str) -> Any:
        module_name = modules_by_name.get(name)
        if module_name is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module_name), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(modules_by_name))

    return __getattr__, __dir__
