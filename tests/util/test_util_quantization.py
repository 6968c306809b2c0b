"""Tests for embedforge.util.quantize_embeddings.

References: the bucket and bit-packing formulas written out in numpy, hand-computed cases,
and sentence-transformers' own util/quantization.py as a parity oracle when installed.
"""

from __future__ import annotations

import logging
import types

import numpy as np
import pytest
import torch

from conftest import load_st_util_module
from embedforge.exceptions import InvalidArgumentError
from embedforge.util import quantize_embeddings
from embedforge.util.quantization import _dequantize_embeddings

PRECISIONS = ["float32", "int8", "uint8", "binary", "ubinary"]


@pytest.fixture(scope="module")
def st_quant() -> types.ModuleType:
    """sentence-transformers' util/quantization.py."""
    return load_st_util_module("quantization")


def _rand(*shape: int, seed: int = 0, dtype: type = np.float32) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype(dtype)


# ---------------------------------------------------------------------------------------------
# numpy references, written from the definitions
# ---------------------------------------------------------------------------------------------


def ref_scalar(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, signed: bool) -> np.ndarray:
    """256 equal buckets per dimension between lo and hi; the arithmetic stays in x's dtype (float32)."""
    out = np.empty(x.shape, dtype=np.int64)
    for index in np.ndindex(x.shape):
        d = index[-1]
        step = (hi[d] - lo[d]) / np.float32(255)
        if step == 0:
            step = np.float32(1)
        bucket = int(np.floor((x[index] - lo[d]) / step))
        out[index] = min(max(bucket, 0), 255)
    return (out - 128).astype(np.int8) if signed else out.astype(np.uint8)


def ref_packbits(x: np.ndarray, signed: bool) -> np.ndarray:
    """Bit k of byte j is 1 when x[..., 8*j + k] > 0, most significant bit first; missing bits are 0."""
    rows = np.atleast_2d(x)
    n_bytes = (rows.shape[-1] + 7) // 8
    out = np.zeros((rows.shape[0], n_bytes), dtype=np.int64)
    for r in range(rows.shape[0]):
        for d in range(rows.shape[-1]):
            if rows[r, d] > 0:
                out[r, d // 8] |= 1 << (7 - d % 8)
    out = out.reshape((*x.shape[:-1], n_bytes))
    return (out - 128).astype(np.int8) if signed else out.astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Hand-computed cases
# ---------------------------------------------------------------------------------------------


def test_hand_computed_scalar_buckets() -> None:
    # Range [0, 255] gives buckets of width 1 exactly.
    ranges = np.array([[0.0, 0.0], [255.0, 255.0]], dtype=np.float32)
    x = np.array([[0.0, 1.5], [254.99, 255.0], [-3.0, 300.0]], dtype=np.float32)
    expected = np.array([[0, 1], [254, 255], [0, 255]])
    assert np.array_equal(quantize_embeddings(x, "uint8", ranges=ranges), expected.astype(np.uint8))
    assert np.array_equal(quantize_embeddings(x, "int8", ranges=ranges), (expected - 128).astype(np.int8))


def test_hand_computed_bits() -> None:
    x = np.array([[1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 0.5, 0.0]], dtype=np.float32)
    # 0b10101010 = 170; then bits 1, 0 padded with six zeros: 0b10000000 = 128. Zero counts as off.
    assert np.array_equal(quantize_embeddings(x, "ubinary"), np.array([[170, 128]], dtype=np.uint8))
    assert np.array_equal(quantize_embeddings(x, "binary"), np.array([[42, 0]], dtype=np.int8))
    assert np.array_equal(quantize_embeddings(-np.ones((1, 8)), "binary"), np.array([[-128]], dtype=np.int8))


def test_constant_dimension_does_not_divide_by_zero() -> None:
    # Column 0 is constant (step 1 instead of 0); column 1 spans [0, 255] (step exactly 1).
    x = np.array([[1.0, 0.0], [1.0, 100.0], [1.0, 255.0]], dtype=np.float32)
    result = quantize_embeddings(x, "uint8")
    assert np.array_equal(result[:, 0], [0, 0, 0])
    assert np.array_equal(result[:, 1], [0, 100, 255])


# ---------------------------------------------------------------------------------------------
# Against the numpy references
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("precision", ["int8", "uint8"])
def test_scalar_quantization_ranges_from_embeddings(precision: str) -> None:
    x = _rand(120, 9, seed=1)
    result = quantize_embeddings(x, precision)
    assert result.dtype == np.dtype(precision) and result.shape == x.shape
    assert np.array_equal(result, ref_scalar(x, x.min(0), x.max(0), signed=precision == "int8"))
    # Each dimension's minimum lands in the lowest bucket and its maximum in the highest.
    low = 0 if precision == "uint8" else -128
    assert (result.min(0) == low).all()


@pytest.mark.parametrize("precision", ["int8", "uint8"])
def test_scalar_quantization_with_calibration_and_ranges(precision: str) -> None:
    x, calibration = _rand(20, 6, seed=2), _rand(200, 6, seed=3)
    signed = precision == "int8"
    expected = ref_scalar(x, calibration.min(0), calibration.max(0), signed)
    assert np.array_equal(quantize_embeddings(x, precision, calibration_embeddings=calibration), expected)
    ranges = np.vstack([calibration.min(0), calibration.max(0)])
    assert np.array_equal(quantize_embeddings(x, precision, ranges=ranges), expected)
    # ranges win over calibration_embeddings; a (2, 1) range applies to every dimension.
    wide = np.array([[-4.0], [4.0]], dtype=np.float32)
    expected_wide = ref_scalar(x, np.full(6, -4.0, np.float32), np.full(6, 4.0, np.float32), signed)
    assert np.array_equal(
        quantize_embeddings(x, precision, ranges=wide, calibration_embeddings=calibration), expected_wide
    )
    # A single embedding can be quantized once ranges are known.
    assert np.array_equal(quantize_embeddings(x[0], precision, ranges=ranges), expected[0])


@pytest.mark.parametrize("precision", ["binary", "ubinary"])
@pytest.mark.parametrize("dim", [8, 13, 1])
def test_binary_quantization(precision: str, dim: int) -> None:
    x = _rand(7, dim, seed=4)
    result = quantize_embeddings(x, precision)
    expected = ref_packbits(x, signed=precision == "binary")
    assert result.dtype == expected.dtype and np.array_equal(result, expected)
    assert np.array_equal(quantize_embeddings(x[0], precision), expected[0])


def test_float32_precision_and_input_kinds() -> None:
    x = _rand(4, 5, seed=5, dtype=np.float64)
    result = quantize_embeddings(x, "float32")
    assert result.dtype == np.float32 and np.array_equal(result, x.astype(np.float32))
    for variant in (torch.from_numpy(x), list(x), x.tolist(), [torch.from_numpy(r) for r in x]):
        assert np.array_equal(quantize_embeddings(variant, "float32"), result)
        assert np.array_equal(quantize_embeddings(variant, "ubinary"), ref_packbits(x, signed=False))
    grad = torch.from_numpy(x).float().requires_grad_()
    assert np.array_equal(quantize_embeddings(grad, "float32"), result)
    bf16 = torch.from_numpy(x).to(torch.bfloat16)
    assert np.array_equal(quantize_embeddings(bf16, "float32"), bf16.float().numpy())


@pytest.mark.parametrize("precision", ["int8", "uint8"])
def test_multi_vector_lists_share_ranges(precision: str) -> None:
    docs = [_rand(3, 4, seed=6), _rand(5, 4, seed=7), np.zeros((0, 4), np.float32)]
    stacked = np.concatenate(docs)
    result = quantize_embeddings(docs, precision)
    assert isinstance(result, list) and [r.shape for r in result] == [(3, 4), (5, 4), (0, 4)]
    expected = ref_scalar(stacked, stacked.min(0), stacked.max(0), signed=precision == "int8")
    assert np.array_equal(np.concatenate(result), expected)
    calibration = _rand(50, 4, seed=8)
    with_calibration = quantize_embeddings(
        [torch.from_numpy(d) for d in docs], precision, calibration_embeddings=calibration
    )
    expected = ref_scalar(stacked, calibration.min(0), calibration.max(0), signed=precision == "int8")
    assert np.array_equal(np.concatenate(with_calibration), expected)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_empty_inputs(precision: str) -> None:
    assert quantize_embeddings([], precision) == []
    empty = quantize_embeddings(np.zeros((0, 10), np.float32), precision)
    width = 2 if precision.endswith("binary") else 10
    dtype = {"float32": np.float32, "int8": np.int8, "uint8": np.uint8, "binary": np.int8, "ubinary": np.uint8}
    assert empty.shape == (0, width) and empty.dtype == dtype[precision]


def test_dequantize_inverts_to_bucket_lower_edges() -> None:
    x, ranges = _rand(30, 4, seed=9), np.array([[-3.0] * 4, [3.0] * 4], dtype=np.float32)
    step = 6.0 / 255
    for precision in ("int8", "uint8"):
        restored = _dequantize_embeddings(quantize_embeddings(x, precision, ranges=ranges), precision, ranges)
        inside = np.abs(x) < 3.0
        assert np.all((restored[inside] <= x[inside] + 1e-6) & (x[inside] - restored[inside] < step + 1e-6))


def test_few_embeddings_log_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="embedforge.util.quantization"):
        quantize_embeddings(_rand(10, 4), "int8")
    assert "based on 10 embeddings" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="embedforge.util.quantization"):
        quantize_embeddings(_rand(10, 4), "int8", calibration_embeddings=_rand(10, 4))
    assert caplog.text == ""


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("precision", ["float16", "INT8", "bit", "", None])
def test_unknown_precision(precision: object) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        quantize_embeddings(_rand(3, 4), precision)  # type: ignore[arg-type]
    message = str(info.value)
    assert "precision" in message and repr(precision) in message
    assert "['float32', 'int8', 'uint8', 'binary', 'ubinary']" in message
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_already_quantized_input(dtype: type) -> None:
    with pytest.raises(InvalidArgumentError, match=f"must be float.*{np.dtype(dtype).name}"):
        quantize_embeddings(np.zeros((3, 4), dtype), "int8")


@pytest.mark.parametrize("precision", ["int8", "uint8"])
def test_ranges_from_a_single_embedding_are_refused(precision: str) -> None:
    for single in (_rand(4), _rand(1, 4), [_rand(1, 4)]):
        with pytest.raises(InvalidArgumentError, match=f"{precision}.*single embedding.*ranges.*calibration"):
            quantize_embeddings(single, precision)


def test_bad_ranges_and_calibration_shapes() -> None:
    x = _rand(5, 4)
    for ranges in (np.zeros(4), np.zeros((3, 4)), np.zeros((2, 3))):
        with pytest.raises(InvalidArgumentError, match=rf"ranges must .*\(2, 4\).*{ranges.shape}"):
            quantize_embeddings(x, "int8", ranges=ranges)
    for calibration in (np.zeros((0, 4)), np.zeros((5, 3)), np.zeros(4)):
        with pytest.raises(InvalidArgumentError, match=r"calibration_embeddings must .*4"):
            quantize_embeddings(x, "uint8", calibration_embeddings=calibration)
    with pytest.raises(InvalidArgumentError, match=r"1-D or 2-D.*\(2, 3, 4\)"):
        quantize_embeddings(_rand(2, 3, 4), "int8")
    with pytest.raises(InvalidArgumentError, match=r"embeddings must be .*got str"):
        quantize_embeddings("text", "int8")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Parity with sentence-transformers
# ---------------------------------------------------------------------------------------------


def _assert_same(ours: object, theirs: object) -> None:
    if isinstance(theirs, list):
        assert isinstance(ours, list) and len(ours) == len(theirs)
        for mine, other in zip(ours, theirs):
            _assert_same(mine, other)
        return
    assert isinstance(ours, np.ndarray) and isinstance(theirs, np.ndarray)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_parity_with_sentence_transformers(st_quant: types.ModuleType, precision: str) -> None:
    x, calibration = _rand(150, 12, seed=10), _rand(300, 12, seed=11)
    ranges = np.vstack([calibration.min(0), calibration.max(0)]) * 0.8  # some values fall outside: clipping
    docs = [_rand(4, 12, seed=12), _rand(7, 12, seed=13)]
    cases: list[tuple[object, dict[str, object]]] = [
        (x, {}),
        (x, {"calibration_embeddings": calibration}),
        (x, {"ranges": ranges}),
        (x, {"ranges": ranges, "calibration_embeddings": calibration}),
        (x[:30], {}),
        (x.astype(np.float64), {}),
        (torch.from_numpy(x), {}),
        (torch.from_numpy(x).to(torch.bfloat16), {}),
        (list(x[:20]), {}),
        ([torch.from_numpy(r) for r in x[:20]], {}),
        (x[0], {"ranges": ranges}),
        (x[:, :7], {"ranges": ranges[:, :7]}),
        (docs, {}),
        (docs, {"calibration_embeddings": calibration}),
        ([torch.from_numpy(d) for d in docs], {"ranges": ranges}),
        (np.zeros((0, 12), np.float32), {}),
        ([], {}),
    ]
    for embeddings, kwargs in cases:
        ours = quantize_embeddings(embeddings, precision, **kwargs)  # type: ignore[arg-type]
        theirs = st_quant.quantize_embeddings(embeddings, precision, **kwargs)
        _assert_same(ours, theirs)


def test_error_parity_with_sentence_transformers(st_quant: types.ModuleType) -> None:
    # Both refuse ranges from one embedding with a ValueError (ours is InvalidArgumentError).
    for fn in (quantize_embeddings, st_quant.quantize_embeddings):
        with pytest.raises(ValueError, match="single embedding"):
            fn(_rand(1, 4), "int8")
        with pytest.raises(ValueError, match="'float16'"):
            fn(_rand(3, 4), "float16")
        with pytest.raises(Exception, match="float"):
            fn(np.zeros((3, 4), np.int8), "int8")


def test_dequantize_parity_with_sentence_transformers(st_quant: types.ModuleType) -> None:
    x, calibration = _rand(40, 6, seed=14), _rand(100, 6, seed=15)
    ranges = np.vstack([calibration.min(0), calibration.max(0)])
    ranges[:, 2] = 0.5  # a constant dimension
    for precision in ("int8", "uint8"):
        quantized = quantize_embeddings(x, precision, ranges=ranges)
        _assert_same(
            _dequantize_embeddings(quantized, precision, ranges),
            st_quant._dequantize_embeddings(quantized, precision, ranges),
        )
