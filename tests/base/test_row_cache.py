"""Cached training rows: the same rows as datasets' own batch fetch, and only where caching is safe."""

from __future__ import annotations

import pytest

datasets = pytest.importorskip("datasets")

from embedforge.base.row_cache import CachedRows, cache_rows  # noqa: E402


def _dataset() -> object:
    return datasets.Dataset.from_dict(
        {
            "anchor": [f"anchor {i}" for i in range(50)],
            "positive": [f"positive {i}" for i in range(50)],
            "score": [i / 7 for i in range(50)],
            "flag": [i % 2 == 0 for i in range(50)],
        }
    )


@pytest.mark.parametrize("view", ["plain", "shuffled", "selected"])
def test_cached_rows_equal_the_datasets_rows(view: str) -> None:
    dataset = _dataset()
    if view == "shuffled":
        dataset = dataset.shuffle(seed=3)
    elif view == "selected":
        dataset = dataset.select([5, 1, 40, 2, 2])
    cached = cache_rows(dataset)
    assert isinstance(cached, CachedRows)
    assert len(cached) == len(dataset)
    indices = [4, 0, 3, 3, 1]
    assert cached.__getitems__(indices) == dataset.__getitems__(indices)
    assert cached[2] == dataset[2]


def test_formatted_nested_or_large_datasets_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    formatted = _dataset().with_format("numpy")
    assert cache_rows(formatted) is formatted
    transformed = _dataset().with_transform(lambda batch: batch)
    assert cache_rows(transformed) is transformed
    nested = datasets.Dataset.from_dict({"anchor": ["a", "b"], "label": [[0.1, 0.2], [0.3, 0.4]]})
    assert cache_rows(nested) is nested
    import embedforge.base.row_cache as row_cache

    monkeypatch.setattr(row_cache, "MAX_CACHED_CELLS", 10)
    plain = _dataset()
    assert cache_rows(plain) is plain
    assert cache_rows([{"anchor": "a"}]) == [{"anchor": "a"}]
