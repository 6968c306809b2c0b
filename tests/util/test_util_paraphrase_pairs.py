"""paraphrase_mining_embeddings' pair collection against sentence-transformers' own heap walk, ties included.

torch.topk leaves the order of tied neighbours unspecified; embedforge takes the lowest index
first. So that ties test sentence-transformers' rules (which pairs a row offers, which tied pair
survives the max_pairs cut) rather than topk's whims, sentence-transformers runs here with a topk
that also puts the lowest index first. Scores that are exact in float32 whatever the summation
order (small integers with dot or Manhattan scores) make the Rust engine's scores bit-identical
to torch's, so the results must be identical too, up to the order of pairs with equal scores.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import torch

from conftest import load_st_util_module
from embedforge.util import cos_sim, dot_score, manhattan_sim, paraphrase_mining_embeddings, paraphrase_pairs
from embedforge.util.paraphrase_pairs import VectorisedPairCollector, collect_pairs_sequentially

Pairs = list[list[Any]]


@pytest.fixture(scope="module")
def st_retrieval() -> Any:
    return load_st_util_module("retrieval")


@pytest.fixture(scope="module")
def st_similarity() -> Any:
    return load_st_util_module("similarity")


def _lowest_index_first_topk(values: torch.Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
    """torch.topk with ties in ascending index order (torch's own order among ties is unspecified)."""
    assert largest and dim in (1, -1)
    order = torch.argsort(values, dim=dim, descending=True, stable=True)[..., :k]
    return torch.return_types.topk((values.gather(dim, order), order))


@pytest.fixture
def st_mining(st_retrieval: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Pairs]:
    """sentence-transformers' paraphrase_mining_embeddings, with tied neighbours taken lowest index first."""

    def mine(embeddings: torch.Tensor, **kwargs: Any) -> Pairs:
        with monkeypatch.context() as patch:
            patch.setattr(torch, "topk", _lowest_index_first_topk)
            return st_retrieval.paraphrase_mining_embeddings(embeddings, **kwargs)

    return mine


@pytest.fixture
def merge_often(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Merge every chunk at once, so small inputs go through the max_pairs cut between chunks."""
    monkeypatch.setattr(paraphrase_pairs, "_MIN_MERGE", 1)
    yield


def _canonical(pairs: Pairs) -> list[tuple[float, int, int]]:
    """Pairs ordered by score (best first), then by (i, j): the order up to ties."""
    return sorted(((-score, i, j) for score, i, j in pairs))


def assert_identical_up_to_tie_order(ours: Pairs, theirs: Pairs) -> None:
    """Same [score, i, j] triples exactly, both lists best first; only equal-score pairs may swap."""
    assert [score for score, _, _ in ours] == sorted((score for score, _, _ in ours), reverse=True)
    assert [score for score, _, _ in ours] == [score for score, _, _ in theirs]
    assert _canonical(ours) == _canonical(theirs)
    assert all(type(i) is int and type(j) is int and type(score) is float for score, i, j in ours)


def assert_same_up_to_rounding(ours: Pairs, theirs: Pairs, tol: float = 1e-6) -> None:
    """Scores agree to ``tol``; pairs differ only where scores tie to float rounding at the max_pairs cut."""
    assert len(ours) == len(theirs)
    assert [s for s, _, _ in ours] == pytest.approx([s for s, _, _ in theirs], abs=tol)
    ours_by_pair = {(i, j): s for s, i, j in ours}
    theirs_by_pair = {(i, j): s for s, i, j in theirs}
    for pair in ours_by_pair.keys() & theirs_by_pair.keys():
        assert ours_by_pair[pair] == pytest.approx(theirs_by_pair[pair], abs=tol)
    cut = theirs[-1][0] if theirs else 0.0
    for pair in ours_by_pair.keys() ^ theirs_by_pair.keys():
        assert ours_by_pair.get(pair, theirs_by_pair.get(pair)) == pytest.approx(cut, abs=tol)


def _integer_rows(rows: int, dim: int, seed: int, duplicates: int) -> torch.Tensor:
    """Small-integer rows (exact dot/Manhattan scores, so many exact ties), ``duplicates`` of them repeated."""
    generator = torch.Generator().manual_seed(seed)
    base = torch.randint(-2, 3, (rows, dim), generator=generator).float()
    repeated = base[torch.randint(0, rows, (duplicates,), generator=generator)]
    mixed = torch.cat([base, repeated])
    return mixed[torch.randperm(len(mixed), generator=generator)]


CASES = [
    {"top_k": 1, "max_pairs": 5},
    {"top_k": 2, "max_pairs": 17, "query_chunk_size": 7, "corpus_chunk_size": 13},
    {"top_k": 3, "max_pairs": 40},
    {"top_k": 5, "max_pairs": 61, "query_chunk_size": 1},
    {"top_k": 10, "max_pairs": 150, "corpus_chunk_size": 9},
    {"top_k": 100, "max_pairs": 333},
    {"top_k": 100, "max_pairs": 10**6},
]


@pytest.mark.parametrize("kwargs", CASES)
@pytest.mark.parametrize("score", ["dot", "manhattan"])
def test_exact_ties_match_sentence_transformers(
    st_mining: Callable[..., Pairs], st_similarity: Any, merge_often: None, kwargs: dict[str, Any], score: str
) -> None:
    ours_fn, theirs_fn = {
        "dot": (dot_score, st_similarity.dot_score),
        "manhattan": (manhattan_sim, st_similarity.manhattan_sim),
    }[score]
    for seed in range(3):
        embeddings = _integer_rows(50, 6, seed=seed, duplicates=30)
        ours = paraphrase_mining_embeddings(embeddings, score_function=ours_fn, **kwargs)
        theirs = st_mining(embeddings, score_function=theirs_fn, **kwargs)
        assert_identical_up_to_tie_order(ours, theirs)


@pytest.mark.parametrize("kwargs", CASES)
def test_custom_score_function_with_ties_matches_sentence_transformers(
    st_mining: Callable[..., Pairs], merge_often: None, kwargs: dict[str, Any]
) -> None:
    # A callable the Rust engine does not know goes through torch with sentence-transformers'
    # chunking, so the scores are bit-identical to sentence-transformers' even for cosine.
    def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return cos_sim(a, b)

    for seed in range(3):
        generator = torch.Generator().manual_seed(seed)
        base = torch.randn(30, 8, generator=generator)
        embeddings = base[torch.randint(0, 30, (70,), generator=generator)]  # many exact duplicates
        ours = paraphrase_mining_embeddings(embeddings, score_function=cosine, **kwargs)
        theirs = st_mining(embeddings, score_function=cosine, **kwargs)
        assert_identical_up_to_tie_order(ours, theirs)


@pytest.mark.parametrize("kwargs", CASES)
def test_cosine_with_duplicated_rows_matches_up_to_rounding(
    st_mining: Callable[..., Pairs], st_similarity: Any, merge_often: None, kwargs: dict[str, Any]
) -> None:
    # Duplicates' cosine is 1 give or take an ulp, and the ulp differs between the Rust engine and
    # torch: which of those near-ties make the cut may differ, nothing else.
    for seed in range(3):
        generator = torch.Generator().manual_seed(seed)
        base = torch.randn(40, 16, generator=generator)
        embeddings = torch.cat([base, base[torch.randint(0, 40, (25,), generator=generator)]])
        ours = paraphrase_mining_embeddings(embeddings, **kwargs)
        theirs = st_mining(embeddings, score_function=st_similarity.cos_sim, **kwargs)
        assert_same_up_to_rounding(ours, theirs)


def test_asymmetric_score_function_follows_the_heap_walk(st_mining: Callable[..., Pairs]) -> None:
    # The two directions of a pair score differently: the closed form does not apply, and the
    # result must still be sentence-transformers' (first direction's score, evicted pairs return).
    def lopsided(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a @ b.T + 0.5 * a.sum(dim=1, keepdim=True)

    embeddings = _integer_rows(40, 5, seed=7, duplicates=20)
    for kwargs in CASES:
        ours = paraphrase_mining_embeddings(embeddings, score_function=lopsided, **kwargs)
        theirs = st_mining(embeddings, score_function=lopsided, **kwargs)
        assert_identical_up_to_tie_order(ours, theirs)


def test_nan_and_infinite_scores_follow_the_heap_walk(st_mining: Callable[..., Pairs]) -> None:
    def with_holes(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        scores = a @ b.T
        return scores.masked_fill(scores < -2, float("-inf")).masked_fill(scores > 6, float("inf"))

    def with_nan(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        scores = a @ b.T
        return scores.masked_fill(scores == 3, float("nan"))

    embeddings = _integer_rows(40, 5, seed=11, duplicates=10)
    for kwargs in CASES:
        ours = paraphrase_mining_embeddings(embeddings, score_function=with_holes, **kwargs)
        theirs = st_mining(embeddings, score_function=with_holes, **kwargs)
        assert all(score > float("-inf") for score, _, _ in ours)  # -inf never passes the initial floor
        assert_identical_up_to_tie_order(ours, theirs)
        ours = paraphrase_mining_embeddings(embeddings, score_function=with_nan, **kwargs)
        theirs = st_mining(embeddings, score_function=with_nan, **kwargs)
        assert len(ours) == len(theirs)
        assert {tuple(p[1:]) for p in ours} == {tuple(p[1:]) for p in theirs}


@pytest.mark.parametrize("flaw", ["asymmetric", "nan"])
def test_flaws_the_symmetry_probe_misses_still_follow_the_heap_walk(st_mining: Callable[..., Pairs], flaw: str) -> None:
    # The first call (embedforge's symmetry probe) is clean; later calls are not, so the collector
    # has to notice mid-stream and hand over to the heap walk.
    def flawed(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        scores = a @ b.T
        if flaw == "asymmetric":
            return scores + 0.5 * a.sum(dim=1, keepdim=True)
        return scores.masked_fill(scores == 3, float("nan"))

    calls = 0

    def clean_once(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        nonlocal calls
        calls += 1
        return a @ b.T if calls == 1 else flawed(a, b)

    embeddings = _integer_rows(40, 5, seed=5, duplicates=20)
    kwargs = {"top_k": 5, "max_pairs": 10**6, "query_chunk_size": 16}
    ours = paraphrase_mining_embeddings(embeddings, score_function=clean_once, **kwargs)
    theirs = st_mining(embeddings, score_function=flawed, **kwargs)
    chunks = -(-len(embeddings) // 16)
    assert calls >= 1 + 1 + chunks  # the probe, at least one call of the abandoned pass, the walk's pass
    if flaw == "asymmetric":
        assert_identical_up_to_tie_order(ours, theirs)
    else:
        assert {tuple(p[1:]) for p in ours} == {tuple(p[1:]) for p in theirs}


def test_chunk_sizes_do_not_change_the_result(merge_often: None) -> None:
    embeddings = _integer_rows(60, 6, seed=3, duplicates=40)
    for score_function in (dot_score, lambda a, b: dot_score(a, b)):
        reference = paraphrase_mining_embeddings(embeddings, top_k=4, max_pairs=70, score_function=score_function)
        for query_chunk_size, corpus_chunk_size in ((1, 1), (3, 7), (17, 5), (100, 2), (41, 100)):
            assert (
                paraphrase_mining_embeddings(
                    embeddings,
                    top_k=4,
                    max_pairs=70,
                    score_function=score_function,
                    query_chunk_size=query_chunk_size,
                    corpus_chunk_size=corpus_chunk_size,
                )
                == reference
            )


def _symmetric_stream(
    rows: int, levels: int, top_k: int, chunk: int, seed: int
) -> list[paraphrase_pairs.NeighbourChunk]:
    """Neighbour chunks from a random symmetric score matrix with few distinct values (ties everywhere)."""
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, levels, (rows, rows)).astype(np.float32)
    scores = np.triu(scores) + np.triu(scores, 1).T
    width = min(top_k + 1, rows)
    # Best first, ties lowest index first (what the engine does); a stable sort on -score gives it.
    ids = np.argsort(-scores, axis=1, kind="stable")[:, :width]
    best = np.take_along_axis(scores, ids, axis=1)
    return [(start, ids[start : start + chunk], best[start : start + chunk]) for start in range(0, rows, chunk)]


@pytest.mark.parametrize("min_merge", [1, 10**9])  # merge (and cut) after every chunk, or once at the end
def test_collector_matches_the_heap_walk_on_tied_streams(min_merge: int) -> None:
    # The heap walk is sentence-transformers' loop itself; the collector must end with the same pairs.
    for seed in range(40):
        rng = np.random.default_rng(1000 + seed)
        rows, top_k = int(rng.integers(2, 60)), int(rng.integers(1, 12))
        max_pairs, chunk = int(rng.integers(1, 80)), int(rng.integers(1, 25))
        stream = _symmetric_stream(rows, levels=int(rng.integers(1, 5)), top_k=top_k, chunk=chunk, seed=seed)
        collector = VectorisedPairCollector(rows, top_k, max_pairs, min_merge=min_merge)
        for part in stream:
            collector.add(*part)
        ours = collector.result()
        assert ours is not None
        assert_identical_up_to_tie_order(ours, collect_pairs_sequentially(stream, top_k, max_pairs))
        # Equal scores come in (i, j) order.
        assert ours == sorted(ours, key=lambda p: (-p[0], p[1], p[2]))


def test_collector_hands_asymmetric_streams_to_the_heap_walk() -> None:
    ids = np.array([[1, 0], [0, 1]])
    scores = np.array([[0.5, 1.0], [0.25, 1.0]], dtype=np.float32)  # pair (0, 1) scores 0.5 one way, 0.25 the other
    collector = VectorisedPairCollector(2, top_k=1, max_pairs=5, min_merge=1)
    collector.add(0, ids, scores)
    assert collector.result() is None
    assert collect_pairs_sequentially([(0, ids, scores)], top_k=1, max_pairs=5) == [[0.5, 0, 1]]
