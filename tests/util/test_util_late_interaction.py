"""Tests for embedforge.util.late_interaction (late-interaction MaxSim / MeanMaxSim scoring).

References: a plain float64 loop (sum over query tokens of the max over document tokens, with
masks), hand-computed cases, and sentence-transformers' own functions as an oracle when installed.
"""

from __future__ import annotations

import importlib
import logging
import types

import numpy as np
import pytest
import torch

from embedforge import util
from embedforge.exceptions import InvalidArgumentError
from embedforge.util import maxsim, maxsim_pairwise, mean_maxsim, mean_maxsim_pairwise
from embedforge.util.late_interaction import EMPTY_DOCUMENT_SCORE, _chunk_ranges


def reference_maxsim(
    query: np.ndarray, document: np.ndarray, query_mask: np.ndarray | None = None, doc_mask: np.ndarray | None = None
) -> float:
    """MaxSim of one pair, written out as loops in float64."""
    query = np.asarray(query, dtype=np.float64)
    document = np.asarray(document, dtype=np.float64)
    doc_tokens = [j for j in range(len(document)) if doc_mask is None or doc_mask[j]]
    if not doc_tokens:
        return EMPTY_DOCUMENT_SCORE
    total = 0.0
    for i in range(len(query)):
        weight = 1.0 if query_mask is None else float(query_mask[i])
        total += weight * max(float(query[i] @ document[j]) for j in doc_tokens)
    return total


def reference_matrix(queries, documents, query_masks=None, doc_masks=None) -> np.ndarray:
    out = np.zeros((len(queries), len(documents)))
    for i, query in enumerate(queries):
        for j, document in enumerate(documents):
            qm = None if query_masks is None else query_masks[i]
            dm = None if doc_masks is None else doc_masks[j]
            out[i, j] = reference_maxsim(query, document, qm, dm)
    return out


def ragged(generator: torch.Generator, widths: list[int], dim: int = 8) -> list[torch.Tensor]:
    return [torch.randn(width, dim, generator=generator) for width in widths]


@pytest.fixture
def st_sim() -> types.ModuleType:
    pytest.importorskip("sentence_transformers")
    from sentence_transformers.util import similarity

    return similarity


# --- formula ---------------------------------------------------------------------------------


def test_hand_computed_ragged_matrix() -> None:
    queries = [torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([[-1.0, 1.0]])]
    documents = [torch.tensor([[3.0, 0.0], [0.0, 0.5]]), torch.tensor([[-1.0, -1.0]])]
    # q0 vs d0: max(3, 0) + max(0, 1) = 4; q0 vs d1: -1 + -2 = -3
    # q1 vs d0: max(-3, 0.5) = 0.5;       q1 vs d1: max(1 - 1) = 0
    expected = torch.tensor([[4.0, -3.0], [0.5, 0.0]])
    scores = maxsim(queries, documents)
    assert scores.shape == (2, 2)
    assert scores.dtype == torch.float32
    assert torch.allclose(scores, expected)
    assert torch.allclose(maxsim_pairwise(queries, documents), torch.tensor([4.0, 0.0]))


def test_matches_loop_reference_on_ragged_lists() -> None:
    generator = torch.Generator().manual_seed(0)
    queries = ragged(generator, [3, 1, 6])
    documents = ragged(generator, [2, 9, 4, 1])
    expected = reference_matrix([q.numpy() for q in queries], [d.numpy() for d in documents])
    assert np.allclose(maxsim(queries, documents).numpy(), expected, atol=1e-5)


def test_padding_never_beats_negative_similarities() -> None:
    # All similarities are negative: a zero padding token would otherwise win every max.
    generator = torch.Generator().manual_seed(1)
    queries = [-torch.rand(3, 4, generator=generator) - 0.1]
    documents = [torch.rand(width, 4, generator=generator) + 0.1 for width in (1, 5, 2)]
    scores = maxsim(queries, documents)
    assert (scores < 0).all()
    expected = reference_matrix([q.numpy() for q in queries], [d.numpy() for d in documents])
    assert np.allclose(scores.numpy(), expected, atol=1e-5)


# --- input forms -------------------------------------------------------------------------------


def test_input_forms_agree() -> None:
    generator = torch.Generator().manual_seed(2)
    queries = ragged(generator, [3, 2])
    documents = ragged(generator, [4, 1, 3])
    expected = maxsim(queries, documents)

    padded_q = torch.nn.utils.rnn.pad_sequence(queries, batch_first=True)
    padded_d = torch.nn.utils.rnn.pad_sequence(documents, batch_first=True)
    # Padded 3-D input without masks: all-zero rows read as padding.
    assert torch.allclose(maxsim(padded_q, padded_d), expected, atol=1e-6)
    assert torch.allclose(maxsim(padded_q.numpy(), padded_d.numpy()), expected, atol=1e-6)
    assert torch.allclose(maxsim([q.numpy() for q in queries], documents), expected, atol=1e-6)
    assert torch.allclose(maxsim([q.tolist() for q in queries], [d.tolist() for d in documents]), expected, atol=1e-6)
    # Mixed: a ragged list against a padded tensor.
    assert torch.allclose(maxsim(queries, padded_d), expected, atol=1e-6)


def test_single_2d_inputs_score_as_batch_of_one() -> None:
    generator = torch.Generator().manual_seed(3)
    query = torch.randn(4, 8, generator=generator)
    documents = ragged(generator, [5, 2])
    batched = maxsim([query], documents)
    assert maxsim(query, documents).shape == (1, 2)
    assert torch.equal(maxsim(query, documents), batched)
    assert torch.allclose(maxsim(query.numpy(), documents), batched)
    assert maxsim(query, query).shape == (1, 1)
    pair = maxsim_pairwise(query, documents[0])
    assert pair.shape == (1,)
    assert torch.allclose(pair, batched[0, :1], atol=1e-6)
    # A 1-D mask beside a 2-D item is that item's mask.
    mask = torch.tensor([1, 1, 0, 0, 0])
    assert torch.allclose(
        maxsim_pairwise(query, documents[0], b_mask=mask),
        torch.tensor([reference_maxsim(query.numpy(), documents[0].numpy(), None, mask.numpy())], dtype=torch.float32),
        atol=1e-5,
    )


# --- masks -------------------------------------------------------------------------------------


def test_masks_match_loop_reference() -> None:
    generator = torch.Generator().manual_seed(4)
    queries = torch.randn(3, 5, 8, generator=generator)
    documents = torch.randn(4, 6, 8, generator=generator)
    a_mask = torch.rand(3, 5, generator=generator) > 0.3
    b_mask = torch.rand(4, 6, generator=generator) > 0.3
    a_mask[:, 0] = True
    b_mask[:, 0] = True
    b_mask[2] = False  # one document with no token left
    expected = reference_matrix(queries.numpy(), documents.numpy(), a_mask.numpy(), b_mask.numpy())
    for mask_pair in ((a_mask, b_mask), (a_mask.float(), b_mask.int()), (a_mask.numpy(), b_mask.numpy())):
        scores = maxsim(queries, documents, a_mask=mask_pair[0], b_mask=mask_pair[1])
        assert np.allclose(scores.numpy(), expected, atol=1e-4)
    pairs = maxsim_pairwise(queries, documents[:3], a_mask=a_mask, b_mask=b_mask[:3])
    assert np.allclose(pairs.numpy(), np.diagonal(expected), atol=1e-4)


def test_per_item_mask_lists_equal_padded_masks() -> None:
    generator = torch.Generator().manual_seed(5)
    queries = ragged(generator, [2, 3])
    documents = ragged(generator, [3, 2])
    per_item = [torch.tensor([1.0, 0.0, 1.0]), torch.tensor([1.0, 1.0])]
    padded = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    assert torch.allclose(maxsim(queries, documents, b_mask=per_item), maxsim(queries, documents, b_mask=padded))
    assert torch.allclose(
        maxsim_pairwise(queries, documents, b_mask=per_item), maxsim_pairwise(queries, documents, b_mask=padded)
    )
    assert torch.allclose(
        maxsim(queries, documents, b_mask=per_item),
        torch.tensor(
            reference_matrix(
                [q.numpy() for q in queries], [d.numpy() for d in documents], None, [m.numpy() for m in per_item]
            ),
            dtype=torch.float32,
        ),
        atol=1e-5,
    )


def test_empty_documents_score_the_sentinel_and_warn(caplog: pytest.LogCaptureFixture) -> None:
    importlib.import_module("embedforge.util.late_interaction")._warn_once_fallback.cache_clear()
    cache_clear = getattr(getattr(logging.Logger, "warning_once", None), "cache_clear", None)
    if cache_clear is not None:  # transformers' warning_once, when transformers is imported
        cache_clear()
    generator = torch.Generator().manual_seed(6)
    queries = ragged(generator, [2, 3])
    documents = [torch.randn(3, 8, generator=generator), torch.zeros(0, 8)]
    with caplog.at_level(logging.WARNING, logger="embedforge.util.late_interaction"):
        scores = maxsim(queries, documents)
    assert (scores[:, 1] == EMPTY_DOCUMENT_SCORE).all()
    assert torch.isfinite(scores).all()
    assert scores[:, 0].abs().max() < 100
    assert any("no scoreable token" in record.getMessage() for record in caplog.records)

    pairs = maxsim_pairwise(queries, documents)
    assert pairs[1] == EMPTY_DOCUMENT_SCORE
    # Every document zero-width: nothing to take a maximum over.
    assert (maxsim(queries, torch.zeros(2, 0, 8)) == EMPTY_DOCUMENT_SCORE).all()


# --- length normalisation ------------------------------------------------------------------------


def test_length_normalize_divides_by_real_query_tokens() -> None:
    generator = torch.Generator().manual_seed(7)
    queries = ragged(generator, [4, 7])
    documents = ragged(generator, [5, 3])
    lengths = torch.tensor([[4.0], [7.0]])
    plain = maxsim(queries, documents)
    assert torch.allclose(maxsim(queries, documents, length_normalize=True), plain / lengths)
    assert torch.allclose(mean_maxsim(queries, documents), plain / lengths)
    assert torch.allclose(mean_maxsim(queries, documents, length_normalize=False), plain)

    padded = torch.nn.utils.rnn.pad_sequence(queries, batch_first=True)
    a_mask = torch.tensor([[1] * 4 + [0] * 3, [1] * 7])
    assert torch.allclose(mean_maxsim(padded, documents, a_mask=a_mask), plain / lengths, atol=1e-6)

    plain_pairs = maxsim_pairwise(queries, documents)
    assert torch.allclose(mean_maxsim_pairwise(queries, documents), plain_pairs / lengths[:, 0])
    assert torch.allclose(mean_maxsim_pairwise(queries, documents, length_normalize=False), plain_pairs)


# --- chunking ----------------------------------------------------------------------------------------


def test_chunk_ranges_packing() -> None:
    # 10 elements per item token, budget 200: two width-10 items fit, a third does not.
    assert _chunk_ranges([10] * 5, 10, 200) == [(0, 2), (2, 4), (4, 5)]
    # The outlier takes a chunk of its own; the floor of one item per chunk holds.
    assert _chunk_ranges([2, 2, 50, 2], 10, 100) == [(0, 2), (2, 3), (3, 4)]
    assert _chunk_ranges([1000], 10, 1) == [(0, 1)]
    # A fixed per-item cost counts even for zero-width items: 4 items x 30 = 120 > 100.
    assert _chunk_ranges([0] * 4, 10, 100, per_item_fixed=30) == [(0, 3), (3, 4)]
    assert _chunk_ranges([], 10, 100) == [(0, 0)]


@pytest.mark.parametrize("budget", [1, 50, 700, 10**12, None])
def test_chunking_changes_no_score(budget: int | None) -> None:
    generator = torch.Generator().manual_seed(8)
    queries = ragged(generator, [3, 6, 1])
    widths = [2, 40, 3, 5, 1, 7]
    documents = ragged(generator, widths)
    b_mask = torch.zeros(len(widths), max(widths), dtype=torch.bool)
    for row, width in enumerate(widths):
        b_mask[row, :width] = True
    b_mask[1, 20:] = False
    expected = reference_matrix(
        [q.numpy() for q in queries], [d.numpy() for d in documents], None, [m.numpy() for m in b_mask]
    )
    assert np.allclose(maxsim(queries, documents, b_mask=b_mask, chunk_elements=budget).numpy(), expected, atol=1e-4)
    padded = torch.nn.utils.rnn.pad_sequence(documents, batch_first=True)
    assert np.allclose(maxsim(queries, padded, b_mask=b_mask, chunk_elements=budget).numpy(), expected, atol=1e-4)
    pairs = maxsim_pairwise(queries, documents[:3], b_mask=b_mask[:3], chunk_elements=budget)
    assert np.allclose(pairs.numpy(), np.diagonal(expected[:, :3]), atol=1e-4)


# --- dtypes, empty inputs, errors -------------------------------------------------------------------


def test_integer_and_half_precision_inputs_score_in_float32() -> None:
    queries = [torch.tensor([[3, -2], [0, 1]], dtype=torch.int8)]
    documents = [torch.tensor([[2, 0], [0, 5]], dtype=torch.int8), torch.tensor([[0, 1]], dtype=torch.int8)]
    scores = maxsim(queries, documents)
    assert scores.dtype == torch.float32
    # max(6, -10) + max(0, 5) = 11; max(-2) + max(1) = -1
    assert torch.equal(scores, torch.tensor([[11.0, -1.0]]))

    generator = torch.Generator().manual_seed(9)
    queries_half = torch.randn(2, 16, 8, generator=generator).half()
    documents_half = torch.randn(5, 10, 8, generator=generator).half()
    half_scores = maxsim(queries_half, documents_half)
    assert half_scores.dtype == torch.float32
    assert torch.allclose(half_scores, maxsim(queries_half.float(), documents_half.float()), atol=0.05)
    assert maxsim_pairwise(queries_half, documents_half[:2]).dtype == torch.float32


def test_empty_inputs_return_empty_scores() -> None:
    queries = [torch.randn(3, 8), torch.randn(2, 8)]
    for empty in ([], torch.zeros(0, 4, 8), np.zeros((0, 4, 8), dtype=np.float32)):
        scores = maxsim(queries, empty)
        assert scores.shape == (2, 0)
        assert scores.dtype == torch.float32
    assert maxsim([], queries).shape == (0, 2)
    assert maxsim([], []).shape == (0, 0)
    pairs = maxsim_pairwise([], torch.zeros(0, 4, 8))
    assert pairs.shape == (0,)
    assert pairs.dtype == torch.float32


def test_bad_arguments_raise_clear_errors() -> None:
    queries = torch.randn(2, 3, 8)
    documents = torch.randn(3, 4, 8)
    for budget in (None, 1):
        with pytest.raises(InvalidArgumentError, match="`b_mask` covers 6 tokens, but the padded embeddings have 4"):
            maxsim(queries, documents, b_mask=torch.ones(3, 6), chunk_elements=budget)
    with pytest.raises(ValueError, match="`a_mask` covers 2 tokens"):
        maxsim(queries, documents, a_mask=torch.ones(2, 2))
    with pytest.raises(TypeError, match="a_mask"):
        maxsim(queries, documents, a_mask="not a mask")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="same number of items to score as pairs, got 2 and 3"):
        maxsim_pairwise(queries, documents)


# --- gradients and device -----------------------------------------------------------------------------


def test_gradients_flow_to_the_winning_tokens() -> None:
    query = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]], requires_grad=True)
    document = torch.tensor([[[2.0, 0.0], [0.0, 3.0], [1.0, 1.0]]], requires_grad=True)
    b_mask = torch.tensor([[1, 0, 1]])
    # Token 0 picks doc token 0 (2 > 1), token 1 picks doc token 2 (1 > masked 3).
    score = maxsim(query, document, b_mask=b_mask)
    assert score.item() == pytest.approx(3.0)
    score.sum().backward()
    assert query.grad is not None and document.grad is not None
    assert torch.equal(query.grad, torch.tensor([[[2.0, 0.0], [1.0, 1.0]]]))
    assert torch.equal(document.grad, torch.tensor([[[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]]))


def test_device_argument_keeps_scores_on_the_documents_device() -> None:
    generator = torch.Generator().manual_seed(10)
    queries = ragged(generator, [3, 2])
    documents = ragged(generator, [4, 5])
    scores = maxsim(queries, documents, device="cpu", chunk_elements=10)
    assert scores.device.type == "cpu"
    assert torch.allclose(scores, maxsim(queries, documents), atol=1e-6)


def test_reexported_from_util_and_similarity() -> None:
    from embedforge.util import similarity

    for name in ("maxsim", "maxsim_pairwise", "mean_maxsim", "mean_maxsim_pairwise"):
        assert name in util.__all__
        assert getattr(similarity, name) is getattr(util, name)


# --- sentence-transformers as an oracle -----------------------------------------------------------------


@pytest.mark.parametrize("length_normalize", [False, True])
@pytest.mark.parametrize("budget", [None, 1, 300])
def test_matches_sentence_transformers(st_sim: types.ModuleType, length_normalize: bool, budget: int | None) -> None:
    generator = torch.Generator().manual_seed(11)
    queries = ragged(generator, [3, 5, 1])
    documents = ragged(generator, [2, 30, 4, 0, 6])
    ours = maxsim(queries, documents, chunk_elements=budget, length_normalize=length_normalize)
    theirs = st_sim.maxsim(queries, documents, chunk_elements=budget, length_normalize=length_normalize)
    assert ours.dtype == theirs.dtype
    assert torch.allclose(ours, theirs, atol=1e-5)

    padded_q = torch.nn.utils.rnn.pad_sequence(queries, batch_first=True)
    a_mask = torch.rand(3, 5, generator=generator) > 0.3
    ours = maxsim_pairwise(
        padded_q, documents[:3], a_mask=a_mask, chunk_elements=budget, length_normalize=length_normalize
    )
    theirs = st_sim.maxsim_pairwise(
        padded_q, documents[:3], a_mask=a_mask, chunk_elements=budget, length_normalize=length_normalize
    )
    assert torch.allclose(ours, theirs, atol=1e-5)
    assert torch.allclose(mean_maxsim(padded_q, documents), st_sim.mean_maxsim(padded_q, documents), atol=1e-5)
    assert torch.allclose(
        mean_maxsim_pairwise(queries, documents[:3]), st_sim.mean_maxsim_pairwise(queries, documents[:3]), atol=1e-5
    )


def test_gradients_match_sentence_transformers(st_sim: types.ModuleType) -> None:
    generator = torch.Generator().manual_seed(12)
    base_q = torch.randn(2, 4, 8, generator=generator)
    base_d = torch.randn(3, 6, 8, generator=generator)
    b_mask = torch.rand(3, 6, generator=generator) > 0.3
    b_mask[:, 0] = True
    grads = []
    for fn in (maxsim, st_sim.maxsim):
        q = base_q.clone().requires_grad_()
        d = base_d.clone().requires_grad_()
        (fn(q, d, b_mask=b_mask) * torch.arange(6.0).view(2, 3)).sum().backward()
        grads.append((q.grad, d.grad))
    assert torch.allclose(grads[0][0], grads[1][0], atol=1e-5)
    assert torch.allclose(grads[0][1], grads[1][1], atol=1e-5)


def test_chunk_ranges_match_sentence_transformers(st_sim: types.ModuleType) -> None:
    generator = np.random.default_rng(13)
    for _ in range(50):
        widths = [int(w) for w in generator.integers(0, 30, size=int(generator.integers(1, 20)))]
        token, budget, fixed = (int(v) for v in generator.integers(1, 400, size=3))
        assert _chunk_ranges(widths, token, budget, fixed) == st_sim._chunk_ranges(widths, token, budget, fixed)
