"""StaticEmbedding: a text embedding as the mean of per-token vectors (an ``EmbeddingBag``)."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer
from torch import Tensor, nn

from embedforge._internal.local_path import require_local_dir
from embedforge._internal.weights import load_state_dict_file
from embedforge.base.modules.input_module import InputModule
from embedforge.exceptions import (
    InvalidArgumentError,
    ModelFormatError,
    ModelNotFoundError,
)
from embedforge.static.bag_mean_rows import BagMeanRowGradient, restore_coalesced_flag

if TYPE_CHECKING:
    # typing.Self is Python 3.11+; annotations are never evaluated at runtime here.
    from typing_extensions import Self


class StaticEmbedding(InputModule):
    """Embed a text as the mean of its tokens' trained vectors; tokenisation and lookup run in Rust."""

    flat_token_inputs: ClassVar[bool] = True

    def __init__(
        self,
        tokenizer: Tokenizer | Any,
        embedding_weights: np.ndarray | Tensor | None = None,
        embedding_dim: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        # A transformers fast tokenizer wraps a tokenizers.Tokenizer: keep the inner one.
        if not isinstance(tokenizer, Tokenizer) and isinstance(getattr(tokenizer, "_tokenizer", None), Tokenizer):
            tokenizer = tokenizer._tokenizer
        if not isinstance(tokenizer, Tokenizer):
            raise InvalidArgumentError(
                f"tokenizer is {type(tokenizer).__name__}; expected a tokenizers.Tokenizer or a fast transformers "
                "tokenizer"
            )
        if embedding_weights is not None:
            weights = torch.as_tensor(embedding_weights)
            if weights.ndim != 2:
                raise InvalidArgumentError(
                    f"embedding_weights has shape {tuple(weights.shape)}; expected [vocabulary, dimensions]"
                )
            self.embedding = nn.EmbeddingBag.from_pretrained(weights.float(), freeze=False)
        elif embedding_dim is not None:
            self.embedding = nn.EmbeddingBag(tokenizer.get_vocab_size(), embedding_dim)
        else:
            raise InvalidArgumentError("StaticEmbedding needs embedding_weights or embedding_dim; got neither")
        if tokenizer.get_vocab_size() > self.embedding.num_embeddings:
            raise ModelFormatError(
                f"The tokenizer has {tokenizer.get_vocab_size()} tokens but the embedding matrix only "
                f"{self.embedding.num_embeddings} rows"
            )
        self.num_embeddings = self.embedding.num_embeddings
        self.embedding_dim = self.embedding.embedding_dim
        self.tokenizer = tokenizer
        self.base_model = kwargs.get("base_model")
        # Opt-in (see embedforge.optim): the weight's gradient is a sparse COO tensor of the batch's rows
        # instead of a dense vocabulary-sized matrix. A runtime setting, never saved.
        self.sparse_gradients = False
        # Only acts on sparse gradients; keeps the batch's sorted rows flagged coalesced for clipping and the optimizer.
        self.embedding.weight.register_post_accumulate_grad_hook(restore_coalesced_flag)

    @property
    def tokenizer(self) -> Tokenizer:
        """The ``tokenizers.Tokenizer`` whose ids index the embedding rows."""
        return self._tokenizer

    @tokenizer.setter
    def tokenizer(self, value: Tokenizer) -> None:
        from embedforge import _core

        value.no_padding()
        self._tokenizer = value
        # The Rust copy does the batch work; rebuilt whenever the tokenizer is replaced.
        self._rust_tokenizer = _core.Tokenizer.from_str(value.to_str())

    @property
    def rust_tokenizer(self) -> Any:
        """The Rust batch tokenizer mirroring :attr:`tokenizer`."""
        return self._rust_tokenizer

    @property
    def max_seq_length(self) -> float:
        """Static models read whole texts: no limit."""
        return math.inf

    def get_embedding_dimension(self) -> int:
        """Width of the embeddings."""
        return self.embedding_dim

    def tokenize(self, texts: list[str], **kwargs: Any) -> dict[str, Tensor]:
        """Flat token ids and per-text offsets, the input of ``EmbeddingBag``."""
        return self.preprocess(list(texts), prompt=kwargs.get("prompt"))

    def preprocess(self, inputs: list[str], prompt: str | None = None, **kwargs: Any) -> dict[str, Tensor]:
        """Tokenise without special tokens into ``input_ids`` and ``offsets``."""
        ids, offsets = self._rust_tokenizer.encode_flat(inputs, prompt=prompt or None)
        return {
            "input_ids": torch.from_numpy(ids),
            "offsets": torch.from_numpy(offsets),
        }

    def forward(self, features: dict[str, Tensor], **kwargs: Any) -> dict[str, Tensor]:
        """Mean-pool each text's token vectors into ``sentence_embedding``."""
        input_ids, offsets = features["input_ids"], features["offsets"]
        weight = self.embedding.weight
        if self.sparse_gradients and weight.requires_grad and torch.is_grad_enabled() and input_ids.ndim == 1:
            features["sentence_embedding"] = BagMeanRowGradient.apply(input_ids, offsets, weight)
        else:
            features["sentence_embedding"] = self.embedding(input_ids, offsets)
        return features

    def embed_fast(self, texts: list[str], prompt: str | None = None, normalize: bool = False) -> np.ndarray:
        """Inference shortcut: tokenise and pool in one Rust call with no autograd, on CPU weights."""
        weights = self.embedding.weight.detach()
        if weights.device.type != "cpu" or weights.dtype != torch.float32:
            weights = weights.to("cpu", torch.float32)
        if prompt:
            texts = [prompt + text for text in texts]
        from embedforge import _core

        # numpy() shares memory with the parameter: no copy of the matrix per call.
        return _core.embed_static(self._rust_tokenizer, weights.numpy(), texts, normalize=normalize)

    def save(
        self,
        output_path: str,
        *args: Any,
        safe_serialization: bool = True,
        **kwargs: Any,
    ) -> None:
        """Write ``model.safetensors`` (tensor ``embedding.weight``) and ``tokenizer.json``."""
        state = {"embedding.weight": self.embedding.weight.detach().contiguous().cpu()}
        if safe_serialization:
            save_file(
                state,
                os.path.join(output_path, "model.safetensors"),
                metadata={"format": "pt"},
            )
        else:
            torch.save(state, os.path.join(output_path, "pytorch_model.bin"))
        self._tokenizer.save(os.path.join(output_path, "tokenizer.json"))

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", **kwargs: Any) -> Self:
        """Load a saved StaticEmbedding folder, or a model2vec folder (tensor ``embeddings``)."""
        folder = os.path.join(require_local_dir(model_name_or_path, "model_name_or_path"), subfolder)
        tokenizer_path = os.path.join(folder, "tokenizer.json")
        if not os.path.isfile(tokenizer_path):
            raise ModelNotFoundError(f"StaticEmbedding folder {folder!r} has no tokenizer.json")
        try:
            tokenizer = Tokenizer.from_file(tokenizer_path)
        except Exception as error:  # tokenizers raises a bare Exception for bad JSON
            raise ModelFormatError(f"Cannot read {tokenizer_path!r}: {error}") from error
        weights = load_state_dict_file(folder)
        return cls(tokenizer, embedding_weights=embedding_matrix_from_state(weights, folder))

    @classmethod
    def from_model2vec(cls, model_id_or_path: str) -> Self:
        """Load a local model2vec folder (``model.safetensors`` with ``embeddings``, ``tokenizer.json``)."""
        static = cls.load(model_id_or_path)
        static.base_model = model_id_or_path
        return static

    @classmethod
    def from_distillation(
        cls,
        model_name: str,
        vocabulary: list[str] | None = None,
        device: str | None = None,
        pca_dims: int | None = 256,
        apply_zipf: bool = True,
        sif_coefficient: float | None = 1e-4,
        token_remove_pattern: str | None = r"\[unused\d+\]",
        quantize_to: str = "float32",
        use_subword: bool = True,
        **kwargs: Any,
    ) -> Self:
        """Distil a local transformer into static token vectors (model2vec's recipe, without model2vec)."""
        from embedforge.static.distill import distill_static_embeddings

        tokenizer, weights = distill_static_embeddings(
            model_name,
            vocabulary=vocabulary,
            device=device,
            pca_dims=pca_dims,
            apply_zipf=apply_zipf,
            sif_coefficient=sif_coefficient,
            token_remove_pattern=token_remove_pattern,
            quantize_to=quantize_to,
            use_subword=use_subword,
            **kwargs,
        )
        return cls(tokenizer, embedding_weights=weights, base_model=model_name)

    def __repr__(self) -> str:
        return f"StaticEmbedding({self.num_embeddings} tokens x {self.embedding_dim} dims)"


def embedding_matrix_from_state(state: dict[str, Tensor], where: str) -> Tensor:
    """The embedding rows in a StaticEmbedding or model2vec state dict, one per token id."""
    if "embedding.weight" in state:
        return state["embedding.weight"]
    if "embeddings" not in state:
        raise ModelFormatError(
            f"The weights in {where!r} hold {sorted(state)}; expected 'embedding.weight' or model2vec's 'embeddings'"
        )
    embeddings = state["embeddings"]
    # Vocabulary-quantised model2vec models map token ids to shared rows and scale each token.
    mapping = state.get("mapping")
    if mapping is not None:
        embeddings = embeddings[mapping.long()]
    token_weights = state.get("weights")
    if token_weights is not None:
        embeddings = embeddings.float() * token_weights.float()[:, None]
    return embeddings.contiguous()
