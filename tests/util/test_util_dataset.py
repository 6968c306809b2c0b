"""resolve_ids: ID columns joined to lookup datasets, against hand-computed rows and sentence-transformers."""

from __future__ import annotations

import logging
import pickle
from typing import Any

import numpy as np
import pytest

datasets = pytest.importorskip("datasets")
Dataset = datasets.Dataset
DatasetDict = datasets.DatasetDict

from embedforge.util import resolve_ids  # noqa: E402
from embedforge.util.dataset import _SortedIdIndex  # noqa: E402


@pytest.fixture
def queries() -> Any:
    return Dataset.from_dict({"query_id": ["q1", "q2"], "text": ["first query", "second query"]})


@pytest.fixture
def corpus() -> Any:
    return Dataset.from_dict({"doc_id": ["a", "b", "c", "d"], "text": ["alpha", "beta", "gamma", "delta"]})


def index_of(transform: Any, input_col: str) -> Any:
    """The ID index behind one input column of a transform."""
    return transform.keywords["resolutions"][input_col][1]


def test_exported_from_util_and_top_level() -> None:
    import embedforge
    import embedforge.util

    assert embedforge.resolve_ids is embedforge.util.resolve_ids
    assert "resolve_ids" in embedforge.__all__
    assert "resolve_ids" in embedforge.util.__all__


class TestHandComputed:
    def test_list_column_expands_to_numbered_positions(self, queries: Any, corpus: Any) -> None:
        transform = resolve_ids({"query_id": queries, "doc_ids": corpus})
        out = transform(
            {"query_id": ["q2", "q1"], "doc_ids": [["c", "a", "d"], ["b", "b", "c"]], "scores": [[3, 2, 1], [6, 5, 4]]}
        )
        assert out == {
            "query": ["second query", "first query"],
            "doc_1": ["gamma", "beta"],
            "doc_2": ["alpha", "beta"],
            "doc_3": ["delta", "gamma"],
            "scores": [[3, 2, 1], [6, 5, 4]],
        }
        assert list(out) == ["query", "doc_1", "doc_2", "doc_3", "scores"]

    def test_lists_format_keeps_ragged_rows_under_plural_name(self, queries: Any, corpus: Any) -> None:
        transform = resolve_ids({"query_id": queries, "doc_ids": corpus}, output_format="lists")
        out = transform({"query_id": ["q1", "q2"], "doc_ids": [["d"], ["a", "b", "c"]]})
        assert out == {"query": ["first query", "second query"], "docs": [["delta"], ["alpha", "beta", "gamma"]]}

    def test_output_order_follows_lookups_not_batch(self, queries: Any, corpus: Any) -> None:
        transform = resolve_ids({"positive_id": corpus, "query_id": queries})
        out = transform({"query_id": ["q1"], "positive_id": ["b"], "label": [1]})
        assert list(out) == ["positive", "query", "label"]

    def test_triplet_entries_share_one_index(self, queries: Any, corpus: Any) -> None:
        transform = resolve_ids({"query_id": queries, "positive_id": corpus, "negative_id": corpus})
        out = transform({"query_id": ["q1"], "positive_id": ["a"], "negative_id": ["d"]})
        assert out == {"query": ["first query"], "positive": ["alpha"], "negative": ["delta"]}
        assert index_of(transform, "positive_id") is index_of(transform, "negative_id")

    def test_max_list_length_cuts_ids_and_list_labels_alike(self, corpus: Any) -> None:
        transform = resolve_ids({"doc_ids": corpus}, max_list_length=2)
        out = transform({"doc_ids": [["a", "b", "c"], ["d", "c"]], "scores": [[9, 8, 7], [6, 5]], "label": [1, 0]})
        assert out == {
            "doc_1": ["alpha", "delta"],
            "doc_2": ["beta", "gamma"],
            "scores": [[9, 8], [6, 5]],
            "label": [1, 0],
        }

    def test_string_encoded_lists_are_parsed(self) -> None:
        corpus = Dataset.from_dict({"doc_id": [10, 20, 30], "text": ["x", "y", "z"]})
        transform = resolve_ids({"doc_ids": corpus})
        out = transform({"doc_ids": ["[30, 10]", " [20, 20]"], "scores": ["[0.5, 0.25]", "[1.0, 2.0]"]})
        assert out == {"doc_1": ["z", "y"], "doc_2": ["x", "y"], "scores": [[0.5, 0.25], [1.0, 2.0]]}

    def test_unlisted_columns_dropped_custom_keep_columns_kept(self, corpus: Any) -> None:
        transform = resolve_ids({"doc_id": corpus}, keep_columns=("grade", "missing"))
        out = transform({"doc_id": ["b"], "grade": [3], "label": [1], "source": ["web"]})
        assert out == {"doc": ["beta"], "grade": [3]}

    @pytest.mark.parametrize(
        ("input_col", "single", "plural"),
        [
            ("query_id", "query", "query"),
            ("doc_idx", "doc", "doc"),
            ("document_ids", "document", "documents"),
            ("query_ids", "query", "queries"),
            ("passages", "passages", "passages"),
        ],
    )
    def test_output_names(self, corpus: Any, input_col: str, single: str, plural: str) -> None:
        assert list(resolve_ids({input_col: corpus})({input_col: ["a"]})) == [single]
        assert list(resolve_ids({input_col: corpus})({input_col: [["a", "b"]]})) == [f"{single}_1", f"{single}_2"]
        assert list(resolve_ids({input_col: corpus}, output_format="lists")({input_col: [["a"]]})) == [plural]

    def test_lookup_specs(self) -> None:
        wide = Dataset.from_dict(
            {"id": ["a", "b"], "key_id": ["k1", "k2"], "title": ["T1", "T2"], "body": ["B1", "B2"]}
        )
        assert resolve_ids({"doc_id": (wide, "id", "body")})({"doc_id": ["b"]}) == {"doc": ["B2"]}
        assert resolve_ids({"doc_id": (wide, "key_id", "title")})({"doc_id": ["k1"]}) == {"doc": ["T1"]}
        narrow = Dataset.from_dict({"name": ["a"], "text": ["alpha"]})
        assert resolve_ids({"doc_id": (narrow, "name")})({"doc_id": ["a"]}) == {"doc": ["alpha"]}

    def test_lookup_with_indices_mapping(self) -> None:
        corpus = Dataset.from_dict({"doc_id": ["a", "b", "c"], "text": ["alpha", "beta", "gamma"]})
        shuffled = corpus.select([2, 0])
        assert resolve_ids({"doc_ids": shuffled})({"doc_ids": [["a", "c"]]}) == {"doc_1": ["alpha"], "doc_2": ["gamma"]}
        with pytest.raises(KeyError, match="'b'"):
            resolve_ids({"doc_ids": shuffled})({"doc_ids": [["b"]]})

    def test_empty_batch(self, corpus: Any) -> None:
        assert resolve_ids({"doc_id": corpus})({"doc_id": [], "label": []}) == {"doc": [], "label": []}

    def test_duplicate_ids_warn_and_resolve_to_last_row(self, caplog: pytest.LogCaptureFixture) -> None:
        corpus = Dataset.from_dict({"doc_id": ["a", "b", "a", "a"], "text": ["one", "two", "three", "four"]})
        with caplog.at_level(logging.WARNING):
            transform = resolve_ids({"doc_id": corpus})
        assert any("duplicate" in r.getMessage() and "2 rows" in r.getMessage() for r in caplog.records)
        assert transform({"doc_id": ["a", "b"]}) == {"doc": ["four", "two"]}

    def test_transform_pickles_with_the_dataset(self, queries: Any, corpus: Any) -> None:
        train = Dataset.from_dict({"query_id": ["q1", "q2"], "doc_ids": [["a", "b"], ["c", "d"]]})
        train.set_transform(resolve_ids({"query_id": queries, "doc_ids": corpus}))
        restored = pickle.loads(pickle.dumps(train))
        assert restored[1] == train[1] == {"query": "second query", "doc_1": "gamma", "doc_2": "delta"}

    def test_set_transform_and_map_agree(self, queries: Any, corpus: Any) -> None:
        rows = {"query_id": ["q1", "q2"], "doc_ids": [["a", "b"], ["c", "d"]], "scores": [[1.0, 0.0], [0.5, 0.5]]}
        transform = resolve_ids({"query_id": queries, "doc_ids": corpus})
        lazy = Dataset.from_dict(rows)
        lazy.set_transform(transform)
        eager = Dataset.from_dict(rows).map(transform, batched=True, remove_columns=["query_id", "doc_ids"])
        assert [lazy[i] for i in range(2)] == [eager[i] for i in range(2)]

    def test_formatted_lookup_gives_plain_values(self) -> None:
        corpus = Dataset.from_dict({"doc_id": [1, 2], "text": ["one", "two"]}).with_format("torch")
        assert resolve_ids({"doc_ids": corpus})({"doc_ids": [[2, 1]]}) == {"doc_1": ["two"], "doc_2": ["one"]}


class TestSortedIdIndex:
    def test_last_occurrence_wins(self) -> None:
        index = _SortedIdIndex(np.asarray(["b", "a", "b", "c", "a"]))
        assert len(index) == 3
        assert index.lookup(np.asarray(["a", "b", "c", "a"])).tolist() == [4, 2, 3, 4]

    def test_misses_raise_keyerror_with_first_missing_id(self) -> None:
        index = _SortedIdIndex(np.asarray([10, 30, 20]))
        assert index.lookup(np.asarray([20, 10])).tolist() == [2, 0]
        for ids, missing in (([10, 25, 99], 25), ([99], 99), ([5], 5)):
            with pytest.raises(KeyError) as info:
                index.lookup(np.asarray(ids))
            assert info.value.args[0] == missing
            assert isinstance(info.value.args[0], int)

    def test_empty_index(self) -> None:
        index = _SortedIdIndex(np.asarray([], dtype="<U2"))
        assert len(index) == 0
        with pytest.raises(KeyError):
            index.lookup(np.asarray(["a"]))

    @pytest.mark.parametrize(
        ("ids", "sorted_index"), [(["x" * 32], True), (["x" * 33], False), ([1, 2], True), (["a", None], False)]
    )
    def test_index_kind_follows_id_type_and_width(self, ids: list[Any], sorted_index: bool) -> None:
        corpus = Dataset.from_dict({"doc_id": ids, "text": ["t"] * len(ids)})
        transform = resolve_ids({"doc_id": corpus})
        assert isinstance(index_of(transform, "doc_id"), _SortedIdIndex if sorted_index else dict)
        assert transform({"doc_id": [ids[0]]}) == {"doc": ["t"]}

    def test_ids_of_another_type_are_missing(self) -> None:
        corpus = Dataset.from_dict({"doc_id": [10, 20], "text": ["x", "y"]})
        with pytest.raises(KeyError, match="ID '10' from input column 'doc_id' was not found"):
            resolve_ids({"doc_id": corpus})({"doc_id": ["10"]})

    def test_empty_lookup_reports_the_missing_id(self) -> None:
        corpus = Dataset.from_dict({"doc_id": [], "text": []})
        with pytest.raises(KeyError, match="ID 'a' from input column 'doc_id' was not found"):
            resolve_ids({"doc_id": corpus})({"doc_id": ["a"]})


class TestErrors:
    def test_build_time_errors_name_argument_value_and_expectation(self, queries: Any) -> None:
        cases: list[tuple[dict[str, Any], type[Exception], list[str]]] = [
            (
                {"lookups": {"query_id": DatasetDict({"train": queries})}},
                TypeError,
                ["lookups['query_id']", "DatasetDict", "expected a `Dataset`"],
            ),
            (
                {"lookups": {"query_id": {"q1": "x"}}},
                TypeError,
                ["lookups['query_id']", "must hold a `Dataset`", "dict"],
            ),
            (
                {"lookups": {"query_id": (queries,)}},
                ValueError,
                ["lookups['query_id']", "tuple of length 1", "(dataset, id_col)"],
            ),
            (
                {"lookups": {"query_id": (queries, "nope")}},
                ValueError,
                ["ID column 'nope'", "not a column of the lookup dataset", "['query_id', 'text']"],
            ),
            (
                {"lookups": {"query_id": (queries, "query_id", "nope")}},
                ValueError,
                ["value column 'nope'", "not a column"],
            ),
            (
                {"lookups": {"query_id": queries}, "keep_columns": "scores"},
                TypeError,
                ["keep_columns must be a list or tuple", "'scores'"],
            ),
            (
                {"lookups": {"query_id": queries}, "max_list_length": 0},
                ValueError,
                ["max_list_length must be a positive integer or None", "got 0"],
            ),
            ({"lookups": {"query_id": queries}, "max_list_length": 2.5}, ValueError, ["max_list_length", "2.5"]),
            (
                {"lookups": {"query_id": queries}, "output_format": "rows"},
                ValueError,
                ['output_format must be "columns" or "lists"', "'rows'"],
            ),
        ]
        for kwargs, error, fragments in cases:
            with pytest.raises(error) as info:
                resolve_ids(**kwargs)
            for fragment in fragments:
                assert fragment in str(info.value), (kwargs, str(info.value))

    def test_inference_errors_list_what_was_found(self) -> None:
        two_ids = Dataset.from_dict({"doc_id": ["a"], "src_id": ["s"], "text": ["t"]})
        with pytest.raises(
            ValueError, match=r"Cannot infer the ID column of lookups\['doc_ids'\].*\['doc_id', 'src_id'\]"
        ):
            resolve_ids({"doc_ids": two_ids})
        with pytest.raises(ValueError, match=r"Cannot infer the ID column.*found none"):
            resolve_ids({"doc_ids": Dataset.from_dict({"name": ["a"], "text": ["t"]})})
        wide = Dataset.from_dict({"doc_id": ["a"], "title": ["T"], "text": ["t"]})
        with pytest.raises(ValueError, match=r"Cannot infer the value column.*\['title', 'text'\]"):
            resolve_ids({"doc_ids": wide})

    def test_transform_time_errors(self, corpus: Any) -> None:
        cases: list[tuple[dict[str, Any], dict[str, Any], type[Exception], str]] = [
            (
                {},
                {"doc_ids": [["a", "zz"]]},
                KeyError,
                "ID 'zz' from input column 'doc_ids' was not found in its lookup dataset",
            ),
            ({}, {"doc_ids": ["a", "['a', 'b']"]}, KeyError, "string-encoded list"),
            ({}, {"doc_ids": [["a", "b"], ["c"]]}, ValueError, "differing lengths [1, 2]"),
            ({}, {"doc_ids": [[], []]}, ValueError, "empty ID lists"),
            ({}, {"doc_ids": ["[oops"]}, ValueError, "string-encoded lists"),
            ({}, {"doc_ids": ["[1"]}, ValueError, "'[1'"),
            ({}, {"doc_ids": ["['a'] + 1"]}, ValueError, "string-encoded lists"),
            ({}, {"doc_ids": np.asarray(["a"])}, TypeError, "with_format(None)"),
            (
                {"keep_columns": ["doc"]},
                {"doc_id": ["a"], "doc": ["raw"]},
                ValueError,
                "'doc' is produced more than once",
            ),
        ]
        for kwargs, batch, error, fragment in cases:
            lookups = {next(iter(batch)): corpus}
            with pytest.raises(error) as info:
                resolve_ids(lookups, **kwargs)(batch)
            assert fragment in str(info.value), (batch, str(info.value))

    def test_output_name_collisions(self, corpus: Any) -> None:
        with pytest.raises(ValueError, match="'doc' is produced more than once"):
            resolve_ids({"doc_id": corpus, "doc_idx": corpus})({"doc_id": ["a"], "doc_idx": ["b"]})
        with pytest.raises(ValueError, match="'doc_1' is produced more than once"):
            resolve_ids({"doc_ids": corpus, "doc_1": corpus})({"doc_ids": [["a"]], "doc_1": ["b"]})
        out = resolve_ids({"doc_id": corpus, "doc_ids": corpus})({"doc_id": ["a"], "doc_ids": [["b"]]})
        assert out == {"doc": ["alpha"], "doc_1": ["beta"]}

    @pytest.mark.parametrize("fmt", ["pandas", "numpy"])
    def test_formatted_train_dataset_is_refused_by_map(self, corpus: Any, fmt: str) -> None:
        train = Dataset.from_dict({"doc_id": ["a", "b"]}).with_format(fmt)
        with pytest.raises(TypeError, match=r"with_format\(None\)"):
            train.map(resolve_ids({"doc_id": corpus}), batched=True)


# --- sentence-transformers as the oracle --------------------------------------------------------

ORACLE_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "kd",
        {},
        {
            "query_id": ["q1", "q2"],
            "doc_ids": [["a", "b", "c"], ["d", "c", "b"]],
            "scores": [[3.0, 2.0, 1.0], [1.0, 0.5, 0.0]],
        },
    ),
    (
        "kd",
        {"max_list_length": 2},
        {"query_id": ["q1", "q2"], "doc_ids": [["a", "b", "c"], ["d", "c"]], "scores": [[3.0, 2.0, 1.0], [1.0, 0.5]]},
    ),
    (
        "kd",
        {"output_format": "lists"},
        {"query_id": ["q2", "q1"], "doc_ids": [["a"], ["d", "c", "b"]], "scores": [[3.0], [1.0, 0.5, 0.0]]},
    ),
    (
        "kd",
        {"output_format": "lists", "max_list_length": 1},
        {"query_id": ["q2"], "doc_ids": [("a", "b")], "scores": [(3.0, 2.0)]},
    ),
    ("kd", {}, {"query_id": ["q1"], "doc_ids": ["['a', 'd']"], "scores": ["[0.5, 0.25]"], "extra": ["dropped"]}),
    ("kd", {"keep_columns": ["extra"]}, {"query_id": ["q1"], "doc_ids": [["a"]], "extra": [[7, 8]], "scores": [[1.0]]}),
    ("triplet", {}, {"query_id": ["q1", "q2"], "positive_id": ["a", "b"], "negative_id": ["c", "c"], "label": [1, 0]}),
    (
        "triplet",
        {"max_list_length": 1},
        {"query_id": ["q1"], "positive_id": ["a"], "negative_id": ["d"], "label": [0.5]},
    ),
    ("kd", {}, {"query_id": ["q1"], "doc_ids": [["a", "zz"]]}),
    ("kd", {}, {"query_id": ["q1"], "doc_ids": [["a", "b"], ["c"]]}),
    ("kd", {}, {"query_id": ["q1"], "doc_ids": [[]]}),
    ("kd", {"output_format": "lists"}, {"query_id": ["q1", "q2"], "doc_ids": [[], ["a"]]}),
    ("triplet", {}, {"query_id": [], "positive_id": [], "negative_id": []}),
]


@pytest.mark.parametrize(("shape", "kwargs", "batch"), ORACLE_CASES)
def test_matches_sentence_transformers(
    queries: Any, corpus: Any, shape: str, kwargs: dict[str, Any], batch: dict[str, Any]
) -> None:
    st_util = pytest.importorskip("sentence_transformers.util")
    if shape == "kd":
        lookups: dict[str, Any] = {"query_id": queries, "doc_ids": corpus}
    else:
        lookups = {"query_id": queries, "positive_id": corpus, "negative_id": corpus}

    def run(fn: Any) -> tuple[str, Any]:
        try:
            return "ok", fn(lookups, **kwargs)(dict(batch))
        except (KeyError, TypeError, ValueError) as exc:  # the oracle decides which errors are expected
            return "error", type(exc).__mro__

    ours, theirs = run(resolve_ids), run(st_util.resolve_ids)
    if theirs[0] == "error":
        assert ours[0] == "error" and theirs[1][0] in ours[1], (ours, theirs)
    else:
        assert ours == theirs
        assert list(ours[1]) == list(theirs[1])


@pytest.mark.parametrize("ids", [[3, 1, 2, 1], ["b", "a", "c"], [1.5, 0.5], ["x" * 40, "y"], ["a", None, "b"]])
def test_id_types_match_sentence_transformers(ids: list[Any]) -> None:
    st_util = pytest.importorskip("sentence_transformers.util")
    corpus = Dataset.from_dict({"doc_id": ids, "text": [f"t{i}" for i in range(len(ids))]})
    queries = [[i for i in ids if i is not None][::-1]]
    assert resolve_ids({"doc_ids": corpus})({"doc_ids": queries}) == st_util.resolve_ids({"doc_ids": corpus})(
        {"doc_ids": queries}
    )
