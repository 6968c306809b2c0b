"""The v2 module paths of the fit-era classes (``readers.InputExample``, ``datasets.NoDuplicatesDataLoader``, ...).

sentence-transformers v2 kept one class per CamelCase module, and old scripts import from those
modules (``from sentence_transformers.readers.InputExample import InputExample``). Registering each
old path in ``sys.modules`` as an alias of the module that now holds the class keeps those imports
working, while the package attribute of the same name stays the class.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping


def register_legacy_modules(package: str, modules_by_old_name: Mapping[str, str]) -> None:
    """Alias ``package.<OldName>`` to ``package.<module>`` for each entry, without touching the package's attributes."""
    for old_name, module in modules_by_old_name.items():
        sys.modules.setdefault(f"{package}.{old_name}", importlib.import_module(f"{package}.{module}"))
