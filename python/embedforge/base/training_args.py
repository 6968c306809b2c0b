"""BaseTrainingArguments: transformers' TrainingArguments plus the options every model kind's training shares."""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Union

from packaging.version import parse as parse_version
from transformers import TrainingArguments as TransformersTrainingArguments
from transformers import __version__ as transformers_version
from transformers.training_args import ParallelMode

from embedforge.base.sampler import (
    BatchSamplers,
    DefaultBatchSampler,
    MultiDatasetBatchSamplers,
    MultiDatasetDefaultBatchSampler,
)
from embedforge.exceptions import InvalidArgumentError

logger = logging.getLogger(__name__)

#: transformers 5 folded warmup_ratio into warmup_steps (a float below 1 is a ratio there).
_TRANSFORMERS_5 = parse_version(transformers_version) >= parse_version("5.0.0")

#: ``output_dir`` of the throw-away instance the trainer builds to learn the default values; it never warns.
DEFAULTS_PROBE_DIR = "unused"


@dataclass
class BaseTrainingArguments(TransformersTrainingArguments):
    """transformers' TrainingArguments with the sentence-embedding options of sentence-transformers.

    - ``prompts``: one prompt for every column (str), column -> prompt, dataset -> prompt, or
      dataset -> column -> prompt; a JSON string of any of the dict forms is parsed.
    - ``batch_sampler``: a :class:`BatchSamplers` value (or its string), a sampler class, or a callable
      building one; defaults to ``BatchSamplers.BATCH_SAMPLER``.
    - ``multi_dataset_batch_sampler``: how batches of several datasets interleave
      (``PROPORTIONAL`` by default, or ``ROUND_ROBIN``, a class, or a callable).
    - ``router_mapping``: column -> Router route, or dataset -> column -> route.
    - ``learning_rate_mapping``: parameter-name regular expression -> learning rate.
    """

    # Dict-valued fields that may arrive as a JSON string from a command line.
    _VALID_DICT_FIELDS = [  # noqa: RUF012 (class-level list, as in transformers)
        *TransformersTrainingArguments._VALID_DICT_FIELDS,
        "learning_rate_mapping",
        "prompts",
        "router_mapping",
    ]

    # Union[str, None, ...] on purpose: HfArgumentParser takes the argument type from the first two members
    # (str, skipping None); with a dict second it calls isinstance(None, dict[...]) and fails.
    prompts: Union[str, None, dict[str, str], dict[str, dict[str, str]]] = field(  # noqa: UP007, RUF036
        default=None,
        metadata={"help": "Prompt(s) prepended to the text columns: a string, or a per-column/per-dataset mapping."},
    )
    batch_sampler: Union[BatchSamplers, str, type[DefaultBatchSampler], Callable[..., DefaultBatchSampler]] = field(  # noqa: UP007
        default=BatchSamplers.BATCH_SAMPLER, metadata={"help": "The batch sampler to use."}
    )
    multi_dataset_batch_sampler: Union[  # noqa: UP007
        MultiDatasetBatchSamplers,
        str,
        type[MultiDatasetDefaultBatchSampler],
        Callable[..., MultiDatasetDefaultBatchSampler],
    ] = field(
        default=MultiDatasetBatchSamplers.PROPORTIONAL,
        metadata={"help": "How batches from several datasets are interleaved."},
    )
    router_mapping: Union[str, None, dict[str, str], dict[str, dict[str, str]]] = field(  # noqa: UP007, RUF036
        default_factory=dict,
        metadata={"help": "Column name -> Router route (or dataset name -> column name -> route)."},
    )
    learning_rate_mapping: Union[str, None, dict[str, float]] = field(  # noqa: UP007, RUF036
        default_factory=dict,
        metadata={"help": "Parameter-name regular expression -> learning rate for the matching parameters."},
    )
    # Kept (as sentence-transformers keeps it) although transformers 5 dropped it: old scripts pass it.
    warmup_ratio: float | None = field(
        default_factory=lambda: None if _TRANSFORMERS_5 else 0.0,
        metadata={"help": "Deprecated: on transformers 5 pass the ratio as a float warmup_steps instead."},
    )

    def __post_init__(self) -> None:
        self._reconcile_warmup()
        super().__post_init__()

        self.batch_sampler = _as_enum(self.batch_sampler, BatchSamplers, "batch_sampler")
        self.multi_dataset_batch_sampler = _as_enum(
            self.multi_dataset_batch_sampler, MultiDatasetBatchSamplers, "multi_dataset_batch_sampler"
        )
        if isinstance(self.prompts, str):
            # A string that is not JSON is one prompt for every column.
            with contextlib.suppress(json.JSONDecodeError):
                self.prompts = json.loads(self.prompts)
        self.learning_rate_mapping = _json_dict(self.learning_rate_mapping, "learning_rate_mapping")
        self.router_mapping = _json_dict(self.router_mapping, "router_mapping")

        # The trainer's compute_loss returns only a loss: there are no logits to gather.
        self.prediction_loss_only = True
        # Broadcasting buffers makes DDP fail on in-place buffer updates in BERT-like models.
        self.ddp_broadcast_buffers = False
        if self.parallel_mode == ParallelMode.DISTRIBUTED and not self.dataloader_drop_last:
            if self.output_dir != DEFAULTS_PROBE_DIR:
                logger.warning(
                    "With DistributedDataParallel an uneven last batch can hang a rank; "
                    "setting dataloader_drop_last=True."
                )
            self.dataloader_drop_last = True
        if (
            self.output_dir != DEFAULTS_PROBE_DIR
            and self.dataloader_num_workers > 0
            and not self.dataloader_persistent_workers
            and self._workers_are_spawned()
        ):
            logger.warning(
                "dataloader_num_workers=%d with spawned worker processes: consider dataloader_persistent_workers=True. "
                "Each spawned worker imports embedforge, torch and transformers before its first batch (seconds "
                "per worker), and without persistent workers that is paid again every epoch and every "
                "evaluation, which often makes training slower than dataloader_num_workers=0.",
                self.dataloader_num_workers,
            )

    @staticmethod
    def _workers_are_spawned() -> bool:
        """Whether DataLoader workers start with ``spawn`` (``fork`` and ``forkserver`` workers inherit imports).

        Reads the start method without fixing it (``allow_none=True``, then the platform default), so
        building arguments never stops a later ``multiprocessing.set_start_method`` call from working.
        """
        start_method = multiprocessing.get_start_method(allow_none=True)
        if start_method is None:
            start_method = multiprocessing.get_all_start_methods()[0]
        return start_method == "spawn"

    def _reconcile_warmup(self) -> None:
        """Accept both warmup spellings on any transformers version."""
        if _TRANSFORMERS_5:
            if self.warmup_ratio is not None and self.warmup_steps == 0:
                # The first sentence is sentence-transformers' wording, which scripts and tests match on.
                logger.warning(
                    "The `warmup_ratio` argument is deprecated in Transformers v5+: pass the ratio as a float "
                    "`warmup_steps` instead (warmup_steps=%s is used now).",
                    self.warmup_ratio,
                )
                self.warmup_steps = self.warmup_ratio
                self.warmup_ratio = None
        elif isinstance(self.warmup_steps, float) and 0.0 < self.warmup_steps < 1.0 and self.warmup_ratio == 0.0:
            self.warmup_ratio = self.warmup_steps
            self.warmup_steps = 0

    def to_dict(self) -> dict[str, Any]:
        """The arguments as a dict; sampler callables are left out because they do not serialise."""
        values = super().to_dict()
        for name in ("batch_sampler", "multi_dataset_batch_sampler"):
            if callable(values.get(name)):
                del values[name]
        return values


def _as_enum(value: Any, enum_type: type[Enum], name: str) -> Any:
    """A string becomes the enum member; classes, callables and members pass through."""
    if not isinstance(value, str) or isinstance(value, enum_type):
        return value
    try:
        return enum_type(value)
    except ValueError:
        choices = [member.value for member in enum_type]
        raise InvalidArgumentError(f"{name}={value!r} is not a known sampler; expected one of {choices}") from None


def _json_dict(value: Any, name: str) -> dict[str, Any]:
    """``None`` -> {}, a JSON object string -> dict, a dict unchanged; anything else is an error naming ``name``."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise InvalidArgumentError(
                f"{name}={value!r} is not valid JSON; expected a dict (or its JSON text)"
            ) from None
    if not isinstance(value, dict):
        raise InvalidArgumentError(f"{name}={value!r} must be a dict, got {type(value).__name__}")
    return value


__all__ = ["DEFAULTS_PROBE_DIR", "BaseTrainingArguments", "BatchSamplers", "MultiDatasetBatchSamplers"]
