"""Run several evaluators in turn and combine their main scores."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .evaluator import BaseEvaluator


def _last(scores: list[float]) -> float:
    return scores[-1]


class SequentialEvaluator(BaseEvaluator):
    """Call each evaluator in order; ``main_score_function`` folds their main scores into ``sequential_score``."""

    def __init__(
        self,
        evaluators: Iterable[BaseEvaluator],
        main_score_function: Callable[[list[float]], float] = _last,
    ) -> None:
        super().__init__()
        self.evaluators = list(evaluators)
        self.main_score_function = main_score_function

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """All sub-evaluators' metrics merged, plus ``sequential_score``."""
        results: dict[str, Any] = {}
        scores: list[Any] = []
        for index, evaluator in enumerate(self.evaluators):
            evaluation = evaluator(model, output_path, epoch, steps)
            if isinstance(evaluation, dict):
                primary = getattr(evaluator, "primary_metric", None)
                # Without a primary metric, the first key stands for the evaluator.
                scores.append(evaluation[primary] if primary is not None else next(iter(evaluation.values())))
            else:
                scores.append(evaluation)
                evaluation = {f"evaluator_{index}": evaluation}
            results.update(evaluation)
        self.primary_metric = "sequential_score"
        results["sequential_score"] = self.main_score_function(scores) if scores else 0.0
        return results
