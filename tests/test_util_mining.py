"""paraphrase_mining, community_detection and mine_hard_negatives against sentence-transformers and by hand."""

from __future__ import annotations

import csv
from typing import Any

import pytest
import torch

from conftest import load_st_util_module, shared_path
from embedforge.exceptions import InvalidArgumentError
from embedforge.util import (
    community_detection,
    cos_sim,
    dot_score,
    manhattan_sim,
    paraphrase_mining_embeddings,
)


def _randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def assert_same_pairs(ours: list[list[Any]], theirs: list[list[Any]], tol: float = 1e-6) -> None:
    """Same pairs with the same scores; order may differ only between pairs whose scores differ by float noise."""
    assert len(ours) == len(theirs)
    assert [pytest.approx(p[0], rel=tol, abs=tol) for p in ours] == [p[0] for p in theirs]
    theirs_by_pair = {(i, j): score for score, i, j in theirs}
    assert {(i, j) for _, i, j in ours} == set(theirs_by_pair)
    for score, i, j in ours:
        assert i < j
        assert score == pytest.approx(theirs_by_pair[(i, j)], rel=tol, abs=tol)


# -- paraphrase mining -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def st_retrieval() -> Any:
    return load_st_util_module("retrieval")


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"top_k": 5, "max_pairs": 100},
        {"top_k": 3, "max_pairs": 57, "query_chunk_size": 37, "corpus_chunk_size": 101},
        {"top_k": 1, "max_pairs": 10_000, "query_chunk_size": 1},
        {"top_k": 10, "max_pairs": 300, "score_function": "dot"},
        {"top_k": 4, "max_pairs": 200, "score_function": "manhattan", "corpus_chunk_size": 50},
        {"top_k": 4, "max_pairs": 150, "score_function": "custom", "corpus_chunk_size": 77},
    ],
)
def test_paraphrase_mining_embeddings_matches_sentence_transformers(st_retrieval: Any, kwargs: dict[str, Any]) -> None:
    embeddings = _randn(300, 16)
    functions = {
        "dot": (dot_score, st_retrieval.dot_score),
        "manhattan": (manhattan_sim, manhattan_sim),
        # Not one of the built-ins: runs through the torch fallback.
        "custom": ((lambda a, b: -torch.cdist(a, b)),) * 2,
    }
    ours_kwargs, theirs_kwargs = dict(kwargs), dict(kwargs)
    if "score_function" in kwargs:
        ours_kwargs["score_function"], theirs_kwargs["score_function"] = functions[kwargs["score_function"]]
    ours = paraphrase_mining_embeddings(embeddings, **ours_kwargs)
    theirs = st_retrieval.paraphrase_mining_embeddings(embeddings, **theirs_kwargs)
    assert_same_pairs(ours, theirs)


def test_paraphrase_mining_by_hand_with_ties() -> None:
    # Rows 0, 1 and 3 are the same direction (cosine 1 with each other); row 2 is orthogonal.
    embeddings = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
    pairs = paraphrase_mining_embeddings(embeddings, top_k=1)
    # Each row keeps one neighbour, ties to the lower index: 0->1, 1->0 (dup), 2->0, 3->0.
    assert pairs == [[1.0, 0, 1], [1.0, 0, 3], [0.0, 0, 2]]
    # Chunking does not change which tied neighbour wins.
    for query_chunk_size, corpus_chunk_size in ((1, 1), (3, 2), (2, 3)):
        assert (
            paraphrase_mining_embeddings(
                embeddings, top_k=1, query_chunk_size=query_chunk_size, corpus_chunk_size=corpus_chunk_size
            )
            == pairs
        )
        assert (
            paraphrase_mining_embeddings(
                embeddings,
                top_k=1,
                query_chunk_size=query_chunk_size,
                corpus_chunk_size=corpus_chunk_size,
                score_function=lambda a, b: cos_sim(a, b),
            )
            == pairs
        )
    # With max_pairs=2 the heap evicts (0, 2), then (0, 1) for (1, 3); afterwards nothing scoring
    # at most the last evicted score (1.0) gets in, so (0, 1) does not come back from row 3.
    assert paraphrase_mining_embeddings(embeddings, max_pairs=2) == [[1.0, 0, 3], [1.0, 1, 3]]
    # top_k=0 or max_pairs=0 mine nothing.
    assert paraphrase_mining_embeddings(embeddings, top_k=0) == []
    assert paraphrase_mining_embeddings(embeddings, max_pairs=0) == []
    assert paraphrase_mining_embeddings(torch.zeros(0, 4)) == []


def test_paraphrase_mining_with_duplicates_matches_up_to_tie_order(st_retrieval: Any) -> None:
    base = _randn(40, 8, seed=3)
    embeddings = torch.cat([base, base[:15], base[5:10]])  # exact duplicates: exactly tied scores
    ours = paraphrase_mining_embeddings(embeddings, top_k=100, max_pairs=10**6)
    theirs = st_retrieval.paraphrase_mining_embeddings(embeddings, top_k=100, max_pairs=10**6)
    assert_same_pairs(ours, theirs)


def test_paraphrase_mining_errors() -> None:
    embeddings = _randn(5, 4)
    for name, value in (("top_k", -1), ("max_pairs", -2), ("query_chunk_size", 0), ("corpus_chunk_size", 1.5)):
        with pytest.raises(InvalidArgumentError, match=name):
            paraphrase_mining_embeddings(embeddings, **{name: value})
    with pytest.raises(InvalidArgumentError, match="2-D"):
        paraphrase_mining_embeddings(torch.zeros(3, 2, 2))


def bert_static_models(seed: int = 0, dim: int = 32) -> tuple[Any, Any]:
    """The same random StaticEmbedding over the bert-base-uncased vocabulary, in embedforge and in sentence-transformers.

    Real text is mostly unknown to conftest's small word-level vocabulary, which makes many texts
    embed identically; the full WordPiece vocabulary keeps real texts apart.
    """
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import SentenceTransformer as StModel
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding as StStatic
    from tokenizers import Tokenizer

    from embedforge import SentenceTransformer
    from embedforge.models import StaticEmbedding

    tokenizer_path = str(shared_path("tokenizers", "bert-base-uncased.json"))
    vocab_size = Tokenizer.from_file(tokenizer_path).get_vocab_size()
    weights = torch.randn(vocab_size, dim, generator=torch.Generator().manual_seed(seed))
    ours = SentenceTransformer(
        modules=[StaticEmbedding(Tokenizer.from_file(tokenizer_path), embedding_weights=weights.clone())]
    )
    theirs = StModel(
        modules=[StStatic(Tokenizer.from_file(tokenizer_path), embedding_weights=weights.clone())], device="cpu"
    )
    return ours, theirs


def quora_sentences(pairs: int) -> list[str]:
    path = shared_path("quora-duplicates", "quora-dev.csv")
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))[1 : pairs + 1]
    return list(dict.fromkeys(text for row in rows for text in (row[2], row[3])))


def test_paraphrase_mining_with_models_on_quora(st_retrieval: Any) -> None:
    from embedforge.util import paraphrase_mining

    sentences = quora_sentences(120)
    ours_model, st_model = bert_static_models(seed=1)
    ours = paraphrase_mining(ours_model, sentences, top_k=5, max_pairs=400, batch_size=16)
    theirs = st_retrieval.paraphrase_mining(st_model, sentences, top_k=5, max_pairs=400, batch_size=16)
    assert len(ours) == 400
    assert_same_pairs(ours, theirs, tol=1e-5)


# -- community detection -----------------------------------------------------------------------------


def _clustered(seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(20, 16, generator=generator)
    points = torch.cat([centres[i] + 0.3 * torch.randn(5 + 3 * i, 16, generator=generator) for i in range(20)])
    return points[torch.randperm(len(points), generator=generator)]


@pytest.mark.parametrize(
    ("threshold", "min_community_size", "batch_size"),
    [(0.75, 10, 1024), (0.8, 5, 64), (0.6, 20, 100), (0.9, 2, 7), (0.5, 60, 33)],
)
def test_community_detection_matches_sentence_transformers(
    st_retrieval: Any, threshold: float, min_community_size: int, batch_size: int
) -> None:
    points = _clustered()
    ours = community_detection(points, threshold, min_community_size, batch_size)
    theirs = st_retrieval.community_detection(points, threshold, min_community_size, batch_size)
    assert ours == theirs
    assert ours  # the case finds communities
    # numpy input gives the same result
    assert community_detection(points.numpy(), threshold, min_community_size, batch_size) == ours


def test_community_detection_large_community_needs_wider_fetch(st_retrieval: Any) -> None:
    # One community of 150 rows: more than the first fetch (50), so the fetch must widen.
    points = torch.cat([torch.ones(1, 8) + 0.05 * _randn(150, 8, seed=1), _randn(30, 8, seed=2)])
    ours = community_detection(points, threshold=0.9, min_community_size=3)
    theirs = st_retrieval.community_detection(points, threshold=0.9, min_community_size=3)
    assert ours == theirs
    assert len(ours[0]) >= 150


def test_community_detection_by_hand() -> None:
    # Two tight groups (rows 0-2 along x, rows 3-4 along y) and one loner; ties go to the lower index.
    points = torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 0.01], [0.0, 1.0], [0.0, 2.0], [-1.0, -1.0]])
    assert community_detection(points, threshold=0.9, min_community_size=2) == [[0, 1, 2], [3, 4]]
    assert community_detection(points, threshold=0.9, min_community_size=3) == [[0, 1, 2]]
    assert community_detection(points, threshold=0.9, min_community_size=7) == []
    assert community_detection(torch.zeros(0, 2)) == []
    assert community_detection(torch.tensor([1.0, 0.0]), min_community_size=1) == [[0]]


def test_community_detection_errors() -> None:
    with pytest.raises(InvalidArgumentError, match="min_community_size"):
        community_detection(_randn(4, 2), min_community_size=0)
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        community_detection(_randn(4, 2), batch_size=0)
