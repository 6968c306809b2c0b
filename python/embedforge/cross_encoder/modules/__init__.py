"""The modules a CrossEncoder is built from: the shared ones of :mod:`embedforge.base.modules`, and
LogitScore for rerankers backed by a causal language model."""

from __future__ import annotations

from embedforge.base.modules import Asym, Dense, InputModule, Module, Router, Transformer
from embedforge.cross_encoder.modules.logit_score import LogitScore

__all__ = ["Asym", "Dense", "InputModule", "LogitScore", "Module", "Router", "Transformer"]
