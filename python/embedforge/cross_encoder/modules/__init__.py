"""The modules a CrossEncoder is built from (the shared ones of :mod:`embedforge.base.modules`)."""

from __future__ import annotations

from embedforge.base.modules import Asym, Dense, InputModule, Module, Router, Transformer

__all__ = ["Asym", "Dense", "InputModule", "Module", "Router", "Transformer"]
