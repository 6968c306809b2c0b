"""encode_query / encode_document call ``encode`` with every argument by name, as sentence-transformers does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embedforge import SentenceTransformer
from embedforge.exceptions import InvalidArgumentError


@pytest.fixture
def spied(tiny_bert_dir: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[SentenceTransformer, list[dict[str, Any]]]:
    model = SentenceTransformer(str(tiny_bert_dir), prompts={"query": "q: "}, device="cpu")
    calls: list[dict[str, Any]] = []
    real_encode = model.encode

    def spy(*args: Any, **kwargs: Any) -> Any:
        assert not args, "encode must be called with keyword arguments only"
        calls.append(kwargs)
        return real_encode(**kwargs)

    monkeypatch.setattr(model, "encode", spy)
    return model, calls


def test_encode_query_passes_everything_by_name(spied: tuple[SentenceTransformer, list[dict[str, Any]]]) -> None:
    model, calls = spied
    model.encode_query(sentences=["hello there"], convert_to_tensor=True)
    (call,) = calls
    assert call["inputs"] == ["hello there"]
    assert call["prompt_name"] == "query" and call["prompt"] is None and call["task"] == "query"
    assert call["convert_to_tensor"] is True and call["convert_to_numpy"] is True and call["batch_size"] == 32


def test_encode_document_maps_positional_arguments(spied: tuple[SentenceTransformer, list[dict[str, Any]]]) -> None:
    model, calls = spied
    embeddings = model.encode_document("one document", None, "p: ", 8)
    (call,) = calls
    assert call["inputs"] == "one document" and call["prompt"] == "p: " and call["batch_size"] == 8
    assert call["task"] == "document"
    np.testing.assert_allclose(embeddings, model.encode(inputs="p: one document"), atol=1e-6)


def test_inputs_and_sentences_together_are_an_error(tiny_bert_dir: Path) -> None:
    model = SentenceTransformer(str(tiny_bert_dir), device="cpu")
    with pytest.raises(InvalidArgumentError, match="inputs or sentences"):
        model.encode_query(["a"], sentences=["b"])
