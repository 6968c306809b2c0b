"""Tests for embedforge.util.similarity and embedforge.util.tensor.

References: the formulas written out in numpy (float64), a few hand-computed cases, and
sentence-transformers' own util modules as a parity oracle when it is installed.
"""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch

from conftest import load_st_util_module
from embedforge.exceptions import InvalidArgumentError
from embedforge.util import (
    SimilarityFunction,
    _convert_to_batch,
    _convert_to_batch_tensor,
    _convert_to_tensor,
    _move_tensors_to_cpu,
    batch_to_device,
    compute_count_vector,
    cos_sim,
    dot_score,
    euclidean_sim,
    manhattan_sim,
    maxsim,
    maxsim_pairwise,
    mean_maxsim,
    mean_maxsim_pairwise,
    normalize_embeddings,
    pairwise_angle_sim,
    pairwise_cos_sim,
    pairwise_dot_score,
    pairwise_euclidean_sim,
    pairwise_manhattan_sim,
    pytorch_cos_sim,
    select_max_active_dims,
    to_scipy_coo,
    truncate_embeddings,
)

MATRIX_FNS = ["cos_sim", "dot_score", "euclidean_sim", "manhattan_sim", "pytorch_cos_sim"]
PAIRWISE_FNS = [
    "pairwise_cos_sim",
    "pairwise_dot_score",
    "pairwise_euclidean_sim",
    "pairwise_manhattan_sim",
    "pairwise_angle_sim",
]


@pytest.fixture(scope="module")
def st_sim() -> types.ModuleType:
    """sentence-transformers' util/similarity.py."""
    return load_st_util_module("similarity")


@pytest.fixture(scope="module")
def st_tensor() -> types.ModuleType:
    """sentence-transformers' util/tensor.py."""
    return load_st_util_module("tensor")


def _rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# numpy references (float64), written from the definitions
# ---------------------------------------------------------------------------------------------


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def ref_matrix(name: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    b = np.atleast_2d(np.asarray(b, dtype=np.float64))
    out = np.empty((len(a), len(b)))
    for i in range(len(a)):
        for j in range(len(b)):
            if name in ("cos_sim", "pytorch_cos_sim"):
                out[i, j] = _unit(a[i]) @ _unit(b[j])
            elif name == "dot_score":
                out[i, j] = a[i] @ b[j]
            elif name == "euclidean_sim":
                out[i, j] = -np.sqrt(np.sum((a[i] - b[j]) ** 2))
            else:
                out[i, j] = -np.sum(np.abs(a[i] - b[j]))
    return out


def ref_pairwise(name: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if name == "pairwise_cos_sim":
        return np.sum(_unit(a) * _unit(b), axis=-1)
    if name == "pairwise_dot_score":
        return np.sum(a * b, axis=-1)
    if name == "pairwise_euclidean_sim":
        return -np.sqrt(np.sum((a - b) ** 2, axis=-1))
    if name == "pairwise_manhattan_sim":
        return -np.sum(np.abs(a - b), axis=-1)
    # AnglE: view each unit vector as complex numbers (first half real, second half imaginary);
    # the score is |Re + Im| of sum(z * conj(w)). An odd dimension gets a zero appended.
    if a.shape[-1] % 2:
        pad = [(0, 0)] * (a.ndim - 1) + [(0, 1)]
        a, b = np.pad(a, pad), np.pad(b, pad)
    half = a.shape[-1] // 2
    ua, ub = _unit(a), _unit(b)
    z = ua[..., :half] + 1j * ua[..., half:]
    w = ub[..., :half] + 1j * ub[..., half:]
    inner = np.sum(z * np.conj(w), axis=-1)
    return np.abs(inner.real + inner.imag)


FNS = {
    "cos_sim": cos_sim,
    "dot_score": dot_score,
    "euclidean_sim": euclidean_sim,
    "manhattan_sim": manhattan_sim,
    "pytorch_cos_sim": pytorch_cos_sim,
    "pairwise_cos_sim": pairwise_cos_sim,
    "pairwise_dot_score": pairwise_dot_score,
    "pairwise_euclidean_sim": pairwise_euclidean_sim,
    "pairwise_manhattan_sim": pairwise_manhattan_sim,
    "pairwise_angle_sim": pairwise_angle_sim,
}


# ---------------------------------------------------------------------------------------------
# Hand-computed cases
# ---------------------------------------------------------------------------------------------


def test_hand_computed_matrix_scores() -> None:
    a = [[3.0, 4.0]]
    b = [[3.0, 4.0], [0.0, 0.0], [4.0, -3.0]]
    torch.testing.assert_close(cos_sim(a, b), torch.tensor([[1.0, 0.0, 0.0]]))
    torch.testing.assert_close(dot_score(a, b), torch.tensor([[25.0, 0.0, 0.0]]))
    # |(3,4) - (4,-3)| = |(-1, 7)|: L2 sqrt(50), L1 8
    torch.testing.assert_close(euclidean_sim(a, b), torch.tensor([[0.0, -5.0, -(50**0.5)]]))
    torch.testing.assert_close(manhattan_sim(a, b), torch.tensor([[0.0, -7.0, -8.0]]))


def test_hand_computed_pairwise_scores() -> None:
    a = [[1.0, 0.0], [1.0, 1.0]]
    b = [[0.0, 1.0], [2.0, 2.0]]
    torch.testing.assert_close(pairwise_cos_sim(a, b), torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(pairwise_dot_score(a, b), torch.tensor([0.0, 4.0]))
    torch.testing.assert_close(pairwise_euclidean_sim(a, b), torch.tensor([-(2**0.5), -(2**0.5)]))
    torch.testing.assert_close(pairwise_manhattan_sim(a, b), torch.tensor([-2.0, -2.0]))
    # x = 1 + 0i, y = 0 + 1i: orthogonal (cos 0) but a quarter turn apart (|sin| 1).
    torch.testing.assert_close(pairwise_angle_sim([[1.0, 0.0]], [[0.0, 1.0]]), torch.tensor([1.0]))
    torch.testing.assert_close(pairwise_angle_sim([[1.0, 0.0]], [[1.0, 0.0]]), torch.tensor([1.0]))
    # y = (1 + i)/sqrt(2): cos = 1/sqrt(2) and the sine term -1/sqrt(2) cancel (the sign matters).
    torch.testing.assert_close(pairwise_angle_sim([[1.0, 0.0]], [[1.0, 1.0]]), torch.tensor([0.0]))


# ---------------------------------------------------------------------------------------------
# Against the numpy references
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MATRIX_FNS)
@pytest.mark.parametrize(("n", "m", "d"), [(3, 4, 5), (40, 30, 8), (1, 1, 1)])
def test_matrix_functions_match_reference(name: str, n: int, m: int, d: int) -> None:
    a, b = _rand(n, d, seed=1), _rand(m, d, seed=2)
    result = FNS[name](a, b)
    assert isinstance(result, torch.Tensor)
    assert result.shape == (n, m)
    assert result.dtype == torch.float32
    np.testing.assert_allclose(result.numpy(), ref_matrix(name, a, b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", PAIRWISE_FNS)
@pytest.mark.parametrize("d", [6, 7])
def test_pairwise_functions_match_reference(name: str, d: int) -> None:
    a, b = _rand(9, d, seed=3), _rand(9, d, seed=4)
    result = FNS[name](a, b)
    assert result.shape == (9,)
    assert result.dtype == torch.float32
    np.testing.assert_allclose(result.numpy(), ref_pairwise(name, a, b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", MATRIX_FNS)
def test_matrix_functions_accept_every_input_kind(name: str) -> None:
    a, b = _rand(3, 4, seed=5), _rand(2, 4, seed=6)
    expected = FNS[name](torch.from_numpy(a), torch.from_numpy(b))
    variants = [
        (a.tolist(), b.tolist()),
        (a, b),
        (list(a), list(b)),
        ([torch.from_numpy(r) for r in a], [torch.from_numpy(r) for r in b]),
    ]
    for x, y in variants:
        torch.testing.assert_close(FNS[name](x, y), expected)
    # A 1-D input is a single row.
    torch.testing.assert_close(FNS[name](a[0], b), expected[:1])
    torch.testing.assert_close(FNS[name](a[0], b[1]), expected[:1, 1:])


@pytest.mark.parametrize("name", MATRIX_FNS + PAIRWISE_FNS)
def test_dtypes_follow_sentence_transformers_rules(name: str) -> None:
    a, b = _rand(3, 4, seed=7), _rand(3, 4, seed=8)
    # float64 stays float64 ...
    assert FNS[name](a.astype(np.float64), b.astype(np.float64)).dtype == torch.float64
    # ... but half precision is computed in float32 so nearby scores stay distinct.
    for half in (torch.float16, torch.bfloat16):
        result = FNS[name](torch.from_numpy(a).to(half), torch.from_numpy(b).to(half))
        assert result.dtype == torch.float32
        exact = FNS[name](torch.from_numpy(a).to(half).float(), torch.from_numpy(b).to(half).float())
        torch.testing.assert_close(result, exact)


@pytest.mark.parametrize("name", MATRIX_FNS)
def test_sparse_and_mixed_inputs_give_dense_results(name: str) -> None:
    a, b = _rand(5, 12, seed=9), _rand(4, 12, seed=10)
    a[np.abs(a) < 0.8] = 0.0
    b[np.abs(b) < 0.8] = 0.0
    expected = torch.from_numpy(ref_matrix(name, a, b)).float()
    sa, sb = torch.from_numpy(a).to_sparse(), torch.from_numpy(b).to_sparse()
    for x, y in [(sa, sb), (sa, torch.from_numpy(b)), (torch.from_numpy(a), sb), (list(sa.unbind(0)), sb)]:
        result = FNS[name](x, y)
        assert result.layout == torch.strided
        torch.testing.assert_close(result, expected, rtol=1e-5, atol=1e-5)


def test_sparse_manhattan_without_scikit_learn(monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = _rand(3, 6, seed=17), _rand(2, 6, seed=18)
    a[np.abs(a) < 0.8] = 0.0
    monkeypatch.setitem(sys.modules, "sklearn.metrics", None)  # makes the import fail
    result = manhattan_sim(torch.from_numpy(a).to_sparse(), b)
    np.testing.assert_allclose(result.numpy(), ref_matrix("manhattan_sim", a, b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", PAIRWISE_FNS)
def test_pairwise_sparse_inputs(name: str) -> None:
    a, b = _rand(5, 8, seed=11), _rand(5, 8, seed=12)
    a[np.abs(a) < 0.5] = 0.0
    b[np.abs(b) < 0.5] = 0.0
    result = FNS[name](torch.from_numpy(a).to_sparse(), torch.from_numpy(b).to_sparse())
    assert result.layout == torch.strided
    np.testing.assert_allclose(result.numpy(), ref_pairwise(name, a, b), rtol=1e-5, atol=1e-5)


def test_zero_vectors_and_empty_inputs() -> None:
    zeros = np.zeros((2, 3), dtype=np.float32)
    assert torch.equal(cos_sim(zeros, _rand(4, 3)), torch.zeros(2, 4))
    assert torch.equal(pairwise_cos_sim(zeros, _rand(2, 3)), torch.zeros(2))
    assert cos_sim(np.zeros((0, 3), np.float32), _rand(4, 3)).shape == (0, 4)
    assert euclidean_sim(_rand(2, 3), np.zeros((0, 3), np.float32)).shape == (2, 0)


def test_pairwise_broadcasting_and_single_pair() -> None:
    a, b = _rand(4, 5, seed=13), _rand(1, 5, seed=14)
    np.testing.assert_allclose(
        pairwise_dot_score(a, b).numpy(), ref_pairwise("pairwise_dot_score", a, np.repeat(b, 4, 0)), rtol=1e-5
    )
    single = pairwise_cos_sim(a[0], b[0])
    assert single.shape == ()
    np.testing.assert_allclose(single.item(), ref_pairwise("pairwise_cos_sim", a[0], b[0]), rtol=1e-5)


@pytest.mark.parametrize("name", MATRIX_FNS + PAIRWISE_FNS)
def test_gradients_flow(name: str) -> None:
    a = torch.from_numpy(_rand(3, 4, seed=15)).requires_grad_()
    b = torch.from_numpy(_rand(3, 4, seed=16)).requires_grad_()
    FNS[name](a, b).sum().backward()
    assert a.grad is not None and torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0
    assert b.grad is not None and torch.isfinite(b.grad).all()


@pytest.mark.parametrize("name", ["cos_sim", "dot_score", "euclidean_sim", "manhattan_sim"])
def test_matrix_shape_errors(name: str) -> None:
    with pytest.raises(InvalidArgumentError, match=r"same embedding dimension.*\(2, 3\).*\(2, 4\)"):
        FNS[name](_rand(2, 3), _rand(2, 4))
    assert issubclass(InvalidArgumentError, ValueError)


def test_matmul_functions_reject_3d_input() -> None:
    with pytest.raises(InvalidArgumentError, match=r"a must be .*3-D input of shape \(2, 2, 3\)"):
        cos_sim(_rand(2, 2, 3), _rand(2, 3))
    # cdist-based functions accept stacked batches, like sentence-transformers.
    assert euclidean_sim(_rand(2, 2, 3), _rand(2, 4, 3)).shape == (2, 2, 4)


@pytest.mark.parametrize("name", PAIRWISE_FNS)
def test_pairwise_shape_errors(name: str) -> None:
    with pytest.raises(InvalidArgumentError, match=r"\(3, 4\).*\(2, 4\)"):
        FNS[name](_rand(3, 4), _rand(2, 4))


# ---------------------------------------------------------------------------------------------
# SimilarityFunction
# ---------------------------------------------------------------------------------------------


def test_similarity_function_enum() -> None:
    names = ["cosine", "dot", "euclidean", "manhattan", "maxsim", "meanmaxsim"]
    assert [m.value for m in SimilarityFunction] == names
    assert SimilarityFunction.possible_values() == names
    assert SimilarityFunction.DOT is SimilarityFunction.DOT_PRODUCT
    assert SimilarityFunction("dot") is SimilarityFunction.DOT_PRODUCT
    expected = {
        "cosine": (cos_sim, pairwise_cos_sim),
        "dot": (dot_score, pairwise_dot_score),
        "euclidean": (euclidean_sim, pairwise_euclidean_sim),
        "manhattan": (manhattan_sim, pairwise_manhattan_sim),
        "maxsim": (maxsim, maxsim_pairwise),
        "meanmaxsim": (mean_maxsim, mean_maxsim_pairwise),
    }
    for value, (matrix_fn, pairwise_fn) in expected.items():
        for key in (value, SimilarityFunction(value)):
            assert SimilarityFunction.to_similarity_fn(key) is matrix_fn
            assert SimilarityFunction.to_similarity_pairwise_fn(key) is pairwise_fn


@pytest.mark.parametrize("bad", ["cos", "Cosine", "dot_product", None, 3])
def test_similarity_function_rejects_unknown_names(bad: object) -> None:
    for call in (SimilarityFunction, SimilarityFunction.to_similarity_fn, SimilarityFunction.to_similarity_pairwise_fn):
        with pytest.raises(InvalidArgumentError) as info:
            call(bad)
        message = str(info.value)
        assert repr(bad) in message and "similarity_function" in message
        assert "['cosine', 'dot', 'euclidean', 'manhattan', 'maxsim', 'meanmaxsim']" in message


# ---------------------------------------------------------------------------------------------
# Tensor helpers
# ---------------------------------------------------------------------------------------------


def test_conversion_helpers() -> None:
    rows = _rand(3, 4)
    wrapped = _convert_to_tensor(rows)
    assert wrapped.data_ptr() == torch.from_numpy(rows).data_ptr()  # no copy of a writeable array
    readonly = rows.copy()
    readonly.flags.writeable = False
    assert torch.equal(_convert_to_tensor(readonly), torch.from_numpy(rows))
    assert _convert_to_tensor([[1, 2]]).dtype == torch.int64
    assert _convert_to_batch(torch.ones(4)).shape == (1, 4)
    assert _convert_to_batch(torch.ones(2, 4)).shape == (2, 4)
    assert _convert_to_batch_tensor(np.ones(4, np.float16)).dtype == torch.float32
    sparse_rows = [torch.tensor([0.0, 1.0]).to_sparse(), torch.tensor([2.0, 0.0]).to_sparse()]
    stacked = _convert_to_tensor(sparse_rows)
    assert stacked.is_sparse and torch.equal(stacked.to_dense(), torch.tensor([[0.0, 1.0], [2.0, 0.0]]))


def test_normalize_embeddings_dense_and_sparse() -> None:
    x = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 2.0]], dtype=np.float32)
    expected = torch.tensor([[0.6, 0.8, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    torch.testing.assert_close(normalize_embeddings(torch.from_numpy(x)), expected)
    sparse = normalize_embeddings(torch.from_numpy(x).to_sparse())
    assert sparse.is_sparse
    torch.testing.assert_close(sparse.to_dense(), expected)
    single = normalize_embeddings(torch.tensor([0.0, 3.0, 4.0]).to_sparse())
    torch.testing.assert_close(single.to_dense(), torch.tensor([0.0, 0.6, 0.8]))
    half = normalize_embeddings(torch.from_numpy(x).to(torch.float16).to_sparse())
    assert half.dtype == torch.float16
    torch.testing.assert_close(half.to_dense().float(), expected, atol=1e-3, rtol=1e-3)


def test_truncate_and_select_max_active_dims() -> None:
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert np.array_equal(truncate_embeddings(x, 2), x[:, :2])
    assert truncate_embeddings(x, None) is not None and truncate_embeddings(x, None).shape == (3, 4)
    assert torch.equal(truncate_embeddings(torch.from_numpy(x), 3), torch.from_numpy(x[:, :3]))

    y = torch.tensor([[1.0, -5.0, 3.0, 0.5], [-2.0, 0.1, 0.2, 4.0]])
    expected = torch.tensor([[0.0, -5.0, 3.0, 0.0], [-2.0, 0.0, 0.0, 4.0]])
    assert torch.equal(select_max_active_dims(y, 2), expected)
    assert torch.equal(select_max_active_dims(y.numpy(), 2), expected)
    assert torch.equal(select_max_active_dims(y, 10), y)
    assert select_max_active_dims(y, None) is y
    assert y[0, 0] == 1.0  # input untouched
    with pytest.raises(InvalidArgumentError, match=r"max_active_dims.*0"):
        select_max_active_dims(y, 0)


def test_sparse_helpers_and_devices() -> None:
    dense = torch.tensor([[0.0, 1.5, 0.0], [2.0, 0.0, 0.0], [0.0, 3.0, 0.0]])
    coo = to_scipy_coo(dense.to_sparse())
    assert coo.shape == (3, 3) and np.array_equal(coo.toarray(), dense.numpy())
    assert torch.equal(compute_count_vector(dense), torch.tensor([1, 2, 0], dtype=torch.int32))
    assert torch.equal(compute_count_vector(dense[0]), torch.tensor([0, 1, 0], dtype=torch.int32))
    with pytest.raises(InvalidArgumentError, match="1-D or 2-D"):
        compute_count_vector(torch.ones(2, 2, 2))

    batch = {"input_ids": torch.ones(2, dtype=torch.long), "name": "x"}
    assert batch_to_device(batch, "cpu") is batch and batch["name"] == "x"
    nested = {"a": [torch.ones(1), (torch.zeros(1), 3)], "b": "text"}
    moved = _move_tensors_to_cpu(nested)
    assert moved["b"] == "text" and moved["a"][1][1] == 3 and moved["a"][0].device.type == "cpu"


# ---------------------------------------------------------------------------------------------
# Parity with sentence-transformers
# ---------------------------------------------------------------------------------------------


def _assert_same(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    assert ours.shape == theirs.shape
    assert ours.dtype == theirs.dtype
    assert ours.layout == theirs.layout
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)


def _parity_inputs(pairwise: bool) -> list[tuple[object, object]]:
    a, b = _rand(30, 16, seed=20), _rand(30 if pairwise else 27, 16, seed=21)
    sa, sb = a.copy(), b.copy()
    sa[np.abs(sa) < 1.0] = 0.0
    sb[np.abs(sb) < 1.0] = 0.0
    odd_a, odd_b = _rand(4, 7, seed=22), _rand(4, 7, seed=23)
    return [
        (a, b),
        (a.tolist(), b.tolist()),
        (list(a), list(b)),
        (torch.from_numpy(a), torch.from_numpy(b)),
        (a.astype(np.float64), b.astype(np.float64)),
        (torch.from_numpy(a).half(), torch.from_numpy(b).bfloat16()),
        (a[0], b[0]),
        (a[:5], b[:5] if pairwise else b[0]),
        (odd_a, odd_b),
        (torch.from_numpy(sa).to_sparse(), torch.from_numpy(sb).to_sparse()),
        (torch.from_numpy(sa).to_sparse(), torch.from_numpy(sb)),
    ]


@pytest.mark.parametrize("name", MATRIX_FNS)
def test_matrix_parity_with_sentence_transformers(st_sim: types.ModuleType, name: str) -> None:
    for a, b in _parity_inputs(pairwise=False):
        _assert_same(FNS[name](a, b), getattr(st_sim, name)(a, b))


@pytest.mark.parametrize("name", PAIRWISE_FNS)
def test_pairwise_parity_with_sentence_transformers(st_sim: types.ModuleType, name: str) -> None:
    for index, (a, b) in enumerate(_parity_inputs(pairwise=True)):
        if name == "pairwise_angle_sim" and index == 6:
            continue  # sentence-transformers fails on 1-D input there (it reads shape[1])
        _assert_same(FNS[name](a, b), getattr(st_sim, name)(a, b))


@pytest.mark.parametrize("name", MATRIX_FNS + PAIRWISE_FNS)
def test_gradient_parity_with_sentence_transformers(st_sim: types.ModuleType, name: str) -> None:
    grads = []
    for fn in (FNS[name], getattr(st_sim, name)):
        a = torch.from_numpy(_rand(6, 5, seed=24)).requires_grad_()
        b = torch.from_numpy(_rand(6, 5, seed=25)).requires_grad_()
        (fn(a, b) * torch.linspace(-1, 1, 6)).sum().backward()
        grads.append((a.grad, b.grad))
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=1e-6)


def test_similarity_function_parity_with_sentence_transformers(st_sim: types.ModuleType) -> None:
    theirs = st_sim.SimilarityFunction
    assert SimilarityFunction.possible_values() == theirs.possible_values()
    dense_values = [v for v in theirs.possible_values() if v in ("cosine", "dot", "euclidean", "manhattan")]
    a, b = _rand(4, 6, seed=26), _rand(4, 6, seed=27)
    for value in dense_values:
        assert SimilarityFunction(value).name == theirs(value).name
        # A member of sentence-transformers' enum is accepted too.
        assert SimilarityFunction(theirs(value)) is SimilarityFunction(value)
        _assert_same(SimilarityFunction.to_similarity_fn(value)(a, b), theirs.to_similarity_fn(value)(a, b))
        _assert_same(
            SimilarityFunction.to_similarity_pairwise_fn(value)(a, b),
            theirs.to_similarity_pairwise_fn(value)(a, b),
        )


def test_tensor_helper_parity_with_sentence_transformers(st_tensor: types.ModuleType) -> None:
    x = _rand(5, 10, seed=28)
    x[np.abs(x) < 0.7] = 0.0
    dense = torch.from_numpy(x)
    for value in (dense, dense.to_sparse(), dense[0].to_sparse(), dense.half().to_sparse()):
        ours, theirs = normalize_embeddings(value), st_tensor.normalize_embeddings(value)
        assert ours.is_sparse == theirs.is_sparse and ours.dtype == theirs.dtype
        torch.testing.assert_close(ours.to_dense(), theirs.to_dense(), rtol=0, atol=1e-6)
    for k in (1, 3, 100):
        _assert_same(select_max_active_dims(x, k), st_tensor.select_max_active_dims(x, k))
    _assert_same(compute_count_vector(dense), st_tensor.compute_count_vector(dense))
    assert np.array_equal(
        to_scipy_coo(dense.to_sparse()).toarray(), st_tensor.to_scipy_coo(dense.to_sparse()).toarray()
    )
    for value in (x, list(x), x.tolist(), [torch.from_numpy(r) for r in x], x[0], dense.to_sparse()):
        ours, theirs = _convert_to_batch_tensor(value), st_tensor._convert_to_batch_tensor(value)
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype and ours.is_sparse == theirs.is_sparse
        assert torch.equal(ours.to_dense(), theirs.to_dense())
