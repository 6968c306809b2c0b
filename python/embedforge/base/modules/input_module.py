"""InputModule: the first module of a model, which turns raw inputs into tensors.

The class lives in :mod:`embedforge.base.modules.module`, where embedforge's earlier layout kept it
(``embedforge.models.module.InputModule``); this is its sentence-transformers 6 import path.
"""

from __future__ import annotations

from embedforge.base.modules.module import InputModule

__all__ = ["InputModule"]
