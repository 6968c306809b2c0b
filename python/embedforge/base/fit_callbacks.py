"""Trainer callbacks that give the legacy ``model.fit`` of every kind its pre-v3 behaviour on top of the trainer.

Kept apart from fit_mixin so that ``import embedforge`` does not load transformers' trainer machinery.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState

from embedforge.base.evaluation.evaluator import find_primary_metric


class SaveModelCallback(TrainerCallback):
    """Save the model to ``output_dir``: on each better evaluation when there is an evaluator and
    ``save_best_model`` is set, or once at the end of training when there is no evaluator."""

    def __init__(self, output_dir: str, evaluator: Any | None, save_best_model: bool) -> None:
        super().__init__()
        self.output_dir = output_dir
        self.evaluator = evaluator
        self.save_best_model = save_best_model
        self.best_metric: float | None = None

    def is_better(self, new_metric: float) -> bool:
        """Whether ``new_metric`` beats the best so far, in the evaluator's direction."""
        if self.best_metric is None:
            return True
        if getattr(self.evaluator, "greater_is_better", True):
            return new_metric > self.best_metric
        return new_metric < self.best_metric

    def on_evaluate(self, args: Any, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if self.evaluator is None or not self.save_best_model:
            return
        found, value = find_primary_metric(kwargs["metrics"], self.evaluator)
        if found and self.is_better(value):
            self.best_metric = value
            kwargs["model"].save(self.output_dir)

    def on_train_end(self, args: Any, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if self.evaluator is None:
            kwargs["model"].save(self.output_dir)


class EvaluatorCallback(TrainerCallback):
    """Run the evaluator at the end of every epoch, as the old ``fit`` did, and report its metrics
    (prefixed ``eval_``) through the trainer's ``on_evaluate`` so that the other callbacks see them.

    Set ``.trainer`` once the trainer exists.
    """

    def __init__(self, evaluator: Any, output_path: str | None = None) -> None:
        super().__init__()
        self.evaluator = evaluator
        self.output_path = output_path
        if output_path is not None:
            self.output_path = os.path.join(output_path, "eval")
            os.makedirs(self.output_path, exist_ok=True)
        self.metric_key_prefix = "eval"
        self.trainer: Any = None

    def on_epoch_end(self, args: Any, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        result = self.evaluator(
            kwargs["model"], output_path=self.output_path, epoch=state.epoch, steps=state.global_step
        )
        if not isinstance(result, dict):
            result = {"evaluator": result}
        prefix = f"{self.metric_key_prefix}_"
        metrics = {key if key.startswith(prefix) else prefix + key: value for key, value in result.items()}
        if self.trainer is not None:
            self.trainer.callback_handler.on_evaluate(args, state, control, metrics=metrics)


class OriginalCallback(TrainerCallback):
    """Call fit's ``callback(score, epoch, steps)`` after each evaluation with the evaluator's primary metric."""

    def __init__(self, callback: Callable[..., None], evaluator: Any) -> None:
        super().__init__()
        self.callback = callback
        self.evaluator = evaluator

    def on_evaluate(self, args: Any, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        found, value = find_primary_metric(kwargs["metrics"], self.evaluator)
        if found:
            self.callback(value, state.epoch, state.global_step)
