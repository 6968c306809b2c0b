"""Prompts as sentence-transformers 6.2 sets them up: a query and a document prompt always exist."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from embedforge import SentenceTransformer

USER_PROMPTS = {"query": "query: ", "passage": "passage: "}
TEXTS = ["a cheap car near the beach", "the weather was lovely today"]


def test_default_query_and_document_prompts_are_empty(tiny_bert_dir: Path) -> None:
    model = SentenceTransformer(str(tiny_bert_dir), device="cpu")
    assert model.prompts == {"query": "", "document": ""}


def test_user_prompts_keep_the_empty_document_prompt(tiny_bert_dir: Path) -> None:
    model = SentenceTransformer(str(tiny_bert_dir), prompts=USER_PROMPTS, device="cpu")
    assert model.prompts == {"query": "query: ", "document": "", "passage": "passage: "}
    # encode_document picks "document" first, and it is empty: the texts go in unchanged.
    np.testing.assert_array_equal(model.encode_document(TEXTS), model.encode(TEXTS))
    np.testing.assert_array_equal(model.encode_query(TEXTS), model.encode([USER_PROMPTS["query"] + t for t in TEXTS]))


def test_saved_prompts_fill_unset_defaults_but_not_given_ones(tiny_bert_dir: Path, tmp_path: Path) -> None:
    SentenceTransformer(str(tiny_bert_dir), prompts={"query": "q: ", "document": "d: "}, device="cpu").save(
        str(tmp_path / "saved")
    )
    saved = json.loads((tmp_path / "saved" / "config_sentence_transformers.json").read_text())
    assert saved["prompts"] == {"query": "q: ", "document": "d: "}
    assert SentenceTransformer(str(tmp_path / "saved"), device="cpu").prompts == {"query": "q: ", "document": "d: "}
    reloaded = SentenceTransformer(str(tmp_path / "saved"), prompts={"query": ""}, device="cpu")
    assert reloaded.prompts == {"query": "", "document": "d: "}


def test_prompts_and_scores_match_sentence_transformers(tiny_bert_dir: Path) -> None:
    st = pytest.importorskip("sentence_transformers")
    ours = SentenceTransformer(str(tiny_bert_dir), prompts=USER_PROMPTS, device="cpu")
    theirs = st.SentenceTransformer(str(tiny_bert_dir), prompts=USER_PROMPTS, device="cpu")
    assert ours.prompts == theirs.prompts
    for method in ("encode_query", "encode_document"):
        np.testing.assert_allclose(getattr(ours, method)(TEXTS), getattr(theirs, method)(TEXTS), atol=1e-6)
