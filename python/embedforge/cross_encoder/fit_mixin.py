"""The pre-v4 CrossEncoder training API: ``model.fit(train_dataloader, ...)`` and ``model.old_fit``.

``fit`` reads the InputExamples of the DataLoader into a ``datasets`` table (``sentence_0``,
``sentence_1``, ``label``) and trains with :class:`~embedforge.cross_encoder.trainer.CrossEncoderTrainer`,
as sentence-transformers 6.2 does; ``old_fit`` is the original hand-written loop over the
transformers model, for scripts that depend on its exact behaviour.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from torch.optim import Optimizer
from tqdm.autonotebook import tqdm, trange

from embedforge.base.fit_helpers import (
    dataloaders_to_datasets,
    default_checkpoint_dir,
    get_scheduler,
    grouped_parameters,
)
from embedforge.exceptions import InvalidArgumentError

if TYPE_CHECKING:
    from transformers import BatchEncoding, TrainerCallback

    from embedforge.cross_encoder.model import CrossEncoder

logger = logging.getLogger(__name__)

_CALLBACKS = ("EvaluatorCallback", "OriginalCallback", "SaveModelCallback")


def __getattr__(name: str) -> Any:
    """The fit callbacks, importable from here as in sentence-transformers, loaded (with transformers) on first use."""
    if name in _CALLBACKS:
        from embedforge.base import fit_callbacks

        return getattr(fit_callbacks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class FitMixinLoss(nn.Module):
    """Adapts a plain torch loss on (logits, labels), e.g. ``nn.MSELoss()``, to the trainer's loss interface.

    The two text columns are scored as pairs; ``activation_fn`` is applied to the logits first. A
    model with one label gets float labels and logits of shape [batch]; several labels get class ids.
    """

    def __init__(self, model: CrossEncoder, loss_fct: nn.Module, activation_fn: nn.Module = nn.Identity()) -> None:  # noqa: B008 (a stateless default, as in sentence-transformers)
        super().__init__()
        self.model = model
        self.loss_fct = loss_fct
        self.activation_fn = activation_fn

    def forward(
        self, inputs: list[list[str]], labels: Tensor, prompt: str | None = None, task: str | None = None
    ) -> Tensor:
        """The wrapped loss of the scores of the (first column, second column) pairs against ``labels``."""
        if len(inputs) != 2:
            raise InvalidArgumentError(
                f"fit() trains on pairs: each InputExample needs 2 texts, got {len(inputs)} text columns"
            )
        features = self.model.preprocess(list(zip(inputs[0], inputs[1])), prompt=prompt, task=task)
        device = self.model.device
        features = {key: value.to(device) if isinstance(value, Tensor) else value for key, value in features.items()}
        logits = self.model(features)["scores"]
        if self.model.num_labels == 1:
            logits = logits.view(-1)
            labels = labels.float()
        else:
            labels = labels.long()
        return self.loss_fct(self.activation_fn(logits), labels)


class FitMixin:
    """Adds ``fit`` and ``old_fit`` (the pre-v4 training API) to CrossEncoder."""

    def fit(
        self,
        train_dataloader: Any,
        evaluator: Any | None = None,
        epochs: int = 1,
        loss_fct: nn.Module | None = None,
        activation_fct: nn.Module = nn.Identity(),  # noqa: B008 (stateless, shown as in sentence-transformers)
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
    ) -> None:
        """Train on a DataLoader of ``InputExample(texts=[a, b], label=...)`` with CrossEncoderTrainer underneath.

        ``loss_fct`` is a plain torch loss on (logits, labels) (default: BinaryCrossEntropyLoss for one
        label, CrossEntropyLoss for several), ``activation_fct`` is applied to the logits first.
        ``evaluator`` runs every ``evaluation_steps`` steps (if > 0) and at each epoch end;
        ``callback(score, epoch, steps)`` gets its primary score. With ``output_path`` the model is
        saved there: after each better evaluation when ``save_best_model`` (with an evaluator), else
        at the end. ``scheduler`` is one of constantlr, warmupconstant, warmuplinear, warmupcosine,
        warmupcosinewithhardrestarts (any case).
        """
        from embedforge.base.fit_callbacks import EvaluatorCallback, OriginalCallback, SaveModelCallback
        from embedforge.cross_encoder.losses import BinaryCrossEntropyLoss, CrossEntropyLoss
        from embedforge.cross_encoder.trainer import CrossEncoderTrainer
        from embedforge.cross_encoder.training_args import CrossEncoderTrainingArguments

        model: CrossEncoder = self  # type: ignore[assignment]
        datasets, batch_size, batch_sampler = dataloaders_to_datasets([train_dataloader])
        train_dataset = datasets["_dataset_1"]
        args = CrossEncoderTrainingArguments(
            output_dir=default_checkpoint_dir(),
            batch_sampler=batch_sampler,
            per_device_train_batch_size=batch_size,
            per_device_eval_batch_size=batch_size,
            num_train_epochs=epochs,
            eval_strategy="steps" if evaluation_steps is not None and evaluation_steps > 0 else "no",
            eval_steps=evaluation_steps,
            max_grad_norm=max_grad_norm,
            fp16=use_amp,
            disable_tqdm=not show_progress_bar,
            save_strategy="no",
        )
        optimizer = optimizer_class(grouped_parameters(model.named_parameters(), weight_decay), **optimizer_params)
        num_train_steps = int(len(train_dataset) // batch_size * epochs)
        scheduler_obj = get_scheduler(optimizer, scheduler, warmup_steps, num_train_steps)

        loss: nn.Module
        if loss_fct is None:
            loss_class = BinaryCrossEntropyLoss if model.num_labels == 1 else CrossEntropyLoss
            loss = loss_class(model, activation_fn=activation_fct)
        else:
            loss = FitMixinLoss(model, loss_fct=loss_fct, activation_fn=activation_fct)

        callbacks: list[TrainerCallback] = []
        evaluator_callback = None
        if evaluator is not None:
            evaluator_callback = EvaluatorCallback(evaluator, output_path)
            callbacks.append(evaluator_callback)
            if callback is not None:
                callbacks.append(OriginalCallback(callback, evaluator))
        trainer = CrossEncoderTrainer(
            model=model,
            args=args,
            train_dataset=train_dataset,
            eval_dataset=None,
            loss=loss,
            evaluator=evaluator,
            optimizers=(optimizer, scheduler_obj),
            callbacks=callbacks,
        )
        if evaluator_callback is not None:
            evaluator_callback.trainer = trainer
        if output_path is not None:
            trainer.add_callback(SaveModelCallback(output_path, evaluator, save_best_model))
        trainer.train()

    def smart_batching_collate(self, batch: list[Any]) -> tuple[BatchEncoding, Tensor]:
        """old_fit's collate: InputExamples -> (tokenised pairs on the model's device, labels).

        Labels are floats for a one-label model and class ids otherwise; texts are stripped.
        """
        model: CrossEncoder = self  # type: ignore[assignment]
        tokenized = self.smart_batching_collate_text_only([example.texts for example in batch])
        dtype = torch.float if model.num_labels == 1 else torch.long
        labels = torch.tensor([example.label for example in batch], dtype=dtype).to(model.device)
        return tokenized, labels

    def smart_batching_collate_text_only(self, batch: list[Any]) -> BatchEncoding:
        """Tokenise a batch of text tuples (one per example) as pairs, on the model's device."""
        model: CrossEncoder = self  # type: ignore[assignment]
        columns: list[list[str]] = [[] for _ in range(len(batch[0]))]
        for texts in batch:
            for index, text in enumerate(texts):
                columns[index].append(text.strip())
        tokenized = model.tokenizer(*columns, padding=True, truncation="longest_first", return_tensors="pt")
        return tokenized.to(model.device)

    def old_fit(
        self,
        train_dataloader: Any,
        evaluator: Any | None = None,
        epochs: int = 1,
        loss_fct: nn.Module | None = None,
        activation_fct: nn.Module = nn.Identity(),  # noqa: B008 (stateless, shown as in sentence-transformers)
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
    ) -> None:
        """The pre-v4 training loop over the transformers model, for scripts that depend on it.

        Arguments mean the same as in :meth:`fit`; ``loss_fct`` defaults to ``nn.BCEWithLogitsLoss``
        for one label and ``nn.CrossEntropyLoss`` otherwise, and ``callback`` gets the evaluator's
        result as it is returned (a dict of metrics for the current evaluators), as the old loop did.
        """
        model: CrossEncoder = self  # type: ignore[assignment]
        network = model.model
        if network is None:
            raise InvalidArgumentError("old_fit() needs a CrossEncoder with a Transformer module")
        train_dataloader.collate_fn = self.smart_batching_collate
        device = model.device
        scaler = torch.amp.GradScaler(device.type) if use_amp else None
        if output_path is not None:
            os.makedirs(output_path, exist_ok=True)
        self.best_score = -9999999
        num_train_steps = int(len(train_dataloader) * epochs)
        optimizer = optimizer_class(grouped_parameters(network.named_parameters(), weight_decay), **optimizer_params)
        schedule = (
            get_scheduler(optimizer, scheduler, warmup_steps, num_train_steps)
            if isinstance(scheduler, str)
            else scheduler
        )
        if loss_fct is None:
            loss_fct = nn.BCEWithLogitsLoss() if model.num_labels == 1 else nn.CrossEntropyLoss()

        def batch_loss(features: Any, labels: Tensor) -> Tensor:
            logits = activation_fct(network(**features, return_dict=True).logits)
            if model.num_labels == 1:
                logits = logits.view(-1)
            return loss_fct(logits, labels)

        skip_scheduler = False
        for epoch in trange(epochs, desc="Epoch", disable=not show_progress_bar):
            network.zero_grad()
            network.train()
            for training_steps, (features, labels) in enumerate(
                tqdm(train_dataloader, desc="Iteration", smoothing=0.05, disable=not show_progress_bar), start=1
            ):
                if scaler is not None:
                    with torch.autocast(device_type=device.type):
                        loss_value = batch_loss(features, labels)
                    scale_before = scaler.get_scale()
                    scaler.scale(loss_value).backward()
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(network.parameters(), max_grad_norm)
                    scaler.step(optimizer)
                    scaler.update()
                    # A changed scale means the step was skipped (inf/nan gradients): keep the schedule too.
                    skip_scheduler = scaler.get_scale() != scale_before
                else:
                    loss_value = batch_loss(features, labels)
                    loss_value.backward()
                    torch.nn.utils.clip_grad_norm_(network.parameters(), max_grad_norm)
                    optimizer.step()
                optimizer.zero_grad()
                if not skip_scheduler:
                    schedule.step()
                if evaluator is not None and evaluation_steps > 0 and training_steps % evaluation_steps == 0:
                    self._eval_during_training(evaluator, output_path, save_best_model, epoch, training_steps, callback)
                    network.zero_grad()
                    network.train()
            if evaluator is not None:
                self._eval_during_training(evaluator, output_path, save_best_model, epoch, -1, callback)

    def _eval_during_training(
        self,
        evaluator: Any,
        output_path: str | None,
        save_best_model: bool,
        epoch: int,
        steps: int,
        callback: Callable[..., None] | None,
    ) -> None:
        """old_fit's evaluation: score, call ``callback``, and save the model when the primary score is a new best."""
        score = evaluator(self, output_path=output_path, epoch=epoch, steps=steps)
        if callback is not None:
            callback(score, epoch, steps)
        if isinstance(score, dict):
            primary = getattr(evaluator, "primary_metric", None)
            if primary not in score:
                raise InvalidArgumentError(
                    f"evaluator {type(evaluator).__name__} returned no value for its primary metric {primary!r} "
                    f"(keys: {sorted(score)})"
                )
            score = score[primary]
        if score > self.best_score:
            self.best_score = score
            if save_best_model and output_path is not None:
                self.save(output_path)  # type: ignore[attr-defined]
