"""Pair sampling of Augmented SBERT: BM25 pairs against a brute force over rank_bm25 / a numpy BM25, semantic pairs
against a numpy cosine brute force, and the rules of random pairs (count, no self pairs, no repeats, seeds)."""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from conftest import embedforge_static, random_sentences, static_weights
from embedforge.data_augmentation import (
    STRATEGIES,
    PairSet,
    bm25_pairs,
    random_pairs,
    sample_pairs,
    semantic_pairs,
    unique_sentences,
)
from embedforge.exceptions import InvalidArgumentError
from embedforge.util import BM25
from embedforge.util.bm25 import english_stopwords

#: Random sentences plus hand-made cases: two texts with the same words (a BM25 tie, broken by the lower id), a
#: text without words (scores 0 everywhere), a repeated text (one pool entry) and one with a unique rare word.
SENTENCES = [
    *random_sentences(36, seed=11, min_words=2, max_words=9),
    "The cat sat by the river.",
    "the cat sat by the river!",
    "!!! ???",
    "The cat sat by the river.",
    "zebra crossing",
    "a zebra",
]


def words(text: str) -> list[str]:
    """BM25's default analyzer, written out: lowercase, then runs of word characters."""
    return re.findall(r"\w+", text.lower())


def lucene_scores(docs: list[list[str]], k1: float, b: float) -> np.ndarray:
    """scores[q, d]: Lucene BM25 of document d for document q's terms as the query, in float64."""
    vocab = sorted({term for doc in docs for term in doc})
    column = {term: i for i, term in enumerate(vocab)}
    tf = np.zeros((len(docs), len(vocab)))
    for d, doc in enumerate(docs):
        for term in doc:
            tf[d, column[term]] += 1
    df = (tf > 0).sum(axis=0)
    lengths = tf.sum(axis=1)
    idf = np.log(1 + (len(docs) - df + 0.5) / (df + 0.5))
    norm = k1 * (1 - b + b * lengths / lengths.mean())
    weights = idf * np.divide(tf, tf + norm[:, None], out=np.zeros_like(tf), where=tf > 0)
    scores = np.zeros((len(docs), len(docs)))
    for q, query in enumerate(docs):
        for term in query:  # a repeated query term counts again
            scores[q] += weights[:, column[term]]
    return scores


def okapi_scores(docs: list[list[str]], k1: float, b: float) -> np.ndarray:
    """scores[q, d] from rank_bm25's BM25Okapi, the reference our method="okapi" follows."""
    rank_bm25 = pytest.importorskip("rank_bm25")
    index = rank_bm25.BM25Okapi(docs, k1=k1, b=b)
    return np.stack([index.get_scores(query) for query in docs])


def reference_pairs(
    pool: list[str],
    scores: np.ndarray,
    top_k: int,
    exclude: Sequence[Sequence[str]] = (),
    keep_non_positive: bool = False,
) -> list[tuple[str, str]]:
    """The recipe written out: per sentence, rank all others (ties to the lower id), skip itself (and scores <= 0
    for BM25), take the first top_k, then drop excluded pairs and pairs already taken, in either order."""
    seen = {tuple(sorted(pair)) for pair in exclude}
    pairs = []
    for q in range(len(pool)):
        ranking = sorted(range(len(pool)), key=lambda d: (-scores[q, d], d))
        hits = [d for d in ranking if d != q and (keep_non_positive or scores[q, d] > 0)][:top_k]
        for d in hits:
            key = tuple(sorted((pool[q], pool[d])))
            if key not in seen:
                seen.add(key)
                pairs.append((pool[q], pool[d]))
    return pairs


def cosine_matrix(vectors: np.ndarray) -> np.ndarray:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return unit @ unit.T


class FakeEncoder:
    """A stand-in bi-encoder: a fixed vector per text; records what it was asked to encode."""

    def __init__(self, vectors: dict[str, np.ndarray]) -> None:
        self.vectors = vectors
        self.calls: list[list[str]] = []

    def encode(self, sentences: list[str], **kwargs: Any) -> np.ndarray:
        self.calls.append(list(sentences))
        return np.stack([self.vectors[text] for text in sentences]).astype(np.float32)


def fake_encoder(texts: list[str], dim: int = 6, seed: int = 0) -> FakeEncoder:
    """Seeded random vectors (cosines of both signs), with two texts sharing one vector (a cosine tie)."""
    rng = np.random.default_rng(seed)
    vectors = {text: rng.normal(size=dim) for text in texts}
    vectors[texts[5]] = vectors[texts[2]].copy()
    return FakeEncoder(vectors)


POOL = list(dict.fromkeys(SENTENCES))
#: Gold pairs to exclude: one neighbour pair in each order, and a pair of unrelated sentences.
GOLD = [(POOL[36], POOL[37]), (POOL[1], POOL[0]), (POOL[3], POOL[20])]


# --- BM25 ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("top_k", [1, 3, 5])
def test_bm25_pairs_equal_a_brute_force_over_numpy_lucene_bm25(top_k: int) -> None:
    expected = reference_pairs(POOL, lucene_scores([words(text) for text in POOL], 1.5, 0.75), top_k, GOLD)
    assert bm25_pairs(SENTENCES, top_k=top_k, exclude=GOLD) == expected


@pytest.mark.parametrize(("k1", "b"), [(1.5, 0.75), (0.9, 0.3)])
def test_bm25_pairs_with_okapi_equal_a_brute_force_over_rank_bm25(k1: float, b: float) -> None:
    expected = reference_pairs(POOL, okapi_scores([words(text) for text in POOL], k1, b), 3, GOLD)
    assert bm25_pairs(SENTENCES, top_k=3, exclude=GOLD, bm25=BM25(k1=k1, b=b, method="okapi")) == expected


def test_bm25_pairs_use_the_stop_words_of_the_given_index() -> None:
    stopwords = set(english_stopwords())
    docs = [[term for term in words(text) if term not in stopwords] for text in POOL]
    expected = reference_pairs(POOL, lucene_scores(docs, 1.2, 0.5), 2)
    assert bm25_pairs(SENTENCES, top_k=2, bm25=BM25(k1=1.2, b=0.5, stopwords="english")) == expected


def test_bm25_pairs_by_hand() -> None:
    sentences = ["red apple pie", "green apple", "red car", "blue sky", "Red apple pie!"]
    # "red apple pie" and "Red apple pie!" have the same words: each finds the other first. "blue sky" shares no word.
    pairs = bm25_pairs(sentences, top_k=1)
    assert pairs == [
        ("red apple pie", "Red apple pie!"),
        ("green apple", "red apple pie"),
        ("red car", "red apple pie"),
    ]
    assert all("blue sky" not in pair for pair in pairs)


def test_bm25_pairs_of_tiny_pools_are_empty() -> None:
    assert bm25_pairs(["only one sentence"]) == []
    assert bm25_pairs(["same words", "Same words!"], exclude=[("Same words!", "same words")]) == []
    assert bm25_pairs([]) == []


# --- semantic -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("top_k", [1, 2, 4])
def test_semantic_pairs_equal_a_numpy_cosine_brute_force(top_k: int) -> None:
    model = fake_encoder(POOL)
    matrix = np.stack([model.vectors[text] for text in POOL])
    # Non-positive similarities are kept: every sentence has top_k semantic neighbours.
    expected = reference_pairs(POOL, cosine_matrix(matrix), top_k, GOLD, keep_non_positive=True)
    assert semantic_pairs(SENTENCES, model, top_k=top_k, exclude=GOLD) == expected
    assert model.calls == [POOL]  # each text embedded once


def test_semantic_pairs_break_ties_by_the_lower_id() -> None:
    texts = ["first", "second", "third", "fourth"]
    vectors = {"first": np.array([1.0, 0.0]), "second": np.array([0.0, 1.0]), "third": np.array([2.0, 0.0])}
    vectors["fourth"] = np.array([3.0, 0.0])
    # "first", "third" and "fourth" point the same way (cosine 1): each one's best other is the lowest id among them;
    # "second" is orthogonal to all three (cosine 0 with each), so its best is "first". ("third", "first") repeats.
    expected = [("first", "third"), ("second", "first"), ("fourth", "first")]
    assert semantic_pairs(texts, FakeEncoder(vectors), top_k=1) == expected


def test_semantic_pairs_with_a_static_model_equal_numpy_cosine_of_its_embeddings() -> None:
    model = embedforge_static(static_weights(seed=3, dim=8))
    embeddings = model.encode(POOL, convert_to_numpy=True)
    expected = reference_pairs(POOL, cosine_matrix(embeddings.astype(np.float64)), 2, GOLD, keep_non_positive=True)
    assert semantic_pairs(SENTENCES, model, top_k=2, exclude=GOLD) == expected


def test_semantic_pairs_need_a_model_with_encode() -> None:
    with pytest.raises(InvalidArgumentError, match=r"model=object has no encode\(\)"):
        semantic_pairs(POOL, object(), top_k=2)  # type: ignore[arg-type]


# --- random -------------------------------------------------------------------------------------------------------


def unordered(pairs: list[tuple[str, str]]) -> list[tuple[str, ...]]:
    return [tuple(sorted(pair)) for pair in pairs]


@pytest.mark.parametrize("num_pairs", [0, 7, 40, 300])
def test_random_pairs_have_the_exact_count_and_no_self_excluded_or_repeated_pair(num_pairs: int) -> None:
    # 41 texts make 820 pairs: 300 takes the path that shuffles all pairs, 7 and 40 the one that draws pairs.
    pairs = random_pairs(SENTENCES, num_pairs, exclude=GOLD, seed=5)
    assert len(pairs) == num_pairs
    assert all(first != second for first, second in pairs)
    assert all(first in POOL and second in POOL for first, second in pairs)
    assert len(set(unordered(pairs))) == len(pairs)
    assert not set(unordered(pairs)) & set(unordered(GOLD))


def test_random_pairs_depend_only_on_the_seed() -> None:
    assert random_pairs(SENTENCES, 30, seed=1) == random_pairs(SENTENCES, 30, seed=1)
    assert random_pairs(SENTENCES, 30, seed=1) != random_pairs(SENTENCES, 30, seed=2)
    assert random_pairs(SENTENCES, 300, seed=1) != random_pairs(SENTENCES, 300, seed=2)


def test_random_pairs_of_a_small_pool_are_every_pair_that_exists() -> None:
    texts = ["a", "b", "c", "d", "e", "b"]  # 5 distinct texts: 10 pairs, 2 of them excluded
    exclude = [("a", "b"), ("e", "c")]
    pairs = random_pairs(texts, 100, exclude=exclude, seed=3)
    expected = set(itertools.combinations("abcde", 2)) - {("a", "b"), ("c", "e")}
    assert len(pairs) == len(expected) == 8
    assert set(unordered(pairs)) == expected
    assert random_pairs(["x"], 5) == [] and random_pairs([], 5) == []


@pytest.mark.parametrize("num_pairs", [-1, 2.5, True, None])
def test_random_pairs_reject_a_bad_count(num_pairs: Any) -> None:
    with pytest.raises(InvalidArgumentError, match=re.escape(f"num_pairs={num_pairs!r}")):
        random_pairs(POOL, num_pairs)


# --- sample_pairs, unique_sentences, PairSet ----------------------------------------------------------------------


def test_sample_pairs_dispatches_by_strategy() -> None:
    assert STRATEGIES == ("bm25", "semantic", "random")
    assert sample_pairs(SENTENCES, "bm25", top_k=2, exclude=GOLD) == bm25_pairs(SENTENCES, top_k=2, exclude=GOLD)
    model = fake_encoder(POOL)
    assert sample_pairs(SENTENCES, "semantic", top_k=2, exclude=GOLD, model=model) == semantic_pairs(
        SENTENCES, model, top_k=2, exclude=GOLD
    )
    assert sample_pairs(SENTENCES, "random", num_pairs=9, seed=4) == random_pairs(SENTENCES, 9, seed=4)


def test_random_strategy_draws_top_k_pairs_per_distinct_sentence_by_default() -> None:
    pairs = sample_pairs(SENTENCES, "random", top_k=2, exclude=GOLD)
    assert len(pairs) == 2 * len(POOL)
    texts = ["a", "b", "c", "a"]  # 3 distinct texts: 6 wanted, but only 3 pairs exist
    assert len(sample_pairs(texts, "random", top_k=2)) == 3


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: sample_pairs(POOL, "bm2"), r"strategy='bm2' is not a sampling strategy; expected one of \['bm25'"),
        (lambda: sample_pairs(POOL, "semantic"), r"strategy='semantic' needs model="),
        (lambda: sample_pairs(POOL, "bm25", top_k=0), r"top_k=0; expected a positive integer"),
        (lambda: sample_pairs(POOL, "random", top_k=0), r"top_k=0; expected a positive integer"),
        (lambda: sample_pairs(POOL, "semantic", top_k=True, model=fake_encoder(POOL)), r"top_k=True"),
        (lambda: sample_pairs(["fine", 3], "bm25"), r"sentences\[1\]=3; expected a str"),
        (lambda: sample_pairs(["fine", None], "random"), r"sentences\[1\]=None; expected a str"),
        (lambda: sample_pairs("one text", "bm25"), r"sentences=str; expected a list of texts"),
        (lambda: bm25_pairs(POOL, exclude=[("a", "b", "c")]), r"exclude has an item \('a', 'b', 'c'\)"),
        (lambda: bm25_pairs(POOL, exclude=["ab"]), r"exclude has an item 'ab'"),
    ],
)
def test_sample_pairs_errors_name_the_argument_and_value(call: Any, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        call()


def test_unique_sentences_keep_the_order_of_first_appearance() -> None:
    pairs = [("b", "a"), ("c", "b"), ("a", "d"), ("d", "d")]
    assert unique_sentences(pairs) == ["b", "a", "c", "d"]
    assert unique_sentences([]) == []
    with pytest.raises(InvalidArgumentError, match=r"pairs has an item \('x',\)"):
        unique_sentences([("x",)])


def test_pair_set_keeps_new_unordered_pairs_once() -> None:
    pairs = PairSet(exclude=[("gold a", "gold b")])
    assert pairs.add("x", "y") is True
    assert pairs.add("y", "x") is False  # the same pair in the other order
    assert pairs.add("x", "y") is False
    assert pairs.add("z", "z") is False  # a self pair
    assert pairs.add("gold b", "gold a") is False  # excluded, in the other order
    assert pairs.add("x", "gold a") is True
    assert pairs.pairs == [("x", "y"), ("x", "gold a")]
    assert len(pairs) == 2


def test_the_test_sentences_have_enough_bm25_neighbours() -> None:
    """Sanity check of the test data: most sentences have 3 BM25 neighbours, so the top_k cases above differ."""
    scores = lucene_scores([words(text) for text in POOL], 1.5, 0.75)
    with_neighbours = sum(int((np.delete(row, q) > 0).sum() >= 3) for q, row in enumerate(scores))
    assert with_neighbours >= math.floor(0.7 * len(POOL))
