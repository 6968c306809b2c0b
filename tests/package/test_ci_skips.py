"""In CI (CI=true) a missing oracle or data set fails the run instead of silently skipping the tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"
TESTS = """
import pytest
from conftest import shared_path

def test_needs_a_missing_oracle():
    pytest.importorskip("sentence_transformers.no_such_module")

def test_needs_an_optional_extra_outside_the_test_extra():
    pytest.importorskip("no_such_optional_package")

def test_needs_missing_data():
    shared_path("no", "such", "data")

def test_skips_for_another_reason():
    pytest.skip("not applicable on this platform")
"""


def run_suite(folder: Path, ci: bool) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    if ci:
        env["CI"] = "true"
    env["EMBEDFORGE_SHARED_DATA"] = str(folder / "absent")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfs", str(folder)],
        capture_output=True,
        text=True,
        env=env,
        cwd=folder,
        check=False,
    )


@pytest.mark.parametrize("ci", [False, True])
def test_missing_reference_skips_locally_and_fails_in_ci(tmp_path: Path, ci: bool) -> None:
    shutil.copy(CONFTEST, tmp_path / "conftest.py")
    (tmp_path / "test_reference.py").write_text(TESTS, encoding="utf-8")
    result = run_suite(tmp_path, ci)
    summary = result.stdout.strip().splitlines()[-1]
    if ci:
        assert result.returncode == 1, result.stdout
        assert "2 failed, 2 skipped" in summary
    else:
        assert result.returncode == 0, result.stdout
        assert "4 skipped" in summary
