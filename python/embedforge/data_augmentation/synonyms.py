"""Synonym replacement for single sentences: silver pairs that keep the gold label with some words swapped.

The original example used nlpaug's synonym augmenters, which need downloaded resources (WordNet,
word2vec GoogleNews vectors, a masked-language model). Those downloads are out of reach offline,
so :class:`SynonymAugmenter` takes its synonyms from what is local:

- :meth:`SynonymAugmenter.from_static_model`: the nearest whole-word neighbours in a static
  embedding table (a StaticEmbedding or model2vec folder, e.g. one distilled from the bi-encoder's
  own transformer), found with the exact top-k engine; this is nlpaug's word-embedding
  substitution with a table we have;
- :meth:`SynonymAugmenter.from_embeddings`: the same from any (words, vectors) table, e.g. word2vec
  or GloVe vectors a user has on disk;
- the constructor: a mapping word -> synonyms, e.g. exported from WordNet.

What is missing compared with nlpaug: WordNet's curated synonyms (none is bundled) and contextual
(masked-language-model) substitution. Embedding neighbours are related words rather than strict
synonyms ("cheap" may become "expensive"), which is why the replaced share of words is small.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from embedforge.exceptions import InvalidArgumentError

if TYPE_CHECKING:
    from datasets import Dataset

#: A word (letters only, apostrophes inside allowed) or anything between words.
_PIECES = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*|[\W\d_]+")


class SynonymAugmenter:
    """Replace a share of each text's words by a randomly chosen synonym.

    Per text, ``aug_p`` of its words (rounded up), at least ``aug_min`` and at most ``aug_max``
    (nlpaug's defaults: 0.3, 1, 10), are replaced, chosen among the replaceable ones: words with
    synonyms that are not stop words. Stop words are never chosen as replacements either. A
    replacement takes the original word's capitalisation. Draws come from one seeded generator,
    so the same augmenter called on the same texts in the same order gives the same result.
    """

    def __init__(
        self,
        synonyms: Mapping[str, Sequence[str]],
        aug_p: float = 0.3,
        aug_min: int = 1,
        aug_max: int = 10,
        stopwords: Iterable[str] | str | None = "english",
        seed: int = 42,
    ) -> None:
        if not 0.0 <= aug_p <= 1.0:
            raise InvalidArgumentError(f"aug_p={aug_p!r}; expected a fraction in [0, 1]")
        if not (isinstance(aug_min, int) and isinstance(aug_max, int) and 0 <= aug_min <= aug_max):
            raise InvalidArgumentError(f"aug_min={aug_min!r}, aug_max={aug_max!r}; expected 0 <= aug_min <= aug_max")
        self.stopwords = _stopword_set(stopwords)
        self.synonyms = {
            word.lower(): [
                synonym
                for synonym in choices
                if synonym.lower() != word.lower() and synonym.lower() not in self.stopwords
            ]
            for word, choices in synonyms.items()
            if word.lower() not in self.stopwords
        }
        self.synonyms = {word: choices for word, choices in self.synonyms.items() if choices}
        self.aug_p, self.aug_min, self.aug_max = aug_p, aug_min, aug_max
        self._rng = random.Random(seed)

    @classmethod
    def from_embeddings(
        cls,
        words: Sequence[str],
        vectors: Any,
        top_n: int = 5,
        min_similarity: float = 0.5,
        **kwargs: Any,
    ) -> SynonymAugmenter:
        """Synonyms = each word's ``top_n`` nearest words by cosine similarity, if at least ``min_similarity``."""
        from embedforge.util.retrieval import semantic_search

        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[0] != len(words):
            raise InvalidArgumentError(
                f"vectors has shape {matrix.shape}; expected one row per word ({len(words)} words)"
            )
        if not isinstance(top_n, int) or top_n < 1:
            raise InvalidArgumentError(f"top_n={top_n!r}; expected a positive integer")
        # Stop words can be neither replaced nor replacements: leave them out of the search, so that
        # top_n counts usable neighbours.
        stopwords = _stopword_set(kwargs.get("stopwords", "english"))
        keep = [index for index, word in enumerate(words) if word.lower() not in stopwords]
        words, matrix = [words[index] for index in keep], matrix[keep]
        hits = semantic_search(matrix, matrix, top_k=top_n + 1, query_chunk_size=1024)
        synonyms: dict[str, list[str]] = {}
        for index, row in enumerate(hits):
            close = [words[int(hit["corpus_id"])] for hit in row if hit["corpus_id"] != index]
            scores = [float(hit["score"]) for hit in row if hit["corpus_id"] != index]
            synonyms[words[index]] = [word for word, score in zip(close, scores) if score >= min_similarity][:top_n]
        return cls(synonyms, **kwargs)

    @classmethod
    def from_static_model(cls, model: Any, min_length: int = 3, **kwargs: Any) -> SynonymAugmenter:
        """Synonyms from a static embedding table: a StaticEmbedding module, a model whose first module is one, or a folder.

        Only vocabulary entries that are whole alphabetic words of at least ``min_length``
        letters take part (no word pieces, special tokens or numbers).
        """
        table = _static_module(model)
        vocabulary = table.tokenizer.get_vocab()
        weights = table.embedding.weight.detach().cpu().float().numpy()
        words, rows = [], []
        for token, token_id in sorted(vocabulary.items(), key=lambda item: item[1]):
            if len(token) >= min_length and token.isalpha() and token_id < len(weights):
                words.append(token)
                rows.append(token_id)
        if not words:
            raise InvalidArgumentError("the static model's vocabulary has no whole alphabetic words to use as synonyms")
        return cls.from_embeddings(words, weights[rows], **kwargs)

    def augment(self, text: str) -> str:
        """``text`` with some replaceable words swapped for synonyms (unchanged if it has none)."""
        if not isinstance(text, str):
            raise InvalidArgumentError(f"text={text!r}; expected a str")
        pieces = _PIECES.findall(text)
        candidates = [index for index, piece in enumerate(pieces) if piece.lower() in self.synonyms]
        if not candidates:
            return text
        # As nlpaug: a share of all the text's words (rounded up), bounded, and no more than can be replaced.
        num_words = sum(1 for piece in pieces if piece[:1].isalpha())
        count = min(self.aug_max, max(self.aug_min, math.ceil(self.aug_p * num_words)), len(candidates))
        for index in self._rng.sample(candidates, count):
            original = pieces[index]
            replacement = self._rng.choice(self.synonyms[original.lower()])
            pieces[index] = _same_case(original, replacement)
        return "".join(pieces)

    def augment_batch(self, texts: Sequence[str]) -> list[str]:
        """:meth:`augment` on each text, in order."""
        return [self.augment(text) for text in texts]


def augment_dataset(dataset: Dataset, augmenter: SynonymAugmenter) -> Dataset:
    """Silver rows: each (text, text, label) row with both texts augmented and the label kept.

    Rows where neither text changed are left out, since they would only repeat a gold row.
    """
    from datasets import Dataset

    first, second = dataset.column_names[:2]
    rest = dataset.column_names[2:]
    columns: dict[str, list[Any]] = {name: [] for name in dataset.column_names}
    for row in dataset:
        new_first, new_second = augmenter.augment(row[first]), augmenter.augment(row[second])
        if new_first == row[first] and new_second == row[second]:
            continue
        columns[first].append(new_first)
        columns[second].append(new_second)
        for name in rest:
            columns[name].append(row[name])
    return Dataset.from_dict(columns, features=dataset.features)


def _stopword_set(stopwords: Iterable[str] | str | None) -> frozenset[str]:
    """The lowercased stop words: "english" (or "en") is the built-in English list, None is none."""
    if isinstance(stopwords, str):
        if stopwords not in ("english", "en"):
            raise InvalidArgumentError(f"stopwords={stopwords!r}; expected 'english', a list of words or None")
        from embedforge.util.bm25 import english_stopwords

        stopwords = english_stopwords()
    return frozenset(word.lower() for word in stopwords or ())


def _same_case(original: str, replacement: str) -> str:
    if original.isupper() and len(original) > 1:
        return replacement.upper()
    if original[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


def _static_module(model: Any) -> Any:
    from embedforge.sentence_transformer.modules.static_embedding import StaticEmbedding

    if isinstance(model, str):
        from embedforge.sentence_transformer.model import SentenceTransformer

        model = SentenceTransformer(model)
    if isinstance(model, StaticEmbedding):
        return model
    first = next(iter(model), None) if hasattr(model, "__iter__") else None
    if isinstance(first, StaticEmbedding):
        return first
    raise InvalidArgumentError(
        f"model={type(model).__name__}; expected a StaticEmbedding, a SentenceTransformer starting with one, "
        "or the folder of such a model"
    )
