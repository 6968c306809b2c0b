"""Type stubs for the native module ``embedforge._core`` (built from rust/python)."""

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from typing_extensions import final

__all__ = [
    "BM25Analyzer",
    "BM25Index",
    "StaticModel",
    "Tokenizer",
    "__version__",
    "accumulate_scaled_probs",
    "adamw_sparse_rows",
    "embed_static",
    "embedding_bag_mean",
    "get_num_threads",
    "intern_text_columns",
    "length_order",
    "no_duplicates_pass",
    "rescore_quantized",
    "retrieval_metrics",
    "set_num_threads",
    "softmax_rows",
    "tokenizer_from_state",
    "top_k",
    "top_k_quantized",
    "use_openmp_team",
    "uses_openmp_team",
]

__version__: str

@final
class Tokenizer:
    """A Hugging Face ``tokenizer.json`` tokenizer that encodes whole batches in Rust."""

    @staticmethod
    def from_file(path: str) -> Tokenizer:
        """Load a ``tokenizer.json`` file."""
    @staticmethod
    def from_str(json: str) -> Tokenizer:
        """Load a tokenizer from the text of a ``tokenizer.json`` file."""
    def to_str(self) -> str:
        """The tokenizer serialised as ``tokenizer.json`` text."""
    @property
    def vocab_size(self) -> int:
        """Vocabulary size, added tokens included."""
    @property
    def pad_id(self) -> int:
        """Id used to pad ``input_ids``."""
    @property
    def padding_left(self) -> bool:
        """Whether padding goes on the left."""
    def set_padding(self, pad_id: int, pad_type_id: int = 0, padding_left: bool = False) -> None:
        """Set the padding id, token type id and side used by ``encode_padded``."""
    def encode_padded(
        self,
        texts: Sequence[str],
        pairs: Sequence[str] | None = None,
        max_length: int | None = None,
        prompt: str | None = None,
        add_special_tokens: bool = True,
    ) -> dict[str, npt.NDArray[np.int64]]:
        """Encode a batch into padded int64 ``input_ids``, ``attention_mask``, ``token_type_ids``.

        Texts are truncated (longest-first for pairs) to ``max_length`` tokens, special
        tokens included. With ``prompt`` the prompt is prepended to every text and the
        result also holds ``prompt_length`` (a 0-d array), computed as in
        sentence-transformers: the prompt's token count with special tokens (truncated to
        ``max_length``), minus one when it ends in a special token such as ``[SEP]``.
        ``max_length`` smaller than the special tokens the tokenizer adds raises
        ``InvalidArgumentError``.
        """
    def token_counts(
        self,
        texts: Sequence[str],
        max_length: int | None = None,
        prompt: str | None = None,
        add_special_tokens: bool = True,
    ) -> npt.NDArray[np.int64]:
        """Each text's token count in ``encode_padded`` with the same options (truncated, unpadded)."""
    def encode_flat(
        self,
        texts: Sequence[str],
        max_length: int | None = None,
        prompt: str | None = None,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Encode without special tokens into flat ids and per-text start offsets (EmbeddingBag input)."""
    def encode_ids(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids of one text, untruncated."""
    def prompt_length(self, prompt: str, max_length: int | None = None) -> int:
        """The number of leading positions a prompt occupies (see ``encode_padded``)."""
    def id_to_token(self, id: int) -> str | None:
        """The token string of an id."""
    def token_to_id(self, token: str) -> int | None:
        """The id of a token string."""
    def vocab(self) -> list[str]:
        """All token strings, indexed by id (ids without a token are empty strings)."""
    def __reduce__(self) -> tuple[Any, tuple[str, int, int, bool]]:
        """Pickle support: the ``tokenizer.json`` text plus the padding."""

def tokenizer_from_state(json: str, pad_id: int, pad_type_id: int, padding_left: bool) -> Tokenizer:
    """Rebuild a pickled ``Tokenizer`` from its ``__reduce__`` state."""

def length_order(texts: Sequence[str]) -> npt.NDArray[np.int64]:
    """Indices that sort ``texts`` by decreasing character length (stable)."""

def softmax_rows(
    dots: npt.NDArray[np.float32],
    row_scale: npt.NDArray[np.float32],
    col_scale: npt.NDArray[np.float32],
    probs: npt.NDArray[np.float32] | None = None,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Row softmax of ``(row_scale[i] * col_scale[j]) * dots[i, j]`` (column ``i`` is row ``i``'s positive).

    Returns ``(log_prob_positive, row_sum, col_sum)``; writes the probabilities into ``probs`` when given.
    """

def adamw_sparse_rows(
    param: npt.NDArray[np.float32],
    exp_avg: npt.NDArray[np.float32],
    exp_avg_sq: npt.NDArray[np.float32],
    rows: npt.NDArray[np.int64],
    values: npt.NDArray[np.float32],
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    step: int,
    maximize: bool = False,
) -> None:
    """One AdamW step in place; the gradient is ``values[k]`` on row ``rows[k]`` (strictly increasing), zero elsewhere."""

def accumulate_scaled_probs(
    grad: npt.NDArray[np.float32],
    row_scale: npt.NDArray[np.float32],
    col_scale: npt.NDArray[np.float32],
    probs: npt.NDArray[np.float32] | None = None,
) -> None:
    """``grad += outer(row_scale, col_scale) * probs`` (without ``probs``: ``grad *= ...``), then the diagonal
    minus ``row_scale * col_scale``; in place."""

def embedding_bag_mean(
    weights: npt.NDArray[np.float32],
    ids: npt.NDArray[np.int64],
    offsets: npt.NDArray[np.int64],
    normalize: bool = False,
) -> npt.NDArray[np.float32]:
    """Mean of ``weights`` rows per bag (``torch.nn.EmbeddingBag(mode="mean")``); empty bags are zero."""

def embed_static(
    tokenizer: Tokenizer,
    weights: npt.NDArray[np.float32],
    texts: Sequence[str],
    normalize: bool = False,
    max_length: int | None = None,
) -> npt.NDArray[np.float32]:
    """Tokenise ``texts`` without special tokens and mean-pool their rows of ``weights``, in one call."""

@final
class StaticModel:
    """A saved static embedding model (sentence-transformers StaticEmbedding or model2vec folder)."""

    @staticmethod
    def load(path: str) -> StaticModel:
        """Load a model folder."""
    @property
    def dim(self) -> int:
        """Embedding width."""
    @property
    def normalize(self) -> bool:
        """Whether ``encode`` L2-normalises by default."""
    def encode(self, texts: Sequence[str], normalize: bool | None = None) -> npt.NDArray[np.float32]:
        """Embed texts as float32 rows."""

def set_num_threads(n: int) -> None:
    """Cap the threads used by embedforge's Rust code (0 = one per core)."""

def get_num_threads() -> int:
    """The number of threads embedforge's Rust code uses."""

def use_openmp_team(address: int | None) -> None:
    """Run the parallel loops on the OpenMP team whose ``GOMP_parallel`` is at ``address`` (None: own threads)."""

def uses_openmp_team() -> bool:
    """Whether the parallel loops run on a host OpenMP team."""

def retrieval_metrics(
    ranked: Sequence[Sequence[int]],
    relevant: Sequence[Sequence[int]],
    *,
    accuracy_at_k: Sequence[int],
    precision_recall_at_k: Sequence[int],
    mrr_at_k: Sequence[int],
    ndcg_at_k: Sequence[int],
    map_at_k: Sequence[int],
) -> dict[str, dict[int, float]]:
    """Accuracy, precision, recall, MRR, NDCG and MAP at cutoffs over ranked id lists, averaged over queries."""

def top_k(
    queries: npt.NDArray[np.float32],
    corpus: npt.NDArray[np.float32],
    k: int,
    score: str = "cosine",
    block_size: int = 4096,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Exact top-``k`` corpus rows per query: ``(indices int64 [q, k'], scores float32 [q, k'])``."""

def top_k_quantized(
    queries: npt.NDArray[np.int8] | npt.NDArray[np.uint8],
    corpus: npt.NDArray[np.int8] | npt.NDArray[np.uint8],
    k: int,
    precision: str,
    block_size: int = 4096,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]:
    """Exact top-``k`` over quantised rows: ``(indices int64, scores int32)``; int8/uint8 by
    integer dot product (highest first), binary/ubinary by Hamming distance (lowest first)."""

def rescore_quantized(
    queries: npt.NDArray[np.float32],
    corpus: npt.NDArray[np.int8] | npt.NDArray[np.uint8],
    precision: str,
    candidates: npt.NDArray[np.int64],
    k: int,
    ranges: npt.NDArray[np.float32] | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Re-ranks candidate rows by float queries against the dequantised corpus: ``(indices
    int64, scores float64)``, best ``k`` per query."""

def intern_text_columns(
    columns: Sequence[Sequence[tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8]]]],
    num_rows: int,
) -> npt.NDArray[np.uint32]:
    """Ids of every row's texts, ``uint32 [num_rows, len(columns)]``; equal texts get equal ids."""

def no_duplicates_pass(
    value_ids: npt.NDArray[np.uint32],
    order: npt.NDArray[np.int64],
    batch_size: int,
    drop_last: bool,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """One no-duplicates pass over ``order``: ``(rows int64, bounds int64)``."""

@final
class BM25Analyzer:
    """How texts become BM25 terms: lowercased words, or the token ids of a ``tokenizer.json``."""

    def __new__(
        cls,
        lowercase: bool = True,
        stopwords: Sequence[str] | None = None,
        tokenizer: str | os.PathLike[str] | None = None,
    ) -> BM25Analyzer:
        """Words (maximal runs of letters, digits and ``_``), or the ids of ``tokenizer`` (a
        ``tokenizer.json`` or a folder holding one), with ``stopwords`` removed."""
    @staticmethod
    def english_stopwords() -> list[str]:
        """The built-in English stop-word list."""
    @property
    def lowercase(self) -> bool:
        """Whether texts and stop words are lowercased first."""
    @property
    def stopwords(self) -> list[str]:
        """The stop words (sorted)."""
    @property
    def has_tokenizer(self) -> bool:
        """Whether the terms are a tokenizer's token ids."""
    def tokenize(self, texts: Sequence[str]) -> list[list[str]]:
        """The terms of every text, stop words removed (words, or token strings)."""

@final
class BM25Index:
    """An Okapi BM25 index over a corpus of texts."""

    @staticmethod
    def build(
        corpus: Sequence[str],
        analyzer: BM25Analyzer,
        k1: float = 1.5,
        b: float = 0.75,
        method: str = "lucene",
    ) -> BM25Index:
        """Index ``corpus`` (one document per text) in parallel."""
    @staticmethod
    def load(path: str | os.PathLike[str]) -> BM25Index:
        """Load an index folder written by ``save``."""
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index into the folder ``path``, atomically."""
    def search(self, queries: Sequence[str], k: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """The best ``min(k, num_docs)`` documents per query: ``(ids int64 [q, k'], scores float32
        [q, k'])``, best first, ties to the lower id."""
    def get_scores(self, query: str) -> npt.NDArray[np.float32]:
        """Every document's score for ``query``: float32 ``[num_docs]``."""
    @property
    def analyzer(self) -> BM25Analyzer:
        """The analyzer documents and queries go through."""
    @property
    def k1(self) -> float:
        """Term-frequency saturation ``k1``."""
    @property
    def b(self) -> float:
        """Length normalisation ``b``."""
    @property
    def method(self) -> str:
        """``"lucene"`` or ``"okapi"``."""
    @property
    def num_docs(self) -> int:
        """Number of documents."""
    @property
    def num_terms(self) -> int:
        """Number of term ids (distinct words, or the tokenizer's vocabulary size)."""
    @property
    def avg_doc_length(self) -> float:
        """Mean document length in terms."""
    def __len__(self) -> int:
        """Number of documents."""
