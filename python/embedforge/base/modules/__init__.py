"""The modules every model kind can use, and the registry that loads and saves them."""

from __future__ import annotations

from embedforge.base.modules.dense import Dense
from embedforge.base.modules.input_module import InputModule
from embedforge.base.modules.module import Module
from embedforge.base.modules.normalize import Normalize
from embedforge.base.modules.router import Asym, Router
from embedforge.base.modules.transformer import Transformer

__all__ = ["Asym", "Dense", "InputModule", "Module", "Normalize", "Router", "Transformer"]
