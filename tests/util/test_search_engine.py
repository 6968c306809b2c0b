"""The float search engine (_core.top_k) against numpy brute force: panel padding, k, blocks,
threads, memory-mapped .npy corpora and NaN rows found while streaming."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embedforge import _core
from embedforge.exceptions import InvalidArgumentError
from embedforge.util import semantic_search


def reference(queries: np.ndarray, corpus: np.ndarray, k: int, score: str) -> np.ndarray:
    """All scores in float64 (cosine normalises first)."""
    q, c = queries.astype(np.float64), corpus.astype(np.float64)
    if score == "cosine":
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        c = c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
    return q @ c.T


def check(queries: np.ndarray, corpus: np.ndarray, k: int, score: str, block: int) -> None:
    """Scores match float64 to 1e-5; ids may differ only inside near-ties; order is best first."""
    ids, scores = _core.top_k(queries, corpus, k, score, block)
    full = reference(queries, corpus, k, score)
    kk = min(k, len(corpus))
    assert ids.shape == scores.shape == (len(queries), kk)
    expected = -np.sort(-full, axis=1)[:, :kk]
    np.testing.assert_allclose(scores, expected, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(np.take_along_axis(full, ids, axis=1), scores, atol=1e-5, rtol=1e-5)
    assert all(len(set(row)) == kk for row in ids.tolist())
    assert (np.diff(scores, axis=1) <= 0).all()


@pytest.mark.parametrize(
    ("n_queries", "n_corpus", "dim"), [(1, 1, 1), (5, 15, 3), (6, 16, 8), (7, 17, 9), (13, 500, 65)]
)
@pytest.mark.parametrize("score", ["cosine", "dot"])
def test_kernel_matches_brute_force(n_queries: int, n_corpus: int, dim: int, score: str) -> None:
    """Shapes around the 6 x 16 tile edges, k from 1 past the corpus size, blocks from 1 row up."""
    rng = np.random.default_rng(n_queries * 100 + n_corpus)
    queries = rng.standard_normal((n_queries, dim)).astype(np.float32)
    corpus = rng.standard_normal((n_corpus, dim)).astype(np.float32)
    for k in (1, 3, 100, n_corpus + 2):
        for block in (1, 16, 4096):
            check(queries, corpus, k, score, block)


def test_results_do_not_depend_on_blocks_or_threads() -> None:
    """Bit-identical ids and scores for any block size and thread count (ties to the lower id)."""
    rng = np.random.default_rng(1)
    corpus = rng.standard_normal((3000, 24)).astype(np.float32)
    corpus[1500:] = corpus[:1500]  # exact duplicates: ties must go to the lower index
    queries = rng.standard_normal((40, 24)).astype(np.float32)
    before = _core.get_num_threads()
    try:
        _core.set_num_threads(1)
        want_ids, want_scores = _core.top_k(queries, corpus, 50, "cosine", 4096)
        # Each row and its duplicate tie exactly: the original (lower id) comes first, right before it.
        tied = want_scores[:, 1:] == want_scores[:, :-1]
        assert tied.any()
        assert (want_ids[:, 1:][tied] > want_ids[:, :-1][tied]).all()
        for threads, block in ((1, 7), (2, 64), (2, 4096), (3, 100)):
            _core.set_num_threads(threads)
            ids, scores = _core.top_k(queries, corpus, 50, "cosine", block)
            np.testing.assert_array_equal(ids, want_ids)
            np.testing.assert_array_equal(scores, want_scores)
    finally:
        _core.set_num_threads(before)


def test_npy_path_is_memory_mapped_and_streamed(tmp_path: Path) -> None:
    """semantic_search(queries, "corpus.npy") equals the in-memory search; float64 files are converted."""
    rng = np.random.default_rng(2)
    corpus = rng.standard_normal((700, 12)).astype(np.float32)
    queries = rng.standard_normal((4, 12)).astype(np.float32)
    np.save(tmp_path / "corpus.npy", corpus)
    np.save(tmp_path / "corpus64.npy", corpus.astype(np.float64))
    want = semantic_search(queries, corpus, top_k=7)
    assert semantic_search(queries, str(tmp_path / "corpus.npy"), top_k=7) == want
    assert semantic_search(queries, tmp_path / "corpus64.npy", top_k=7) == want
    mapped = np.load(tmp_path / "corpus.npy", mmap_mode="r")
    assert semantic_search(queries, mapped, top_k=7) == want
    np.save(tmp_path / "ints.npy", np.ones((3, 12), np.int64))
    with pytest.raises(InvalidArgumentError, match="corpus_embeddings"):
        semantic_search(queries, tmp_path / "ints.npy")


def test_nan_found_while_streaming_names_the_row() -> None:
    """A NaN deep in the corpus is reported with its row, for every score."""
    corpus = np.ones((5000, 4), np.float32)
    corpus[4321, 2] = np.nan
    for score in ("cosine", "dot", "euclidean", "manhattan"):
        with pytest.raises(InvalidArgumentError, match="NaN in row 4321"):
            _core.top_k(np.ones((2, 4), np.float32), corpus, 3, score, 256)


@pytest.mark.parametrize("score", ["cosine", "dot"])
def test_screened_search_on_large_corpora_matches_brute_force_and_the_float_kernel(
    score: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Corpora of >= 4096 rows go through the integer screen (on CPUs with AVX-512 VNNI): the
    result must equal float64 brute force and, bit for bit, the float kernel alone (AVX2),
    duplicated rows (exact ties) included."""
    rng = np.random.default_rng(7)
    corpus = rng.standard_normal((9000, 96), dtype=np.float32)
    corpus[8000:] = corpus[:1000]
    queries = np.concatenate([rng.standard_normal((40, 96), dtype=np.float32), corpus[:10]])
    for k in (1, 10, 200):
        check(queries, corpus, k, score, 4096)
        screened = _core.top_k(queries, corpus, k, score, 4096)
        monkeypatch.setenv("EMBEDFORGE_SEARCH_ISA", "avx2")
        plain = _core.top_k(queries, corpus, k, score, 4096)
        monkeypatch.delenv("EMBEDFORGE_SEARCH_ISA")
        np.testing.assert_array_equal(screened[0], plain[0])
        np.testing.assert_array_equal(screened[1], plain[1])
