"""SentenceTransformerTrainer: the trainer of SentenceTransformer models, a thin kind on :class:`BaseTrainer`.

It adds what is particular to embedding models: CoSENTLoss as the default loss, and the sparse
optimizer for trainable StaticEmbedding modules.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from torch import nn

from embedforge.base.trainer import BaseTrainer
from embedforge.base.training_args import BaseTrainingArguments
from embedforge.sentence_transformer.data_collator import SentenceTransformerDataCollator
from embedforge.sentence_transformer.static_training import sparse_static_optimizer_cls
from embedforge.sentence_transformer.training_args import SentenceTransformerTrainingArguments

if TYPE_CHECKING:
    from embedforge.sentence_transformer.model import SentenceTransformer

logger = logging.getLogger(__name__)


class SentenceTransformerTrainer(BaseTrainer):
    """Train a :class:`~embedforge.SentenceTransformer` with a loss (or one loss per dataset) and evaluators.

    ``train_dataset``/``eval_dataset`` are a ``datasets.Dataset``, a ``DatasetDict`` (or dict of
    datasets: each batch then comes from one dataset), or an ``IterableDataset``. The column named
    ``label``/``labels``/``score``/``scores`` is the label; every other column is a text input, by
    position. ``loss`` is a loss module, a dict of them by dataset name, or a factory taking the model
    (needed with ``model_init``); it defaults to CoSENTLoss. ``evaluator`` (one or a list) runs on the
    evaluation schedule, its metrics logged with an ``eval_`` prefix.
    """

    training_args_class = SentenceTransformerTrainingArguments
    data_collator_class = SentenceTransformerDataCollator

    model: SentenceTransformer

    def get_default_loss(self, model: Any) -> nn.Module:
        """CoSENTLoss, the loss used when none is given (as in sentence-transformers)."""
        from embedforge.sentence_transformer.losses import CoSENTLoss

        logger.info("No loss given; using CoSENTLoss.")
        return CoSENTLoss(model)

    def adjust_optimizer_cls(self, args: BaseTrainingArguments, optimizer_cls: Any, optimizer_kwargs: dict) -> Any:
        # Single-process CPU training of a StaticEmbedding with torch's AdamW: the same arithmetic on
        # row-sparse gradients, so no 30k x dim dense gradient is materialised and zeroed each step.
        return sparse_static_optimizer_cls(self.model, args, optimizer_cls, optimizer_kwargs)


__all__ = ["SentenceTransformerTrainer"]
