"""repad_flattened_features and the padded stack/cat helpers against hand-built references and sentence-transformers."""

from __future__ import annotations

from itertools import accumulate
from typing import Any

import pytest
import torch

from embedforge import util
from embedforge.exceptions import InvalidArgumentError
from embedforge.util import cat_padded_token_embeddings, repad_flattened_features, stack_padded_token_embeddings


def flattened(lengths: list[int], width: int = 3, seed: int = 0) -> tuple[dict[str, Any], list[torch.Tensor]]:
    """A flattened features dict of sequences with the given lengths, plus each sequence's own tokens."""
    generator = torch.Generator().manual_seed(seed)
    sequences = [torch.randn(length, width, generator=generator) for length in lengths]
    total = sum(lengths)
    features: dict[str, Any] = {
        "token_embeddings": torch.cat(sequences).unsqueeze(0),
        "input_ids": torch.arange(1, total + 1).unsqueeze(0),
        "cu_seq_lens_q": torch.tensor([0, *accumulate(lengths)], dtype=torch.int32),
        "cu_seq_lens_k": torch.tensor([0, *accumulate(lengths)], dtype=torch.int32),
        "max_length_q": max(lengths),
        "max_length_k": max(lengths),
        "seq_idx": torch.cat([torch.full((n,), i) for i, n in enumerate(lengths)]).unsqueeze(0),
        "position_ids": torch.cat([torch.arange(n) for n in lengths]).unsqueeze(0),
        "prompt_length": 0,
    }
    return features, sequences


def test_repad_hand_computed_case() -> None:
    features = {
        "token_embeddings": torch.tensor([[[1.0], [2.0], [3.0], [4.0], [5.0]]]),
        "input_ids": torch.tensor([[11, 12, 13, 14, 15]]),
        "cu_seq_lens_q": torch.tensor([0, 2, 5], dtype=torch.int32),
    }
    result = repad_flattened_features(features)
    assert result is features
    assert result["token_embeddings"].tolist() == [[[1.0], [2.0], [0.0]], [[3.0], [4.0], [5.0]]]
    assert result["input_ids"].tolist() == [[11, 12, 0], [13, 14, 15]]
    assert result["attention_mask"].dtype == torch.bool
    assert result["attention_mask"].tolist() == [[True, True, False], [True, True, True]]
    assert set(result) == {"token_embeddings", "input_ids", "attention_mask"}


def test_repad_rows_are_the_sequences_and_flat_keys_are_dropped() -> None:
    lengths = [4, 1, 6, 3]
    features, sequences = flattened(lengths)
    repad_flattened_features(features)
    assert features["token_embeddings"].shape == (4, 6, 3)
    for row, (sequence, length) in enumerate(zip(sequences, lengths)):
        assert torch.equal(features["token_embeddings"][row, :length], sequence)
        assert torch.count_nonzero(features["token_embeddings"][row, length:]) == 0
        assert features["attention_mask"][row].sum() == length
    assert features["input_ids"][features["attention_mask"]].tolist() == list(range(1, sum(lengths) + 1))
    # Keys that are not about the flat layout stay.
    assert set(features) == {"token_embeddings", "input_ids", "attention_mask", "prompt_length"}


def test_repad_keeps_gradients_flowing_to_the_flat_tokens() -> None:
    features, _ = flattened([2, 3])
    flat = features["token_embeddings"].requires_grad_(True)
    repad_flattened_features(features)["token_embeddings"].sum().backward()
    assert flat.grad is not None
    assert torch.equal(flat.grad, torch.ones_like(flat))


def test_repad_empty_sequence_becomes_an_all_padding_row() -> None:
    features, sequences = flattened([2, 0, 3])
    repad_flattened_features(features)
    assert features["attention_mask"].tolist() == [[True, True, False], [False] * 3, [True] * 3]
    assert torch.equal(features["token_embeddings"][2], sequences[2])


def test_repad_without_input_ids_pads_the_token_embeddings_only() -> None:
    features, _ = flattened([2, 3])
    del features["input_ids"]
    repad_flattened_features(features)
    assert "input_ids" not in features
    assert features["token_embeddings"].shape == (2, 3, 3)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.pop("cu_seq_lens_q"), "cu_seq_lens_q"),
        (lambda f: f.update(cu_seq_lens_q=torch.tensor([0, 3, 2, 5])), "non-decreasing"),
        (lambda f: f.update(cu_seq_lens_q=torch.tensor([1, 2, 5])), "starting at 0"),
        (lambda f: f.update(cu_seq_lens_q=torch.tensor([0, 2, 4])), r"\(1, 4, \.\.\.\)"),
        (lambda f: f.update(token_embeddings=f["token_embeddings"][0]), "token_embeddings must have shape"),
    ],
)
def test_repad_rejects_inconsistent_features(change: Any, message: str) -> None:
    features, _ = flattened([2, 3])
    change(features)
    with pytest.raises(InvalidArgumentError, match=message):
        repad_flattened_features(features)


def test_stack_and_cat_pad_ragged_token_counts() -> None:
    first = torch.tensor([[[1.0, 1.0], [2.0, 2.0]]])  # (1, 2, 2)
    second = torch.tensor([[[3.0, 3.0], [4.0, 4.0], [5.0, 5.0]]])  # (1, 3, 2)
    masks = [torch.tensor([[1, 1]]), torch.tensor([[1, 1, 0]])]

    stacked, stacked_mask = stack_padded_token_embeddings([first, second], masks)
    assert stacked.shape == (1, 2, 3, 2)
    assert stacked[0, 0].tolist() == [[1.0, 1.0], [2.0, 2.0], [0.0, 0.0]]
    assert stacked[0, 1].tolist() == second[0].tolist()
    assert stacked_mask.tolist() == [[[1, 1, 0], [1, 1, 0]]]

    joined, joined_mask = cat_padded_token_embeddings([first, second], masks)
    assert joined.shape == (2, 3, 2)
    assert joined[0].tolist() == [[1.0, 1.0], [2.0, 2.0], [0.0, 0.0]]
    assert joined_mask.tolist() == [[1, 1, 0], [1, 1, 0]]


def test_stack_and_cat_with_equal_token_counts_are_plain_stack_and_cat() -> None:
    generator = torch.Generator().manual_seed(1)
    embeddings = [torch.randn(2, 4, 3, generator=generator) for _ in range(3)]
    masks = [torch.ones(2, 4, dtype=torch.bool) for _ in range(3)]
    stacked, stacked_mask = stack_padded_token_embeddings(embeddings, masks)
    assert torch.equal(stacked, torch.stack(embeddings, dim=1))
    assert torch.equal(stacked_mask, torch.stack(masks, dim=1))
    joined, joined_mask = cat_padded_token_embeddings(embeddings, masks)
    assert torch.equal(joined, torch.cat(embeddings))
    assert torch.equal(joined_mask, torch.cat(masks))


def test_bool_masks_are_padded_with_false() -> None:
    _, mask = cat_padded_token_embeddings(
        [torch.zeros(1, 1, 2), torch.zeros(1, 2, 2)],
        [torch.ones(1, 1, dtype=torch.bool), torch.ones(1, 2, dtype=torch.bool)],
    )
    assert mask.dtype == torch.bool
    assert mask.tolist() == [[True, False], [True, True]]


def test_stack_rejects_mismatched_lists() -> None:
    with pytest.raises(InvalidArgumentError, match="same length"):
        stack_padded_token_embeddings([torch.zeros(1, 1, 2)], [])
    with pytest.raises(InvalidArgumentError, match="non-empty"):
        cat_padded_token_embeddings([], [])


def test_exported_from_util() -> None:
    for name in ("repad_flattened_features", "stack_padded_token_embeddings", "cat_padded_token_embeddings"):
        assert name in util.__all__


def test_agree_with_sentence_transformers() -> None:
    pytest.importorskip("sentence_transformers")
    import sentence_transformers.util.tensor as st

    ours, _ = flattened([3, 1, 5], seed=4)
    theirs = {key: value.clone() if isinstance(value, torch.Tensor) else value for key, value in ours.items()}
    repad_flattened_features(ours)
    st.repad_flattened_features(theirs)
    assert set(ours) == set(theirs)
    for key in ours:
        if isinstance(ours[key], torch.Tensor):
            assert ours[key].dtype == theirs[key].dtype, key
            assert torch.equal(ours[key], theirs[key]), key

    generator = torch.Generator().manual_seed(5)
    embeddings = [torch.randn(2, length, 3, generator=generator) for length in (2, 5, 3)]
    masks = [torch.ones(2, length, dtype=torch.int64) for length in (2, 5, 3)]
    for ours_fn, theirs_fn in (
        (stack_padded_token_embeddings, st.stack_padded_token_embeddings),
        (cat_padded_token_embeddings, st.cat_padded_token_embeddings),
    ):
        for mine, reference in zip(ours_fn(embeddings, masks), theirs_fn(embeddings, masks)):
            assert torch.equal(mine, reference)
