"""Batch samplers: the same batches as sentence-transformers' samplers (the oracle), plus their guarantees."""

from __future__ import annotations

import importlib.util
import sys
import types
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import ConcatDataset

from embedforge.base.sampler import (
    BatchSamplers,
    DefaultBatchSampler,
    GroupByLabelBatchSampler,
    MultiDatasetBatchSamplers,
    NoDuplicatesBatchSampler,
    ProportionalBatchSampler,
    RoundRobinBatchSampler,
)
from embedforge.base.sampler.row_values import value_key
from embedforge.exceptions import InvalidArgumentError

datasets = pytest.importorskip("datasets")
Dataset = datasets.Dataset

LABELS = ["label", "labels", "score", "scores"]


@pytest.fixture(scope="module")
def st() -> types.ModuleType:
    """sentence-transformers' base/sampler.py, loaded on its own (the full package takes ~10-30 s to import)."""
    spec = importlib.util.find_spec("sentence_transformers")
    if spec is None or spec.origin is None:
        pytest.skip("sentence_transformers is not installed")
    path = Path(spec.origin).parent / "base" / "sampler.py"
    source = path.read_text(encoding="utf-8").replace(
        "from sentence_transformers.util import is_datasets_available",
        "def is_datasets_available():\n    return True",
    )
    module = types.ModuleType("_st_oracle_sampler")
    module.__file__ = str(path)
    sys.modules["_st_oracle_sampler"] = module
    # exec of the oracle's own source file, loaded as a module of its own.
    exec(compile(source, str(path), "exec"), module.__dict__)
    return module


def words(count: int, distinct: int, seed: int) -> list[str]:
    """``count`` texts drawn from ``distinct`` values: small ``distinct`` means many duplicates."""
    generator = torch.Generator().manual_seed(seed)
    return [f"text {int(v)}" for v in torch.randint(0, distinct, (count,), generator=generator)]


def pairs_dataset(count: int, distinct: int, seed: int = 0) -> Dataset:
    anchors = words(count, distinct, seed)
    positives = words(count, distinct, seed + 1)
    # Some positives repeat an anchor text, so conflicts cross columns.
    positives = [anchors[(i * 7) % count] if i % 5 == 0 else p for i, p in enumerate(positives)]
    return Dataset.from_dict({"anchor": anchors, "positive": positives})


def epochs(sampler: Any, epoch_list: tuple[int, ...] = (0, 1, 3)) -> list[list[list[int]]]:
    out = []
    for epoch in epoch_list:
        sampler.set_epoch(epoch)
        out.append([list(map(int, batch)) for batch in sampler])
    return out


def both(st_cls: Any, ours_cls: Any, dataset: Any, seed: int, **kwargs: Any) -> tuple[Any, Any]:
    theirs = st_cls(dataset, generator=torch.Generator(), seed=seed, **kwargs)
    ours = ours_cls(dataset, generator=torch.Generator(), seed=seed, **kwargs)
    return theirs, ours


# -- enums ------------------------------------------------------------------------------------------


def test_enum_values_match(st: types.ModuleType) -> None:
    assert {m.name: m.value for m in BatchSamplers} == {m.name: m.value for m in st.BatchSamplers}
    assert {m.name: m.value for m in MultiDatasetBatchSamplers} == {
        m.name: m.value for m in st.MultiDatasetBatchSamplers
    }
    assert BatchSamplers("no_duplicates_hashed") is BatchSamplers.NO_DUPLICATES_HASHED
    with pytest.raises(ValueError, match="not a valid BatchSamplers"):
        BatchSamplers("shuffle")


# -- no duplicates ----------------------------------------------------------------------------------


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize(
    ("count", "batch_size", "distinct"), [(400, 8, 1000), (300, 16, 60), (300, 32, 40), (60, 5, 6)]
)
@pytest.mark.parametrize("seed", [0, 42])
def test_no_duplicates_same_batches_as_st(
    st: types.ModuleType, seed: int, count: int, batch_size: int, distinct: int, drop_last: bool
) -> None:
    dataset = pairs_dataset(count, distinct, seed)
    theirs, ours = both(
        st.NoDuplicatesBatchSampler,
        NoDuplicatesBatchSampler,
        dataset,
        seed,
        batch_size=batch_size,
        drop_last=drop_last,
    )
    assert len(ours) == len(theirs)
    assert epochs(ours) == epochs(theirs)


def test_no_duplicates_hashed_variant_same_batches(st: types.ModuleType) -> None:
    pytest.importorskip("xxhash")
    dataset = pairs_dataset(300, 80, 3)
    theirs = st.NoDuplicatesBatchSampler(
        dataset, 16, True, generator=torch.Generator(), seed=7, precompute_hashes=True, precompute_num_proc=1
    )
    ours = NoDuplicatesBatchSampler(dataset, 16, True, generator=torch.Generator(), seed=7, precompute_hashes=True)
    assert epochs(ours) == epochs(theirs)


def test_no_duplicates_labels_ignored_and_mixed_types(st: types.ModuleType) -> None:
    """Label columns are not compared; ints, floats, lists and None key as their str(), across columns."""
    n = 120
    dataset = Dataset.from_dict(
        {
            "anchor": [str(i % 37) if i % 3 else None for i in range(n)],
            "number": [i % 41 for i in range(n)],
            "vector": [[i % 5, (i // 5) % 3] for i in range(n)],
            "weight": [float(i % 11) / 2 for i in range(n)],
            "dataset_name": ["same"] * n,
            "label": [i % 2 for i in range(n)],
        }
    )
    for drop_last in (False, True):
        theirs, ours = both(
            st.NoDuplicatesBatchSampler,
            NoDuplicatesBatchSampler,
            dataset,
            5,
            batch_size=6,
            drop_last=drop_last,
            valid_label_columns=LABELS,
        )
        assert epochs(ours) == epochs(theirs)


def test_no_duplicates_selected_and_formatted_datasets(st: types.ModuleType) -> None:
    """A shuffled/selected dataset (indices mapping) reads like ST reads rows; a torch-formatted one
    is compared by value (ST keys fresh tensors by a pickle holding their address, so never matches)."""
    base = pairs_dataset(500, 70, 9)
    selected = base.shuffle(seed=1).select(range(50, 450))
    theirs, ours = both(
        st.NoDuplicatesBatchSampler, NoDuplicatesBatchSampler, selected, 1, batch_size=12, drop_last=False
    )
    assert epochs(ours) == epochs(theirs)

    numbers = Dataset.from_dict({"a": [i % 13 for i in range(120)], "b": [i % 17 for i in range(120)]})
    formatted = numbers.with_format("torch")
    theirs, ours = both(st.NoDuplicatesBatchSampler, NoDuplicatesBatchSampler, numbers, 2, batch_size=4, drop_last=True)
    expected = epochs(theirs)
    assert epochs(ours) == expected
    ours_formatted = NoDuplicatesBatchSampler(formatted, 4, True, generator=torch.Generator(), seed=2)
    assert epochs(ours_formatted) == expected


def test_no_duplicates_without_generator_uses_global_rng(st: types.ModuleType) -> None:
    dataset = pairs_dataset(200, 50, 4)
    theirs = st.NoDuplicatesBatchSampler(dataset, 8, False)
    ours = NoDuplicatesBatchSampler(dataset, 8, False)
    torch.manual_seed(123)
    expected = list(theirs)
    torch.manual_seed(123)
    assert list(ours) == expected


def test_no_duplicates_guarantees() -> None:
    dataset = pairs_dataset(600, 90, 11)
    sampler = NoDuplicatesBatchSampler(dataset, 16, False, generator=torch.Generator(), seed=3)
    first = list(sampler)
    assert list(sampler) == first  # determinism for one seed and epoch
    rows = dataset.to_list()
    for batch in first:
        values = [v for index in batch for v in set(rows[index].values())]
        assert len(values) == len(set(values)), batch
    # Without drop_last one pass uses every row exactly once.
    assert sorted(i for batch in first for i in batch) == list(range(len(dataset)))
    sampler.set_epoch(1)
    assert list(sampler) != first


def test_no_duplicates_resample_passes_reach_len(st: types.ModuleType) -> None:
    """Few distinct values with drop_last: the first pass falls short and reshuffled passes top it up."""
    dataset = Dataset.from_dict({"a": words(200, 12, 0), "b": words(200, 12, 1)})
    theirs, ours = both(st.NoDuplicatesBatchSampler, NoDuplicatesBatchSampler, dataset, 0, batch_size=5, drop_last=True)
    got = epochs(ours)
    assert got == epochs(theirs)
    assert len(got[0]) <= len(ours)


def test_no_duplicates_empty_dataset() -> None:
    empty = Dataset.from_dict({"a": []})
    assert list(NoDuplicatesBatchSampler(empty, 4, False)) == []


# -- default and group-by-label ---------------------------------------------------------------------


def test_default_batch_sampler_same_as_st(st: types.ModuleType) -> None:
    from torch.utils.data import RandomSampler

    dataset = pairs_dataset(103, 1000)
    for drop_last in (False, True):
        batches = []
        for cls in (st.DefaultBatchSampler, DefaultBatchSampler):
            generator = torch.Generator().manual_seed(5)
            sampler = cls(RandomSampler(dataset, generator=generator), 10, drop_last, generator=generator, seed=5)
            batches.append((len(sampler), epochs(sampler)))
        assert batches[0] == batches[1]


@pytest.mark.parametrize("batch_size", [4, 6, 16])
@pytest.mark.parametrize("drop_last", [False, True])
def test_group_by_label_same_as_st(st: types.ModuleType, batch_size: int, drop_last: bool) -> None:
    labels = [i % 7 for i in range(150)] + [3] * 40 + [9]  # one dominant label, one singleton
    dataset = Dataset.from_dict({"text": [f"t{i}" for i in range(len(labels))], "label": labels})
    theirs, ours = both(
        st.GroupByLabelBatchSampler,
        GroupByLabelBatchSampler,
        dataset,
        11,
        batch_size=batch_size,
        drop_last=drop_last,
        valid_label_columns=LABELS,
    )
    assert len(ours) == len(theirs)
    got = epochs(ours)
    assert got == epochs(theirs)
    for batch in got[0]:
        counts = Counter(labels[i] for i in batch)
        assert len(counts) >= 2 and min(counts.values()) >= 2


def test_group_by_label_errors() -> None:
    dataset = Dataset.from_dict({"text": ["a", "b", "c", "d"], "label": [0, 0, 1, 2]})
    with pytest.raises(InvalidArgumentError, match="even number >= 4"):
        GroupByLabelBatchSampler(dataset, 5, False, valid_label_columns=LABELS)
    with pytest.raises(InvalidArgumentError, match="at least 2 labels"):
        GroupByLabelBatchSampler(dataset, 4, False, valid_label_columns=LABELS)
    with pytest.raises(InvalidArgumentError, match="name no column"):
        GroupByLabelBatchSampler(dataset, 4, False, valid_label_columns=["target"])


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, True])
def test_bad_batch_size(batch_size: Any) -> None:
    dataset = pairs_dataset(10, 5)
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        NoDuplicatesBatchSampler(dataset, batch_size, False)
    with pytest.raises(ValueError, match="batch_size"):
        DefaultBatchSampler(range(10), batch_size, False)


def test_bad_drop_last() -> None:
    with pytest.raises(InvalidArgumentError, match="drop_last"):
        NoDuplicatesBatchSampler(pairs_dataset(10, 5), 4, "yes")  # type: ignore[arg-type]


# -- multi-dataset ----------------------------------------------------------------------------------


def multi(st_module: Any, kind: str, seed: int, drop_last: bool) -> tuple[Any, Any]:
    """The same mix of child samplers (sharing one generator, as the trainer does) in ST and embedforge."""
    parts = [pairs_dataset(130, 40, 1), pairs_dataset(75, 1000, 2)]
    labelled = Dataset.from_dict({"text": [f"q{i}" for i in range(60)], "label": [i % 4 for i in range(60)]})
    parts.append(labelled)
    concat = ConcatDataset(parts)
    built = []
    for lib in (st_module, sys.modules["embedforge.base.sampler"]):
        generator = torch.Generator().manual_seed(seed)
        children = [
            lib.NoDuplicatesBatchSampler(parts[0], 8, drop_last, generator=generator, seed=seed),
            lib.NoDuplicatesBatchSampler(parts[1], 8, drop_last, generator=generator, seed=seed),
            lib.GroupByLabelBatchSampler(
                labelled, 8, drop_last, valid_label_columns=LABELS, generator=generator, seed=seed
            ),
        ]
        cls = getattr(lib, kind)
        built.append(cls(concat, batch_samplers=children, generator=generator, seed=seed))
    return built[0], built[1]


@pytest.mark.parametrize("kind", ["RoundRobinBatchSampler", "ProportionalBatchSampler"])
@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("seed", [0, 17])
def test_multi_dataset_same_as_st(st: types.ModuleType, kind: str, drop_last: bool, seed: int) -> None:
    theirs, ours = multi(st, kind, seed, drop_last)
    assert len(ours) == len(theirs)
    assert epochs(ours) == epochs(theirs)


def test_multi_dataset_errors() -> None:
    parts = [pairs_dataset(10, 5), pairs_dataset(10, 5)]
    child = NoDuplicatesBatchSampler(parts[0], 4, False)
    with pytest.raises(InvalidArgumentError, match="number of batch samplers must match the number of datasets"):
        RoundRobinBatchSampler(ConcatDataset(parts), batch_samplers=[child])
    assert isinstance(ProportionalBatchSampler(ConcatDataset(parts), [child, child]), ProportionalBatchSampler)


def test_value_key_matches_st(st: types.ModuleType) -> None:
    import numpy as np

    samples = [1, "1", 2.5, None, True, b"x", [1, "a"], (1, 2), {"k": [1, 2]}, [np.int64(3)], np.float32(0.5)]
    for value in samples:
        assert value_key(value) == st._sample_value_str(value)


def test_core_kernels_reject_bad_input() -> None:
    import numpy as np

    from embedforge import _core

    ids = np.array([[0, 1], [2, 3]], dtype=np.uint32)
    with pytest.raises(InvalidArgumentError, match="order"):
        _core.no_duplicates_pass(ids, np.array([0, 0], dtype=np.int64), 2, False)
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        _core.no_duplicates_pass(ids, np.array([1, 0], dtype=np.int64), 0, False)
    offsets = np.array([0, 1, 9], dtype=np.int64)
    with pytest.raises(InvalidArgumentError, match="offset"):
        _core.intern_text_columns([[(offsets, np.frombuffer(b"ab", dtype=np.uint8))]], 2)
    good = np.array([0, 1, 2], dtype=np.int64)
    with pytest.raises(InvalidArgumentError, match="rows"):
        _core.intern_text_columns([[(good, np.frombuffer(b"ab", dtype=np.uint8))]], 3)
    assert _core.intern_text_columns([[(good, np.frombuffer(b"ab", dtype=np.uint8))]], 2).tolist() == [[0], [1]]


def test_no_duplicates_with_only_label_columns(st: types.ModuleType) -> None:
    """Nothing left to compare: plain shuffled batches, as in sentence-transformers."""
    dataset = Dataset.from_dict({"label": [i % 3 for i in range(50)], "dataset_name": ["x"] * 50})
    theirs, ours = both(
        st.NoDuplicatesBatchSampler,
        NoDuplicatesBatchSampler,
        dataset,
        4,
        batch_size=8,
        drop_last=False,
        valid_label_columns=LABELS,
    )
    assert epochs(ours) == epochs(theirs)


def test_module_level_names_scripts_use(st: types.ModuleType) -> None:
    """sentence-transformers' sampler module also offers SubsetRandomSampler and _sample_value_str."""
    import numpy as np

    import embedforge.base.sampler as ours

    assert ours.SubsetRandomSampler is torch.utils.data.SubsetRandomSampler
    assert ours.np is np and ours.torch is torch
    for value in ["a sentence", 5, np.int64(5), np.float64(0.5), np.bool_(True), [1.0, 0.5]]:
        assert ours._sample_value_str(value) == st._sample_value_str(value)
    big, changed = np.arange(10_000), np.arange(10_000)
    changed[5_000] = -1
    assert ours._sample_value_str(big) == ours._sample_value_str(np.arange(10_000))
    assert ours._sample_value_str(big) != ours._sample_value_str(changed)
