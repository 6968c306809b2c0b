"""SentenceTransformerDataCollator: labels, prompts (four forms), router tasks, and sentence-transformers parity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from embedforge.exceptions import InvalidArgumentError
from embedforge.sentence_transformer.data_collator import SentenceTransformerDataCollator


class RecordingPreprocess:
    """A preprocess function that records its arguments and returns one tensor per column."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, inputs: list[str], prompt: str | None = None, task: str | None = None) -> dict[str, Any]:
        self.calls.append({"inputs": list(inputs), "prompt": prompt, "task": task})
        return {"input_ids": torch.tensor([len(text) for text in inputs]), "attention_mask": torch.ones(len(inputs))}


ROWS = [
    {"anchor": "a b", "positive": "c", "score": 0.5},
    {"anchor": "d", "positive": "e f g", "score": 1.0},
]


def test_label_column_is_found_and_text_columns_are_tokenized_in_order() -> None:
    preprocess = RecordingPreprocess()
    batch = SentenceTransformerDataCollator(preprocess_fn=preprocess)(ROWS)
    assert list(batch) == [
        "label",
        "anchor_input_ids",
        "anchor_attention_mask",
        "positive_input_ids",
        "positive_attention_mask",
    ]
    torch.testing.assert_close(batch["label"], torch.tensor([0.5, 1.0]))
    assert [call["inputs"] for call in preprocess.calls] == [["a b", "d"], ["c", "e f g"]]
    assert batch["anchor_input_ids"].tolist() == [3, 1]
    # Only the first label column is the label: a second one would be read as text.
    rows = [{"text": "x", "label": 1, "labels": "y"}]
    batch = SentenceTransformerDataCollator(preprocess_fn=RecordingPreprocess())(rows)
    assert batch["label"].tolist() == [1] and "labels_input_ids" in batch


@pytest.mark.parametrize(
    ("prompts", "dataset_name", "expected"),
    [
        ("query: ", None, ["query: ", "query: "]),  # one prompt for every column
        ({"anchor": "query: "}, None, ["query: ", None]),  # per column
        ({"sts": "doc: "}, "sts", ["doc: ", "doc: "]),  # per dataset
        ({"sts": {"positive": "doc: "}}, "sts", [None, "doc: "]),  # per dataset and column
        ({"other": {"positive": "doc: "}}, "sts", [None, None]),  # another dataset's prompts
    ],
)
def test_prompt_forms(prompts: Any, dataset_name: str | None, expected: list[str | None]) -> None:
    preprocess = RecordingPreprocess()
    rows = [{**row, "dataset_name": dataset_name} for row in ROWS] if dataset_name else ROWS
    batch = SentenceTransformerDataCollator(preprocess_fn=preprocess, prompts=prompts)(rows)
    assert [call["prompt"] for call in preprocess.calls] == expected
    if dataset_name:
        assert batch["dataset_name"] == dataset_name


def test_nested_prompts_need_dataset_names() -> None:
    collator = SentenceTransformerDataCollator(preprocess_fn=RecordingPreprocess(), prompts={"sts": {"anchor": "q: "}})
    with pytest.raises(InvalidArgumentError, match="nested dictionary"):
        collator(ROWS)


def test_router_mapping_flat_and_per_dataset() -> None:
    preprocess = RecordingPreprocess()
    batch = SentenceTransformerDataCollator(
        preprocess_fn=preprocess, router_mapping={"anchor": "query", "positive": "document"}
    )(ROWS)
    assert [call["task"] for call in preprocess.calls] == ["query", "document"]
    assert batch["anchor_task"] == "query" and batch["positive_task"] == "document"

    preprocess = RecordingPreprocess()
    mapping = {"sts": {"anchor": "query"}, "other": {"anchor": "document"}}
    rows = [{**row, "dataset_name": "sts"} for row in ROWS]
    batch = SentenceTransformerDataCollator(preprocess_fn=preprocess, router_mapping=mapping)(rows)
    assert [call["task"] for call in preprocess.calls] == ["query", None]
    assert "positive_task" not in batch


def test_batch_matches_sentence_transformers_collator_on_a_bert_model(tiny_bert_dir: Path) -> None:
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import SentenceTransformer as StModel
    from sentence_transformers.sentence_transformer.data_collator import (
        SentenceTransformerDataCollator as StCollator,
    )

    from embedforge import SentenceTransformer

    ours = SentenceTransformer(str(tiny_bert_dir), device="cpu")
    theirs = StModel(str(tiny_bert_dir), device="cpu")
    rows = [
        {"question": "What was the time?", "answer": "It was one.", "label": 1},
        {"question": "Who had been there?", "answer": "They were all there with his new first time.", "label": 0},
    ]
    prompts = {"question": "query: "}
    ours_batch = SentenceTransformerDataCollator(preprocess_fn=ours.preprocess, prompts=prompts)(rows)
    st_batch = StCollator(preprocess_fn=theirs.preprocess, prompts=prompts)(rows)
    # Both model.preprocess functions may tag each column with its modality ("text"); compare the rest.
    ours_batch = {key: value for key, value in ours_batch.items() if not key.endswith("_modality")}
    st_batch = {key: value for key, value in st_batch.items() if not key.endswith("_modality")}
    assert set(ours_batch) == set(st_batch)
    assert "question_prompt_length" in ours_batch and "answer_prompt_length" not in ours_batch
    for key, value in st_batch.items():
        if isinstance(value, torch.Tensor):
            torch.testing.assert_close(ours_batch[key], value, msg=key)
        else:
            assert ours_batch[key] == value, key


def test_column_order_warning_is_given_once(caplog: pytest.LogCaptureFixture) -> None:
    collator = SentenceTransformerDataCollator(preprocess_fn=RecordingPreprocess())
    rows = [{"positive": "a", "anchor": "b"}]
    with caplog.at_level("WARNING", logger="embedforge.sentence_transformer.data_collator"):
        collator(rows)
        collator(rows)
    warnings = [record for record in caplog.records if "usually at index" in record.getMessage()]
    assert len(warnings) == 1


def test_id_like_columns_warn_once_and_are_still_tokenized(caplog: pytest.LogCaptureFixture) -> None:
    preprocess = RecordingPreprocess()
    collator = SentenceTransformerDataCollator(preprocess_fn=preprocess)
    rows = [{"query_id": "q1", "text": "hello", "doc_ids": "d1"}]
    with caplog.at_level("WARNING", logger="embedforge.base.data_collator"):
        batch = collator(rows)
        collator(rows)
    warnings = [record.getMessage() for record in caplog.records if "look like ID columns" in record.getMessage()]
    assert len(warnings) == 1 and "['query_id', 'doc_ids']" in warnings[0]
    assert "query_id_input_ids" in batch and "doc_ids_input_ids" in batch
    caplog.clear()
    with caplog.at_level("WARNING", logger="embedforge.base.data_collator"):
        SentenceTransformerDataCollator(preprocess_fn=preprocess)([{"idea": "a", "valid": "b"}])
    assert not any("look like ID columns" in record.getMessage() for record in caplog.records)


def test_per_column_prompt_and_task_lookups() -> None:
    collator = SentenceTransformerDataCollator(preprocess_fn=RecordingPreprocess())
    assert collator._get_prompt_for_column("Search: ", "anything") == "Search: "
    assert collator._get_prompt_for_column({"query": "Q: "}, "query") == "Q: "
    assert collator._get_prompt_for_column({"query": "Q: "}, "other") is None
    assert collator._get_prompt_for_column(None, "query") is None
    assert collator._get_task_for_column("question", 0, {"question": "query"}) == "query"
    assert collator._get_task_for_column("answer", 1, {"question": "query"}) is None
