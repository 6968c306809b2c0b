"""``_core.softmax_rows`` and ``_core.accumulate_scaled_probs`` against the formulas in float64 numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from embedforge import _core
from embedforge.exceptions import InvalidArgumentError


def _case(rows: int, cols: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    generator = np.random.default_rng(seed)
    dots = generator.uniform(-1, 1, size=(rows, cols)).astype(np.float32)
    row_scale = generator.uniform(10, 30, size=rows).astype(np.float32)
    col_scale = generator.uniform(0.5, 1.5, size=cols).astype(np.float32)
    return dots, row_scale, col_scale


def _reference(dots: np.ndarray, row_scale: np.ndarray, col_scale: np.ndarray) -> dict[str, np.ndarray]:
    logits = np.outer(row_scale, col_scale).astype(np.float64) * dots.astype(np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    probs = np.exp(log_probs)
    rows = np.arange(dots.shape[0])
    positive = logits[rows, rows]
    weighted = probs * logits
    col_sum = weighted.sum(axis=0)
    col_sum[rows] -= positive
    return {
        "probs": probs,
        "log_prob_positive": log_probs[rows, rows],
        "row_sum": weighted.sum(axis=1) - positive,
        "col_sum": col_sum,
    }


@pytest.mark.parametrize(("rows", "cols"), [(1, 1), (33, 33), (64, 200), (130, 17 * 16 + 3)])
def test_softmax_rows_matches_float64_formula(rows: int, cols: int) -> None:
    dots, row_scale, col_scale = _case(rows, cols)
    probs = np.empty_like(dots)
    log_prob, row_sum, col_sum = _core.softmax_rows(dots, row_scale, col_scale, probs)
    want = _reference(dots, row_scale, col_scale)
    np.testing.assert_allclose(probs, want["probs"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(log_prob, want["log_prob_positive"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(row_sum, want["row_sum"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(col_sum, want["col_sum"], rtol=1e-4, atol=1e-4)
    # Without a probability buffer the statistics are the same, bit for bit.
    again = _core.softmax_rows(dots, row_scale, col_scale)
    for got, other in zip((log_prob, row_sum, col_sum), again):
        np.testing.assert_array_equal(got, other)


def test_softmax_rows_matches_torch_log_softmax() -> None:
    dots, row_scale, col_scale = _case(256, 512, seed=3)
    log_prob, _, _ = _core.softmax_rows(dots, row_scale, col_scale)
    logits = torch.outer(torch.from_numpy(row_scale), torch.from_numpy(col_scale)) * torch.from_numpy(dots)
    want = torch.log_softmax(logits, dim=1).diagonal().numpy()
    np.testing.assert_allclose(log_prob, want, rtol=2e-6, atol=2e-6)


def test_accumulate_scaled_probs_matches_formula() -> None:
    probs, row_scale, col_scale = _case(50, 70, seed=1)
    start = np.random.default_rng(2).normal(size=probs.shape).astype(np.float32)
    factor = np.outer(row_scale, col_scale)
    onehot = np.zeros_like(factor)
    onehot[np.arange(50), np.arange(50)] = row_scale * col_scale[:50]

    grad = start.copy()
    _core.accumulate_scaled_probs(grad, row_scale, col_scale, probs)
    np.testing.assert_allclose(grad, start + factor * probs - onehot, rtol=1e-5, atol=1e-4)

    in_place = probs.copy()
    _core.accumulate_scaled_probs(in_place, row_scale, col_scale)
    np.testing.assert_allclose(in_place, factor * probs - onehot, rtol=1e-5, atol=1e-4)


def test_bad_arguments_name_the_argument() -> None:
    dots, row_scale, col_scale = _case(4, 6)
    with pytest.raises(InvalidArgumentError, match="row_scale"):
        _core.softmax_rows(dots, row_scale[:3], col_scale)
    with pytest.raises(InvalidArgumentError, match="cols"):
        _core.softmax_rows(dots.T.copy(), col_scale, row_scale)
    with pytest.raises(InvalidArgumentError, match="dots"):
        _core.softmax_rows(dots.astype(np.float64), row_scale, col_scale)
    with pytest.raises(InvalidArgumentError, match="dots"):
        _core.softmax_rows(dots[:, ::2], row_scale, col_scale[::2].copy())
    with pytest.raises(InvalidArgumentError, match="probs"):
        _core.softmax_rows(dots, row_scale, col_scale, np.empty((4, 5), dtype=np.float32))
    with pytest.raises(InvalidArgumentError, match="grad"):
        _core.accumulate_scaled_probs(dots[:, :3], row_scale, col_scale)
