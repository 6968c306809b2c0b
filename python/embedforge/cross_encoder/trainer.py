"""CrossEncoderTrainer: the trainer of CrossEncoder models, a thin kind on :class:`BaseTrainer`.

What is particular to cross-encoders: batches hold raw text columns (the losses pair and tokenise
them), the batch's prompt and Router task reach the loss as keyword arguments, and the default
loss is BinaryCrossEntropyLoss for one output label, CrossEntropyLoss for several.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from transformers import EvalPrediction, TrainerCallback

from embedforge._internal.arguments import accept_renamed_kwargs
from embedforge.base.evaluation import BaseEvaluator
from embedforge.base.trainer import BaseTrainer, LossLike
from embedforge.cross_encoder.data_collator import CrossEncoderDataCollator
from embedforge.cross_encoder.training_args import CrossEncoderTrainingArguments
from embedforge.exceptions import InvalidArgumentError

if TYPE_CHECKING:
    from embedforge.cross_encoder.model import CrossEncoder

logger = logging.getLogger(__name__)

#: Batch entries the collator adds for the loss rather than as input columns.
LOSS_KEYWORDS = ("prompt", "task")


class CrossEncoderTrainer(BaseTrainer):
    """Train a :class:`~embedforge.cross_encoder.CrossEncoder` with a loss (or one loss per dataset) and evaluators.

    Takes the same arguments as :class:`~embedforge.SentenceTransformerTrainer`. Datasets are a
    ``datasets.Dataset``, a ``DatasetDict`` or a dict of datasets (not an ``IterableDataset``: a
    batch of raw texts cannot be split across devices by accelerate). Text columns are used by
    position (e.g. query, document); the ``label``/``labels``/``score``/``scores`` column is the
    label. ``loss`` defaults to BinaryCrossEntropyLoss for a model with one label and to
    CrossEntropyLoss otherwise.
    """

    training_args_class = CrossEncoderTrainingArguments
    data_collator_class = CrossEncoderDataCollator

    model: CrossEncoder

    @accept_renamed_kwargs(tokenizer="processing_class")
    def __init__(
        self,
        model: CrossEncoder | None = None,
        args: CrossEncoderTrainingArguments | None = None,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        loss: LossLike | dict[str, LossLike] | None = None,
        evaluator: BaseEvaluator | list[BaseEvaluator] | None = None,
        data_collator: CrossEncoderDataCollator | None = None,
        processing_class: Any = None,
        model_init: Callable[..., CrossEncoder] | None = None,
        compute_metrics: Callable[[EvalPrediction], dict] | None = None,
        callbacks: list[TrainerCallback] | None = None,
        optimizers: tuple[torch.optim.Optimizer | None, torch.optim.lr_scheduler.LambdaLR | None] = (None, None),
        optimizer_cls_and_kwargs: tuple[type[torch.optim.Optimizer], dict[str, Any]] | None = None,
        preprocess_logits_for_metrics: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        for split, dataset in (("train", train_dataset), ("eval", eval_dataset)):
            parts = dataset.values() if isinstance(dataset, dict) else [dataset]
            if any(_is_iterable_dataset(part) for part in parts):
                raise InvalidArgumentError(
                    f"CrossEncoderTrainer does not support an IterableDataset for the `{split}_dataset`. Please "
                    "convert the dataset to a `Dataset` or `DatasetDict` before passing it to the trainer: its "
                    "batches are raw texts, which accelerate cannot split across processes."
                )
        self._loss_keyword_support: dict[int, bool] = {}
        super().__init__(
            model=model,
            args=args,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            loss=loss,
            evaluator=evaluator,
            data_collator=data_collator,
            processing_class=processing_class,
            model_init=model_init,
            compute_metrics=compute_metrics,
            callbacks=callbacks,
            optimizers=optimizers,
            optimizer_cls_and_kwargs=optimizer_cls_and_kwargs,
            preprocess_logits_for_metrics=preprocess_logits_for_metrics,
        )

    def get_default_loss(self, model: Any) -> nn.Module:
        """BinaryCrossEntropyLoss for one output label, CrossEntropyLoss for several (as in sentence-transformers)."""
        from embedforge.cross_encoder.losses import BinaryCrossEntropyLoss, CrossEntropyLoss

        loss: nn.Module = BinaryCrossEntropyLoss(model) if model.num_labels == 1 else CrossEntropyLoss(model)
        logger.info("No loss given; using %s.", type(loss).__name__)
        return loss

    def pop_loss_kwargs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """The batch's prompt and Router task, which the loss passes to ``model.preprocess``."""
        return {name: inputs.pop(name, None) for name in LOSS_KEYWORDS}

    def collect_features(self, inputs: dict[str, Any]) -> tuple[list[Any], Any]:
        """The text columns of the batch in column order, and the label (None without a label column)."""
        labels = inputs.pop("label", None)
        return list(inputs.values()), labels

    def call_loss(
        self, loss_fn: nn.Module, features: list[Any], labels: Any, loss_kwargs: dict[str, Any]
    ) -> torch.Tensor | dict[str, torch.Tensor]:
        """Apply the loss, with ``prompt=`` and ``task=`` when it takes them (a user's own loss may not)."""
        if self._takes_loss_keywords(loss_fn):
            return loss_fn(features, labels, **loss_kwargs)
        return loss_fn(features, labels)

    def _takes_loss_keywords(self, loss_fn: nn.Module) -> bool:
        """Whether ``loss_fn.forward`` accepts ``prompt`` and ``task`` (checked once per loss object)."""
        known = self._loss_keyword_support.get(id(loss_fn))
        if known is None:
            try:
                parameters = inspect.signature(loss_fn.forward).parameters
            except (TypeError, ValueError):
                parameters = {}  # type: ignore[assignment]
            known = all(name in parameters for name in LOSS_KEYWORDS) or any(
                parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters.values()
            )
            if not known:
                # As sentence-transformers does: train on, without the prompt and route, and say so.
                logger.warning(
                    "%s.forward does not take prompt and task keyword arguments, so training prompts and Router "
                    "routes are NOT applied with this loss; add `prompt=None, task=None` to its forward and pass "
                    "them to model.preprocess.",
                    type(loss_fn).__name__,
                )
            self._loss_keyword_support[id(loss_fn)] = known
        return known


def _is_iterable_dataset(dataset: Any) -> bool:
    try:
        from datasets import IterableDataset
    except ImportError:
        return False
    return isinstance(dataset, IterableDataset)


__all__ = ["CrossEncoderTrainer"]
