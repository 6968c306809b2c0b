"""The pre-v3 training API: ``model.fit(train_objectives=[(dataloader, loss), ...])`` and ``model.old_fit``.

``fit`` keeps old scripts running on the modern stack: it reads the InputExamples out of each
DataLoader into a ``datasets`` column table and hands them to ``SentenceTransformerTrainer``, as
sentence-transformers 6.2 does (one dataset per objective, round-robin between them, the loader's
batch size, ``NoDuplicatesDataLoader`` -> the ``no_duplicates`` sampler, ``SentenceLabelDataset`` ->
``group_by_label``). ``old_fit`` is the original hand-written loop, for scripts that depend on it.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from torch import Tensor, nn
from torch.optim import Optimizer
from tqdm.autonotebook import trange

from embedforge.base.evaluation.evaluator import find_primary_metric
from embedforge.base.fit_helpers import (
    dataloaders_to_datasets,
    default_checkpoint_dir,
    get_scheduler,
    grouped_parameters,
)
from embedforge.exceptions import InvalidArgumentError
from embedforge.util import batch_to_device

if TYPE_CHECKING:
    from torch.optim.lr_scheduler import LambdaLR
    from transformers import TrainerCallback

    from embedforge.sentence_transformer.readers.input_example import InputExample

logger = logging.getLogger(__name__)

_CALLBACKS = ("EvaluatorCallback", "OriginalCallback", "SaveModelCallback")


def __getattr__(name: str) -> Any:
    """The fit callbacks, importable from here as in sentence-transformers, loaded (with transformers) on first use."""
    if name in _CALLBACKS:
        from embedforge.base import fit_callbacks

        return getattr(fit_callbacks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _latest_checkpoint(checkpoint_path: str) -> str | None:
    """The ``checkpoint-<step>`` folder with the highest step under ``checkpoint_path``, if any."""
    if not os.path.isdir(checkpoint_path):
        logger.warning("Checkpoint folder %s does not exist; training from the start", checkpoint_path)
        return None
    steps = [
        int(name.split("-")[-1])
        for name in os.listdir(checkpoint_path)
        if name.startswith("checkpoint-") and name.split("-")[-1].isdigit()
    ]
    if not steps:
        logger.warning("No checkpoints found in %s; training from the start", checkpoint_path)
        return None
    latest = os.path.join(checkpoint_path, f"checkpoint-{max(steps)}")
    logger.info("Resuming from checkpoint %s", latest)
    return latest


class FitMixin:
    """Adds ``fit`` and ``old_fit`` (the pre-v3 training API) to SentenceTransformer."""

    def fit(
        self,
        train_objectives: Iterable[tuple[Any, nn.Module]],
        evaluator: Any | None = None,
        epochs: int = 1,
        steps_per_epoch: int | None = None,
        scheduler: str = "WarmupLinear",
        warmup_steps: int = 10000,
        optimizer_class: type[Optimizer] = torch.optim.AdamW,
        optimizer_params: dict[str, Any] = {"lr": 2e-5},  # noqa: B006 (never mutated; shown as in sentence-transformers)
        weight_decay: float = 0.01,
        evaluation_steps: int = 0,
        output_path: str | None = None,
        save_best_model: bool = True,
        max_grad_norm: float = 1,
        use_amp: bool = False,
        callback: Callable[[float, int, int], None] | None = None,
        show_progress_bar: bool = True,
        checkpoint_path: str | None = None,
        checkpoint_save_steps: int = 500,
        checkpoint_save_total_limit: int = 0,
        resume_from_checkpoint: bool = False,
    ) -> None:
        """Train on ``(DataLoader of InputExamples, loss)`` objectives, one batch of each in turn.

        Runs :class:`~embedforge.sentence_transformer.trainer.SentenceTransformerTrainer` underneath. Each epoch takes as
        many batches from every objective as the smallest one has. ``evaluator`` runs every
        ``evaluation_steps`` steps (if > 0) and at each epoch end; ``callback(score, epoch, steps)``
        is called with its primary score. With ``output_path`` the model is saved there: after each
        better evaluation when ``save_best_model`` (with an evaluator), else at the end. Checkpoints
        go to ``checkpoint_path`` every ``checkpoint_save_steps`` steps, keeping the newest
        ``checkpoint_save_total_limit`` (0: all). ``scheduler`` is one of constantlr, warmupconstant,
        warmuplinear, warmupcosine, warmupcosinewithhardrestarts (any case). ``steps_per_epoch``
        only applies when ``epochs`` is 1.
        """
        from embedforge.base.fit_callbacks import EvaluatorCallback, OriginalCallback, SaveModelCallback
        from embedforge.sentence_transformer.trainer import SentenceTransformerTrainer
        from embedforge.sentence_transformer.training_args import SentenceTransformerTrainingArguments

        objectives = list(train_objectives)
        if not objectives:
            raise InvalidArgumentError("train_objectives is empty: expected a list of (DataLoader, loss) pairs")
        data_loaders = [data_loader for data_loader, _ in objectives]
        losses: dict[str, Any] = {f"_dataset_{index}": loss for index, (_, loss) in enumerate(objectives, start=1)}
        train_dataset, batch_size, batch_sampler = dataloaders_to_datasets(data_loaders)

        max_steps = -1
        if steps_per_epoch is not None and steps_per_epoch > 0:
            if epochs == 1:
                max_steps = steps_per_epoch
            else:
                logger.warning("steps_per_epoch is ignored when epochs > 1: every epoch trains on the full datasets.")
                steps_per_epoch = None

        args = SentenceTransformerTrainingArguments(
            output_dir=checkpoint_path or default_checkpoint_dir(),
            batch_sampler=batch_sampler,
            multi_dataset_batch_sampler="round_robin",
            per_device_train_batch_size=batch_size,
            per_device_eval_batch_size=batch_size,
            num_train_epochs=epochs,
            max_steps=max_steps,
            eval_strategy="steps" if evaluation_steps is not None and evaluation_steps > 0 else "no",
            eval_steps=evaluation_steps,
            max_grad_norm=max_grad_norm,
            fp16=use_amp,
            disable_tqdm=not show_progress_bar,
            save_strategy="steps" if checkpoint_path is not None else "no",
            save_steps=checkpoint_save_steps,
            save_total_limit=checkpoint_save_total_limit,
        )

        if not steps_per_epoch:
            steps_per_epoch = min(len(dataset) // batch_size for dataset in train_dataset.values())
        num_train_steps = max_steps if max_steps > 0 else int(steps_per_epoch * epochs) * len(losses)

        # Losses usually hold the model: ModuleDict lists each shared parameter once, under "model.".
        parameters = nn.ModuleDict({"model": self, **losses}).named_parameters()  # type: ignore[dict-item]
        optimizer = optimizer_class(grouped_parameters(parameters, weight_decay), **optimizer_params)
        scheduler_obj = self._get_scheduler(
            optimizer, scheduler=scheduler, warmup_steps=warmup_steps, t_total=num_train_steps
        )

        callbacks: list[TrainerCallback] = []
        evaluator_callback = None
        if evaluator is not None:
            evaluator_callback = EvaluatorCallback(evaluator, output_path)
            callbacks.append(evaluator_callback)
            if callback is not None:
                callbacks.append(OriginalCallback(callback, evaluator))

        trainer = SentenceTransformerTrainer(
            model=cast(Any, self),
            args=args,
            train_dataset=train_dataset,
            eval_dataset=None,
            loss=losses,
            evaluator=evaluator,
            optimizers=(optimizer, scheduler_obj),
            callbacks=callbacks,
        )
        if evaluator_callback is not None:
            evaluator_callback.trainer = trainer
        if output_path is not None:
            trainer.add_callback(SaveModelCallback(output_path, evaluator, save_best_model))

        # False (not None) when not resuming, exactly what sentence-transformers passes on.
        resume: str | bool | None = resume_from_checkpoint
        if checkpoint_path is not None and resume_from_checkpoint:
            resume = _latest_checkpoint(checkpoint_path)
        trainer.train(resume_from_checkpoint=resume)

    @staticmethod
    def _get_scheduler(optimizer: Optimizer, scheduler: str, warmup_steps: int, t_total: int) -> LambdaLR:
        """The learning-rate schedule named ``scheduler`` (see :data:`~embedforge.base.fit_helpers.SCHEDULERS`)."""
        return get_scheduler(optimizer, scheduler, warmup_steps, t_total)

    def smart_batching_collate(self, batch: list[InputExample]) -> tuple[list[dict[str, Tensor]], Tensor]:
        """Turn a batch of InputExamples into (one tokenised feature dict per text column, label tensor)."""
        texts = [example.texts for example in batch]
        features = [self.preprocess(list(column)) for column in zip(*texts)]  # type: ignore[attr-defined]
        labels = [example.label for example in batch]
        if labels and isinstance(labels[0], np.ndarray):
            return features, torch.from_numpy(np.stack(labels))
        return features, torch.tensor(labels)

    def old_fit(
        self,
        train_objectives: Iterable[tuple[Any, nn.Module]],
        evaluator: Any | None = None,
        epochs: int = 1,
        steps_per_epoch: int | None = None,
        scheduler: str = "WarmupLinear",
        warmup_steps: int = 10000,
        optimizer_class: type[Optimizer] = torch.optim.AdamW,
        optimizer_params: dict[str, Any] = {"lr": 2e-5},  # noqa: B006 (never mutated; shown as in sentence-transformers)
        weight_decay: float = 0.01,
        evaluation_steps: int = 0,
        output_path: str | None = None,
        save_best_model: bool = True,
        max_grad_norm: float = 1,
        use_amp: bool = False,
        callback: Callable[[float, int, int], None] | None = None,
        show_progress_bar: bool = True,
        checkpoint_path: str | None = None,
        checkpoint_save_steps: int = 500,
        checkpoint_save_total_limit: int = 0,
    ) -> None:
        """The pre-v3 training loop, kept for scripts that depend on its exact behaviour.

        Each objective has its own optimizer and schedule; every step takes one batch from each
        objective in turn. Arguments mean the same as in :meth:`fit`; checkpoints are saved as
        ``checkpoint_path/<step>`` model folders.
        """
        model: Any = self
        objectives = list(train_objectives)
        if not objectives:
            raise InvalidArgumentError("train_objectives is empty: expected a list of (DataLoader, loss) pairs")
        device = model.device
        scaler = torch.amp.GradScaler(device.type) if use_amp else None
        model.to(device)

        data_loaders = [data_loader for data_loader, _ in objectives]
        for data_loader in data_loaders:
            data_loader.collate_fn = self.smart_batching_collate
        loss_models = [loss for _, loss in objectives]
        for loss_model in loss_models:
            loss_model.to(device)
        self.best_score = -9999999

        if not steps_per_epoch:
            steps_per_epoch = min(len(data_loader) for data_loader in data_loaders)
        num_train_steps = int(steps_per_epoch * epochs)

        optimizers, schedulers = [], []
        for loss_model in loss_models:
            optimizer = optimizer_class(
                grouped_parameters(loss_model.named_parameters(), weight_decay), **optimizer_params
            )
            optimizers.append(optimizer)
            schedulers.append(
                self._get_scheduler(optimizer, scheduler=scheduler, warmup_steps=warmup_steps, t_total=num_train_steps)
            )

        global_step = 0
        iterators = [iter(data_loader) for data_loader in data_loaders]
        skip_scheduler = False
        for epoch in trange(epochs, desc="Epoch", disable=not show_progress_bar):
            for loss_model in loss_models:
                loss_model.zero_grad()
                loss_model.train()
            steps = trange(steps_per_epoch, desc="Iteration", smoothing=0.05, disable=not show_progress_bar)
            for training_steps, _ in enumerate(steps, start=1):
                for index, loss_model in enumerate(loss_models):
                    optimizer = optimizers[index]
                    try:
                        features, labels = next(iterators[index])
                    except StopIteration:
                        # A loader that runs out starts over; the epoch length is set by steps_per_epoch.
                        iterators[index] = iter(data_loaders[index])
                        features, labels = next(iterators[index])
                    # collate always builds a label tensor (zeros when none were given); embedforge's
                    # label-free losses reject labels, so they get None, as the trainer gives them.
                    labels = None if getattr(loss_model, "requires_label", None) is False else labels.to(device)
                    features = [batch_to_device(feature, device) for feature in features]
                    if scaler is not None:
                        with torch.autocast(device_type=device.type):
                            loss_value = loss_model(features, labels)
                        scale_before = scaler.get_scale()
                        scaler.scale(loss_value).backward()
                        scaler.unscale_(optimizer)
                        torch.nn.utils.clip_grad_norm_(loss_model.parameters(), max_grad_norm)
                        scaler.step(optimizer)
                        scaler.update()
                        # A changed scale means the step was skipped (inf/nan gradients): keep the schedule too.
                        skip_scheduler = scaler.get_scale() != scale_before
                    else:
                        loss_value = loss_model(features, labels)
                        loss_value.backward()
                        torch.nn.utils.clip_grad_norm_(loss_model.parameters(), max_grad_norm)
                        optimizer.step()
                    optimizer.zero_grad()
                    if not skip_scheduler:
                        schedulers[index].step()

                global_step += 1
                if evaluation_steps > 0 and training_steps % evaluation_steps == 0:
                    self._eval_during_training(evaluator, output_path, save_best_model, epoch, training_steps, callback)
                    for loss_model in loss_models:
                        loss_model.zero_grad()
                        loss_model.train()
                save_now = checkpoint_save_steps is not None and checkpoint_save_steps > 0
                if checkpoint_path is not None and save_now and global_step % checkpoint_save_steps == 0:
                    self._save_checkpoint(checkpoint_path, checkpoint_save_total_limit, global_step)

            self._eval_during_training(evaluator, output_path, save_best_model, epoch, -1, callback)

        if evaluator is None and output_path is not None:
            model.save(output_path)
        if checkpoint_path is not None:
            self._save_checkpoint(checkpoint_path, checkpoint_save_total_limit, global_step)

    def _eval_during_training(
        self,
        evaluator: Any | None,
        output_path: str | None,
        save_best_model: bool,
        epoch: int,
        steps: int,
        callback: Callable[[float, int, int], None] | None,
    ) -> None:
        """old_fit's evaluation: score, call ``callback``, and save the model when the score is a new best."""
        eval_path = None
        if output_path is not None:
            eval_path = os.path.join(output_path, "eval")
            os.makedirs(eval_path, exist_ok=True)
        if evaluator is None:
            return
        score = evaluator(self, output_path=eval_path, epoch=epoch, steps=steps)
        if isinstance(score, dict):
            found, score = find_primary_metric(score, evaluator)
            if not found:
                raise InvalidArgumentError(
                    f"evaluator {type(evaluator).__name__} returned no value for its primary metric "
                    f"{getattr(evaluator, 'primary_metric', None)!r}"
                )
        if callback is not None:
            callback(score, epoch, steps)
        if score > self.best_score:
            self.best_score = score
            if save_best_model and output_path is not None:
                self.save(output_path)  # type: ignore[attr-defined]

    def _save_checkpoint(self, checkpoint_path: str, checkpoint_save_total_limit: int | None, step: int) -> None:
        """Save ``checkpoint_path/<step>`` and delete the oldest step folder beyond the limit (0: keep all)."""
        self.save(os.path.join(checkpoint_path, str(step)))  # type: ignore[attr-defined]
        if not checkpoint_save_total_limit or checkpoint_save_total_limit <= 0:
            return
        steps = sorted(int(name) for name in os.listdir(checkpoint_path) if name.isdigit())
        if len(steps) > checkpoint_save_total_limit:
            shutil.rmtree(os.path.join(checkpoint_path, str(steps[0])))
