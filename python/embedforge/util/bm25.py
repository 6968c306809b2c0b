"""Okapi BM25 lexical search over a text corpus, indexed and queried in the Rust core.

``BM25().index(corpus).search(queries, top_k)`` returns, per query, the ids (positions in
``corpus``) and scores of the best ``top_k`` documents. Indexing runs in parallel on
embedforge's thread pool (capped by ``EMBEDFORGE_NUM_THREADS`` or
``embedforge._core.set_num_threads``); queries too, with the GIL released.

Terms. By default a text is lowercased and split into words: maximal runs of Unicode letters,
digits and ``_``, i.e. what ``re.findall(r"\\w+", text.lower())`` finds, except that combining
marks Unicode counts as letters (Hebrew points, Indic vowel signs) stay inside their word where
``re`` would cut it apart. With ``tokenizer`` the terms are instead the token ids of a Hugging
Face ``tokenizer.json`` (no special tokens, never truncated; the text is lowercased first unless
``lowercase=False``). Stop words are removed before counting, so they count towards neither
document frequencies nor document lengths.

Scores. With ``N`` documents, ``df`` the number of documents containing a term, ``tf`` its count
in document ``d``, ``|d|`` the document's length in terms and ``avgdl`` the mean length, the
score is the sum over the query's terms (a repeated query term counts again) of

- ``method="lucene"`` (default; Lucene 8+, ``bm25s`` with ``method="lucene"``):
  ``ln(1 + (N - df + 0.5) / (df + 0.5)) * tf / (tf + k1 * (1 - b + b * |d| / avgdl))``;
- ``method="okapi"`` (``rank_bm25.BM25Okapi``):
  ``idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * |d| / avgdl))`` with
  ``idf = ln((N - df + 0.5) / (df + 0.5))``, where each negative idf (a term in more than half
  of the documents) is replaced by ``0.25 * mean idf`` over the corpus vocabulary.

Weights are computed in float64 and summed in float32. Documents without any query term score
0; ties rank the lower id first.

Saved indexes are folders (``bm25_config.json``, ``bm25.safetensors``, and ``vocab.json`` or
``tokenizer.json``; no pickles), written atomically: see the Rust ``embedforge::Bm25Index`` docs
for the exact format.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ..exceptions import InvalidArgumentError, NotIndexedError

if TYPE_CHECKING:
    from .. import _core

#: The scoring methods ``BM25`` accepts.
METHODS = ("lucene", "okapi")
#: Values of ``stopwords`` that select the built-in English list.
ENGLISH = ("english", "en")


def english_stopwords() -> list[str]:
    """The built-in English stop-word list (lowercase function words), as ``stopwords="english"`` uses it."""
    from .. import _core  # imported here so `embedforge.util` stays free of the extension

    return _core.BM25Analyzer.english_stopwords()


class BM25:
    """An Okapi BM25 index over a text corpus.

    Args:
        k1: Term-frequency saturation, finite and >= 0: 0 counts a term once however often it
            occurs; larger values let repetitions count for more.
        b: Length normalisation in [0, 1]: 0 ignores document length, 1 fully divides by it.
        method: ``"lucene"`` (the default, as ``bm25s``) or ``"okapi"`` (as ``rank_bm25.BM25Okapi``);
            see the module docs for both formulas.
        lowercase: Lowercase texts and stop words before analysis.
        stopwords: ``None`` (keep every word), ``"english"`` (the built-in list, see
            :func:`english_stopwords`) or your own sequence of words. With a tokenizer, a token is
            dropped when its vocabulary string is one of them.
        tokenizer: Path of a Hugging Face ``tokenizer.json`` (or of a folder holding one) whose
            token ids become the terms, instead of words.

    Example::

        bm25 = BM25(stopwords="english").index(["the cat sat", "a dog barked", "a cat and a dog"])
        ids, scores = bm25.search(["cat"], top_k=2)  # ids [[0, 2]] (int64), scores float32 [1, 2]
    """

    def __init__(
        self,
        k1: float = 1.5,
        b: float = 0.75,
        method: str = "lucene",
        lowercase: bool = True,
        stopwords: str | Sequence[str] | None = None,
        tokenizer: str | os.PathLike[str] | None = None,
    ) -> None:
        from .. import _core  # imported here so `embedforge.util` stays free of the extension

        self._k1 = _number("k1", k1, lambda v: v >= 0, "a finite number >= 0")
        self._b = _number("b", b, lambda v: 0 <= v <= 1, "a number in [0, 1]")
        if not isinstance(method, str) or method not in METHODS:
            raise InvalidArgumentError(f"invalid value for `method`: got {method!r}, expected 'lucene' or 'okapi'")
        self._method = method
        if not isinstance(lowercase, (bool, np.bool_)):
            raise InvalidArgumentError(f"invalid value for `lowercase`: got {lowercase!r}, expected a bool")
        words = _stopword_list(stopwords)
        if tokenizer is not None and not isinstance(tokenizer, (str, os.PathLike)):
            raise InvalidArgumentError(
                f"invalid value for `tokenizer`: got an object of type {type(tokenizer).__name__}, "
                "expected the path of a tokenizer.json file (or of a folder holding one), or None"
            )
        self._tokenizer = None if tokenizer is None else os.fspath(tokenizer)
        self._analyzer = _core.BM25Analyzer(bool(lowercase), words, self._tokenizer)
        self._index: _core.BM25Index | None = None

    @property
    def k1(self) -> float:
        """Term-frequency saturation."""
        return self._k1

    @property
    def b(self) -> float:
        """Length normalisation."""
        return self._b

    @property
    def method(self) -> str:
        """``"lucene"`` or ``"okapi"``."""
        return self._method

    @property
    def lowercase(self) -> bool:
        """Whether texts and stop words are lowercased first."""
        return self._analyzer.lowercase

    @property
    def stopwords(self) -> list[str]:
        """The stop words in use (empty for none), sorted."""
        return self._analyzer.stopwords

    @property
    def tokenizer(self) -> str | None:
        """The ``tokenizer.json`` path the terms come from, or None for words."""
        return self._tokenizer

    def index(self, corpus: Sequence[str]) -> BM25:
        """Index ``corpus`` (one document per text; ids are positions in it), replacing any earlier corpus.

        Returns ``self``, so ``BM25().index(corpus).search(...)`` works.
        """
        from .. import _core  # imported here so `embedforge.util` stays free of the extension

        self._index = _core.BM25Index.build(corpus, self._analyzer, self._k1, self._b, self._method)
        return self

    def search(
        self, queries: Sequence[str] | str, top_k: int = 10
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """The best ``k = min(top_k, len(self))`` documents per query, best first, ties to the lower id.

        Returns ``(ids, scores)``: int64 and float32 arrays of shape ``[n_queries, k]`` (a single
        ``str`` query counts as one query). Every row is full: documents sharing no term with the
        query fill it at score 0, lowest ids first.
        """
        index = self._require_index("search")
        if not isinstance(top_k, (int, np.integer)) or isinstance(top_k, (bool, np.bool_)) or top_k < 1:
            raise InvalidArgumentError(f"invalid value for `top_k`: got {top_k!r}, expected a positive integer")
        if isinstance(queries, str):
            queries = [queries]
        return index.search(queries, int(top_k))

    def get_scores(self, query: str) -> npt.NDArray[np.float32]:
        """Every document's score for ``query``: float32 ``[len(self)]``."""
        index = self._require_index("get_scores")
        if not isinstance(query, str):
            raise InvalidArgumentError(
                f"invalid value for `query`: got an object of type {type(query).__name__}, expected a str"
            )
        return index.get_scores(query)

    def tokenize(self, texts: Sequence[str] | str) -> list[list[str]]:
        """The terms the index sees for each text (words, or token strings), stop words removed."""
        if isinstance(texts, str):
            texts = [texts]
        return self._analyzer.tokenize(texts)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index into the folder ``path`` (created if needed; other files in it are kept), atomically."""
        self._require_index("save").save(os.fspath(path))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> BM25:
        """Load a folder written by :meth:`save`."""
        from .. import _core  # imported here so `embedforge.util` stays free of the extension

        folder = os.fspath(path)
        index = _core.BM25Index.load(folder)
        analyzer = index.analyzer
        bm25 = cls.__new__(cls)
        bm25._k1, bm25._b, bm25._method = index.k1, index.b, index.method
        bm25._tokenizer = os.path.join(folder, "tokenizer.json") if analyzer.has_tokenizer else None
        bm25._analyzer = analyzer
        bm25._index = index
        return bm25

    def __len__(self) -> int:
        """Number of indexed documents (0 before :meth:`index`)."""
        return 0 if self._index is None else len(self._index)

    def __repr__(self) -> str:
        stopwords = f"<{len(self.stopwords)} words>" if self.stopwords else "None"
        return (
            f"BM25(k1={self._k1}, b={self._b}, method={self._method!r}, lowercase={self.lowercase}, "
            f"stopwords={stopwords}, tokenizer={self._tokenizer!r}, num_docs={len(self)})"
        )

    def _require_index(self, action: str) -> _core.BM25Index:
        if self._index is None:
            raise NotIndexedError(f"BM25.{action} needs an indexed corpus: call BM25.index(corpus) first")
        return self._index


def _number(name: str, value: object, accept: Callable[[float], bool], expected: str) -> float:
    """``value`` as a float when it is a real number (not a bool) that ``accept`` approves."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidArgumentError(f"invalid value for `{name}`: got {value!r}, expected {expected}")
    number = float(value)
    if not math.isfinite(number) or not accept(number):
        raise InvalidArgumentError(f"invalid value for `{name}`: got {value!r}, expected {expected}")
    return number


def _stopword_list(stopwords: str | Sequence[str] | None) -> list[str]:
    """The words ``stopwords`` stands for: none, the built-in English list, or the user's own."""
    if stopwords is None:
        return []
    if isinstance(stopwords, str):
        if stopwords.lower() in ENGLISH:
            return english_stopwords()
        raise InvalidArgumentError(
            f"invalid value for `stopwords`: got {stopwords!r}, expected 'english', a sequence of words, or None"
        )
    if not isinstance(stopwords, (Sequence, set, frozenset)):
        raise InvalidArgumentError(
            f"invalid value for `stopwords`: got an object of type {type(stopwords).__name__}, "
            "expected 'english', a sequence of words, or None"
        )
    words = list(stopwords)
    for i, word in enumerate(words):
        if not isinstance(word, str):
            raise InvalidArgumentError(
                f"invalid value for `stopwords[{i}]`: got an object of type {type(word).__name__}, expected a str"
            )
    return words
