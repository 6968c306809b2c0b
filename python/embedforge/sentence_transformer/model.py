"""SentenceTransformer: a sequence of modules that maps texts to embeddings.

Loads and saves the sentence-transformers model folder layout, so folders move freely
between the two libraries, and encodes with the same arguments and results.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.autonotebook import trange

from embedforge._internal.local_path import require_local_dir
from embedforge.base.model import BaseModel, check_texts, pick_device
from embedforge.base.modules.normalize import Normalize
from embedforge.base.modules.registry import load_modules
from embedforge.base.modules.transformer import Transformer
from embedforge.exceptions import InvalidArgumentError, ModelFormatError
from embedforge.sentence_transformer.fit_mixin import FitMixin
from embedforge.sentence_transformer.model_card import SentenceTransformerModelCardData
from embedforge.sentence_transformer.modules.pooling import Pooling
from embedforge.sentence_transformer.modules.static_embedding import StaticEmbedding

logger = logging.getLogger(__name__)

#: Precisions ``encode`` can return.
ALLOWED_PRECISIONS = ("float32", "int8", "uint8", "binary", "ubinary")
#: Similarity functions a model can be configured with.
SUPPORTED_SIMILARITY_FN_NAMES = ("cosine", "dot", "euclidean", "manhattan")
#: Prompt names ``encode_document`` tries, in order, when none is given.
DOCUMENT_PROMPT_NAMES = ("document", "passage", "corpus")
#: Texts per Rust call on the static fast path; large enough to keep all cores busy, small enough for a progress bar.
STATIC_CHUNK = 16384


class SentenceTransformer(BaseModel, FitMixin):
    """Map texts to fixed-size embeddings with a sequence of modules (drop-in for sentence-transformers)."""

    model_type = "SentenceTransformer"
    _default_prompts: ClassVar[dict[str, str | None]] = {"query": None, "document": None}
    SUPPORTED_SIMILARITY_FN_NAMES = SUPPORTED_SIMILARITY_FN_NAMES

    def __init__(
        self,
        model_name_or_path: str | None = None,
        modules: Iterable[nn.Module] | None = None,
        device: str | None = None,
        prompts: dict[str, str] | None = None,
        default_prompt_name: str | None = None,
        similarity_fn_name: str | None = None,
        cache_folder: str | None = None,
        trust_remote_code: bool = False,
        revision: str | None = None,
        local_files_only: bool = False,
        token: bool | str | None = None,
        use_auth_token: bool | str | None = None,
        truncate_dim: int | None = None,
        model_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
        processor_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        model_card_data: SentenceTransformerModelCardData | None = None,
        backend: Literal["torch"] = "torch",
    ) -> None:
        if backend != "torch":
            raise InvalidArgumentError(f"backend={backend!r} is not supported; embedforge runs models with 'torch'")
        self._init_prompts(prompts, default_prompt_name)
        self._similarity_fn_name: str | None = None
        if similarity_fn_name is not None:
            self.similarity_fn_name = similarity_fn_name
        self.truncate_dim = truncate_dim
        self.trust_remote_code = trust_remote_code
        self.module_kwargs: dict[str, list[str]] = {}
        self.model_card_data = model_card_data or SentenceTransformerModelCardData(local_files_only=local_files_only)
        self._model_config: dict[str, Any] = {}

        if use_auth_token is not None:
            if token is not None:
                raise InvalidArgumentError(
                    "Both `token` and `use_auth_token` were given; pass only `token` (use_auth_token is its old name)"
                )
            warnings.warn(
                "The `use_auth_token` argument is deprecated; use `token` instead (embedforge never contacts a hub).",
                FutureWarning,
                stacklevel=2,
            )
        if modules is not None and not isinstance(modules, OrderedDict) and not list(modules):
            raise InvalidArgumentError(
                "An empty modules list was passed: give at least one module, or modules=None for an empty model"
            )
        if model_name_or_path is not None and modules is not None:
            logger.warning(
                "Both model_name_or_path and modules were given: the `modules` argument is ignored and the "
                "model is loaded from %s",
                model_name_or_path,
            )
            modules = None
        if model_name_or_path is not None:
            logger.info("Loading %s model from %s", type(self).__name__, model_name_or_path)
            folder = require_local_dir(model_name_or_path, "model_name_or_path")
            load_kwargs = {
                "model_kwargs": model_kwargs or {},
                "tokenizer_kwargs": {
                    **(tokenizer_kwargs or {}),
                    **(processor_kwargs or {}),
                },
                "config_kwargs": config_kwargs or {},
                "trust_remote_code": trust_remote_code,
            }
            if os.path.isfile(os.path.join(folder, "modules.json")):
                modules = self._load_modules_json(folder, load_kwargs)
            else:
                modules = _default_modules(folder, load_kwargs)
        self._init_modules(modules)
        self._check_prompts()
        self.to(pick_device(device))
        self._source_path = model_name_or_path
        self.model_card_data.register_model(self)
        self._post_init()

    # -- loading -----------------------------------------------------------------------------------

    def _load_modules_json(self, folder: str, load_kwargs: dict[str, Any]) -> OrderedDict:
        """Build the modules listed in ``modules.json`` and apply ``config_sentence_transformers.json``."""
        self._model_config = self._read_model_config(folder)
        if self._model_config:
            saved_similarity = self._model_config.get("similarity_fn_name")
            if self._similarity_fn_name is None and saved_similarity in SUPPORTED_SIMILARITY_FN_NAMES:
                self.similarity_fn_name = saved_similarity
            if self.truncate_dim is None:
                self.truncate_dim = self._model_config.get("truncate_dim")
        modules, self.module_kwargs = load_modules(folder, load_kwargs)
        return modules

    # -- configuration -----------------------------------------------------------------------------

    @property
    def similarity_fn_name(self) -> str:
        """Name of the similarity function ``similarity`` uses (cosine unless configured)."""
        if self._similarity_fn_name is None:
            self._similarity_fn_name = "cosine"
        return self._similarity_fn_name

    @similarity_fn_name.setter
    def similarity_fn_name(self, value: Any) -> None:
        name = getattr(value, "value", value)
        if name not in SUPPORTED_SIMILARITY_FN_NAMES:
            raise InvalidArgumentError(
                f"similarity_fn_name={value!r} is not supported; expected one of {SUPPORTED_SIMILARITY_FN_NAMES}"
            )
        self._similarity_fn_name = name

    @property
    def tokenizer(self) -> Any:
        """The first module's tokenizer."""
        return getattr(self._first_module(), "tokenizer", None)

    @tokenizer.setter
    def tokenizer(self, value: Any) -> None:
        self._first_module().tokenizer = value

    @property
    def max_seq_length(self) -> int | None:
        """Longest input in tokens; longer inputs are truncated."""
        return getattr(self._first_module(), "max_seq_length", None)

    @max_seq_length.setter
    def max_seq_length(self, value: int | None) -> None:
        self._first_module().max_seq_length = value

    def get_max_seq_length(self) -> int | None:
        """Longest input in tokens (see :attr:`max_seq_length`)."""
        return self.max_seq_length

    def get_embedding_dimension(self) -> int | None:
        """Width of the embeddings ``encode`` returns, after ``truncate_dim``."""
        width = None
        for module in reversed(list(self._modules.values())):
            getter = getattr(module, "get_embedding_dimension", None) or getattr(
                module, "get_sentence_embedding_dimension", None
            )
            if callable(getter):
                width = getter()
                if width is not None:
                    break
        if width is not None and self.truncate_dim is not None:
            return min(width, self.truncate_dim)
        return width

    def get_sentence_embedding_dimension(self) -> int | None:
        """Old name of :meth:`get_embedding_dimension`."""
        return self.get_embedding_dimension()

    def get_model_kwargs(self) -> list[str]:
        """Extra keyword arguments (such as ``task``) some module's forward accepts."""
        names: set[str] = set()
        pending = list(self.named_children())
        while pending:
            name, module = pending.pop()
            names.update(self.module_kwargs.get(name, []))
            names.update(getattr(module, "forward_kwargs", set()))
            for route in getattr(module, "sub_modules", {}).values():
                pending.extend(route.named_children())
        return sorted(names)

    @contextlib.contextmanager
    def truncate_sentence_embeddings(self, truncate_dim: int | None) -> Iterator[None]:
        """Temporarily set :attr:`truncate_dim` inside a ``with`` block."""
        previous, self.truncate_dim = self.truncate_dim, truncate_dim
        try:
            yield
        finally:
            self.truncate_dim = previous

    truncate_embeddings = truncate_sentence_embeddings

    # -- tokenisation and forward ------------------------------------------------------------------

    def forward(self, input: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Run the features through every module; each gets only the keyword arguments it declares.

        A Router gets them all: it passes each on to the routed modules that declare it.
        """
        from embedforge.base.modules.router import Router

        for name, module in self.named_children():
            if isinstance(module, Router):
                input = module(input, **kwargs)
                continue
            accepted = set(self.module_kwargs.get(name, ())) | set(getattr(module, "forward_kwargs", ()))
            input = module(
                input,
                **{key: value for key, value in kwargs.items() if key in accepted},
            )
        return input

    # -- encoding ----------------------------------------------------------------------------------

    def encode_query(
        self,
        inputs: Any = None,
        prompt_name: str | None = None,
        prompt: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        """Encode queries: the ``query`` prompt (if configured) and the ``query`` route of a Router.

        The remaining arguments are :meth:`encode`'s, positional (``batch_size`` first) or by name.
        """
        inputs = _renamed_inputs(inputs, kwargs)
        if prompt_name is None and prompt is None and "query" in self.prompts:
            prompt_name = "query"
        return self._encode_for_task("query", inputs, prompt_name, prompt, args, kwargs)

    def encode_document(
        self,
        inputs: Any = None,
        prompt_name: str | None = None,
        prompt: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        """Encode documents: the first of the document/passage/corpus prompts, and the ``document`` route.

        The remaining arguments are :meth:`encode`'s, positional (``batch_size`` first) or by name.
        """
        inputs = _renamed_inputs(inputs, kwargs)
        if prompt_name is None and prompt is None:
            prompt_name = next((name for name in DOCUMENT_PROMPT_NAMES if name in self.prompts), None)
        return self._encode_for_task("document", inputs, prompt_name, prompt, args, kwargs)

    def _encode_for_task(
        self,
        task: str,
        inputs: Any,
        prompt_name: str | None,
        prompt: str | None,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        """Call :meth:`encode` with every argument by name, as sentence-transformers does.

        Code that wraps or replaces ``model.encode`` (spies, duck-typed models) then sees the same
        keyword arguments in both libraries: ``inputs``, ``prompt_name``, ``prompt``, ..., ``task``.
        """
        kwargs.setdefault("task", task)
        # The class's signature: ``self.encode`` may be a wrapper that takes anything.
        bound = inspect.signature(type(self).encode).bind(self, inputs, prompt_name, prompt, *args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        del arguments["self"]
        extra = arguments.pop("kwargs", {})
        return self.encode(**arguments, **extra)

    def encode(
        self,
        inputs: str | Sequence[Any] | None = None,
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        output_value: Literal["sentence_embedding", "token_embeddings"] | None = "sentence_embedding",
        precision: Literal["float32", "int8", "uint8", "binary", "ubinary"] = "float32",
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        device: str | list[str] | None = None,
        normalize_embeddings: bool = False,
        truncate_dim: int | None = None,
        pool: dict[str, Any] | None = None,
        chunk_size: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """Embed one text or a list of texts.

        Returns a [len(inputs), dim] numpy array by default, a tensor with ``convert_to_tensor``,
        a list of tensors with ``convert_to_numpy=False``, or one row for a single string.
        With ``pool`` (from :meth:`start_multi_process_pool`) or a list of devices, chunks of
        ``chunk_size`` inputs are encoded by worker processes.
        """
        inputs = _renamed_inputs(inputs, kwargs)
        if inputs is None:
            raise InvalidArgumentError("encode() needs inputs: a string or a list of strings")
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() in (
                logging.INFO,
                logging.DEBUG,
            )
        if convert_to_tensor:
            convert_to_numpy = False
        if output_value != "sentence_embedding":
            convert_to_numpy = convert_to_tensor = False
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise InvalidArgumentError(f"batch_size={batch_size!r}; expected a positive integer")
        if precision is not None and precision not in ALLOWED_PRECISIONS:
            raise InvalidArgumentError(
                f"Precision '{precision}' is not supported (the precision argument); expected one of {ALLOWED_PRECISIONS}"
            )
        if output_value not in ("sentence_embedding", "token_embeddings", None):
            raise InvalidArgumentError(
                f"output_value={output_value!r}; expected 'sentence_embedding', 'token_embeddings' or None"
            )
        model_kwargs = self.get_model_kwargs()
        # processing_kwargs reaches the input module's preprocess (per-call processor options).
        unknown = set(kwargs) - set(model_kwargs) - {"task", "processing_kwargs"}
        if unknown:
            accepted = (
                f"the valid additional keyword arguments are: {model_kwargs}."
                if model_kwargs
                else "this model does not accept any additional keyword arguments."
            )
            raise InvalidArgumentError(
                f"{type(self).__name__}.encode() has been called with additional keyword arguments that this model "
                f"does not use: {sorted(unknown)}. As per {type(self).__name__}.get_model_kwargs(), {accepted}"
            )
        single = self.is_singular_input(inputs)
        batch: list[Any]
        if single:
            batch = [inputs]
        elif isinstance(inputs, np.ndarray):
            batch = inputs.tolist()
        else:
            batch = list(inputs)
        inputs = batch
        check_texts(batch)
        prompt = self._resolve_prompt(prompt, prompt_name)
        truncate_dim = truncate_dim if truncate_dim is not None else self.truncate_dim
        if truncate_dim is not None and (not isinstance(truncate_dim, int) or truncate_dim <= 0):
            raise InvalidArgumentError(f"truncate_dim={truncate_dim!r}; expected a positive integer or None")
        if not inputs:
            embeddings: Any = self._empty_result(output_value, truncate_dim, convert_to_tensor, convert_to_numpy)
            return embeddings
        inference_kwargs = {
            "prompt": prompt,
            "batch_size": batch_size,
            "show_progress_bar": show_progress_bar,
            "output_value": output_value,
            "truncate_dim": truncate_dim,
            "normalize_embeddings": normalize_embeddings,
            **kwargs,
        }
        embeddings = self._run_inference(inputs, device, pool, chunk_size, inference_kwargs)
        if output_value != "sentence_embedding":
            return embeddings[0] if single else embeddings
        if precision and precision != "float32":
            from embedforge.util.quantization import quantize_embeddings

            embeddings = quantize_embeddings(embeddings, precision=precision)
        if convert_to_tensor:
            result: Any = torch.as_tensor(embeddings)
        elif convert_to_numpy:
            result = embeddings.numpy() if isinstance(embeddings, Tensor) else np.asarray(embeddings)
        else:
            result = list(embeddings) if isinstance(embeddings, Tensor) else list(torch.from_numpy(embeddings))
        return result[0] if single else result

    def is_singular_input(self, inputs: Any) -> bool:
        """Whether ``inputs`` is one example rather than a batch.

        Lists and tuples are batches (so ``("a", "b")`` is two texts, as in sentence-transformers;
        one text pair is ``[("a", "b")]``), and so are numpy arrays of strings and any other
        non-string iterable (datasets columns, generators); anything else is one example.
        """
        if isinstance(inputs, (str, bytes, dict, Tensor)):
            return True
        if isinstance(inputs, np.ndarray):
            return not (inputs.ndim >= 1 and inputs.dtype.kind in ("U", "O"))
        if isinstance(inputs, list) and inputs and all(_is_chat_message(item) for item in inputs):
            return True  # one conversation: a list of {"role", "content"} messages
        return not isinstance(inputs, Iterable)

    def activation_checkpointing_enable(
        self,
        activation_checkpointing_kwargs: dict[str, Any] | None = None,
        every_n_layers: int = 1,
        offload: bool = False,
    ) -> None:
        """Turn on activation (gradient) checkpointing in every submodule that supports it.

        ``transformers.Trainer`` calls this when ``activation_checkpointing`` (formerly
        ``gradient_checkpointing``) is set; the arguments go to the transformers models unchanged.
        """
        for module in self.modules():
            if module is self:
                continue
            enable_new = getattr(module, "activation_checkpointing_enable", None)
            enable_old = getattr(module, "gradient_checkpointing_enable", None)
            if enable_new is None and enable_old is None:
                continue
            if getattr(module, "supports_gradient_checkpointing", True) is False:
                logger.warning("%s does not support activation checkpointing; skipped", type(module).__name__)
                continue
            if enable_new is not None:
                enable_new(
                    activation_checkpointing_kwargs=activation_checkpointing_kwargs,
                    every_n_layers=every_n_layers,
                    offload=offload,
                )
            elif every_n_layers != 1 or offload:
                raise InvalidArgumentError(
                    f"every_n_layers={every_n_layers!r}, offload={offload!r}: {type(module).__name__} only "
                    "supports checkpointing every layer without offload (this transformers version predates them)"
                )
            elif enable_old is not None:
                enable_old(gradient_checkpointing_kwargs=activation_checkpointing_kwargs)

    def gradient_checkpointing_enable(
        self, gradient_checkpointing_kwargs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        """The older name of :meth:`activation_checkpointing_enable` (same arguments)."""
        self.activation_checkpointing_enable(gradient_checkpointing_kwargs, **kwargs)

    def set_pooling_include_prompt(self, include_prompt: bool) -> None:
        """Set ``include_prompt`` on the first Pooling module (INSTRUCTOR-style models pool without the prompt)."""
        for module in self:
            if isinstance(module, Pooling):
                module.include_prompt = include_prompt
                break

    def encode_multi_process(
        self,
        sentences: list[str],
        pool: dict[str, Any],
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 32,
        chunk_size: int | None = None,
        show_progress_bar: bool | None = None,
        precision: Literal["float32", "int8", "uint8", "binary", "ubinary"] = "float32",
        normalize_embeddings: bool = False,
        truncate_dim: int | None = None,
    ) -> np.ndarray:
        """Deprecated, as in sentence-transformers: :meth:`encode` with ``pool=`` does the same."""
        warnings.warn(
            "encode_multi_process is deprecated; call encode(..., pool=pool) instead",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.encode(
            sentences,
            prompt_name=prompt_name,
            prompt=prompt,
            batch_size=batch_size,
            show_progress_bar=show_progress_bar,
            precision=precision,
            convert_to_numpy=True,
            normalize_embeddings=normalize_embeddings,
            truncate_dim=truncate_dim,
            pool=pool,
            chunk_size=chunk_size,
        )

    def _inference(
        self,
        inputs: list[Any],
        prompt: str | None,
        batch_size: int,
        show_progress_bar: bool,
        output_value: str | None,
        truncate_dim: int | None,
        normalize_embeddings: bool,
        **kwargs: Any,
    ) -> Any:
        """Embed checked, non-empty inputs on the model's device: a [n, dim] tensor of sentence
        embeddings, or a list with one entry per input for the other output values.

        This is the work a multi-process pool worker does for each chunk.
        """
        if (
            output_value == "sentence_embedding"
            and self._static_fast_path_applies(kwargs)
            # Anything but plain strings goes the general way, whose modality check names what is wrong.
            and all(type(item) is str for item in inputs)
        ):
            embeddings = torch.from_numpy(self._encode_static(inputs, prompt, show_progress_bar))
            if truncate_dim is not None:
                embeddings = embeddings[:, :truncate_dim]
            if normalize_embeddings:
                embeddings = torch.nn.functional.normalize(embeddings, p=2, dim=1)
            return embeddings
        return self._encode_batches(
            inputs,
            prompt,
            batch_size,
            show_progress_bar,
            output_value,
            truncate_dim,
            normalize_embeddings,
            kwargs,
        )

    def _empty_result(
        self,
        output_value: str | None,
        truncate_dim: int | None,
        as_tensor: bool,
        as_numpy: bool,
    ) -> Any:
        """``encode([])``: an empty [0, dim] array (or tensor), so callers can still stack and index it."""
        if output_value != "sentence_embedding":
            return []
        width = self.get_embedding_dimension() or 0
        if truncate_dim is not None:
            width = min(width, truncate_dim)
        if as_tensor:
            return torch.zeros((0, width), dtype=torch.float32)
        if as_numpy:
            return np.zeros((0, width), dtype=np.float32)
        return []

    def _static_fast_path_applies(self, kwargs: dict[str, Any]) -> bool:
        """Whether the model is StaticEmbedding (+ Normalize) on CPU, so Rust can do the whole encode."""
        modules = list(self._modules.values())
        # encode_query/encode_document always pass ``task``; only a Router uses it, and a Router is
        # not StaticEmbedding + Normalize, so it does not rule the fast path out.
        if not modules or type(modules[0]) is not StaticEmbedding or set(kwargs) - {"task"}:
            return False
        rest = modules[1:]
        if not all(type(module) is Normalize and module.module_input_name == "sentence_embedding" for module in rest):
            return False
        return all(module.module_output_name == "sentence_embedding" for module in rest) and self.device.type == "cpu"

    def _encode_static(self, texts: list[str], prompt: str | None, show_progress_bar: bool) -> np.ndarray:
        static: StaticEmbedding = self._first_module()
        normalize = len(self._modules) > 1
        if len(texts) <= STATIC_CHUNK:
            return static.embed_fast(texts, prompt=prompt, normalize=normalize)
        # Each part is copied into place as it comes, so only one part exists besides the result.
        result: np.ndarray | None = None
        for start in trange(0, len(texts), STATIC_CHUNK, desc="Batches", disable=not show_progress_bar):
            part = static.embed_fast(texts[start : start + STATIC_CHUNK], prompt=prompt, normalize=normalize)
            if result is None:
                result = np.empty((len(texts), part.shape[1]), dtype=part.dtype)
            result[start : start + len(part)] = part
            del part
        assert result is not None  # len(texts) > STATIC_CHUNK, so the loop ran
        return result

    @torch.inference_mode()
    def _encode_batches(
        self,
        inputs: list[Any],
        prompt: str | None,
        batch_size: int,
        show_progress_bar: bool,
        output_value: str | None,
        truncate_dim: int | None,
        normalize_embeddings: bool,
        kwargs: dict[str, Any],
    ) -> Any:
        """The general path: length-sorted batches through every module, original order restored."""
        self.eval()
        device = self.device
        order = self._batch_order(inputs, prompt)
        collected: list[Any] = []
        for start in trange(0, len(inputs), batch_size, desc="Batches", disable=not show_progress_bar):
            batch = [inputs[index] for index in order[start : start + batch_size]]
            features = self.preprocess(batch, prompt=prompt, **kwargs)
            features = {
                key: value.to(device) if isinstance(value, Tensor) else value for key, value in features.items()
            }
            output = self(features, **kwargs)  # through __call__, so forward hooks run as in sentence-transformers
            if truncate_dim is not None and "sentence_embedding" in output:
                output["sentence_embedding"] = output["sentence_embedding"][..., :truncate_dim]
            if output_value == "token_embeddings":
                for tokens, mask in zip(output["token_embeddings"], output["attention_mask"]):
                    kept = int(mask.nonzero()[-1].item()) + 1 if bool(mask.any()) else 1
                    collected.append(tokens[:kept].cpu())
            elif output_value is None:
                for row in range(len(batch)):
                    collected.append(
                        {
                            key: value[row]
                            if isinstance(value, Tensor) and value.ndim and value.size(0) == len(batch)
                            else value
                            for key, value in output.items()
                        }
                    )
            else:
                embeddings = output["sentence_embedding"]
                if normalize_embeddings:
                    embeddings = torch.nn.functional.normalize(embeddings, p=2, dim=1)
                collected.extend(
                    embeddings.detach().float().cpu()
                    if embeddings.dtype in (torch.float16, torch.bfloat16)
                    else embeddings.detach().cpu()
                )
        restored: list[Any] = [None] * len(collected)
        for position, index in enumerate(order):
            restored[index] = collected[position]
        if output_value == "sentence_embedding":
            return torch.stack(restored)
        return restored

    def _batch_order(self, inputs: list[Any], prompt: str | None) -> list[int]:
        """Indices from longest to shortest input, so each batch pads little.

        Plain texts for a module that can count their tokens are sorted by token count, which is what
        padding follows; anything else by text length, as sentence-transformers sorts. The order only
        decides which inputs share a batch: each embedding is the same up to float rounding either way.
        """
        first = self._first_module()
        count_tokens = getattr(first, "text_token_counts", None)
        if inputs and count_tokens is not None and all(type(item) is str for item in inputs):
            counts = count_tokens(inputs, prompt)
            if counts is not None:
                return np.argsort(-counts, kind="stable").tolist()
        return _length_order(inputs)

    # -- similarity --------------------------------------------------------------------------------

    def similarity(self, embeddings1: Any, embeddings2: Any) -> Tensor:
        """All-pairs similarity [len(embeddings1), len(embeddings2)] with :attr:`similarity_fn_name`."""
        from embedforge.util.similarity import SimilarityFunction

        return SimilarityFunction.to_similarity_fn(self.similarity_fn_name)(embeddings1, embeddings2)

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> Tensor:
        """Row-by-row similarity [len(embeddings1)] with :attr:`similarity_fn_name`."""
        from embedforge.util.similarity import SimilarityFunction

        return SimilarityFunction.to_similarity_pairwise_fn(self.similarity_fn_name)(embeddings1, embeddings2)

    # -- saving ------------------------------------------------------------------------------------

    def _model_config_dict(self) -> dict[str, Any]:
        config = super()._model_config_dict()
        config["similarity_fn_name"] = self.similarity_fn_name
        if self.truncate_dim is not None:
            config["truncate_dim"] = self.truncate_dim
        return config

    def _write_model_card(self, folder: str, model_name: str | None, train_datasets: list[str] | None) -> None:
        from embedforge.sentence_transformer.model_card import write_model_card

        write_model_card(self, folder, model_name=model_name, train_datasets=train_datasets)

    @staticmethod
    def load(input_path: str) -> SentenceTransformer:
        """Load a model folder (same as the constructor)."""
        return SentenceTransformer(input_path)


# -- helpers ---------------------------------------------------------------------------------------


def _default_modules(folder: str, load_kwargs: dict[str, Any]) -> list[nn.Module]:
    """A plain Hugging Face folder becomes Transformer + mean Pooling, as in sentence-transformers."""
    if not os.path.isfile(os.path.join(folder, "config.json")):
        raise ModelFormatError(
            f"{folder!r} has neither modules.json (a sentence-transformers model) nor config.json (a transformers model)"
        )
    logger.warning(
        "No modules.json found for %s; initializing a new SentenceTransformer model with mean pooling "
        "over the transformer.",
        folder,
    )
    transformer = Transformer(
        folder,
        model_kwargs=load_kwargs["model_kwargs"],
        tokenizer_kwargs=load_kwargs["tokenizer_kwargs"],
        config_kwargs=load_kwargs["config_kwargs"],
    )
    return [transformer, Pooling(transformer.get_embedding_dimension(), "mean")]


def _is_chat_message(item: Any) -> bool:
    return isinstance(item, dict) and "role" in item and "content" in item


def _renamed_inputs(inputs: Any, kwargs: dict[str, Any]) -> Any:
    """``sentences=`` is the older name of ``inputs`` (taken out of ``kwargs``)."""
    if "sentences" in kwargs:
        if inputs is not None:
            raise InvalidArgumentError("Pass the texts as inputs or sentences, not both")
        return kwargs.pop("sentences")
    return inputs


def _length_order(inputs: list[Any]) -> list[int]:
    """Indices from longest to shortest input, so each batch pads little."""
    if all(isinstance(item, str) for item in inputs):
        from embedforge import _core

        return _core.length_order(inputs).tolist()
    lengths = [_input_length(item) for item in inputs]
    return sorted(range(len(inputs)), key=lambda index: -lengths[index])


def _input_length(item: Any) -> int:
    """A sort key for batching: the text length of texts, pairs, modality dicts and chat messages; 0 for media."""
    if isinstance(item, str):
        return len(item)
    if isinstance(item, dict):
        if "content" in item:
            return _input_length(item["content"])
        return _input_length(item.get("text", ""))
    if isinstance(item, (tuple, list)):
        return sum(_input_length(part) for part in item)
    return 0


__all__ = ["SentenceTransformer"]
