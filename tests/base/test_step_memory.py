"""Memory kept from one training step to the next: the scratch-buffer pool and heap retention."""

from __future__ import annotations

import platform
import resource

import pytest
import torch

from embedforge._internal import heap_retention
from embedforge._internal.buffer_pool import BufferPool


def test_pool_hands_back_the_buffer_it_was_given() -> None:
    pool = BufferPool()
    like = torch.zeros(1)
    first = pool.take((4, 3), like)
    assert first.shape == (4, 3) and first.dtype == torch.float32 and first.is_contiguous()
    pool.give(first)
    assert pool.take((4, 3), like) is first
    # Empty again: a new tensor, not the one handed out.
    assert pool.take((4, 3), like) is not first


def test_pool_drops_buffers_of_an_old_shape_and_keeps_at_most_max_free() -> None:
    pool = BufferPool(max_free=2)
    like = torch.zeros(1)
    old = pool.take((2, 2), like)
    pool.give(old)
    new = pool.take((3, 3), like)
    pool.give(new)
    assert pool.take((2, 2), like) is not old
    given = [pool.take((3, 3), like) for _ in range(3)]
    for buffer in given:
        pool.give(buffer)
    # Only two were kept: the third take is a fresh tensor.
    taken = [pool.take((3, 3), like) for _ in range(3)]
    assert sum(any(t is g for g in given) for t in taken) == 2
    assert pool.take((3, 3), torch.zeros(1, dtype=torch.float64)).dtype == torch.float64


def _faults_of_steps(steps: int) -> int:
    """Minor page faults over ``steps`` rounds that each fill four 16 MiB tensors at once, then free them."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(steps):
        blocks = [torch.empty(4 * 1024 * 1024) for _ in range(4)]
        for block in blocks:
            block.fill_(1.0)
        del blocks
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="heap retention is glibc-only"
)
def test_freed_blocks_are_reused_inside_the_block_and_settings_restored_after() -> None:
    pages_per_step = 4 * 16 * 1024 * 1024 // resource.getpagesize()
    with heap_retention.heap_retained():
        with heap_retention.heap_retained():  # nested blocks change nothing more
            _faults_of_steps(1)
            # Later steps reuse the first step's pages instead of faulting in fresh ones: by default
            # glibc returns the freed blocks to the OS and each of the four steps faults them all in.
            assert _faults_of_steps(4) < pages_per_step
        assert heap_retention._depth == 1
    assert heap_retention._depth == 0


def test_switch_off_leaves_the_allocator_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(heap_retention.ENV_SWITCH, "0")
    calls: list[object] = []
    monkeypatch.setattr(heap_retention, "_glibc", lambda: calls.append("looked up"))
    with heap_retention.heap_retained():
        pass
    assert calls == [] and heap_retention._depth == 0
