"""The evaluator base every model kind's evaluators derive from, and SequentialEvaluator."""

from __future__ import annotations

from embedforge.base.evaluation.evaluator import BaseEvaluator, SentenceEvaluator
from embedforge.base.evaluation.sequential import SequentialEvaluator

__all__ = ["BaseEvaluator", "SentenceEvaluator", "SequentialEvaluator"]
