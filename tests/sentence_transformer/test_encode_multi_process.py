"""Multi-process encoding: pools of spawned CPU workers give the same embeddings as one process."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conftest import embedforge_static, random_sentences, static_weights
from embedforge import SentenceTransformer
from embedforge.exceptions import InvalidArgumentError

TEXTS = random_sentences(300, seed=11)


@pytest.fixture(scope="module")
def static_model() -> SentenceTransformer:
    return embedforge_static(static_weights(seed=4, dim=16))


@pytest.fixture(scope="module")
def static_pool(static_model: SentenceTransformer) -> Iterator[dict[str, Any]]:
    pool = static_model.start_multi_process_pool(["cpu", "cpu"])
    yield pool
    SentenceTransformer.stop_multi_process_pool(pool)


def test_rust_tokenizer_pickles_with_its_padding(tiny_bert_dir: Path) -> None:
    from transformers import AutoTokenizer

    from embedforge import _core

    backend = AutoTokenizer.from_pretrained(str(tiny_bert_dir)).backend_tokenizer
    tokenizer = _core.Tokenizer.from_str(backend.to_str())
    tokenizer.set_padding(pad_id=4, pad_type_id=1, padding_left=True)
    restored = pickle.loads(pickle.dumps(tokenizer))
    assert (restored.pad_id, restored.padding_left, restored.vocab_size) == (4, True, tokenizer.vocab_size)
    texts = ["water light", "a night of food and water"]
    expected = tokenizer.encode_padded(texts)
    got = restored.encode_padded(texts)
    assert set(got) == set(expected)
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key])
    # Left padding with id 4 and pad type 1 survived the round trip.
    assert got["input_ids"][0, 0] == 4 and got["token_type_ids"][0, 0] == 1


def test_pool_has_the_sentence_transformers_layout(static_pool: dict[str, Any]) -> None:
    assert set(static_pool) == {"input", "output", "processes"}
    assert len(static_pool["processes"]) == 2
    assert all(process.is_alive() for process in static_pool["processes"])


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"chunk_size": 7},
        {"normalize_embeddings": True, "truncate_dim": 5},
        {"precision": "int8"},
        {"precision": "ubinary", "chunk_size": 64},
    ],
)
def test_static_pool_equals_one_process(
    static_model: SentenceTransformer, static_pool: dict[str, Any], options: dict[str, Any]
) -> None:
    expected = static_model.encode(TEXTS, **{k: v for k, v in options.items() if k != "chunk_size"})
    got = static_model.encode(TEXTS, pool=static_pool, **options)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def test_output_types_through_a_pool(static_model: SentenceTransformer, static_pool: dict[str, Any]) -> None:
    as_tensor = static_model.encode(TEXTS[:20], pool=static_pool, convert_to_tensor=True)
    assert isinstance(as_tensor, torch.Tensor) and as_tensor.shape == (20, 16)
    as_list = static_model.encode(TEXTS[:20], pool=static_pool, convert_to_numpy=False)
    assert isinstance(as_list, list) and len(as_list) == 20
    torch.testing.assert_close(torch.stack(as_list), as_tensor, rtol=0, atol=0)
    single = static_model.encode("water and light", pool=static_pool)
    np.testing.assert_array_equal(single, static_model.encode("water and light"))
    assert static_model.encode([], pool=static_pool).shape == (0, 16)


def test_worker_errors_reach_the_caller_and_the_pool_survives(
    static_model: SentenceTransformer, static_pool: dict[str, Any]
) -> None:
    # A static model has no token embeddings: the workers' KeyError is raised here, as in one process.
    with pytest.raises(KeyError, match="token_embeddings"):
        static_model.encode(TEXTS[:10], pool=static_pool, output_value="token_embeddings", chunk_size=3)
    np.testing.assert_array_equal(static_model.encode(TEXTS[:10], pool=static_pool), static_model.encode(TEXTS[:10]))


def test_stale_results_of_an_interrupted_call_are_skipped(
    static_model: SentenceTransformer, static_pool: dict[str, Any]
) -> None:
    # What an interrupted earlier call could leave behind: a result for chunk 0 of another call.
    static_pool["output"].put(("an-earlier-call", 0, torch.zeros(4, 16)))
    got = static_model.encode(TEXTS[:40], pool=static_pool, chunk_size=10)
    np.testing.assert_array_equal(got, static_model.encode(TEXTS[:40]))


def test_deprecated_encode_multi_process(static_model: SentenceTransformer, static_pool: dict[str, Any]) -> None:
    with pytest.warns(DeprecationWarning, match="encode_multi_process"):
        got = static_model.encode_multi_process(TEXTS, static_pool, normalize_embeddings=True)
    np.testing.assert_array_equal(got, static_model.encode(TEXTS, normalize_embeddings=True))


def test_bad_pool_arguments(static_model: SentenceTransformer, static_pool: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgumentError, match="chunk_size=0"):
        static_model.encode(TEXTS, pool=static_pool, chunk_size=0)
    with pytest.raises(InvalidArgumentError, match="pool="):
        static_model.encode(TEXTS, pool={"queue": None})
    with pytest.raises(InvalidArgumentError, match=r"device=\[\]"):
        static_model.encode(TEXTS, device=[])
    with pytest.raises(InvalidArgumentError, match="target_devices"):
        static_model.start_multi_process_pool([])
    with pytest.raises(InvalidArgumentError, match="'gpu-7'"):
        static_model.start_multi_process_pool(["gpu-7"])


def test_transformer_model_with_a_device_list_matches_sentence_transformers(tiny_bert_dir: Path) -> None:
    """A temporary pool from ``device=[...]``, checked against sentence-transformers in one process."""
    model = SentenceTransformer(str(tiny_bert_dir))
    texts = TEXTS[:60]
    got = model.encode(texts, device=["cpu", "cpu"], batch_size=8, chunk_size=16)
    np.testing.assert_allclose(got, model.encode(texts, batch_size=8), rtol=0, atol=1e-6)
    tokens = model.encode(texts[:12], device=["cpu"], output_value="token_embeddings", chunk_size=5)
    expected_tokens = model.encode(texts[:12], output_value="token_embeddings")
    assert len(tokens) == 12
    for row, expected_row in zip(tokens, expected_tokens):
        torch.testing.assert_close(row, expected_row, rtol=0, atol=1e-6)

    pytest.importorskip("sentence_transformers")
    from sentence_transformers import SentenceTransformer as StModel

    oracle = StModel(str(tiny_bert_dir), device="cpu")
    np.testing.assert_allclose(got, oracle.encode(texts, batch_size=8), rtol=0, atol=1e-5)


def test_mine_hard_negatives_encodes_through_a_pool(static_model: SentenceTransformer) -> None:
    """``use_multi_process`` now starts a real pool on embedforge models; the mined rows do not change."""
    datasets = pytest.importorskip("datasets")
    from embedforge.util import mine_hard_negatives

    dataset = datasets.Dataset.from_dict({"anchor": TEXTS[:80], "positive": TEXTS[80:160]})
    options = {"corpus": TEXTS[160:], "num_negatives": 2, "verbose": False}
    expected = mine_hard_negatives(dataset, static_model, **options)
    got = mine_hard_negatives(dataset, static_model, use_multi_process=["cpu", "cpu"], **options)
    assert len(expected) > 0 and got.to_dict() == expected.to_dict()
