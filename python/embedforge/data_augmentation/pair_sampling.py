"""Step 2.1 of Augmented SBERT: new sentence pairs recombined from a set of sentences, for a cross-encoder to label.

Pairing every sentence with every other is quadratic and almost all such pairs are unrelated, so
the recipe keeps, per sentence, only its ``top_k`` most similar sentences: lexically (BM25, where
the original examples needed an Elasticsearch server, here the Rust index of
:class:`embedforge.util.BM25`), semantically (a bi-encoder's embeddings through the exact top-k
engine of :func:`embedforge.util.semantic_search`), or uniformly at random as a baseline.

Every strategy returns pairs in a fixed order (sentence by sentence, each sentence's neighbours
best first) and drops:

- self pairs (a sentence with itself, also when the same text occurs twice),
- pairs in ``exclude`` (usually the gold pairs, which already have a label),
- repeats, in either order: ``(a, b)`` and ``(b, a)`` are one pair, kept once, in the order first seen.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from embedforge.exceptions import InvalidArgumentError

if TYPE_CHECKING:
    from embedforge.sentence_transformer.model import SentenceTransformer
    from embedforge.util.bm25 import BM25

#: The sampling strategies :func:`sample_pairs` accepts.
STRATEGIES = ("bm25", "semantic", "random")

Pair = tuple[str, str]


class PairSet:
    """Unordered text pairs seen so far: ``add`` keeps a pair only if it is new in both orders and not a self pair."""

    def __init__(self, exclude: Iterable[Sequence[str]] | None = None) -> None:
        self._seen: set[Pair] = set()
        self.pairs: list[Pair] = []
        for pair in exclude or ():
            first, second = _as_pair(pair, "exclude")
            self._seen.add(_key(first, second))

    def add(self, first: str, second: str) -> bool:
        """Keep ``(first, second)`` if it is neither a self pair, excluded, nor already kept; says whether it was."""
        if first == second:
            return False
        key = _key(first, second)
        if key in self._seen:
            return False
        self._seen.add(key)
        self.pairs.append((first, second))
        return True

    def __len__(self) -> int:
        return len(self.pairs)


def unique_sentences(pairs: Iterable[Sequence[str]]) -> list[str]:
    """Every text of ``pairs`` once, in order of first appearance (the pool new pairs are recombined from)."""
    sentences: dict[str, None] = {}
    for pair in pairs:
        for text in _as_pair(pair, "pairs"):
            sentences.setdefault(text, None)
    return list(sentences)


def bm25_pairs(
    sentences: Sequence[str],
    top_k: int = 3,
    exclude: Iterable[Sequence[str]] | None = None,
    bm25: BM25 | None = None,
) -> list[Pair]:
    """Each sentence with its ``top_k`` best BM25 matches among ``sentences`` (matches sharing no word are skipped).

    ``bm25`` sets the index parameters (``k1``, ``b``, method, stop words, analyzer); its corpus is
    replaced by ``sentences``. The default is ``BM25()`` (Lucene idf, k1=1.5, b=0.75, lowercase words).
    """
    pool = _sentence_pool(sentences)
    _check_top_k(top_k)
    if len(pool) < 2:  # no pair exists (and the index refuses an empty corpus)
        return []
    if bm25 is None:
        from embedforge.util.bm25 import BM25

        bm25 = BM25()
    bm25.index(pool)
    # One extra hit per query, because a sentence usually finds itself first.
    ids, scores = bm25.search(pool, top_k=top_k + 1)
    return _collect(pool, ids.tolist(), scores.tolist(), top_k, exclude, keep_zero_scores=False)


def semantic_pairs(
    sentences: Sequence[str],
    model: SentenceTransformer,
    top_k: int = 3,
    exclude: Iterable[Sequence[str]] | None = None,
    batch_size: int = 32,
    show_progress_bar: bool | None = None,
) -> list[Pair]:
    """Each sentence with its ``top_k`` nearest sentences by cosine similarity of ``model``'s embeddings."""
    pool = _sentence_pool(sentences)
    _check_top_k(top_k)
    if not hasattr(model, "encode"):
        raise InvalidArgumentError(
            f"model={type(model).__name__} has no encode(); expected a SentenceTransformer for semantic sampling"
        )
    from embedforge.util.retrieval import semantic_search

    embeddings = model.encode(pool, batch_size=batch_size, show_progress_bar=show_progress_bar, convert_to_numpy=True)
    hits = semantic_search(embeddings, embeddings, top_k=top_k + 1)
    ids = [[int(hit["corpus_id"]) for hit in row] for row in hits]
    scores = [[float(hit["score"]) for hit in row] for row in hits]
    return _collect(pool, ids, scores, top_k, exclude, keep_zero_scores=True)


def random_pairs(
    sentences: Sequence[str],
    num_pairs: int,
    exclude: Iterable[Sequence[str]] | None = None,
    seed: int = 42,
) -> list[Pair]:
    """``num_pairs`` pairs of two different sentences drawn uniformly (fewer only if that many do not exist)."""
    pool = _sentence_pool(sentences)
    if not isinstance(num_pairs, int) or isinstance(num_pairs, bool) or num_pairs < 0:
        raise InvalidArgumentError(f"num_pairs={num_pairs!r}; expected a non-negative integer")
    kept = PairSet(exclude)
    rng = random.Random(seed)
    available = len(pool) * (len(pool) - 1) // 2
    if available <= 4 * num_pairs:
        # A small pool: shuffle every pair, so the result is exactly min(num_pairs, what exists).
        candidates = [(i, j) for i in range(len(pool)) for j in range(i + 1, len(pool))]
        rng.shuffle(candidates)
        for first, second in candidates:
            if len(kept) == num_pairs:
                break
            kept.add(pool[first], pool[second])
        return kept.pairs
    # A large pool: draw and reject repeats; with at most a quarter of all pairs wanted, few draws are wasted.
    attempts, max_attempts = 0, 20 * num_pairs + 1000
    while len(kept) < num_pairs and attempts < max_attempts:
        attempts += 1
        first, second = rng.sample(range(len(pool)), 2)
        kept.add(pool[first], pool[second])
    return kept.pairs


def sample_pairs(
    sentences: Sequence[str],
    strategy: str = "bm25",
    top_k: int = 3,
    exclude: Iterable[Sequence[str]] | None = None,
    model: SentenceTransformer | None = None,
    num_pairs: int | None = None,
    seed: int = 42,
    bm25: BM25 | None = None,
    batch_size: int = 32,
    show_progress_bar: bool | None = None,
) -> list[Pair]:
    """New pairs by ``strategy``: ``"bm25"``, ``"semantic"`` (needs ``model``) or ``"random"``.

    ``random`` draws ``num_pairs`` pairs; by default as many as ``top_k`` per sentence, so that its
    silver set is as large as the other strategies' would be at most.
    """
    if strategy == "bm25":
        return bm25_pairs(sentences, top_k=top_k, exclude=exclude, bm25=bm25)
    if strategy == "semantic":
        if model is None:
            raise InvalidArgumentError(
                "strategy='semantic' needs model=, the SentenceTransformer that embeds sentences"
            )
        return semantic_pairs(
            sentences, model, top_k=top_k, exclude=exclude, batch_size=batch_size, show_progress_bar=show_progress_bar
        )
    if strategy == "random":
        _check_top_k(top_k)
        count = num_pairs if num_pairs is not None else top_k * len(set(sentences))
        return random_pairs(sentences, count, exclude=exclude, seed=seed)
    raise InvalidArgumentError(f"strategy={strategy!r} is not a sampling strategy; expected one of {list(STRATEGIES)}")


def _collect(
    pool: list[str],
    ids: list[list[int]],
    scores: list[list[float]],
    top_k: int,
    exclude: Iterable[Sequence[str]] | None,
    keep_zero_scores: bool,
) -> list[Pair]:
    """Up to ``top_k`` new pairs per sentence from its ranked hits."""
    kept = PairSet(exclude)
    for query, (row_ids, row_scores) in enumerate(zip(ids, scores)):
        taken = 0
        for hit, score in zip(row_ids, row_scores):
            if taken == top_k:
                break
            if hit == query or (not keep_zero_scores and score <= 0.0):
                continue
            # A hit that is a duplicate of an earlier pair still uses up one of the sentence's top_k places,
            # as in the original recipe: top_k bounds how far down each sentence's ranking we look.
            taken += 1
            kept.add(pool[query], pool[hit])
    return kept.pairs


def _sentence_pool(sentences: Sequence[str]) -> list[str]:
    if isinstance(sentences, str) or not isinstance(sentences, Sequence):
        raise InvalidArgumentError(
            f"sentences={type(sentences).__name__}; expected a list of texts to recombine into pairs"
        )
    for index, text in enumerate(sentences):
        if not isinstance(text, str):
            raise InvalidArgumentError(f"sentences[{index}]={text!r}; expected a str")
    return list(dict.fromkeys(sentences))


def _check_top_k(top_k: Any) -> None:
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
        raise InvalidArgumentError(f"top_k={top_k!r}; expected a positive integer (neighbours per sentence)")


def _as_pair(pair: Any, name: str) -> Pair:
    if isinstance(pair, str) or not isinstance(pair, Sequence) or len(pair) != 2:
        raise InvalidArgumentError(f"{name} has an item {pair!r}; expected pairs of two texts")
    first, second = pair
    if not isinstance(first, str) or not isinstance(second, str):
        raise InvalidArgumentError(f"{name} has an item {pair!r}; expected pairs of two texts")
    return first, second


def _key(first: str, second: str) -> Pair:
    """The order-free identity of a pair."""
    return (first, second) if first <= second else (second, first)
