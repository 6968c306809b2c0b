"""Pooling against formulas written out in numpy, and against sentence-transformers' Pooling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from embedforge.exceptions import InvalidArgumentError
from embedforge.sentence_transformer.modules import Pooling

MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")


def reference_pool(mode: str, tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Each mode's definition, row by row, over the positions where mask == 1."""
    rows = []
    for row_tokens, row_mask in zip(tokens, mask):
        kept = np.flatnonzero(row_mask)
        first_real = int(np.argmax(row_mask)) if row_mask.any() else 0
        if mode == "cls":
            rows.append(row_tokens[first_real])
        elif mode == "max":
            rows.append(row_tokens[kept].max(axis=0))
        elif mode == "mean":
            rows.append(row_tokens[kept].sum(axis=0) / max(len(kept), 1e-9))
        elif mode == "mean_sqrt_len_tokens":
            rows.append(row_tokens[kept].sum(axis=0) / np.sqrt(max(len(kept), 1e-9)))
        elif mode == "weightedmean":
            weights = np.array([position + 1 - first_real for position in kept], dtype=np.float64)
            rows.append((row_tokens[kept] * weights[:, None]).sum(axis=0) / weights.sum())
        elif mode == "lasttoken":
            rows.append(row_tokens[kept[-1]])
    return np.stack(rows)


@pytest.fixture()
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    tokens = torch.randn(3, 5, 4, generator=generator)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 0, 0, 0]])
    return tokens, mask


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_matches_its_formula(mode: str, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    tokens, mask = batch
    out = Pooling(4, mode)({"token_embeddings": tokens, "attention_mask": mask})["sentence_embedding"]
    np.testing.assert_allclose(out.numpy(), reference_pool(mode, tokens.numpy(), mask.numpy()), rtol=1e-5, atol=1e-6)


def test_hand_computed_mean_and_max() -> None:
    tokens = torch.tensor([[[1.0, 2.0], [3.0, -4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    features = {"token_embeddings": tokens, "attention_mask": mask}
    assert Pooling(2, "mean")(dict(features))["sentence_embedding"].tolist() == [[2.0, -1.0]]
    assert Pooling(2, "max")(dict(features))["sentence_embedding"].tolist() == [[3.0, 2.0]]
    assert Pooling(2, ("cls", "lasttoken"))(dict(features))["sentence_embedding"].tolist() == [[1.0, 2.0, 3.0, -4.0]]


def test_modes_concatenate_in_order(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    tokens, mask = batch
    pooling = Pooling(4, ["mean", "max"])
    assert pooling.get_embedding_dimension() == 8
    out = pooling({"token_embeddings": tokens, "attention_mask": mask})["sentence_embedding"].numpy()
    expected = np.concatenate([reference_pool(m, tokens.numpy(), mask.numpy()) for m in ("mean", "max")], axis=1)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_include_prompt_false_skips_prompt_positions(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    tokens, mask = batch
    features = {"token_embeddings": tokens, "attention_mask": mask, "prompt_length": 2}
    out = Pooling(4, "mean", include_prompt=False)(features)["sentence_embedding"].numpy()
    prompt_mask = mask.numpy().copy()
    prompt_mask[:, :2] = 0
    # The last row has only prompt tokens: nothing left, so the mean is zero (denominator clamped).
    expected = reference_pool("mean", tokens.numpy()[:2], prompt_mask[:2])
    np.testing.assert_allclose(out[:2], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[2], np.zeros(4), atol=1e-6)
    assert mask[0, 0] == 1, "the caller's mask must not be modified"


def test_legacy_flags_and_config_round_trip(tmp_path) -> None:
    with pytest.warns(FutureWarning):
        legacy = Pooling(word_embedding_dimension=8, pooling_mode_cls_token=True, pooling_mode_mean_tokens=True)
    assert legacy.pooling_mode == ("cls", "mean")
    legacy.save(str(tmp_path))
    loaded = Pooling.load(str(tmp_path))
    assert loaded.get_config_dict() == {
        "embedding_dimension": 8,
        "pooling_mode": ["cls", "mean"],
        "include_prompt": True,
    }
    (tmp_path / "config.json").write_text(
        '{"word_embedding_dimension": 6, "pooling_mode_cls_token": false, "pooling_mode_mean_tokens": false,'
        ' "pooling_mode_max_tokens": true, "pooling_mode_mean_sqrt_len_tokens": false}'
    )
    old = Pooling.load(str(tmp_path))
    assert (old.embedding_dimension, old.pooling_mode) == (6, "max")


def test_unknown_mode_is_rejected() -> None:
    with pytest.raises(InvalidArgumentError, match="'median'"):
        Pooling(4, "median")


@pytest.mark.parametrize("mode", MODES)
def test_same_as_sentence_transformers(mode: str, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    st_modules = pytest.importorskip("sentence_transformers.sentence_transformer.modules")
    tokens, mask = batch
    left_padded = torch.flip(mask, dims=[1])
    for attention in (mask, left_padded):
        for prompt in (None, 1):
            features = {"token_embeddings": tokens, "attention_mask": attention}
            if prompt:
                features["prompt_length"] = prompt
            ours = Pooling(4, mode, include_prompt=prompt is None)(dict(features))["sentence_embedding"]
            theirs = st_modules.Pooling(4, mode, include_prompt=prompt is None)(dict(features))["sentence_embedding"]
            torch.testing.assert_close(ours, theirs)
