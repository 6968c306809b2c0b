"""Run embedforge's native parallel loops on torch's OpenMP threads (set up when embedforge is imported).

embedforge's Rust passes alternate with torch operations: batch tokenisation between forward passes,
and in training the contrastive loss's softmax and the sparse AdamW step between matrix products. torch runs those on its OpenMP team, whose workers keep spinning
for a moment after each operation; a pass given to a second thread pool in that moment competes
with them for the same cores and, on 2 cores, took more than twice as long. Handing the Rust core
the ``GOMP_parallel`` entry point of the OpenMP runtime torch already loaded makes those loops run
on torch's own threads instead. Without such a runtime (another OpenMP, not Linux) nothing changes.
"""

from __future__ import annotations

import ctypes
import logging
import os

from embedforge import _core

logger = logging.getLogger(__name__)

#: Set to 0 to keep embedforge's own thread pool.
ENV_SWITCH = "EMBEDFORGE_SHARE_OPENMP_THREADS"

_attempted = False


def loaded_libgomp() -> str | None:
    """The path of the GNU OpenMP runtime mapped into this process (torch's), if any."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            for line in maps:
                path = line.rsplit(maxsplit=1)[-1] if "/" in line else ""
                if "/libgomp" in path and ".so" in path:
                    return path
    except OSError:
        return None
    return None


def share_torch_openmp_team() -> bool:
    """Make the Rust core's parallel loops run on torch's OpenMP team; whether they now do.

    Looked up once per process: later calls only report the outcome.
    """
    global _attempted
    if _attempted or os.environ.get(ENV_SWITCH, "1") == "0":
        return _core.uses_openmp_team()
    _attempted = True
    import torch  # noqa: F401  (loads the OpenMP runtime whose threads are shared)

    path = loaded_libgomp()
    if path is None:
        return False
    try:
        # RTLD_NOLOAD: a handle to the copy already loaded by torch, never a second runtime.
        runtime = ctypes.CDLL(path, mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
        address = ctypes.cast(runtime.GOMP_parallel, ctypes.c_void_p).value
    except (OSError, AttributeError) as error:
        logger.debug("torch's OpenMP runtime at %s is not usable (%s); keeping embedforge's threads", path, error)
        return False
    if not address:
        return False
    _core.use_openmp_team(address)
    return True
