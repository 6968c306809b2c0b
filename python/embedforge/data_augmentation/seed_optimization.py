"""Seed optimisation: train with several seeds, stop each early, finish only the most promising ones.

Fine-tuning on a small dataset depends strongly on the random seed (weight initialisation of new
layers, data order); Dodge et al. (2020, "Fine-Tuning Pretrained Language Models: Weight
Initializations, Data Orders, and Early Stopping") find that a seed's score after 20-30% of an
epoch already predicts its final score well. :func:`seed_search` trains one fresh model per seed
for ``stop_after`` of the steps, scores it on the dev evaluator, then trains the ``keep`` best
seeds to the end and returns the best of those.

A finished run retrains from scratch with its seed rather than resuming the early-stopped one:
with the same seed, the first ``stop_after`` of the run is identical, and nothing has to be kept
in memory or on disk in between.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

from embedforge.data_augmentation.training import output_folder
from embedforge.exceptions import InvalidArgumentError

if TYPE_CHECKING:
    from datasets import Dataset
    from torch import nn
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from embedforge.sentence_transformer.model import SentenceTransformer

logger = logging.getLogger(__name__)


class StopAfterStepsCallback(TrainerCallback):
    """Ends training once ``num_steps`` optimizer steps are done (the trainer's scheduler still plans the full run)."""

    def __init__(self, num_steps: int) -> None:
        if not isinstance(num_steps, int) or isinstance(num_steps, bool) or num_steps < 1:
            raise InvalidArgumentError(f"num_steps={num_steps!r}; expected a positive integer")
        self.num_steps = num_steps

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> TrainerControl:
        if state.global_step >= self.num_steps:
            control.should_training_stop = True
        return control


@dataclass
class SeedSearchResult:
    """Scores of every seed after early stopping, of the finished seeds, and the best finished model."""

    early_scores: dict[int, float] = field(default_factory=dict)
    final_scores: dict[int, float] = field(default_factory=dict)
    best_seed: int | None = None
    best_model: SentenceTransformer | None = None


def seed_search(
    model_factory: Callable[[], SentenceTransformer],
    train_dataset: Dataset,
    loss_factory: Callable[[SentenceTransformer], nn.Module],
    evaluator: Any,
    seeds: Iterable[int] = range(5),
    stop_after: float = 0.3,
    keep: int = 1,
    training_args: dict[str, Any] | None = None,
    metric: str | None = None,
) -> SeedSearchResult:
    """Try each seed for ``stop_after`` of the training steps, then finish the ``keep`` best.

    ``model_factory`` builds a fresh model (it runs after the seed is set, so new layers are
    initialised from it); ``loss_factory(model)`` builds its loss; ``evaluator`` scores a model on
    dev data, and ``metric`` (default: the evaluator's ``primary_metric``) picks the score that
    ranks seeds. ``training_args`` are SentenceTransformerTrainingArguments keywords (output_dir
    defaults to a temporary folder per run; ``seed`` is set per run).
    """
    from transformers import set_seed

    from embedforge.sentence_transformer.trainer import SentenceTransformerTrainer
    from embedforge.sentence_transformer.training_args import SentenceTransformerTrainingArguments

    seeds = list(seeds)
    if not seeds or not all(isinstance(seed, int) for seed in seeds):
        raise InvalidArgumentError(f"seeds={seeds!r}; expected a non-empty list of integers")
    if not 0.0 < stop_after <= 1.0:
        raise InvalidArgumentError(f"stop_after={stop_after!r}; expected a fraction of the training in (0, 1]")
    if not isinstance(keep, int) or not 1 <= keep <= len(seeds):
        raise InvalidArgumentError(f"keep={keep!r}; expected an integer from 1 to the number of seeds ({len(seeds)})")

    def run(seed: int, stop_fraction: float | None) -> tuple[float, SentenceTransformer]:
        set_seed(seed)
        model = model_factory()
        arguments = {"report_to": "none", "save_strategy": "no", **(training_args or {}), "seed": seed}
        with output_folder(arguments.get("output_dir")) as folder:
            arguments["output_dir"] = folder
            args = SentenceTransformerTrainingArguments(**arguments)
            trainer = SentenceTransformerTrainer(
                model=model, args=args, train_dataset=train_dataset, loss=loss_factory(model)
            )
            if stop_fraction is not None:
                # The optimizer steps the run plans, counted as transformers' Trainer does: max_steps if set,
                # else epochs x batches per epoch / gradient accumulation (rounded up).
                planned = args.max_steps
                if planned <= 0:
                    batches = len(trainer.get_train_dataloader())
                    per_epoch = max(math.ceil(batches / args.gradient_accumulation_steps), 1)
                    planned = math.ceil(args.num_train_epochs * per_epoch)
                trainer.add_callback(StopAfterStepsCallback(max(math.ceil(planned * stop_fraction), 1)))
            trainer.train()
        scores = evaluator(model)
        # After a call, an evaluator's primary_metric names its main score, prefixed like the score keys.
        key = metric or getattr(evaluator, "primary_metric", None)
        if key not in scores:
            raise InvalidArgumentError(f"metric={key!r} is not among the evaluator's scores {sorted(scores)}")
        return float(scores[key]), model

    result = SeedSearchResult()
    whole_runs: dict[int, SentenceTransformer] = {}  # with stop_after=1 the early runs are already the whole runs
    for seed in seeds:
        result.early_scores[seed], model = run(seed, stop_after if stop_after < 1.0 else None)
        if stop_after == 1.0:
            whole_runs[seed] = model
        logger.info("seed %d after %.0f%% of training: %.4f", seed, 100 * stop_after, result.early_scores[seed])
    ranked = sorted(result.early_scores, key=lambda seed: result.early_scores[seed], reverse=True)
    best_score = -math.inf
    for seed in ranked[:keep]:
        if seed in whole_runs:
            score, model = result.early_scores[seed], whole_runs[seed]
        else:
            score, model = run(seed, None)
        result.final_scores[seed] = score
        logger.info("seed %d after all of training: %.4f", seed, score)
        if score > best_score:
            best_score, result.best_seed, result.best_model = score, seed, model
    return result
