"""Pooling of flattened (FA2-style, unpadded) batches against the padded form of the same sequences."""

from __future__ import annotations

from itertools import accumulate
from typing import Any

import pytest
import torch

from embedforge.exceptions import InvalidArgumentError
from embedforge.sentence_transformer.modules import Pooling

MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
COMBINATIONS: tuple[str | tuple[str, ...], ...] = (*MODES, ("cls", "mean"), ("max", "weightedmean", "lasttoken"), MODES)
WIDTH = 4


def sequences(lengths: list[int], dtype: torch.dtype = torch.float32, seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(length, WIDTH, generator=generator).to(dtype) for length in lengths]


def flat_features(parts: list[torch.Tensor]) -> dict[str, Any]:
    """The flattened batch a FA2 collator and encoder would produce for these sequences (no attention_mask)."""
    lengths = [len(part) for part in parts]
    return {
        "token_embeddings": torch.cat(parts).unsqueeze(0),
        "input_ids": torch.zeros(1, sum(lengths), dtype=torch.long),
        "cu_seq_lens_q": torch.tensor([0, *accumulate(lengths)], dtype=torch.int32),
        "cu_seq_lens_k": torch.tensor([0, *accumulate(lengths)], dtype=torch.int32),
        "position_ids": torch.cat([torch.arange(n) for n in lengths]).unsqueeze(0),
    }


def padded_features(parts: list[torch.Tensor]) -> dict[str, Any]:
    """The same sequences, right-padded with an explicit attention mask (built independently of the util helper)."""
    longest = max(len(part) for part in parts)
    tokens = torch.zeros(len(parts), longest, WIDTH, dtype=parts[0].dtype)
    mask = torch.zeros(len(parts), longest, dtype=torch.int64)
    for row, part in enumerate(parts):
        tokens[row, : len(part)] = part
        mask[row, : len(part)] = 1
    return {"token_embeddings": tokens, "attention_mask": mask}


@pytest.mark.parametrize("mode", COMBINATIONS, ids=str)
@pytest.mark.parametrize("prompt_length", [None, 0, 1, 2])
def test_flattened_equals_padded(mode: str | tuple[str, ...], prompt_length: int | None) -> None:
    # Length 1 and 2 sequences make the prompt cover a whole sequence, the edge where modes fall back.
    parts = sequences([3, 5, 1, 4, 2])
    pooling = Pooling(WIDTH, mode, include_prompt=prompt_length is None)
    flat, padded = flat_features(parts), padded_features(parts)
    if prompt_length is not None:
        flat["prompt_length"] = padded["prompt_length"] = prompt_length
    got = pooling(flat)["sentence_embedding"]
    expected = pooling(padded)["sentence_embedding"]
    assert got.shape == (5, pooling.get_embedding_dimension())
    torch.testing.assert_close(got, expected)


def test_prompt_length_as_tensor_is_honoured() -> None:
    parts = sequences([3, 4])
    pooling = Pooling(WIDTH, "mean", include_prompt=False)
    features = flat_features(parts)
    features["prompt_length"] = torch.tensor([2, 2])
    expected = torch.stack([parts[0][2:].mean(0), parts[1][2:].mean(0)])
    torch.testing.assert_close(pooling(features)["sentence_embedding"], expected)


def test_hand_computed_case() -> None:
    flat = torch.tensor([[[1.0, 0.0], [3.0, 4.0], [-2.0, 6.0], [5.0, -1.0], [7.0, 2.0]]])
    features = {"token_embeddings": flat, "cu_seq_lens_q": torch.tensor([0, 2, 5], dtype=torch.int32)}
    out = Pooling(2, MODES)(features)["sentence_embedding"]
    # Row 0 holds tokens (1,0), (3,4); row 1 holds (-2,6), (5,-1), (7,2).
    expected = [
        [1.0, 0.0, 3.0, 4.0, 2.0, 2.0, 4.0 / 2**0.5, 4.0 / 2**0.5, 7.0 / 3, 8.0 / 3, 3.0, 4.0],
        [-2.0, 6.0, 7.0, 6.0, 10.0 / 3, 7.0 / 3, 10.0 / 3**0.5, 7.0 / 3**0.5, 29.0 / 6, 10.0 / 6, 7.0, 2.0],
    ]
    torch.testing.assert_close(out, torch.tensor(expected))


def test_flat_token_embeddings_are_left_alone() -> None:
    features = flat_features(sequences([2, 3]))
    flat = features["token_embeddings"]
    before = flat.clone()
    out = Pooling(WIDTH, MODES, include_prompt=False)({**features, "prompt_length": 1})
    assert out["token_embeddings"] is flat
    assert torch.equal(flat, before)
    # Nothing is re-padded: no attention mask appears and the flat-layout keys stay.
    assert "attention_mask" not in out
    assert "cu_seq_lens_q" in out


def test_cls_token_embeddings_take_precedence() -> None:
    features = flat_features(sequences([2, 3]))
    features["cls_token_embeddings"] = torch.arange(8.0).view(2, 4)
    out = Pooling(WIDTH, "cls")(features)["sentence_embedding"]
    assert torch.equal(out, features["cls_token_embeddings"])


@pytest.mark.parametrize("mode", COMBINATIONS, ids=str)
def test_empty_sequences_match_their_padded_rows(mode: str | tuple[str, ...]) -> None:
    parts = sequences([2, 0, 3, 0])
    pooling = Pooling(WIDTH, mode)
    got = pooling(flat_features(parts))["sentence_embedding"]
    torch.testing.assert_close(got, pooling(padded_features(parts))["sentence_embedding"])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("mode", MODES)
def test_half_precision_keeps_dtype_and_agrees_with_float32(mode: str, dtype: torch.dtype) -> None:
    parts = sequences([6, 3, 9], dtype=dtype)
    pooling = Pooling(WIDTH, mode)
    got = pooling(flat_features(parts))["sentence_embedding"]
    assert got.dtype == dtype
    reference = pooling(flat_features([part.float() for part in parts]))["sentence_embedding"]
    torch.testing.assert_close(got.float(), reference, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("mode", MODES)
def test_gradients_match_the_padded_path(mode: str) -> None:
    parts = sequences([3, 5, 2], seed=2)
    pooling = Pooling(WIDTH, mode)
    flat = flat_features(parts)
    flat_tokens = flat["token_embeddings"].requires_grad_(True)
    pooling(flat)["sentence_embedding"].pow(2).sum().backward()

    padded = padded_features(parts)
    padded_tokens = padded["token_embeddings"].requires_grad_(True)
    pooling(padded)["sentence_embedding"].pow(2).sum().backward()
    assert flat_tokens.grad is not None and padded_tokens.grad is not None
    expected = torch.cat([padded_tokens.grad[row, : len(part)] for row, part in enumerate(parts)])
    torch.testing.assert_close(flat_tokens.grad[0], expected)


def test_inconsistent_flat_features_are_rejected() -> None:
    features = flat_features(sequences([2, 3]))
    features["cu_seq_lens_q"] = torch.tensor([0, 2, 4], dtype=torch.int32)
    with pytest.raises(InvalidArgumentError, match="cu_seq_lens_q ends at 4"):
        Pooling(WIDTH)(features)
    features = flat_features(sequences([2, 3]))
    features["token_embeddings"] = features["token_embeddings"].expand(2, -1, -1)
    with pytest.raises(InvalidArgumentError, match=r"\(1, sum_lens, D\)"):
        Pooling(WIDTH)(features)


@pytest.mark.parametrize("mode", COMBINATIONS, ids=str)
@pytest.mark.parametrize("prompt_length", [None, 1])
def test_agrees_with_sentence_transformers(mode: str | tuple[str, ...], prompt_length: int | None) -> None:
    pytest.importorskip("sentence_transformers")
    from sentence_transformers.sentence_transformer.modules import Pooling as STPooling

    # Every sequence is longer than the prompt: ST's flat lasttoken differs from its own padded
    # path only when a prompt covers a whole sequence (that edge follows the padded form here).
    parts = sequences([3, 5, 2, 4], seed=7)
    kwargs = {"include_prompt": prompt_length is None}
    ours, theirs = flat_features(parts), flat_features(parts)
    if prompt_length is not None:
        ours["prompt_length"] = theirs["prompt_length"] = prompt_length
    got = Pooling(WIDTH, mode, **kwargs)(ours)["sentence_embedding"]
    expected = STPooling(WIDTH, mode, **kwargs)(theirs)["sentence_embedding"]
    torch.testing.assert_close(got, expected)
