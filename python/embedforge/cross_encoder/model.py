"""CrossEncoder: scores text pairs jointly with a sequence-classification transformer, or with a
causal language model's "yes"/"no" logits (a LogitScore reranker).

Loads and saves the folder layouts of sentence-transformers' CrossEncoder: its own
(``modules.json`` with a Transformer whose task is ``sequence-classification`` or
``text-generation``, and ``config_sentence_transformers.json`` naming the activation function) and a
plain transformers folder: a sequence-classification model (as older releases saved, with the
activation in ``config.json``), or a ``*ForCausalLM`` model, which scores with LogitScore.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.autonotebook import trange

from embedforge._internal.local_path import require_local_dir
from embedforge.base.model import MODEL_CONFIG_FILE, BaseModel, check_texts, pick_device
from embedforge.base.modules.dense import Dense
from embedforge.base.modules.registry import load_modules, read_json
from embedforge.base.modules.transformer import Transformer
from embedforge.cross_encoder.fit_mixin import FitMixin
from embedforge.cross_encoder.model_card import CrossEncoderModelCardData, write_model_card
from embedforge.cross_encoder.modules.logit_score import LogitScore
from embedforge.exceptions import InvalidArgumentError, ModelFormatError
from embedforge.util.misc import fullname, import_from_string

logger = logging.getLogger(__name__)

#: Arguments older sentence-transformers releases took under other names.
RENAMED_ARGUMENTS = {
    "model_name": "model_name_or_path",
    "automodel_args": "model_kwargs",
    "tokenizer_args": "processor_kwargs",
    "tokenizer_kwargs": "processor_kwargs",
    "config_args": "config_kwargs",
    "cache_dir": "cache_folder",
    "default_activation_function": "activation_fn",
}
#: Arguments older releases took positionally after the model name, in order.
LEGACY_POSITIONAL = ("num_labels", "max_length", "activation_fn", "device")


class CrossEncoder(BaseModel, FitMixin):
    """Score text pairs (``predict``) and rank documents for a query (``rank``), drop-in for
    sentence-transformers' CrossEncoder."""

    model_type = "CrossEncoder"

    def __init__(
        self,
        model_name_or_path: str | None = None,
        *legacy_args: Any,
        modules: Iterable[nn.Module] | None = None,
        device: str | None = None,
        prompts: dict[str, str] | None = None,
        default_prompt_name: str | None = None,
        cache_folder: str | None = None,
        trust_remote_code: bool = False,
        revision: str | None = None,
        local_files_only: bool = False,
        token: bool | str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        processor_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        model_card_data: CrossEncoderModelCardData | None = None,
        backend: str = "torch",
        num_labels: int | None = None,
        max_length: int | None = None,
        activation_fn: Callable[[Tensor], Tensor] | None = None,
        keep_in_fp32_modules: list[str] | None = None,
        **legacy_kwargs: Any,
    ) -> None:
        # Typed loosely: legacy positional and keyword arguments are checked by the code that reads each entry.
        given: dict[str, Any] = {
            "device": device,
            "num_labels": num_labels,
            "max_length": max_length,
            "activation_fn": activation_fn,
            "model_kwargs": model_kwargs,
            "processor_kwargs": processor_kwargs,
            "config_kwargs": config_kwargs,
        }
        model_name_or_path = _apply_legacy_arguments(model_name_or_path, legacy_args, legacy_kwargs, given)
        if backend != "torch":
            raise InvalidArgumentError(f"backend={backend!r} is not supported; embedforge runs models with 'torch'")
        if keep_in_fp32_modules:
            raise InvalidArgumentError(
                f"keep_in_fp32_modules={keep_in_fp32_modules!r}: running chosen layers in fp32 is not supported"
            )
        num_labels, max_length = given["num_labels"], given["max_length"]
        config_kwargs = dict(given["config_kwargs"] or {})
        processor_kwargs = dict(given["processor_kwargs"] or {})
        if num_labels is not None:
            config_kwargs["num_labels"] = num_labels
        if max_length is not None:
            processor_kwargs["model_max_length"] = max_length
        self._init_prompts(prompts, default_prompt_name)
        self.trust_remote_code = trust_remote_code
        self.model_card_data = model_card_data or CrossEncoderModelCardData(local_files_only=local_files_only)
        self.module_kwargs: dict[str, list[str]] = {}
        saved_activation: str | None = None

        if model_name_or_path is not None and modules is not None:
            raise InvalidArgumentError("Pass model_name_or_path or modules, not both")
        if model_name_or_path is not None:
            folder = require_local_dir(model_name_or_path, "model_name_or_path")
            load_kwargs: dict[str, Any] = {
                "model_kwargs": dict(given["model_kwargs"] or {}),
                "tokenizer_kwargs": processor_kwargs,
                "config_kwargs": config_kwargs,
                "trust_remote_code": trust_remote_code,
            }
            has_modules = os.path.isfile(os.path.join(folder, "modules.json"))
            saved_type = _saved_model_type(folder) if has_modules else None
            if has_modules and saved_type == self.model_type:
                modules, saved_activation = self._load_folder(folder, load_kwargs)
            elif os.path.isfile(os.path.join(folder, "config.json")):
                if has_modules:
                    # Another kind's folder (e.g. a SentenceTransformer): its transformer gets a fresh
                    # classification head, and its other modules, prompts and settings are left out.
                    logger.warning("Converting %s model %s to %s.", saved_type, folder, self.model_type)
                causal = _is_causal_lm(folder)
                transformer = Transformer(
                    folder,
                    transformer_task="text-generation" if causal else "sequence-classification",
                    model_kwargs=load_kwargs["model_kwargs"],
                    tokenizer_kwargs=processor_kwargs,
                    config_kwargs=config_kwargs,
                )
                modules = [transformer, _yes_no_logit_score(transformer, folder)] if causal else [transformer]
            else:
                raise ModelFormatError(
                    f"{folder!r} has neither modules.json (a sentence-transformers model) "
                    "nor config.json (a transformers model)"
                )
        self._init_modules(modules)
        self._check_prompts()
        self.activation_fn = given["activation_fn"] or self._saved_activation(saved_activation)
        self.to(pick_device(given["device"]))
        # The folder it was loaded from: the model card names it as the base model.
        self._source_path = model_name_or_path
        self.model_card_data.register_model(self)
        self._post_init()

    # -- loading ---------------------------------------------------------------------------------

    def _load_folder(self, folder: str, load_kwargs: dict[str, Any]) -> tuple[OrderedDict, str | None]:
        """The modules of a sentence-transformers CrossEncoder folder, and its saved activation path."""
        activation = self._read_model_config(folder).get("activation_fn")
        # The task of a Transformer whose saved config names none (the saved one wins, e.g. text-generation).
        task: dict[type, dict[str, Any]] = {Transformer: {"transformer_task": "sequence-classification"}}
        modules, self.module_kwargs = load_modules(folder, load_kwargs, extra_options=task)
        return modules, activation

    def _saved_activation(self, saved: str | None) -> Callable[[Tensor], Tensor]:
        """The activation a folder names (``torch.*`` paths, or any with ``trust_remote_code``), else the default."""
        config = self.config
        if saved is None and config is not None:
            st_settings = getattr(config, "sentence_transformers", None)
            if isinstance(st_settings, dict) and st_settings.get("activation_fn"):
                saved = st_settings["activation_fn"]
            elif getattr(config, "sbert_ce_default_activation_function", None):
                # Releases before 4.0 kept it under this key of config.json.
                saved = config.sbert_ce_default_activation_function
        if saved is not None:
            if self.trust_remote_code or saved.startswith("torch."):
                return import_from_string(saved)()
            # sentence-transformers' wording, which scripts and tests match on.
            logger.warning(
                "Activation function path '%s' is not trusted, using default activation function instead. "
                "Please load the CrossEncoder with `trust_remote_code=True` to allow loading custom activation "
                "functions via the configuration.",
                saved,
            )
        return self.get_default_activation_fn()

    def get_default_activation_fn(self) -> Callable[[Tensor], Tensor]:
        """Sigmoid for a single-label (score) model, identity for several labels."""
        return nn.Sigmoid() if self.num_labels == 1 else nn.Identity()

    # -- properties --------------------------------------------------------------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        # The activation is a plain attribute, not a submodule: it must not appear in modules.json
        # or in the state dict.
        if name == "activation_fn":
            object.__setattr__(self, name, value)
            return
        super().__setattr__(name, value)

    @property
    def transformer(self) -> Transformer | None:
        """The first Transformer module, or None."""
        return next((module for module in self.modules() if isinstance(module, Transformer)), None)

    @property
    def model(self) -> nn.Module | None:
        """The transformers sequence-classification model."""
        transformer = self.transformer
        return None if transformer is None else transformer.auto_model

    @property
    def tokenizer(self) -> Any:
        """The Hugging Face tokenizer of the Transformer."""
        transformer = self.transformer
        return None if transformer is None else transformer.tokenizer

    @property
    def num_labels(self) -> int:
        """Scores per pair: 1 for a relevance score (and for a LogitScore reranker), more for classification logits.

        The module nearest the end that produces the scores decides: a Dense writing ``scores`` gives its
        ``out_features``, a Transformer its config's ``num_labels``, a LogitScore 1; without any of them, 1.
        """
        for module in reversed(list(self._modules.values())):
            if isinstance(module, Dense) and module.module_output_name == "scores":
                return int(module.out_features)
            if isinstance(module, Transformer):
                return int(module.auto_model.config.num_labels or 1)
            if isinstance(module, LogitScore):
                return 1
        return 1

    @property
    def max_seq_length(self) -> int | None:
        """Pairs are truncated to this many tokens."""
        transformer = self.transformer
        return None if transformer is None else transformer.max_seq_length

    @max_seq_length.setter
    def max_seq_length(self, value: int | None) -> None:
        transformer = self.transformer
        if transformer is None:
            raise InvalidArgumentError("max_seq_length: this CrossEncoder has no Transformer module")
        transformer.max_seq_length = value

    @property
    def max_length(self) -> int | None:
        """Deprecated name of :attr:`max_seq_length`."""
        _warn_renamed_property("max_length", "max_seq_length")
        return self.max_seq_length

    @max_length.setter
    def max_length(self, value: int | None) -> None:
        _warn_renamed_property("max_length", "max_seq_length")
        self.max_seq_length = value

    @property
    def default_activation_function(self) -> Callable[[Tensor], Tensor]:
        """Deprecated name of :attr:`activation_fn`."""
        _warn_renamed_property("default_activation_function", "activation_fn")
        return self.activation_fn

    # -- prediction --------------------------------------------------------------------------------

    def is_singular_input(self, inputs: Any) -> bool:
        """Whether ``inputs`` is one example (a ``("query", "document")`` pair, or one text) rather than a list."""
        if isinstance(inputs, np.ndarray) and inputs.dtype.kind in ("U", "O"):
            return inputs.size > 0 and inputs.ndim < 2
        if isinstance(inputs, (list, tuple)):
            return len(inputs) > 0 and not isinstance(inputs[0], (list, tuple))
        return not isinstance(inputs, Iterable) or isinstance(inputs, (str, dict))

    def predict(
        self,
        inputs: Any = None,
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        activation_fn: Callable[[Tensor], Tensor] | None = None,
        apply_softmax: bool | None = False,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        device: str | list[str] | None = None,
        pool: dict[str, Any] | None = None,
        chunk_size: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """Score text pairs: a [n] array of scores for a single-label model, [n, num_labels] otherwise.

        One pair (or one text, which a model trained on single texts scores alone) gives one score
        (row). ``activation_fn`` overrides the model's (sigmoid for one label); ``apply_softmax`` turns
        several labels' scores into probabilities. ``processing_kwargs`` (keyword) overrides the
        Transformer's processor options for this call, e.g. ``{"text": {"max_length": 256}}``.
        """
        inputs = _renamed_input(inputs, kwargs, "predict")
        activation_fn = _renamed_activation(activation_fn, kwargs)
        _drop_no_op_arguments(kwargs, "predict", ("num_workers",))
        processing_kwargs = kwargs.pop("processing_kwargs", None)
        if kwargs:
            raise InvalidArgumentError(f"predict() got unexpected keyword arguments {sorted(kwargs)}")
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() in (logging.INFO, logging.DEBUG)
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise InvalidArgumentError(f"batch_size={batch_size!r}; expected a positive integer")
        single = self.is_singular_input(inputs)
        if single:
            inputs = [inputs.tolist() if isinstance(inputs, np.ndarray) else inputs]
        elif isinstance(inputs, np.ndarray):
            inputs = inputs.tolist()
        elif not isinstance(inputs, list):
            inputs = list(inputs)
        pairs = [tuple(pair) if isinstance(pair, list) else pair for pair in inputs]
        _check_pairs(pairs)
        inference_kwargs = {
            "prompt": self._resolve_prompt(prompt, prompt_name),
            "batch_size": batch_size,
            "show_progress_bar": show_progress_bar,
            "activation_fn": activation_fn if activation_fn is not None else self.activation_fn,
            "apply_softmax": bool(apply_softmax),
        }
        if processing_kwargs is not None:
            # Only when given, so a pool worker's _inference sees the same call as before the option existed.
            inference_kwargs["processing_kwargs"] = processing_kwargs
        if not pairs:
            scores = torch.zeros((0,) if self.num_labels == 1 else (0, self.num_labels))
        else:
            scores = self._run_inference(pairs, device, pool, chunk_size, inference_kwargs)
        if convert_to_tensor:
            result: Any = scores
        elif convert_to_numpy:
            result = scores.float().cpu().numpy()
        else:
            result = list(scores)
        return result[0] if single else result

    @torch.inference_mode()
    def _inference(
        self,
        inputs: list[Any],
        prompt: str | None,
        batch_size: int,
        show_progress_bar: bool,
        activation_fn: Callable[[Tensor], Tensor] | None,
        apply_softmax: bool,
        processing_kwargs: dict[str, Any] | None = None,
    ) -> Tensor:
        """Scores of checked, non-empty pairs on the model's device, in input order (the work of a
        multi-process pool worker for each chunk)."""
        self.eval()
        device = self.device
        # Longest pairs first, so each batch pads little; the order is restored at the end.
        order = np.argsort([-_input_length(example) for example in inputs], kind="stable")
        preprocess_kwargs: dict[str, Any] = {"prompt": prompt}
        if processing_kwargs is not None:
            preprocess_kwargs["processing_kwargs"] = processing_kwargs
        collected: list[Tensor] = []
        for start in trange(0, len(inputs), batch_size, desc="Batches", disable=not show_progress_bar):
            batch = [inputs[index] for index in order[start : start + batch_size]]
            features = self._first_module().preprocess(batch, **preprocess_kwargs)
            features = {
                key: value.to(device) if isinstance(value, Tensor) else value for key, value in features.items()
            }
            scores = self(features)["scores"]
            if torch.is_floating_point(scores) and torch.finfo(scores.dtype).bits < 32:
                scores = scores.float()
            if activation_fn is not None:
                scores = activation_fn(scores)
            if self.num_labels == 1 and scores.ndim > 1:
                scores = scores.squeeze(-1)
            if apply_softmax and scores.ndim > 1:
                scores = torch.nn.functional.softmax(scores, dim=1)
            collected.extend(scores)
        restored: list[Tensor] = [collected[0]] * len(collected)
        for position, index in enumerate(order):
            restored[index] = collected[position]
        return torch.stack(restored)

    def rank(
        self,
        query: str,
        documents: Sequence[str],
        top_k: int | None = None,
        return_documents: bool = False,
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        activation_fn: Callable[[Tensor], Tensor] | None = None,
        device: str | list[str] | None = None,
        pool: dict[str, Any] | None = None,
        chunk_size: int | None = None,
        **kwargs: Any,
    ) -> list[dict[str, Any]]:
        """The documents ranked by their score against ``query``: ``{"corpus_id", "score"}`` dicts
        (plus ``"text"`` with ``return_documents``), best first, the first ``top_k`` of them."""
        activation_fn = _renamed_activation(activation_fn, kwargs)
        # Older releases' options that no longer change the result: rank always returns Python floats.
        _drop_no_op_arguments(kwargs, "rank", ("num_workers", "apply_softmax", "convert_to_numpy", "convert_to_tensor"))
        if kwargs:
            raise InvalidArgumentError(f"rank() got unexpected keyword arguments {sorted(kwargs)}")
        if self.num_labels != 1:
            # sentence-transformers' wording, plus the model's label count.
            raise InvalidArgumentError(
                "CrossEncoder.rank() only works for models with num_labels=1. "
                "Consider using CrossEncoder.predict() with input pairs instead. "
                f"(This model has num_labels={self.num_labels}.)"
            )
        if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 0):
            raise InvalidArgumentError(f"top_k={top_k!r}; expected a non-negative integer or None")
        scores = self.predict(
            [(query, document) for document in documents],
            prompt_name=prompt_name,
            prompt=prompt,
            batch_size=batch_size,
            show_progress_bar=show_progress_bar,
            activation_fn=activation_fn,
            convert_to_tensor=True,
            device=device,
            pool=pool,
            chunk_size=chunk_size,
        ).tolist()
        results: list[dict[str, Any]] = []
        for corpus_id, score in enumerate(scores):
            hit: dict[str, Any] = {"corpus_id": corpus_id, "score": score}
            if return_documents:
                hit["text"] = documents[corpus_id]
            results.append(hit)
        # A stable sort: equal scores keep document order, as sentence-transformers' sorted() does.
        results.sort(key=lambda hit: hit["score"], reverse=True)
        return results[:top_k]

    # -- saving ------------------------------------------------------------------------------------

    def _model_config_dict(self) -> dict[str, Any]:
        config = super()._model_config_dict()
        config["activation_fn"] = fullname(self.activation_fn)
        return config

    def _write_model_card(self, folder: str, model_name: str | None, train_datasets: list[str] | None) -> None:
        write_model_card(self, folder, model_name=model_name, train_datasets=train_datasets)


# -- helpers ---------------------------------------------------------------------------------------


def _apply_legacy_arguments(
    model_name_or_path: str | None, legacy_args: tuple[Any, ...], legacy_kwargs: dict[str, Any], given: dict[str, Any]
) -> str | None:
    """Fold older releases' positional and renamed arguments into ``given`` (with a warning each)."""
    if len(legacy_args) > len(LEGACY_POSITIONAL):
        raise InvalidArgumentError(
            f"CrossEncoder takes at most {1 + len(LEGACY_POSITIONAL)} positional arguments "
            f"(model_name_or_path, {', '.join(LEGACY_POSITIONAL)}); got {1 + len(legacy_args)}"
        )
    for name, value in zip(LEGACY_POSITIONAL, legacy_args):
        logger.warning(
            "Passing `%s` as a positional argument to CrossEncoder is deprecated. "
            "Please use `%s=%r` as a keyword argument instead.",
            name,
            name,
            value,
        )
        if given[name] is None:
            given[name] = value
    for old, new in RENAMED_ARGUMENTS.items():
        if old not in legacy_kwargs:
            continue
        value = legacy_kwargs.pop(old)
        logger.warning(
            "The CrossEncoder `%s` argument was renamed and is now deprecated. Please use `%s` instead.", old, new
        )
        if new == "model_name_or_path":
            model_name_or_path = model_name_or_path or value
        elif new in given and given[new] is None:
            given[new] = value
    if "classifier_dropout" in legacy_kwargs:
        # After the renames, so it lands in config_kwargs given under either name.
        dropout = legacy_kwargs.pop("classifier_dropout")
        logger.warning(
            "The CrossEncoder `classifier_dropout` argument is deprecated. "
            "Please use `config_kwargs={'classifier_dropout': %r}` instead.",
            dropout,
        )
        given["config_kwargs"] = {**(given["config_kwargs"] or {}), "classifier_dropout": dropout}
    if legacy_kwargs:
        raise InvalidArgumentError(f"CrossEncoder() got unexpected keyword arguments {sorted(legacy_kwargs)}")
    return model_name_or_path


def _saved_model_type(folder: str) -> str:
    """The model kind a sentence-transformers folder was saved as; folders from before the key are embedding models."""
    path = os.path.join(folder, MODEL_CONFIG_FILE)
    config = read_json(path, dict) if os.path.isfile(path) else {}
    return str(config.get("model_type") or "SentenceTransformer")


def _is_causal_lm(folder: str) -> bool:
    """Whether a plain transformers folder holds a causal language model (``*ForCausalLM``), which a
    CrossEncoder scores by its next-token logits, as sentence-transformers does."""
    architectures = read_json(os.path.join(folder, "config.json"), dict).get("architectures") or []
    return isinstance(architectures, list) and bool(architectures) and str(architectures[0]).endswith("ForCausalLM")


def _yes_no_logit_score(transformer: Transformer, folder: str) -> LogitScore:
    """LogitScore with the ids of "yes" (relevant) and "no" (not), the default of a causal-LM reranker."""
    tokenizer = transformer.tokenizer
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in ("yes", "no")}
    unk_id = getattr(tokenizer, "unk_token_id", None)
    # A tokenizer with an unknown token maps a missing token to it; sentence-transformers only catches
    # tokenizers without one, and would otherwise score with the unknown token's logit.
    missing = [
        token for token, token_id in ids.items() if token_id is None or (unk_id is not None and token_id == unk_id)
    ]
    if missing:
        raise ModelFormatError(
            f"The tokenizer in {folder!r} does not have 'yes' and/or 'no' tokens (missing: {missing}), which are "
            "used as the default true/false tokens for the LogitScore post-processing module. Please provide "
            "custom modules with your desired LogitScore configuration, or use a model with a tokenizer that "
            "supports these tokens."
        )
    return LogitScore(true_token_id=ids["yes"], false_token_id=ids["no"])


def _warn_renamed_property(old: str, new: str) -> None:
    """A DeprecationWarning for a CrossEncoder property read or set under its older name."""
    warnings.warn(
        f"The `{old}` property was renamed and is now deprecated. Please use `{new}` instead.",
        DeprecationWarning,
        stacklevel=3,
    )


def _renamed_input(inputs: Any, kwargs: dict[str, Any], method: str) -> Any:
    """``sentences=`` is the older name of ``inputs``."""
    if "sentences" in kwargs:
        logger.warning("The `sentences` argument was renamed and is now deprecated. Please use `inputs` instead.")
        sentences = kwargs.pop("sentences")
        # As in sentence-transformers: when both are given, the new name wins.
        inputs = sentences if inputs is None else inputs
    if inputs is None:
        raise InvalidArgumentError(f"{method}() needs inputs: a (text, text) pair or a list of pairs")
    return inputs


def _renamed_activation(activation_fn: Any, kwargs: dict[str, Any]) -> Any:
    """``activation_fct=`` is the older name of ``activation_fn`` (which wins when both are given)."""
    if "activation_fct" not in kwargs:
        return activation_fn
    logger.warning(
        "The `activation_fct` argument was renamed and is now deprecated. Please use `activation_fn` instead."
    )
    old_value = kwargs.pop("activation_fct")
    return old_value if activation_fn is None else activation_fn


#: (method, argument) pairs already warned about: a script calling rank() in a loop is told once.
_warned_no_op_arguments: set[tuple[str, str]] = set()


def _drop_no_op_arguments(kwargs: dict[str, Any], method: str, names: tuple[str, ...]) -> None:
    """Remove older releases' arguments that no longer change ``method``'s result, saying so once for each."""
    for name in names:
        if name not in kwargs:
            continue
        kwargs.pop(name)
        if (method, name) in _warned_no_op_arguments:
            continue
        _warned_no_op_arguments.add((method, name))
        why = "" if name == "num_workers" else f", as `{method}` always returns Python floats"
        if name == "apply_softmax":
            why = ", as `rank` only supports models with `num_labels=1`"
        logger.warning(
            "The CrossEncoder.%s `%s` argument is deprecated and has no effect%s. It will be removed in a future "
            "version.",
            method,
            name,
            why,
        )


def _input_length(example: Any) -> int:
    """Characters in one example (a text or a pair), to sort a batch by length."""
    if isinstance(example, str):
        return len(example)
    return sum(len(text) for text in example)


def _check_pairs(pairs: list[Any]) -> None:
    """Every input must be a pair of strings, or a single string; name the first that is not."""
    for index, pair in enumerate(pairs):
        if isinstance(pair, str):
            continue
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise InvalidArgumentError(
                f"inputs[{index}] is {type(pair).__name__} {pair!r:.80}; expected a (text, text) pair or a text"
            )
    if any(isinstance(pair, str) for pair in pairs) and not all(isinstance(pair, str) for pair in pairs):
        raise InvalidArgumentError(
            "inputs mixes single texts and (text, text) pairs; a call must score all pairs or all single texts"
        )
    check_texts(pairs)
