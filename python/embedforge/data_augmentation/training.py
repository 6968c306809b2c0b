"""Steps 1 and 3 of Augmented SBERT: train the cross-encoder on labelled pairs, then the bi-encoder on gold + silver.

Both run on the trainers (``CrossEncoderTrainer``, ``SentenceTransformerTrainer``) with the
settings of the original examples unless told otherwise: one epoch, batch size 16, learning
rate 2e-5 with 10% linear warm-up, no checkpoints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from embedforge.exceptions import InvalidArgumentError

if TYPE_CHECKING:
    from datasets import Dataset

    from embedforge.cross_encoder.model import CrossEncoder
    from embedforge.sentence_transformer.model import SentenceTransformer

#: Bi-encoder losses that learn from positive pairs only (the other pairs of a batch are the negatives).
POSITIVE_PAIR_LOSSES = (
    "MultipleNegativesRankingLoss",
    "CachedMultipleNegativesRankingLoss",
    "MultipleNegativesSymmetricRankingLoss",
    "CachedMultipleNegativesSymmetricRankingLoss",
)
#: Bi-encoder losses that learn from 0/1 labels.
BINARY_LABEL_LOSSES = ("ContrastiveLoss", "OnlineContrastiveLoss")
#: Bi-encoder losses that regress a similarity score.
SCORE_LOSSES = ("CosineSimilarityLoss", "CoSENTLoss", "AnglELoss")


@dataclass
class TrainingSettings:
    """How one model of the recipe is trained; ``extra_args`` go to the training arguments as they are."""

    epochs: float = 1.0
    batch_size: int = 16
    learning_rate: float = 2e-5
    warmup_ratio: float = 0.1
    seed: int = 42
    max_steps: int = -1
    #: A loss name of ``embedforge.losses`` (bi-encoder) or ``embedforge.cross_encoder.losses``;
    #: None picks the recipe's default (CosineSimilarityLoss / BinaryCrossEntropyLoss).
    loss: str | None = None
    extra_args: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None, name: str) -> TrainingSettings:
        """Settings from a config mapping; an unknown key is an error naming ``name`` and the valid keys."""
        values = dict(values or {})
        valid = [item.name for item in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(valid))
        if unknown:
            raise InvalidArgumentError(f"{name} has unknown setting(s) {unknown}; valid settings are {valid}")
        return cls(**values)

    def arguments(self, output_dir: str) -> dict[str, Any]:
        """Keyword arguments of the kind's TrainingArguments."""
        return {
            "output_dir": output_dir,
            "num_train_epochs": self.epochs,
            "per_device_train_batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            # transformers 5 reads a warmup_steps below 1 as a ratio of the run (warmup_ratio is deprecated there).
            "warmup_steps": self.warmup_ratio,
            "seed": self.seed,
            "max_steps": self.max_steps,
            "save_strategy": "no",
            "report_to": "none",
            "logging_steps": 50,
            **self.extra_args,
        }


def train_cross_encoder(
    model: CrossEncoder,
    train_dataset: Dataset,
    settings: TrainingSettings | None = None,
    output_dir: str | None = None,
) -> CrossEncoder:
    """Train ``model`` in place on (text, text, label) rows; BinaryCrossEntropyLoss unless ``settings.loss`` says."""
    from embedforge.cross_encoder import losses as cross_encoder_losses
    from embedforge.cross_encoder.trainer import CrossEncoderTrainer
    from embedforge.cross_encoder.training_args import CrossEncoderTrainingArguments

    settings = settings or TrainingSettings()
    loss_class = _loss_class(cross_encoder_losses, settings.loss or "BinaryCrossEntropyLoss", "cross-encoder")
    with output_folder(output_dir) as folder:
        trainer = CrossEncoderTrainer(
            model=model,
            args=CrossEncoderTrainingArguments(**settings.arguments(folder)),
            train_dataset=train_dataset,
            loss=loss_class(model),
        )
        trainer.train()
    return model


def train_bi_encoder(
    model: SentenceTransformer,
    train_dataset: Dataset,
    settings: TrainingSettings | None = None,
    output_dir: str | None = None,
    threshold: float = 0.5,
) -> SentenceTransformer:
    """Train ``model`` in place on (text, text, score) rows with ``settings.loss`` (CosineSimilarityLoss by default).

    The rows are shaped for the loss: as they are for a score loss, with labels ``score >=
    threshold`` for a 0/1-label loss, and only the pairs scoring at least ``threshold`` (labels
    dropped) for an in-batch-negatives loss such as MultipleNegativesRankingLoss.
    """
    from embedforge.sentence_transformer import losses as bi_encoder_losses
    from embedforge.sentence_transformer.trainer import SentenceTransformerTrainer
    from embedforge.sentence_transformer.training_args import SentenceTransformerTrainingArguments

    settings = settings or TrainingSettings()
    loss_name = settings.loss or "CosineSimilarityLoss"
    loss_class = _loss_class(bi_encoder_losses, loss_name, "bi-encoder")
    dataset = shape_for_loss(train_dataset, loss_name, threshold)
    arguments = settings.arguments("")
    if loss_name in POSITIVE_PAIR_LOSSES:
        # In-batch negatives must not contain the anchor's own positive text.
        arguments.setdefault("batch_sampler", "no_duplicates")
    with output_folder(output_dir) as folder:
        arguments["output_dir"] = folder
        trainer = SentenceTransformerTrainer(
            model=model,
            args=SentenceTransformerTrainingArguments(**arguments),
            train_dataset=dataset,
            loss=loss_class(model),
        )
        trainer.train()
    return model


def shape_for_loss(dataset: Dataset, loss_name: str, threshold: float = 0.5) -> Dataset:
    """(text, text, score) rows in the form ``loss_name`` trains on (see :func:`train_bi_encoder`).

    Rows already shaped (two columns, or 0/1 labels) come back unchanged, so shaping twice is harmless.
    """
    if len(dataset.column_names) < 3:
        return dataset
    first, second, label = dataset.column_names[:3]
    if loss_name in POSITIVE_PAIR_LOSSES:
        return dataset.filter(lambda score: score >= threshold, input_columns=label).select_columns([first, second])
    if loss_name in BINARY_LABEL_LOSSES:
        return dataset.map(lambda score: {label: int(score >= threshold)}, input_columns=label)
    return dataset


def _loss_class(module: Any, name: str, kind: str) -> Any:
    loss_class = getattr(module, name, None)
    if not isinstance(loss_class, type):
        known = sorted(
            item for item in dir(module) if item.endswith("Loss") and isinstance(getattr(module, item), type)
        )
        raise InvalidArgumentError(f"loss={name!r} is not a {kind} loss; expected one of {known}")
    return loss_class


@contextlib.contextmanager
def output_folder(folder: str | None) -> Iterator[str]:
    """``folder`` itself, or a temporary folder removed afterwards (the trainer needs somewhere to write)."""
    if folder:
        yield folder
        return
    with tempfile.TemporaryDirectory(prefix="embedforge-augment-") as temporary:
        yield temporary
