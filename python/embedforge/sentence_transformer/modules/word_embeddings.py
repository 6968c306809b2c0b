"""WordEmbeddings: a word-vector lookup table (GloVe, word2vec, ...) behind a word tokenizer."""

from __future__ import annotations

import gzip
import logging
import os
import sys
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from embedforge._internal.arguments import check_positive_int
from embedforge.base.modules.input_module import InputModule
from embedforge.exceptions import InvalidArgumentError, ModelFormatError, ModelNotFoundError
from embedforge.sentence_transformer.modules.tokenizer import (
    PhraseTokenizer,
    TransformersTokenizerWrapper,
    WhitespaceTokenizer,
    WordTokenizer,
)
from embedforge.util.misc import import_module_class as _import_module_class

if TYPE_CHECKING:
    # typing.Self is Python 3.11+; annotations are never evaluated at runtime here.
    from typing_extensions import Self

__all__ = ["WordEmbeddings"]

logger = logging.getLogger(__name__)


def __getattr__(name: str) -> Any:
    # The trust gate, when a stand-in put on this module was removed by deleting the name.
    if name == "import_module_class":
        return _import_module_class
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_WEIGHT_KEY = "emb_layer.weight"
#: Tokenizers that may be named in a saved config without trusting code, by class name.
_KNOWN_TOKENIZERS: dict[str, type[WordTokenizer]] = {
    cls.__name__: cls for cls in (WhitespaceTokenizer, PhraseTokenizer, TransformersTokenizerWrapper)
}


class WordEmbeddings(InputModule):
    """Maps each word id produced by a word tokenizer to a row of an embedding matrix.

    Outputs ``token_embeddings`` (one vector per word, zeros-padded rows use id 0) plus the
    ``attention_mask`` and ``sentence_lengths`` made by :meth:`preprocess`; pool them into one vector with Pooling.
    """

    config_file_name = "wordembedding_config.json"
    config_keys: ClassVar[list[str]] = ["tokenizer_class", "update_embeddings", "max_seq_length"]

    def __init__(
        self,
        tokenizer: Any,
        embedding_weights: Any,
        update_embeddings: bool = False,
        max_seq_length: int = 1000000,
    ) -> None:
        super().__init__()
        if not isinstance(tokenizer, WordTokenizer):
            if not _is_transformers_tokenizer(tokenizer):
                raise InvalidArgumentError(
                    f"tokenizer must be a WordTokenizer or a transformers tokenizer, got {type(tokenizer).__name__}"
                )
            tokenizer = TransformersTokenizerWrapper(tokenizer)
        weights = _as_weight_matrix(embedding_weights)
        check_positive_int("max_seq_length", max_seq_length)

        num_embeddings, dimension = weights.shape
        self.embeddings_dimension = dimension
        self.emb_layer = nn.Embedding(num_embeddings, dimension)
        with torch.no_grad():
            self.emb_layer.weight.copy_(weights)
        self.emb_layer.weight.requires_grad = update_embeddings
        self.tokenizer = tokenizer
        self.update_embeddings = update_embeddings
        self._max_seq_length = max_seq_length
        _check_vocab_fits(tokenizer, tuple(weights.shape))

    @property
    def max_seq_length(self) -> int:
        """Longest input, in words; longer inputs are cut to this many words."""
        return self._max_seq_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        check_positive_int("max_seq_length", value)
        self._max_seq_length = value

    @property
    def modalities(self) -> list[str]:
        """Input kinds the module accepts."""
        return ["text"]

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Add ``token_embeddings`` looked up from ``features['input_ids']``."""
        features["token_embeddings"] = self.emb_layer(features["input_ids"])
        # Readers of the transformer-style feature set expect this key; word vectors have no CLS token.
        features["cls_token_embeddings"] = None
        return features

    def preprocess(self, inputs: list[str], prompt: str | None = None, **kwargs: Any) -> dict[str, torch.Tensor]:
        """Tokenise ``inputs`` (after prepending ``prompt``) into padded ``input_ids`` with masks and lengths."""
        if isinstance(inputs, str):
            raise InvalidArgumentError(f"inputs must be a list of texts, got the string {inputs!r}")
        if prompt:
            inputs = [prompt + text for text in inputs]
        tokenized = [self.tokenizer.tokenize(text, **kwargs)[: self._max_seq_length] for text in inputs]
        lengths = [len(ids) for ids in tokenized]
        # At least one column, so an all-unknown batch still yields a (zero-masked) tensor to pool.
        width = max(1, max(lengths, default=0))
        input_ids = torch.zeros((len(tokenized), width), dtype=torch.long)
        attention_mask = torch.zeros((len(tokenized), width), dtype=torch.long)
        for row, ids in enumerate(tokenized):
            if ids:
                input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
                attention_mask[row, : len(ids)] = 1
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "sentence_lengths": torch.tensor(lengths, dtype=torch.long),
        }

    def tokenize(self, texts: list[str], **kwargs: Any) -> dict[str, torch.Tensor]:
        """Old name of :meth:`preprocess`."""
        return self.preprocess(texts, **kwargs)

    def get_embedding_dimension(self) -> int:
        """Width of the word vectors."""
        return self.embeddings_dimension

    def get_config_dict(self) -> dict[str, Any]:
        """The content of ``wordembedding_config.json``."""
        return {
            "tokenizer_class": _tokenizer_class_name(self.tokenizer),
            "update_embeddings": self.update_embeddings,
            "max_seq_length": self._max_seq_length,
        }

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        """Write the config, the embedding matrix and the tokenizer's files into ``output_path``."""
        self.save_config(output_path)
        self.save_torch_weights(output_path, safe_serialization=safe_serialization)
        self.tokenizer.save(output_path)

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", **kwargs: Any) -> Self:
        """Load a WordEmbeddings folder written by embedforge or sentence-transformers.

        A ``tokenizer_class`` outside embedforge and sentence-transformers is imported only with
        ``trust_remote_code=True``.
        """
        folder = os.path.join(model_name_or_path, subfolder)
        config = cls.load_config(model_name_or_path=model_name_or_path, subfolder=subfolder)
        if "tokenizer_class" not in config:
            raise ModelFormatError(
                f"{os.path.join(folder, cls.config_file_name)!r} must name the 'tokenizer_class' of the model"
            )
        tokenizer_class = _resolve_tokenizer_class(
            config.pop("tokenizer_class"),
            model_name_or_path=model_name_or_path,
            trust_remote_code=bool(kwargs.get("trust_remote_code", False)),
        )
        tokenizer_folder = cls.load_dir_path(model_name_or_path=model_name_or_path, subfolder=subfolder)
        tokenizer = tokenizer_class.load(tokenizer_folder)
        state = cls.load_torch_weights(model_name_or_path=model_name_or_path, subfolder=subfolder)
        unexpected = sorted(set(state) - {_WEIGHT_KEY})
        if _WEIGHT_KEY not in state or unexpected:
            raise ModelFormatError(
                f"The weights in {folder!r} must hold exactly the tensor {_WEIGHT_KEY!r}; found {sorted(state)}"
            )
        weights = state[_WEIGHT_KEY]
        if weights.dim() != 2:
            raise ModelFormatError(
                f"Tensor {_WEIGHT_KEY!r} in {folder!r} has shape {tuple(weights.shape)}; "
                "expected (vocab size, dimension)"
            )
        known = {key: config[key] for key in ("update_embeddings", "max_seq_length") if key in config}
        try:
            return cls(tokenizer=tokenizer, embedding_weights=weights, **known)
        except InvalidArgumentError as error:
            raise ModelFormatError(f"The model in {folder!r} is inconsistent: {error}") from error

    @classmethod
    def load_dir_path(cls, model_name_or_path: str, subfolder: str = "", **kwargs: Any) -> str:
        """The folder of this module inside a local model folder (the tokenizer's files live there)."""
        return os.path.join(model_name_or_path, subfolder)

    @classmethod
    def from_text_file(
        cls,
        embeddings_file_path: str,
        update_embeddings: bool = False,
        item_separator: str = " ",
        tokenizer: WordTokenizer | None = None,
        max_vocab_size: int | None = None,
    ) -> Self:
        """Build the module from a word-vector text file (GloVe or word2vec text format, optionally ``.gz``).

        Each line is a word followed by its vector, separated by ``item_separator``; a word2vec header line
        (``count dimension``) is skipped. Row 0 becomes an all-zero ``PADDING_TOKEN``. Lines whose vector length
        differs from the first line's are skipped with a warning, as sentence-transformers does.
        """
        if not os.path.isfile(embeddings_file_path):
            raise ModelNotFoundError(
                f"embeddings_file_path={embeddings_file_path!r} is not a file; embedforge never downloads embeddings"
            )
        if not isinstance(item_separator, str) or not item_separator:
            raise InvalidArgumentError(f"item_separator must be a non-empty string, got {item_separator!r}")
        if tokenizer is None:
            tokenizer = WhitespaceTokenizer()

        vocab: list[str] = []
        vectors: list[np.ndarray] = []
        dimension: int | None = None
        skipped: list[int] = []
        opener = gzip.open if embeddings_file_path.endswith(".gz") else open
        with opener(embeddings_file_path, "rt", encoding="utf8") as lines:
            for line_number, line in enumerate(tqdm(lines, desc="Load Word Embeddings", unit="Embeddings"), 1):
                fields = line.rstrip().split(item_separator)
                if not vocab and len(fields) == 2:
                    continue  # word2vec header: "<vocab size> <dimension>"
                if dimension is None:
                    dimension = len(fields) - 1
                    vocab.append("PADDING_TOKEN")
                    vectors.append(np.zeros(dimension))
                if len(fields) - 1 != dimension:
                    skipped.append(line_number)
                    continue
                try:
                    vectors.append(np.array([float(value) for value in fields[1:]]))
                except ValueError as error:
                    raise ModelFormatError(
                        f"{embeddings_file_path!r} line {line_number}: the vector of {fields[0]!r} "
                        f"is not numeric ({error})"
                    ) from error
                vocab.append(fields[0])
                if max_vocab_size is not None and max_vocab_size > 0 and len(vocab) > max_vocab_size:
                    break

        if dimension is None or dimension < 1:
            raise ModelFormatError(f"{embeddings_file_path!r} holds no word vectors")
        if skipped:
            # Kept for parity (some GloVe releases hold words containing the separator), but never silent.
            logger.warning(
                "Skipped %d line(s) of %r whose vector length differs from %d (first: line %d)",
                len(skipped),
                embeddings_file_path,
                dimension,
                skipped[0],
            )
        tokenizer.set_vocab(vocab)
        return cls(tokenizer=tokenizer, embedding_weights=np.asarray(vectors), update_embeddings=update_embeddings)


def _is_transformers_tokenizer(tokenizer: Any) -> bool:
    """Whether ``tokenizer`` is a transformers tokenizer, without importing transformers when it is not loaded."""
    import sys

    if "transformers" not in sys.modules:
        return False
    from transformers import PreTrainedTokenizerBase

    return isinstance(tokenizer, PreTrainedTokenizerBase)


def _as_weight_matrix(embedding_weights: Any) -> torch.Tensor:
    """Turn a list, array or tensor into a 2-D float tensor, with a clear error for anything else."""
    if isinstance(embedding_weights, list):
        embedding_weights = np.asarray(embedding_weights)
    if isinstance(embedding_weights, np.ndarray):
        embedding_weights = torch.from_numpy(embedding_weights)
    if not isinstance(embedding_weights, torch.Tensor):
        raise InvalidArgumentError(
            f"embedding_weights must be a 2-D list, numpy array or tensor, got {type(embedding_weights).__name__}"
        )
    if embedding_weights.dim() != 2 or not embedding_weights.is_floating_point():
        raise InvalidArgumentError(
            "embedding_weights must be a 2-D float matrix (vocab size x dimension), "
            f"got shape {tuple(embedding_weights.shape)} and dtype {embedding_weights.dtype}"
        )
    return embedding_weights.detach()


def _check_vocab_fits(tokenizer: WordTokenizer, shape: tuple[int, ...]) -> None:
    """Every id the tokenizer can produce must have an embedding row."""
    if isinstance(tokenizer, TransformersTokenizerWrapper):
        size = len(tokenizer.tokenizer)
    else:
        vocab = tokenizer.get_vocab()
        try:
            size = len(vocab)
        except TypeError:
            return  # a custom tokenizer with an unsized vocabulary: nothing to compare
    if size > shape[0]:
        raise InvalidArgumentError(
            f"the tokenizer's vocabulary has {size} entries but tensor {_WEIGHT_KEY!r} has shape {shape}, "
            f"only {shape[0]} rows; every vocabulary id needs a row"
        )


def _tokenizer_class_name(tokenizer: WordTokenizer) -> str:
    """The ``tokenizer_class`` to save: sentence-transformers' name for built-in tokenizers, else the import path."""
    name = getattr(type(tokenizer), "st_class_name", None)
    if name and type(tokenizer) in _KNOWN_TOKENIZERS.values():
        return name
    return f"{type(tokenizer).__module__}.{type(tokenizer).__qualname__}"


def _resolve_tokenizer_class(class_ref: Any, model_name_or_path: str, trust_remote_code: bool) -> Any:
    """Find the tokenizer class a saved config names, importing outside code only when trusted."""
    if not isinstance(class_ref, str) or not class_ref:
        raise ModelFormatError(f"tokenizer_class must be a dotted class name, got {class_ref!r}")
    class_name = class_ref.rsplit(".", 1)[-1]
    if class_ref.startswith(("sentence_transformers.", "embedforge.")):
        if class_name in _KNOWN_TOKENIZERS:
            return _KNOWN_TOKENIZERS[class_name]
        raise ModelFormatError(
            f"tokenizer_class {class_ref!r} is not supported; known tokenizers: {sorted(_KNOWN_TOKENIZERS)}"
        )
    # The one trust gate for classes a model's config names (it refuses without trust_remote_code).
    try:
        # Looked up on the module at call time, so the gate can be replaced (and a removed stand-in falls back).
        gate = sys.modules[__name__].import_module_class
        found = gate(class_ref, model_name_or_path=model_name_or_path, trust_remote_code=trust_remote_code)
    except (ImportError, ValueError) as error:
        raise ModelFormatError(f"Cannot use tokenizer_class {class_ref!r}: {error}") from error
    if not callable(getattr(found, "load", None)):
        raise ModelFormatError(f"tokenizer_class {class_ref!r} has no load(path) method, so it is not a word tokenizer")
    return found
