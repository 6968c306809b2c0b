"""BaseTrainer: transformers' Trainer driving embedforge models, losses, samplers and evaluators.

Every model kind trains through this class: the same arguments, dataset-format rules, samplers,
checkpoint layout (a loadable model folder per checkpoint) and logged metric names as
sentence-transformers, so the same seed, data and loss give the same per-step losses. A kind's
trainer (SentenceTransformerTrainer, ...) names its model, arguments and collator classes and its
default loss, and adds its own hooks.
"""

from __future__ import annotations

import inspect
import logging
import os
import re
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any, cast

import torch
from torch import nn
from torch.utils.data import BatchSampler, ConcatDataset, DataLoader, RandomSampler
from transformers import EvalPrediction, Trainer, TrainerCallback
from transformers.trainer_utils import EvalLoopOutput

from embedforge._internal.arguments import accept_renamed_kwargs
from embedforge._internal.heap_retention import heap_retained
from embedforge.base.data_collator import BaseDataCollator
from embedforge.base.evaluation.evaluator import BaseEvaluator
from embedforge.base.evaluation.sequential import SequentialEvaluator
from embedforge.base.model import BaseModel
from embedforge.base.row_cache import cache_rows
from embedforge.base.sampler import (
    DefaultBatchSampler,
    GroupByLabelBatchSampler,
    MultiDatasetDefaultBatchSampler,
    NoDuplicatesBatchSampler,
    ProportionalBatchSampler,
    RoundRobinBatchSampler,
)
from embedforge.base.training_args import (
    DEFAULTS_PROBE_DIR,
    BaseTrainingArguments,
    BatchSamplers,
    MultiDatasetBatchSamplers,
)
from embedforge.exceptions import InvalidArgumentError

try:
    from datasets import Dataset, DatasetDict, IterableDataset, IterableDatasetDict, Value
except ImportError:  # pragma: no cover - datasets is in the train extra
    Dataset = DatasetDict = IterableDataset = IterableDatasetDict = Value = None

logger = logging.getLogger(__name__)

#: Column names the trainer uses internally; a dataset may not have them.
RESERVED_COLUMNS = frozenset({"return_loss", "dataset_name"})
#: A batch key ending in ``_<one of these>`` starts a new input column's features.
FEATURE_SUFFIXES = ("input_ids", "sentence_embedding", "pixel_values", "input_features", "input_values")
#: Training arguments file written in every checkpoint (JSON: checkpoints hold no pickles of our own).
TRAINING_ARGS_JSON = "training_args.json"

LossLike = nn.Module | Callable[[BaseModel], nn.Module]


class _ZeroLossGradients(TrainerCallback):
    """Clear gradients of loss-owned parameters (e.g. SoftmaxLoss's classifier), which model.zero_grad() misses."""

    def on_train_begin(self, args: Any, state: Any, control: Any, optimizer: Any = None, **kwargs: Any) -> None:
        if optimizer is not None:
            optimizer.zero_grad()

    def on_step_end(self, args: Any, state: Any, control: Any, optimizer: Any = None, **kwargs: Any) -> None:
        if optimizer is not None:
            optimizer.zero_grad()


class BaseTrainer(Trainer):
    """Train an embedforge model with a loss (or one loss per dataset) and evaluators.

    ``train_dataset``/``eval_dataset`` are a ``datasets.Dataset``, a ``DatasetDict`` (or dict of
    datasets: each batch then comes from one dataset), or an ``IterableDataset``. The column named
    ``label``/``labels``/``score``/``scores`` is the label; every other column is a text input, by
    position. ``loss`` is a loss module, a dict of them by dataset name, or a factory taking the model
    (needed with ``model_init``); it defaults to the kind's default loss. ``evaluator`` (one or a list) runs on the
    evaluation schedule, its metrics logged with an ``eval_`` prefix.
    """

    #: The kind's classes: its arguments (the default ``args``) and its collator (the default collator).
    training_args_class: type[BaseTrainingArguments] = BaseTrainingArguments
    data_collator_class: type[BaseDataCollator] = BaseDataCollator

    model: BaseModel
    args: BaseTrainingArguments
    data_collator: BaseDataCollator
    model_init: Callable[..., BaseModel] | None  # type: ignore[assignment]
    loss: nn.Module | dict[str, nn.Module]

    @accept_renamed_kwargs(tokenizer="processing_class")
    def __init__(
        self,
        model: BaseModel | None = None,
        args: BaseTrainingArguments | None = None,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        loss: LossLike | dict[str, LossLike] | None = None,
        evaluator: BaseEvaluator | list[BaseEvaluator] | None = None,
        data_collator: BaseDataCollator | None = None,
        processing_class: Any = None,
        model_init: Callable[..., BaseModel] | None = None,
        compute_metrics: Callable[[EvalPrediction], dict] | None = None,
        callbacks: list[TrainerCallback] | None = None,
        optimizers: tuple[torch.optim.Optimizer | None, torch.optim.lr_scheduler.LambdaLR | None] = (None, None),
        optimizer_cls_and_kwargs: tuple[type[torch.optim.Optimizer], dict[str, Any]] | None = None,
        preprocess_logits_for_metrics: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        if Dataset is None:
            raise ImportError("Training needs the `datasets` package: pip install 'embedforge[train]'")
        if args is None:
            args = self.training_args_class(output_dir="tmp_trainer")
        elif not isinstance(args, BaseTrainingArguments):
            raise InvalidArgumentError(
                f"args is a {type(args).__name__}; expected embedforge.{self.training_args_class.__name__}"
            )

        if model is None:
            if model_init is None:
                raise InvalidArgumentError(f"{type(self).__name__} needs a model or a model_init")
            self.model_init = model_init
            model = self.call_model_init()
        else:
            if model_init is not None:
                logger.warning("Both model and model_init were given; model_init replaces the model in train().")
            self.model_init = model_init
        if compute_metrics is not None:
            logger.warning(
                "compute_metrics is not used by %s; pass an evaluator for metrics, "
                "or an eval_dataset for the evaluation loss.",
                type(self).__name__,
            )

        # The defaults, so the model card can list only the arguments the user changed.
        default_args_dict = self.training_args_class(
            output_dir=DEFAULTS_PROBE_DIR, accelerator_config={"use_configured_state": True}
        ).to_dict()
        card_data: Any = getattr(model, "model_card_data", None)
        if args.hub_model_id and hasattr(card_data, "set_model_id") and not getattr(card_data, "model_id", None):
            card_data.set_model_id(args.hub_model_id)

        if data_collator is None:
            data_collator = self.get_data_collator(model=model, args=args, processing_class=processing_class)

        for split, dataset in (("train", train_dataset), ("eval", eval_dataset)):
            _require_features(dataset, split)
        if isinstance(train_dataset, dict) and not isinstance(train_dataset, DatasetDict):
            train_dataset = DatasetDict(train_dataset)
        if isinstance(eval_dataset, dict) and not isinstance(eval_dataset, DatasetDict):
            eval_dataset = DatasetDict(eval_dataset)
        if eval_dataset is None and evaluator is None and args.eval_strategy != "no":
            # sentence-transformers' wording, which scripts and tests match on.
            raise InvalidArgumentError(
                f"You have set `args.eval_strategy` to {args.eval_strategy}, but you didn't provide an `eval_dataset` "
                f"or an `evaluator`. Either provide an `eval_dataset` or an `evaluator` to `{type(self).__name__}`, "
                "or set `args.eval_strategy='no'` to skip evaluation."
            )

        super().__init__(
            model=None if self.model_init else model,
            args=args,
            data_collator=data_collator,
            train_dataset=train_dataset,
            # transformers refuses an eval schedule without an eval_dataset; an evaluator alone is enough here.
            eval_dataset=eval_dataset if eval_dataset is not None or evaluator is None else "evaluator-only",
            processing_class=processing_class,
            # transformers types model_init for PreTrainedModel; any nn.Module model trains.
            model_init=model_init,  # type: ignore[arg-type]
            callbacks=callbacks,
            optimizers=optimizers,
            optimizer_cls_and_kwargs=optimizer_cls_and_kwargs,
            preprocess_logits_for_metrics=preprocess_logits_for_metrics,
        )
        if isinstance(self.eval_dataset, str):
            self.eval_dataset = None
        self.compute_metrics = compute_metrics
        # Per-key sums of losses that return a dict of components, logged next to the total.
        self.accum_loss_components: dict[str, dict[str, torch.Tensor]] = {"train": {}, "eval": {}}
        # Every embedforge loss returns a loss, with or without a label column.
        self.can_return_loss = True

        if loss is None:
            loss = self.get_default_loss(self.model)
        # Factories are kept so model_init (hyperparameter search) gets a fresh loss for each new model.
        self._loss_factories: LossLike | dict[str, LossLike] = loss
        if isinstance(loss, dict):
            self.loss = {name: self.prepare_loss(loss_fn, self.model) for name, loss_fn in loss.items()}
            for split, dataset in (("train", train_dataset), ("eval", eval_dataset)):
                if dataset is None:
                    continue
                if not isinstance(dataset, dict):
                    raise InvalidArgumentError(
                        f"If the provided `loss` is a dict, then the `{split}_dataset` must be a `DatasetDict` "
                        f"(or a dict of datasets) with the same names; got a {type(dataset).__name__}, and the loss "
                        f"keys are {sorted(loss)}"
                    )
                if missing := set(dataset) - set(loss):
                    verb = "occurs" if len(missing) == 1 else "occur"
                    raise InvalidArgumentError(
                        f"If the provided `loss` is a dict, then all keys from the `{split}_dataset` dictionary must "
                        f"occur in `loss` also. Currently, {sorted(missing)} {verb} in `{split}_dataset` but not in "
                        f"`loss`. (The loss keys are {sorted(loss)}.)"
                    )
        else:
            self.loss = self.prepare_loss(loss, self.model)

        if evaluator is not None and not isinstance(evaluator, BaseEvaluator):
            evaluator = SequentialEvaluator(evaluator)
        self.evaluator = evaluator

        if self.train_dataset is not None:
            self.check_dataset_columns(self.train_dataset, "train")
            self.train_dataset = self.preprocess_dataset(self.train_dataset, dataset_name="train")
        if self.eval_dataset is not None:
            self.check_dataset_columns(self.eval_dataset, "eval")
            self.eval_dataset = self.preprocess_dataset(self.eval_dataset, dataset_name="eval")
        self._eval_dataloaders: dict[str, DataLoader] = {}
        self.add_model_card_callback(default_args_dict)
        self.add_callback(_ZeroLossGradients())

    def _output_dir(self) -> str:
        """``args.output_dir``, which transformers 5 types as optional but always fills in."""
        output_dir = self.args.output_dir
        if output_dir is None:
            raise InvalidArgumentError("args.output_dir is None; set an output folder in the training arguments")
        return output_dir

    def train(self, *args: Any, **kwargs: Any) -> Any:
        """``transformers.Trainer.train``, with freed memory kept for the next step (see ``heap_retention``)."""
        with heap_retained():
            return super().train(*args, **kwargs)

    # -- set-up ------------------------------------------------------------------------------------

    def get_default_loss(self, model: BaseModel) -> nn.Module:
        """The loss used when none is given; each kind names its own."""
        raise InvalidArgumentError(f"{type(self).__name__} needs a loss: pass loss=...")

    def get_data_collator(
        self, model: BaseModel, args: BaseTrainingArguments, processing_class: Any = None
    ) -> BaseDataCollator:
        """The default collator: ``model.preprocess`` with the prompts and router mapping of ``args``."""
        from embedforge.base.modules.router import Router

        if any(isinstance(module, Router) for module in model.children()) and not args.router_mapping:
            raise InvalidArgumentError(
                "You are using a Router module in your model, but you did not provide a `router_mapping` in the "
                "training arguments. This means that the Router module will not be able to route the inputs to "
                "the correct submodules. Please provide a `router_mapping` that maps column names to routes, "
                "e.g. {'question': 'query', 'answer': 'document'}."
            )
        return self.data_collator_class(
            preprocess_fn=model.preprocess,
            router_mapping=_parsed_mapping(args.router_mapping, "router_mapping"),
            prompts=args.prompts,
            max_length=getattr(args, "max_length", None),
        )

    def add_model_card_callback(self, default_args_dict: dict[str, Any]) -> None:
        """Add the model-card callback (it records datasets, losses and metrics for the saved README)."""
        try:
            from embedforge.base.model_card import ModelCardCallback
        except ImportError:
            return
        callback = ModelCardCallback(default_args_dict)
        self.add_callback(callback)
        callback.on_init_end(self.args, self.state, self.control, model=self.model, trainer=self)

    def prepare_loss(self, loss: LossLike, model: BaseModel) -> nn.Module:
        """Instantiate a loss factory with ``model`` and move the loss to the model's device."""
        if not isinstance(loss, nn.Module):
            loss = loss(model)
        return loss.to(model.device)

    def call_model_init(self, trial: Any = None) -> BaseModel:
        """A new model from ``model_init``; losses are rebuilt (factories) or re-pointed at it."""
        model = cast(BaseModel, super().call_model_init(trial=trial))
        if not hasattr(self, "loss"):
            return model
        factories = self._loss_factories
        if isinstance(self.loss, dict):
            assert isinstance(factories, dict)
            for name, loss_fn in self.loss.items():
                factory = factories.get(name)
                if factory is not None and not isinstance(factory, nn.Module):
                    self.loss[name] = self.prepare_loss(factory, model)
                else:
                    self.loss[name] = self.override_model_in_loss(loss_fn, model)
        elif not isinstance(factories, nn.Module):
            self.loss = self.prepare_loss(factories, model)  # type: ignore[arg-type]
        else:
            self.loss = self.override_model_in_loss(self.loss, model)
        return model

    def override_model_in_loss(self, loss: nn.Module, model: nn.Module) -> nn.Module:
        """Point every ``model`` attribute inside ``loss`` (and its sub-losses) at ``model``."""
        for name, child in loss.named_children():
            if name == "model" and isinstance(child, BaseModel):
                # Wrappers (DDP, torch.compile) hide the methods some losses call inside forward.
                for attribute in ("preprocess", "get_embedding_dimension", "tokenize"):
                    if hasattr(child, attribute) and not hasattr(model, attribute):
                        setattr(model, attribute, getattr(child, attribute))
                loss.model = model
            elif isinstance(child, nn.Module):
                setattr(loss, name, self.override_model_in_loss(child, model))
        return loss

    # -- dataset checks and preparation ------------------------------------------------------------

    def validate_column_names(self, dataset: Any, dataset_name: str | None = None) -> None:
        """Reject datasets that use a reserved column name."""
        if isinstance(dataset, dict):
            for name, inner in dataset.items():
                self.validate_column_names(inner, dataset_name=name)
            return
        if overlap := set(_column_names(dataset)) & RESERVED_COLUMNS:
            where = f"{dataset_name} dataset" if dataset_name else "dataset"
            raise InvalidArgumentError(
                f"The following column names are invalid in your {where}: {sorted(overlap)}. Avoid using these "
                f"column names, as they are reserved for internal use. (Reserved: {sorted(RESERVED_COLUMNS)}.)"
            )

    def check_dataset_columns(self, dataset: Any, split: str) -> None:
        """Fail before training when a dataset's columns do not suit its loss (count of texts, label or not)."""
        self.validate_column_names(dataset, dataset_name=split)
        if isinstance(dataset, dict):
            for name, inner in dataset.items():
                loss = self.loss[name] if isinstance(self.loss, dict) else self.loss
                self._check_columns_for_loss(inner, loss, f"{split}_dataset[{name!r}]")
        elif not isinstance(self.loss, dict):
            self._check_columns_for_loss(dataset, self.loss, f"{split}_dataset")

    def _check_columns_for_loss(self, dataset: Any, loss: nn.Module, where: str) -> None:
        columns = [name for name in _column_names(dataset) if name != "dataset_name"]
        label_column = next((name for name in self.data_collator.valid_label_columns if name in columns), None)
        text_columns = [name for name in columns if name != label_column]
        if not text_columns:
            raise InvalidArgumentError(f"{where} has no text columns (columns: {columns})")
        check = getattr(loss, "check_input_columns", None)
        if check is None:
            return
        try:
            check(text_columns, label_column is not None, label_column)
        except InvalidArgumentError as error:
            raise InvalidArgumentError(f"{where} does not fit the loss: {error}") from None

    def preprocess_dataset(self, dataset: Any = None, dataset_name: str | None = None) -> Any:
        """Add a lazy ``dataset_name`` column when batches must say which dataset they come from."""
        if dataset is None or getattr(dataset, "_embedforge_preprocessed", False):
            return dataset
        self.validate_column_names(dataset, dataset_name=dataset_name)
        if self.should_dataset_name_column_be_added(dataset, self.args, self.loss):
            dataset = self.add_dataset_name_column(dataset)
            dataset._embedforge_preprocessed = True
        return dataset

    def should_dataset_name_column_be_added(
        self, dataset: Any, args: BaseTrainingArguments, loss: nn.Module | dict[str, nn.Module]
    ) -> bool:
        """Needed for a dataset dict with a loss dict, dict prompts, or a per-dataset router mapping."""
        if not isinstance(dataset, (DatasetDict, IterableDatasetDict)):
            return False
        per_dataset_routes = bool(args.router_mapping) and isinstance(
            next(iter(args.router_mapping.values())),  # type: ignore[union-attr]
            dict,
        )
        return isinstance(loss, dict) or (bool(args.prompts) and isinstance(args.prompts, dict)) or per_dataset_routes

    def add_dataset_name_column(self, dataset: Any, dataset_name: str | None = None) -> Any:
        """Tag every row of each named dataset with ``dataset_name`` (lazily, without copying data)."""
        if isinstance(dataset, (DatasetDict, IterableDatasetDict)):
            for name, inner in dataset.items():
                dataset[name] = self.add_dataset_name_column(inner, dataset_name=name)
            return dataset
        if dataset_name is None:
            return dataset
        if isinstance(dataset, Dataset):
            dataset.set_transform(
                partial(add_dataset_name_transform, dataset_name=dataset_name, **dataset._format_kwargs)
            )
            return dataset
        if isinstance(dataset, IterableDataset):
            features = dataset.features
            if features is not None:
                features["dataset_name"] = Value("string")
            return dataset.map(
                partial(add_dataset_name_transform, dataset_name=dataset_name), batched=True, features=features
            )
        raise InvalidArgumentError(
            f"dataset {dataset_name!r} is a {type(dataset).__name__}; expected a Dataset or IterableDataset"
        )

    # -- samplers and data loaders ------------------------------------------------------------------

    def get_batch_sampler(
        self,
        dataset: Any,
        batch_size: int,
        drop_last: bool,
        valid_label_columns: list[str] | None = None,
        generator: torch.Generator | None = None,
        seed: int = 0,
    ) -> BatchSampler | None:
        """The batch sampler ``args.batch_sampler`` names (None for an IterableDataset with the default)."""
        options: dict[str, Any] = {
            "batch_size": batch_size,
            "drop_last": drop_last,
            "valid_label_columns": valid_label_columns,
            "generator": generator,
            "seed": seed,
        }
        choice = self.args.batch_sampler
        if inspect.isclass(choice) and issubclass(choice, DefaultBatchSampler):
            return choice(dataset, **options)
        if callable(choice) and not isinstance(choice, (BatchSamplers, str)):
            return cast(Callable[..., BatchSampler], choice)(dataset, **options)
        if isinstance(dataset, IterableDataset):
            if choice != BatchSamplers.BATCH_SAMPLER:
                logger.warning("An IterableDataset cannot use a batch sampler; batch_sampler=%s is ignored.", choice)
            return None
        if choice == BatchSamplers.NO_DUPLICATES:
            return NoDuplicatesBatchSampler(dataset, **options)
        if choice == BatchSamplers.NO_DUPLICATES_HASHED:
            return NoDuplicatesBatchSampler(dataset, precompute_hashes=True, **options)
        if choice == BatchSamplers.GROUP_BY_LABEL:
            return GroupByLabelBatchSampler(dataset, **options)
        if choice == BatchSamplers.BATCH_SAMPLER:
            return DefaultBatchSampler(RandomSampler(dataset, generator=generator), **options)
        raise InvalidArgumentError(f"args.batch_sampler={choice!r} is not a BatchSamplers value, class or callable")

    def get_multi_dataset_batch_sampler(
        self,
        dataset: ConcatDataset,
        batch_samplers: list[BatchSampler],
        generator: torch.Generator | None = None,
        seed: int | None = 0,
    ) -> BatchSampler:
        """The sampler that interleaves the per-dataset batch samplers (``args.multi_dataset_batch_sampler``)."""
        options: dict[str, Any] = {"batch_samplers": batch_samplers, "generator": generator, "seed": seed}
        choice = self.args.multi_dataset_batch_sampler
        if inspect.isclass(choice) and issubclass(choice, MultiDatasetDefaultBatchSampler):
            return choice(dataset, **options)
        if callable(choice) and not isinstance(choice, (MultiDatasetBatchSamplers, str)):
            return cast(Callable[..., BatchSampler], choice)(dataset, **options)
        if choice == MultiDatasetBatchSamplers.ROUND_ROBIN:
            return RoundRobinBatchSampler(dataset=dataset, **options)
        if choice == MultiDatasetBatchSamplers.PROPORTIONAL:
            return ProportionalBatchSampler(dataset=dataset, **options)
        raise InvalidArgumentError(
            f"args.multi_dataset_batch_sampler={choice!r} is not a MultiDatasetBatchSamplers value, class or callable"
        )

    def _build_dataloader(self, dataset: Any, batch_size: int, dataset_kind: str) -> DataLoader:
        """A DataLoader over ``dataset`` with the configured sampler and the collator."""
        generator = torch.Generator()
        if self.args.seed is not None:
            generator.manual_seed(self.args.seed)
        params: dict[str, Any] = {
            "collate_fn": self.data_collator,
            "num_workers": self.args.dataloader_num_workers,
            "pin_memory": self.args.dataloader_pin_memory,
            "persistent_workers": self.args.dataloader_persistent_workers,
            "prefetch_factor": self.args.dataloader_prefetch_factor,
        }
        valid_label_columns = self.data_collator.valid_label_columns
        if isinstance(dataset, IterableDataset):
            params.update(batch_size=batch_size, drop_last=self.args.dataloader_drop_last)
            if self.args.batch_sampler != BatchSamplers.BATCH_SAMPLER:
                logger.warning("An IterableDataset cannot use a batch sampler; batch_sampler is ignored.")
        elif isinstance(dataset, IterableDatasetDict):
            raise InvalidArgumentError(
                f"{dataset_kind}_dataset is an IterableDatasetDict, which is not supported; use a DatasetDict"
            )
        elif isinstance(dataset, DatasetDict):
            for name, inner in dataset.items():
                if isinstance(inner, IterableDataset):
                    # The first sentence is sentence-transformers' wording, which scripts and tests match on.
                    raise InvalidArgumentError(
                        "Sentence Transformers is not compatible with a DatasetDict containing an IterableDataset. "
                        f"({dataset_kind}_dataset[{name!r}] is an IterableDataset: use a Dataset for each entry, "
                        "or train on one IterableDataset.)"
                    )
            samplers = [
                self.get_batch_sampler(
                    inner,
                    batch_size=batch_size,
                    drop_last=self.args.dataloader_drop_last,
                    valid_label_columns=valid_label_columns,
                    generator=generator,
                    seed=self.args.seed,
                )
                for inner in dataset.values()
            ]
            # Rows read once into Python lists where that is cheap (see row_cache).
            dataset = ConcatDataset([cache_rows(inner) for inner in dataset.values()])
            # Only an IterableDataset gets no batch sampler, and those were rejected above for a dict.
            assert all(sampler is not None for sampler in samplers)
            params["batch_sampler"] = self.get_multi_dataset_batch_sampler(
                dataset=dataset,
                batch_samplers=cast(list[BatchSampler], samplers),
                generator=generator,
                seed=self.args.seed,
            )
        elif isinstance(dataset, Dataset):
            params["batch_sampler"] = self.get_batch_sampler(
                dataset,
                batch_size=batch_size,
                drop_last=self.args.dataloader_drop_last,
                valid_label_columns=valid_label_columns,
                generator=generator,
                seed=self.args.seed,
            )
            dataset = cache_rows(dataset)
        else:
            raise InvalidArgumentError(
                f"{dataset_kind}_dataset is a {type(dataset).__name__}; expected a datasets Dataset, "
                "DatasetDict (or dict of Datasets) or IterableDataset"
            )
        return DataLoader(dataset, **params)

    def get_train_dataloader(self) -> DataLoader:
        """The training DataLoader (prepared by accelerate for distributed runs)."""
        if self.train_dataset is None:
            raise InvalidArgumentError("Training needs a train_dataset")
        # Padding the last batch with rows from the start would mix datasets in multi-dataset training.
        self.accelerator.even_batches = False
        dataloader = self._build_dataloader(self.train_dataset, self.args.train_batch_size, dataset_kind="train")
        self._train_dataloader = self._prepare_dataloader(dataloader)
        return self._train_dataloader

    def _prepare_dataloader(self, dataloader: DataLoader) -> DataLoader:
        """accelerate's prepare, but an IterableDataset is sharded by rows instead of dispatched as sliced batches.

        Dispatching slices every batch tensor along its first axis, which breaks features whose first axis
        is not the row (the flat token ids of static models); row sharding gives each rank whole rows.
        """
        config = self.accelerator.dataloader_config
        if not isinstance(dataloader.dataset, IterableDataset) or config.dispatch_batches is not None:
            return self.accelerator.prepare(dataloader)
        config.dispatch_batches = False
        try:
            return self.accelerator.prepare(dataloader)
        finally:
            config.dispatch_batches = None

    def get_eval_dataloader(self, eval_dataset: Any = None) -> DataLoader:
        """The evaluation DataLoader (an empty one when only an evaluator is configured)."""
        if eval_dataset is None and self.eval_dataset is None:
            if self.evaluator is not None:
                return DataLoader([])  # type: ignore[arg-type]  # a list is a valid map-style dataset
            raise InvalidArgumentError("Evaluation needs an eval_dataset or an evaluator")
        key = eval_dataset if isinstance(eval_dataset, str) else "eval"
        cacheable = isinstance(eval_dataset, str) or eval_dataset is None or eval_dataset is self.eval_dataset
        if cacheable and self.args.dataloader_persistent_workers and key in self._eval_dataloaders:
            return self._eval_dataloaders[key]
        if isinstance(eval_dataset, str):
            if not isinstance(self.eval_dataset, dict) or eval_dataset not in self.eval_dataset:
                raise InvalidArgumentError(
                    f"eval_dataset={eval_dataset!r} names no dataset of the trainer's eval_dataset dict"
                )
            eval_dataset = self.eval_dataset[eval_dataset]
        elif eval_dataset is None:
            eval_dataset = self.eval_dataset
        # Uneven evaluation batches make ranks wait on each other forever.
        self.accelerator.even_batches = True
        dataloader = self._prepare_dataloader(
            self._build_dataloader(eval_dataset, self.args.eval_batch_size, dataset_kind="eval")
        )
        if cacheable and self.args.dataloader_persistent_workers:
            self._eval_dataloaders[key] = dataloader
        return dataloader

    def get_test_dataloader(self, test_dataset: Any) -> DataLoader:
        """The DataLoader for ``predict``/test datasets."""
        self.accelerator.even_batches = True
        return self._prepare_dataloader(
            self._build_dataloader(test_dataset, self.args.eval_batch_size, dataset_kind="test")
        )

    # -- loss --------------------------------------------------------------------------------------

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, Any]]:
        """Split the batch into per-column features and the label, and apply the (dataset's) loss."""
        dataset_name = inputs.pop("dataset_name", None)
        loss_kwargs = self.pop_loss_kwargs(inputs)
        features, labels = self.collect_features(inputs)
        loss_fn = self.loss
        if isinstance(loss_fn, dict):
            if dataset_name is None:
                raise InvalidArgumentError(
                    "loss is a dict, but the batch does not say which dataset it comes from; "
                    "pass the datasets as a DatasetDict with the loss dict's names"
                )
            loss_fn = loss_fn[dataset_name]
        # Under DDP/compile the loss must call the wrapped model (gradient sync); swap it in once.
        if model is self.model_wrapped and model is not self.model and getattr(loss_fn, "model", model) is not model:
            loss_fn = self.override_model_in_loss(loss_fn, model)
        loss = self.call_loss(loss_fn, features, labels, loss_kwargs)
        if isinstance(loss, dict):
            self.track_loss_components(loss)
            loss = torch.stack(list(loss.values())).sum()
        if return_outputs:
            # Losses give no outputs; prediction_loss_only=True means none are needed.
            return loss, {}
        return loss

    def pop_loss_kwargs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Batch entries that go to the loss as keyword arguments rather than as features (none here)."""
        return {}

    def call_loss(
        self, loss_fn: nn.Module, features: list[Any], labels: Any, loss_kwargs: dict[str, Any]
    ) -> torch.Tensor | dict[str, torch.Tensor]:
        """Apply the loss to one batch; a kind whose collator adds keyword entries passes them on."""
        return loss_fn(features, labels, **loss_kwargs)

    def collect_features(self, inputs: dict[str, Any]) -> tuple[list[dict[str, Any]], torch.Tensor | None]:
        """``{column}_{feature}`` keys -> one feature dict per column (in column order), plus the label."""
        features: list[dict[str, Any]] = []
        seen: set[str] = set()
        for key in inputs:
            prefix = None
            for suffix in FEATURE_SUFFIXES:
                if key.endswith("_" + suffix):
                    prefix = key[: -len(suffix)]
                    break
            if prefix is None or prefix in seen:
                continue
            seen.add(prefix)
            features.append({name[len(prefix) :]: value for name, value in inputs.items() if name.startswith(prefix)})
        return features, inputs.get("label")

    def track_loss_components(self, loss: dict[str, torch.Tensor]) -> None:
        """Accumulate each component of a dict-valued loss until the next log."""
        kind = "train" if self.model.training else "eval"
        sums = self.accum_loss_components[kind]
        steps = sums.get("steps", 0)
        value = None
        for key, value in loss.items():
            value = value.detach()
            if self.args.logging_nan_inf_filter and not torch.isfinite(value):
                # Like transformers' loss filter: replace a non-finite value with the running mean.
                value = sums[key] / steps if key in sums and steps else torch.zeros_like(value)
            sums[key] = sums[key] + value if key in sums else value
        if value is not None:
            if "steps" not in sums:
                sums["steps"] = torch.tensor(0, dtype=torch.int64, device=value.device)
            sums["steps"] += 1

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Log as transformers does, plus the mean of each loss component since the last log."""
        kind = "train" if "loss" in logs else "eval" if "eval_loss" in logs else None
        if kind and self.accum_loss_components[kind]:
            from transformers.trainer_pt_utils import nested_gather

            logs = dict(logs)
            gathered = nested_gather(self.accum_loss_components[kind], parallel_mode=self.args.parallel_mode)
            if "steps" in gathered:
                steps = gathered["steps"].sum().item()
                self.accum_loss_components[kind]["steps"] *= 0
                for key, value in gathered.items():
                    if key == "steps":
                        continue
                    logs[f"eval_{key}" if kind == "eval" else key] = round((value.sum() / steps).item(), 4)
                    self.accum_loss_components[kind][key] = torch.zeros((), dtype=value.dtype, device=value.device)
        if start_time is not None:
            return super().log(logs, start_time)
        return super().log(logs)

    # -- optimizer ---------------------------------------------------------------------------------

    def get_optimizer_cls_and_kwargs(  # type: ignore[override]
        self, args: BaseTrainingArguments, model: nn.Module | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Optimizer over the loss modules (the model plus any loss-owned weights), with learning_rate_mapping groups."""
        loss_model = nn.Sequential(OrderedDict(self.loss)) if isinstance(self.loss, dict) else self.loss
        # transformers types the model as PreTrainedModel; it only reads parameters, so any module works.
        optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(args, loss_model)  # type: ignore[arg-type]
        decay = set(self.get_decay_parameter_names(loss_model))
        named = [(name, parameter) for name, parameter in loss_model.named_parameters() if parameter.requires_grad]
        if not {"params", "model", "optimizer_dict"} & set(optimizer_kwargs):
            optimizer_kwargs["optimizer_dict"] = [
                {"params": [p for n, p in named if n in decay], "weight_decay": self.args.weight_decay},
                {"params": [p for n, p in named if n not in decay], "weight_decay": 0.0},
            ]
        for pattern, learning_rate in _parsed_mapping(args.learning_rate_mapping, "learning_rate_mapping").items():
            key = next(iter(set(optimizer_kwargs) & {"params", "model", "optimizer_dict"}), "optimizer_dict")
            matching = {n: p for n, p in loss_model.named_parameters() if re.search(pattern, n)}
            if not matching:
                raise InvalidArgumentError(
                    f"learning_rate_mapping pattern {pattern!r} matches no parameter; names look like "
                    f"{[n for n, _ in named[:3]]}"
                )
            taken = {id(p) for p in matching.values()}
            for group in optimizer_kwargs[key]:
                if "params" in group:
                    group["params"] = [p for p in group["params"] if id(p) not in taken]
            with_decay = [p for n, p in matching.items() if n in decay]
            without_decay = [p for n, p in matching.items() if n not in decay]
            if with_decay:
                optimizer_kwargs[key].append(
                    {"params": with_decay, "lr": learning_rate, "weight_decay": self.args.weight_decay}
                )
            if without_decay:
                optimizer_kwargs[key].append({"params": without_decay, "lr": learning_rate, "weight_decay": 0.0})
        return self.adjust_optimizer_cls(args, optimizer_cls, optimizer_kwargs), optimizer_kwargs

    def adjust_optimizer_cls(self, args: BaseTrainingArguments, optimizer_cls: Any, optimizer_kwargs: dict) -> Any:
        """A kind may swap the optimizer class for an equivalent one suited to its modules; the base keeps it."""
        return optimizer_cls

    # -- evaluation --------------------------------------------------------------------------------

    def evaluate(
        self, eval_dataset: Any = None, ignore_keys: list[str] | None = None, metric_key_prefix: str = "eval"
    ) -> dict[str, float]:
        """Evaluation loss on the eval dataset (if any) plus the evaluator's metrics, prefixed."""
        if eval_dataset is not None and not isinstance(eval_dataset, str):
            if isinstance(eval_dataset, dict) and not isinstance(eval_dataset, DatasetDict):
                eval_dataset = DatasetDict(eval_dataset)
            eval_dataset = self.preprocess_dataset(eval_dataset, dataset_name="eval")
        return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)

    def evaluation_loop(
        self,
        dataloader: DataLoader,
        description: str,
        prediction_loss_only: bool | None = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> EvalLoopOutput:
        """transformers' loop for the loss, then the evaluator (once per evaluation, on the main process)."""
        output = super().evaluation_loop(
            dataloader,
            description=description,
            prediction_loss_only=prediction_loss_only,
            ignore_keys=ignore_keys,
            metric_key_prefix=metric_key_prefix,
        )
        if self.evaluator is None:
            return output
        # A dict eval dataset is evaluated once per name; run the evaluator only with the first, as plain "eval".
        if self.is_in_train and isinstance(self.eval_dataset, dict) and metric_key_prefix.startswith("eval_"):
            if metric_key_prefix[len("eval_") :] != next(iter(self.eval_dataset)):
                return output
            metric_key_prefix = "eval"

        with _main_process_only(self.accelerator) as is_main:
            metrics: dict[str, Any] = {}
            if is_main:
                output_path = os.path.join(self._output_dir(), "eval")
                os.makedirs(output_path, exist_ok=True)
                # The epoch is fractional mid-epoch; evaluators write it to their CSV as given, as in ST.
                result = self.evaluator(
                    self.model,
                    output_path=output_path,
                    epoch=self.state.epoch,  # type: ignore[arg-type]
                    steps=self.state.global_step,
                )
                metrics = result if isinstance(result, dict) else {"evaluator": result}
                # Built-in evaluators record themselves; this also covers custom ones (the call is idempotent).
                card_data: Any = getattr(self.model, "model_card_data", None)
                if hasattr(card_data, "set_evaluation_metrics"):
                    card_data.set_evaluation_metrics(
                        self.evaluator, dict(metrics), epoch=self.state.epoch, step=self.state.global_step
                    )
        if self.accelerator.num_processes > 1:
            from accelerate.utils import broadcast_object_list

            metrics = broadcast_object_list([metrics])[0]
        for key in list(metrics):
            if not key.startswith(f"{metric_key_prefix}_"):
                metrics[f"{metric_key_prefix}_{key}"] = metrics.pop(key)
        return output._replace(metrics={**(output.metrics or {}), **metrics})

    # -- saving and loading ------------------------------------------------------------------------

    def _save(self, output_dir: str | None = None, state_dict: Any = None) -> None:
        """Save a loadable model folder (sentence-transformers layout) plus the training arguments as JSON."""
        # transformers calls _save on every rank; only the writer may touch the folder (two renames would race).
        if not self.args.should_save:
            return
        output_dir = output_dir if output_dir is not None else self._output_dir()
        os.makedirs(output_dir, exist_ok=True)
        logger.info("Saving model checkpoint to %s", output_dir)
        self.model.save_pretrained(output_dir, safe_serialization=getattr(self.args, "save_safetensors", True))
        if self.processing_class is not None and hasattr(self.processing_class, "save_pretrained"):
            self.processing_class.save_pretrained(output_dir)
        path = os.path.join(output_dir, TRAINING_ARGS_JSON)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write(self.args.to_json_string())
        os.replace(path + ".tmp", path)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        """Load the checkpoint's model folder and copy every module's weights into the live model."""
        target = model if model is not None else self.model
        target = getattr(target, "_orig_mod", target)
        loaded = type(target)(resume_from_checkpoint, device="cpu", trust_remote_code=target.trust_remote_code)
        target.load_state_dict(loaded.state_dict())

    def _load_best_model(self) -> None:
        """Restore the best checkpoint's weights and tell the model card which step it was."""
        checkpoint = self.state.best_model_checkpoint
        logger.info("Loading the best model from %s (score: %s).", checkpoint, self.state.best_metric)
        if not checkpoint:
            return
        card_data = getattr(self.model, "model_card_data", None)
        step = checkpoint.rstrip(os.sep).rsplit("-", 1)[-1]
        if card_data is not None and hasattr(card_data, "set_best_model_step") and step.isdigit():
            card_data.set_best_model_step(int(step))
        self._load_from_checkpoint(checkpoint)

    def create_model_card(
        self,
        language: str | None = None,
        license: str | None = None,
        tags: str | list[str] | None = None,
        model_name: str | None = None,
        finetuned_from: str | None = None,
        tasks: str | list[str] | None = None,
        dataset_tags: str | list[str] | None = None,
        dataset: str | list[str] | None = None,
        dataset_args: str | list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """Write the model card (README.md) into ``args.output_dir`` on the main process."""
        if not self.is_world_process_zero():
            return
        card_data = getattr(self.model, "model_card_data", None)
        if card_data is not None:
            if language and hasattr(card_data, "set_language"):
                card_data.set_language(language)
            if license and hasattr(card_data, "set_license"):
                card_data.set_license(license)
            if tags and hasattr(card_data, "add_tags"):
                card_data.add_tags(tags)
        writer = getattr(self.model, "_create_model_card", None)
        if writer is not None:
            writer(self._output_dir(), model_name=model_name)
            return
        os.makedirs(self._output_dir(), exist_ok=True)
        self.model._write_model_card(self._output_dir(), model_name, None)


# -- helpers ---------------------------------------------------------------------------------------


def _parsed_mapping(value: Any, name: str) -> dict[str, Any]:
    """A mapping argument after ``__post_init__``: a dict (JSON text was parsed there) or nothing."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgumentError(f"args.{name}={value!r}; expected a dict")
    return value


def add_dataset_name_transform(
    batch: dict[str, list[Any]],
    dataset_name: str | None = None,
    transform: Callable[[dict[str, list[Any]]], dict[str, list[Any]]] | None = None,
    **kwargs: Any,
) -> dict[str, list[Any]]:
    """Dataset transform that adds a ``dataset_name`` column (after any transform already set)."""
    if transform:
        batch = transform(batch)
    if not batch or dataset_name is None:
        return batch
    first = next(iter(batch.values()))
    if not first:
        return batch
    batch["dataset_name"] = [dataset_name] * len(first)
    return batch


def _column_names(dataset: Any) -> list[str]:
    """A dataset's column names (IterableDatasets know them only through their features)."""
    names = getattr(dataset, "column_names", None)
    if names is None and getattr(dataset, "features", None) is not None:
        names = list(dataset.features)
    return list(names or [])


def _require_features(dataset: Any, split: str) -> None:
    """An IterableDataset without Features hides its columns; ask for them with an example cast."""
    if not isinstance(dataset, IterableDataset) or dataset.column_names is not None:
        return
    sample = next(iter(dataset))
    example = "{" + ", ".join(f"{key!r}: {_feature_hint(value)}" for key, value in sample.items()) + "}"
    raise InvalidArgumentError(
        f"The provided `{split}_dataset` must have Features: it is an IterableDataset whose columns are unknown "
        f"(a streaming map without features= drops them). Specify them, e.g.:\n"
        f"{split}_dataset = {split}_dataset.cast(Features({example}))\n"
        "or pass features= when building or mapping the IterableDataset."
    )


def _feature_hint(value: Any) -> str:
    """A ``datasets`` feature expression matching one sample value, for the missing-Features hint."""
    if isinstance(value, (list, tuple)):
        return f"List({_feature_hint(value[0]) if value else _feature_hint('')})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key!r}: {_feature_hint(inner)}" for key, inner in value.items()) + "}"
    # bool before int: bool is an int subclass. None (and anything unknown) has datasets' "null" type.
    kinds = ((bool, "bool"), (str, "string"), (int, "int64"), (float, "float32"))
    kind = next((name for python_type, name in kinds if isinstance(value, python_type)), "null")
    return f"Value({kind!r})"


@contextmanager
def _main_process_only(accelerator: Any) -> Iterator[bool]:
    """Yield whether this process runs the evaluator; other ranks stay quiet below WARNING meanwhile."""
    is_main = accelerator.is_main_process
    if is_main:
        yield True
        return
    previous = logging.root.manager.disable
    logging.disable(logging.INFO)
    try:
        yield False
    finally:
        logging.disable(previous)


__all__ = ["BaseTrainer"]
