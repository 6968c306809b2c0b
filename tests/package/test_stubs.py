"""The hand-written stubs of the native module agree with the built module (mypy's stubtest)."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_core_stubs_match_the_extension() -> None:
    pytest.importorskip("mypy.stubtest", reason="mypy is in the test extra")
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "embedforge._core"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
