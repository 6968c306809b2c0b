"""Keep freed heap memory in the process while training, instead of handing it back to the OS each step.

A CPU training step allocates and frees the same large tensors every time (embeddings, similarity
matrices, gradients: megabytes each). glibc's malloc serves blocks of that size with fresh ``mmap``
regions, or trims them off the heap when freed, so the next step's identical allocation starts on
untouched pages and faults every one of them in again (zero-filled by the kernel, under its memory
lock). On the virtual machines this was measured on that costs as much as the arithmetic filling
the tensor. Raising glibc's mmap and trim thresholds for the duration of training makes freed
blocks stay in the heap for the next step, which is what CPU training guides achieve by
preloading jemalloc or tcmalloc. Elsewhere (musl, macOS, Windows, another allocator preloaded)
this does nothing.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager

logger = logging.getLogger(__name__)

#: mallopt parameter numbers from glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: glibc's largest accepted mmap threshold on 64-bit systems (HEAP_MAX_SIZE / 2): 32 MiB.
_MAX_MMAP_THRESHOLD = 32 * 1024 * 1024
#: Trim only when this much (the largest int mallopt accepts) sits free at the top of the heap.
_NEVER_TRIM = 2**31 - 1
#: glibc's defaults, restored afterwards (glibc then stops adapting the mmap threshold by itself).
_DEFAULT_THRESHOLD = 128 * 1024
#: Set to 0 to leave the allocator alone.
ENV_SWITCH = "EMBEDFORGE_RETAIN_HEAP"

#: How many heap_retained blocks are open (only the outermost changes the settings).
_depth = 0


def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    if not hasattr(libc, "mallopt") or not hasattr(libc, "malloc_trim"):
        return None
    return libc


@contextmanager
def heap_retained() -> Iterator[None]:
    """Within the block, freed blocks of up to 32 MiB stay in the heap; afterwards the defaults return.

    Nests: only the outermost block changes and restores the settings.
    """
    global _depth
    libc = _glibc() if os.environ.get(ENV_SWITCH, "1") != "0" else None
    if libc is None:
        yield
        return
    if _depth == 0:
        libc.mallopt(_M_MMAP_THRESHOLD, _MAX_MMAP_THRESHOLD)
        libc.mallopt(_M_TRIM_THRESHOLD, _NEVER_TRIM)
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            libc.mallopt(_M_MMAP_THRESHOLD, _DEFAULT_THRESHOLD)
            libc.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_THRESHOLD)
            # Hand what training kept back to the OS now that nothing will reuse it.
            libc.malloc_trim(0)
