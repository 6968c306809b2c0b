"""The trainer callback that records datasets, losses, hyperparameters and logs into the model card data."""

from __future__ import annotations

import time
from typing import Any

from transformers import TrainerCallback

from embedforge.base.model_card.data import get_losses
from embedforge.base.model_card.render import IGNORED_HYPERPARAMETERS


class ModelCardCallback(TrainerCallback):
    """Feed ``model.model_card_data`` from a SentenceTransformerTrainer run.

    ``default_args_dict`` is the ``to_dict()`` of default training arguments: settings that differ
    from it are listed as the run's non-default hyperparameters.
    """

    def __init__(self, default_args_dict: dict[str, Any]) -> None:
        super().__init__()
        self.default_args_dict = default_args_dict

    def on_init_end(
        self, args: Any, state: Any, control: Any, model: Any = None, trainer: Any = None, **kwargs: Any
    ) -> None:
        """Describe the trainer's datasets and losses (the trainer calls this with ``trainer=self``)."""
        # transformers.Trainer also fires on_init_end itself, without the trainer: nothing to read then.
        if trainer is None or model is None or getattr(model, "model_card_data", None) is None:
            return
        card = model.model_card_data
        card.add_tags("generated_from_trainer")
        router_mapping = getattr(args, "router_mapping", None) or {}
        loss = getattr(trainer, "loss", None)
        if trainer.train_dataset:
            card.train_datasets = card.extract_dataset_metadata(
                dataset=trainer.train_dataset,
                dataset_metadata=card.train_datasets,
                loss=loss,
                dataset_type="train",
                router_mapping=router_mapping,
            )
        if trainer.eval_dataset:
            card.eval_datasets = card.extract_dataset_metadata(
                dataset=trainer.eval_dataset,
                dataset_metadata=card.eval_datasets,
                loss=loss,
                dataset_type="eval",
                router_mapping=router_mapping,
            )
        if loss is not None:
            card.set_losses(get_losses(loss))
        dataset = trainer.eval_dataset or trainer.train_dataset
        if not card.widget and dataset and card.generate_widget_examples:
            card.set_widget_examples(dataset)

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        """Record every training argument, and those that differ from the defaults."""
        if model is None or getattr(model, "model_card_data", None) is None:
            return
        card = model.model_card_data
        settings = {key: value for key, value in args.to_dict().items() if key not in IGNORED_HYPERPARAMETERS}
        card.all_hyperparameters = settings
        card.non_default_hyperparameters = {
            key: value
            for key, value in settings.items()
            if key in self.default_args_dict and value != self.default_args_dict[key]
        }
        card._training_start_time = time.time()

    def on_evaluate(
        self,
        args: Any,
        state: Any,
        control: Any,
        model: Any = None,
        metrics: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        """Log the evaluation loss(es) at the current step and add up the evaluation time."""
        if model is None or getattr(model, "model_card_data", None) is None or not metrics:
            return
        card = model.model_card_data
        losses = {
            " ".join(key.split("_")[1:]): value
            for key, value in metrics.items()
            if key.startswith("eval_") and key.endswith("_loss")
        }
        if list(losses) == ["loss"]:
            losses = {"Validation Loss": losses["loss"]}
        if "eval_runtime" in metrics:
            card.evaluation_duration += metrics["eval_runtime"]
        card.add_training_log(state.epoch, state.global_step, losses)

    def on_log(
        self,
        args: Any,
        state: Any,
        control: Any,
        model: Any = None,
        logs: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        """Log the training loss at the current step."""
        if model is None or getattr(model, "model_card_data", None) is None or not logs or "loss" not in logs:
            return
        model.model_card_data.add_training_log(state.epoch, state.global_step, {"Training Loss": logs["loss"]})
