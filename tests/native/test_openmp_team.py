"""The Rust loops on torch's OpenMP team: same results as on embedforge's own threads."""

from __future__ import annotations

import numpy as np
import pytest

from embedforge import _core
from embedforge._internal import openmp_team
from embedforge.exceptions import InvalidArgumentError


@pytest.fixture()
def team_address() -> int:
    """The address of torch's GOMP_parallel; the process's sharing state is restored afterwards."""
    import ctypes
    import os

    path = openmp_team.loaded_libgomp()
    if path is None:
        pytest.skip("no GNU OpenMP runtime loaded (torch built with another OpenMP, or not Linux)")
    runtime = ctypes.CDLL(path, mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
    address = ctypes.cast(runtime.GOMP_parallel, ctypes.c_void_p).value
    assert address
    was_shared = _core.uses_openmp_team()
    yield address
    _core.use_openmp_team(address if was_shared else None)


def _passes() -> tuple[np.ndarray, ...]:
    """softmax_rows, accumulate_scaled_probs and adamw_sparse_rows on a fixed case, multi-threaded."""
    generator = np.random.default_rng(7)
    dots = generator.uniform(-1, 1, size=(300, 420)).astype(np.float32)
    row_scale = generator.uniform(10, 30, size=300).astype(np.float32)
    col_scale = generator.uniform(0.5, 1.5, size=420).astype(np.float32)
    probs = np.empty_like(dots)
    log_prob, row_sum, col_sum = _core.softmax_rows(dots, row_scale, col_scale, probs)
    grad = probs.copy()
    _core.accumulate_scaled_probs(grad, row_scale, col_scale, None)
    param = generator.standard_normal((500, 64)).astype(np.float32)
    exp_avg, exp_avg_sq = np.zeros_like(param), np.zeros_like(param)
    rows = np.arange(0, 500, 3, dtype=np.int64)
    values = generator.standard_normal((rows.size, 64)).astype(np.float32)
    _core.adamw_sparse_rows(
        param, exp_avg, exp_avg_sq, rows, values, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01, step=1
    )
    return log_prob, row_sum, col_sum, probs, grad, param, exp_avg, exp_avg_sq


def test_loops_on_torchs_team_give_the_same_results(team_address: int) -> None:
    threads = _core.get_num_threads()
    _core.set_num_threads(2)
    try:
        _core.use_openmp_team(None)
        own = _passes()
        _core.use_openmp_team(team_address)
        assert _core.uses_openmp_team()
        shared = _passes()
    finally:
        _core.set_num_threads(threads)
    for ours, theirs in zip(shared, own):
        np.testing.assert_array_equal(ours, theirs)


def test_sharing_finds_torchs_runtime(team_address: int) -> None:
    _core.use_openmp_team(None)
    openmp_team._attempted = False
    assert openmp_team.share_torch_openmp_team()
    assert _core.uses_openmp_team()


def test_a_null_address_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="address"):
        _core.use_openmp_team(0)
