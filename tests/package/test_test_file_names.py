"""Test files need unique base names: the test folders are not packages, so pytest imports each by its name."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_every_test_file_name_is_unique() -> None:
    names = Counter(path.name for path in TESTS.rglob("test_*.py"))
    duplicated = {name: count for name, count in names.items() if count > 1}
    assert not duplicated, f"test files share a name (pytest would fail to collect them): {duplicated}"
