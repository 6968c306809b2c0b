"""Pieces the legacy ``fit`` / ``old_fit`` of every model kind share: optimizer groups, schedules, folders."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn
from torch.optim import Optimizer

from embedforge.exceptions import InvalidArgumentError

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict
    from torch.optim.lr_scheduler import LambdaLR

#: Parameters whose names contain one of these get no weight decay (biases and LayerNorm weights).
NO_DECAY = ("bias", "LayerNorm.bias", "LayerNorm.weight")

#: ``scheduler`` names accepted by fit (case-insensitive) and the transformers schedule each selects.
SCHEDULERS = ("constantlr", "warmupconstant", "warmuplinear", "warmupcosine", "warmupcosinewithhardrestarts")


def identity_collate(batch: list[Any]) -> list[Any]:
    """Collate function that leaves a batch of InputExamples as it is."""
    return batch


def default_checkpoint_dir() -> str:
    """``checkpoints/model`` (or ``_1``, ``_2``, ... when taken and not empty), relative to the working folder."""
    name, index = "checkpoints/model", 1
    while Path(name).exists() and any(Path(name).iterdir()):
        name = f"checkpoints/model_{index}"
        index += 1
    return name


def grouped_parameters(named_parameters: Iterable[tuple[str, nn.Parameter]], weight_decay: float) -> list[dict]:
    """Two optimizer groups: decayed parameters, and biases / LayerNorm weights without decay."""
    named = list(named_parameters)
    return [
        {"params": [p for n, p in named if not any(key in n for key in NO_DECAY)], "weight_decay": weight_decay},
        {"params": [p for n, p in named if any(key in n for key in NO_DECAY)], "weight_decay": 0.0},
    ]


def get_scheduler(optimizer: Optimizer, scheduler: str, warmup_steps: int, t_total: int) -> LambdaLR:
    """The learning-rate schedule named ``scheduler`` (see :data:`SCHEDULERS`), from transformers."""
    import transformers

    name = scheduler.lower()
    if name == "constantlr":
        return transformers.get_constant_schedule(optimizer)
    if name == "warmupconstant":
        return transformers.get_constant_schedule_with_warmup(optimizer, num_warmup_steps=warmup_steps)
    if name == "warmuplinear":
        return transformers.get_linear_schedule_with_warmup(
            optimizer, num_warmup_steps=warmup_steps, num_training_steps=t_total
        )
    if name == "warmupcosine":
        return transformers.get_cosine_schedule_with_warmup(
            optimizer, num_warmup_steps=warmup_steps, num_training_steps=t_total
        )
    if name == "warmupcosinewithhardrestarts":
        return transformers.get_cosine_with_hard_restarts_schedule_with_warmup(
            optimizer, num_warmup_steps=warmup_steps, num_training_steps=t_total
        )
    raise InvalidArgumentError(f"scheduler={scheduler!r} is unknown; expected one of {', '.join(SCHEDULERS)}")


def _loader_to_dataset(data_loader: Any, loader_index: int) -> Dataset:
    """All InputExamples of one loader as a column table: ``sentence_0``, ``sentence_1``, ... and ``label``.

    The label column is left out when every label is 0 (InputExample's default: no label given).
    """
    from datasets import Dataset

    texts: list[Sequence[str]] = []
    labels: list[Any] = []
    for batch in data_loader:
        for example in batch:
            texts.append(example.texts)
            labels.append(example.label)
    widths = {len(example_texts) for example_texts in texts}
    if len(widths) > 1:
        raise InvalidArgumentError(
            f"train_objectives[{loader_index - 1}]: the InputExamples have different numbers of texts "
            f"({sorted(widths)}); every example of one objective needs the same number"
        )
    columns: dict[str, list[Any]] = {f"sentence_{index}": list(column) for index, column in enumerate(zip(*texts))}
    dataset = Dataset.from_dict(columns)
    try:
        unlabelled = set(labels) == {0}
    except TypeError:  # unhashable labels such as numpy embeddings are real labels
        unlabelled = False
    if not unlabelled:
        dataset = dataset.add_column("label", labels)
    return dataset


def dataloaders_to_datasets(data_loaders: Sequence[Any]) -> tuple[DatasetDict, int, str]:
    """Convert fit's DataLoaders into ``(DatasetDict with keys _dataset_1.., batch size, batch sampler name)``.

    The loaders' collate functions are replaced by the identity (as sentence-transformers does) so
    that they yield raw InputExamples. The last loader decides the batch size; a
    ``NoDuplicatesDataLoader`` selects ``no_duplicates`` and a ``SentenceLabelDataset`` ``group_by_label``.
    """
    from datasets import DatasetDict

    batch_size = 8
    batch_sampler = "batch_sampler"
    for data_loader in data_loaders:
        data_loader.collate_fn = identity_collate
    datasets = {}
    for loader_index, data_loader in enumerate(data_loaders, start=1):
        if _has_class_named(data_loader, "NoDuplicatesDataLoader"):
            batch_sampler = "no_duplicates"
        elif _has_class_named(getattr(data_loader, "dataset", None), "SentenceLabelDataset"):
            batch_sampler = "group_by_label"
        loader_batch_size = getattr(data_loader, "batch_size", batch_size)
        if loader_batch_size is None:
            # torch sets DataLoader.batch_size to None when a custom batch_sampler is given.
            loader_batch_size = getattr(data_loader.batch_sampler, "batch_size", None) or batch_size
            logger.warning(
                "The DataLoader of training objective %d uses a custom batch_sampler; fit() keeps its batch size "
                "but not its grouping of examples. Use the trainer (or old_fit) to keep it.",
                loader_index,
            )
        batch_size = loader_batch_size
        datasets[f"_dataset_{loader_index}"] = _loader_to_dataset(data_loader, loader_index)
    return DatasetDict(datasets), batch_size, batch_sampler


def _has_class_named(value: Any, class_name: str) -> bool:
    """Whether ``value`` is an instance of a class called ``class_name`` (or a subclass of one).

    By name, because the loaders and datasets that select a sampler live in the embedding kind,
    which this shared module must not import.
    """
    return any(cls.__name__ == class_name for cls in type(value).__mro__)
