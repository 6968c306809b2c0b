"""The GradCache engine's contract: mini-batch slicing, token budgets, the embed_minibatch hooks, errors.

Slicing is checked against hand-built layouts (padded text, flattened text, Qwen2-VL style grids,
one-row-per-image processors); the engine against the uncached loss on a lookup-table model.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor, nn

from embedforge.base.losses.gradcache import (
    CachedLossMixin,
    _create_minibatch,
    _get_batch_size,
    _minibatch_ranges,
)
from embedforge.sentence_transformer.losses import (
    CachedMultipleNegativesRankingLoss,
    MegaBatchMarginLoss,
    MultipleNegativesRankingLoss,
)
from embedforge.sentence_transformer.losses import cached_multiple_negatives_ranking as cmnrl_module
from test_losses_in_batch import LookupModel, fixed_table, lookup_features


def _padded(lengths: list[int], left: bool = False) -> dict[str, Tensor]:
    width = max(lengths)
    mask = torch.zeros(len(lengths), width, dtype=torch.long)
    for row, length in enumerate(lengths):
        if left:
            mask[row, width - length :] = 1
        else:
            mask[row, :length] = 1
    ids = torch.arange(mask.numel()).reshape(mask.shape)
    return {"input_ids": ids, "attention_mask": mask}


def _flattened(lengths: list[int]) -> dict[str, Any]:
    offsets = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()])
    total = int(offsets[-1])
    return {
        "input_ids": torch.arange(total).unsqueeze(0),
        "cu_seq_lens_q": offsets,
        "cu_seq_lens_k": offsets.clone(),
        "max_length_q": max(lengths),
        "seq_idx": torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths)).unsqueeze(0),
    }


# -- slicing ------------------------------------------------------------------------------------------


def test_padded_minibatch_trims_only_trailing_padding() -> None:
    features = _padded([9, 2, 3, 1])
    short = _create_minibatch(features, 1, 4)
    assert short["input_ids"].tolist() == features["input_ids"][1:4, :3].tolist()
    assert _create_minibatch(features, 0, 2)["attention_mask"].shape == (2, 9)
    # Left padding stays: positions derived from it must not move.
    left = _padded([4, 2], left=True)
    assert _create_minibatch(left, 1, 2)["attention_mask"].shape == (1, 4)


def test_query_expansion_positions_survive_the_trim() -> None:
    features = _padded([2, 3])
    features["query_expansion_positions"] = torch.tensor([[0, 0, 1], [0, 0, 0]], dtype=torch.bool)
    assert _create_minibatch(features, 0, 1)["attention_mask"].shape == (1, 3)
    assert _create_minibatch({**features, "query_expansion_positions": torch.zeros(2, 3)}, 0, 1)[
        "attention_mask"
    ].shape == (1, 2)


def test_flattened_minibatch_rebuilds_its_metadata() -> None:
    features = _flattened([3, 5, 2])
    assert _get_batch_size(features) == 3
    middle = _create_minibatch(features, 1, 3)
    assert middle["input_ids"].tolist() == [list(range(3, 10))]
    assert middle["cu_seq_lens_q"].tolist() == middle["cu_seq_lens_k"].tolist() == [0, 5, 7]
    assert middle["max_length_q"] == 5
    assert middle["seq_idx"].tolist() == [[0] * 5 + [1] * 2]
    assert _create_minibatch(features, 2, 99)["input_ids"].tolist() == [[8, 9]]


def test_grid_visual_tokens_follow_their_rows() -> None:
    # Row 0 owns two images (16 + 64 visual tokens), row 1 one image (24), rows 2-3 none.
    grid = torch.tensor([[1, 4, 4], [1, 8, 8], [1, 4, 6]])
    pixels = torch.arange(104 * 2, dtype=torch.float).reshape(104, 2)
    features = {
        "input_ids": torch.ones(4, 5, dtype=torch.long),
        "attention_mask": torch.ones(4, 5, dtype=torch.long),
        "pixel_values": pixels,
        "image_grid_thw": grid,
        "num_images_per_sample": torch.tensor([2, 1, 0, 0]),
    }
    first = _create_minibatch(features, 0, 1)
    assert first["image_grid_thw"].tolist() == grid[:2].tolist()
    assert torch.equal(first["pixel_values"], pixels[:80])
    mixed = _create_minibatch(features, 1, 3)
    assert mixed["image_grid_thw"].tolist() == [[1, 4, 6]]
    assert torch.equal(mixed["pixel_values"], pixels[80:104])
    # Rows without images get no visual tensors, so the model sees a text-only batch.
    text_only = _create_minibatch(features, 2, 4)
    assert "pixel_values" not in text_only and "image_grid_thw" not in text_only
    assert text_only["num_images_per_sample"].tolist() == [0, 0]


def test_one_pixel_row_per_image_follows_the_image_counts() -> None:
    features = {
        "input_ids": torch.ones(3, 4, dtype=torch.long),
        "attention_mask": torch.ones(3, 4, dtype=torch.long),
        "pixel_values": torch.arange(4 * 3, dtype=torch.float).reshape(4, 3),  # 4 images: rows own 1, 0, 3
        "image_sizes": torch.arange(8).reshape(4, 2),
        "num_images_per_sample": torch.tensor([1, 0, 3]),
    }
    last = _create_minibatch(features, 2, 3)
    assert torch.equal(last["pixel_values"], features["pixel_values"][1:4])
    assert torch.equal(last["image_sizes"], features["image_sizes"][1:4])


# -- token budgets ---------------------------------------------------------------------------------


def test_token_budget_ranges_agree_for_padded_and_flattened_inputs() -> None:
    lengths = [5, 3, 8, 2, 9, 1, 4]
    padded = _minibatch_ranges(_padded(lengths), 2, mini_batch_num_tokens=10)
    flattened = _minibatch_ranges(_flattened(lengths), 2, mini_batch_num_tokens=10)
    # 5 + 3 fit, 8 + 2 fill the budget, 9 + 1 too, 4 is left.
    assert padded == flattened == [(0, 2), (2, 4), (4, 6), (6, 7)]
    assert _minibatch_ranges(_padded([2, 50, 2]), 1, mini_batch_num_tokens=4) == [(0, 1), (1, 2), (2, 3)]
    assert _minibatch_ranges(_padded([3] * 7), 3) == [(0, 3), (3, 6), (6, 7)]


def test_token_budget_needs_token_counts() -> None:
    with pytest.raises(ValueError, match=r"neither 'cu_seq_lens_q' .* nor 'attention_mask'"):
        _minibatch_ranges({"pixel_values": torch.ones(4, 3)}, 2, mini_batch_num_tokens=8)
    model = LookupModel(fixed_table(2))
    with pytest.raises(ValueError, match="mini_batch_num_tokens must be a positive integer or None"):
        CachedMultipleNegativesRankingLoss(model, mini_batch_num_tokens=0)


# -- the engine ---------------------------------------------------------------------------------------


def test_embed_minibatch_is_called_by_keyword_in_both_passes() -> None:
    # A subclass or a wrapper may replace embed_minibatch; the engine calls it with keywords only and
    # the backward pass must replay exactly what the forward pass embedded (dropout included).
    model = LookupModel(fixed_table(2), dropout=0.3)
    model.train()
    loss = CachedMultipleNegativesRankingLoss(model, mini_batch_size=2)
    seen: dict[str, list[Tensor]] = {"forward": [], "backward": []}
    phase = "forward"
    original = loss.embed_minibatch

    def spy(**kwargs: Any) -> tuple[Any, ...]:
        embeddings, state = original(**kwargs)
        seen[phase].append(embeddings.detach().clone())
        return embeddings, state

    loss.embed_minibatch = spy  # type: ignore[method-assign]
    value = loss(lookup_features(2), None)
    phase = "backward"
    value.backward()
    assert len(seen["forward"]) == len(seen["backward"]) == 6  # 2 columns x ceil(5 / 2)
    for forward, backward in zip(seen["forward"], seen["backward"]):
        assert torch.equal(forward, backward)


def test_an_unused_column_is_named() -> None:
    class FirstColumnOnly(CachedLossMixin, nn.Module):
        def __init__(self, model: nn.Module) -> None:
            super().__init__()
            self.model = model
            self.mini_batch_size = 2

        def calculate_loss(
            self, reps: list[list[Tensor]], labels: Any = None, *, with_backward: bool = False
        ) -> Tensor:
            value = torch.cat(reps[0]).pow(2).mean()
            if with_backward:
                value.backward()
                value = value.detach()
            return value

    model = LookupModel(fixed_table(2))
    with pytest.raises(ValueError, match=r"did not use input column\(s\) 1"):
        FirstColumnOnly(model).forward_cached(lookup_features(2), None)


def test_cached_mnrl_gathers_through_its_own_module_names(monkeypatch: pytest.MonkeyPatch) -> None:
    # Rank 1 of a world of 2 in which every rank holds the same rows: the loss equals the ungathered
    # loss over the doubled batch (the local rows then sit at offset = batch size).
    model = LookupModel(fixed_table(2))
    generator = torch.Generator().manual_seed(0)
    anchors, positives = torch.randn(4, 6, generator=generator), torch.randn(4, 6, generator=generator)
    config = {"directions": ("query_to_doc", "doc_to_query"), "mini_batch_size": 2}
    reference = MultipleNegativesRankingLoss(model, directions=config["directions"]).compute_loss_from_embeddings(
        [torch.cat([anchors, anchors]), torch.cat([positives, positives])]
    )
    monkeypatch.setattr(cmnrl_module, "all_gather_with_grad", lambda tensor: torch.cat([tensor, tensor]))
    monkeypatch.setattr(cmnrl_module, "get_rank", lambda: 1)
    rank1 = CachedMultipleNegativesRankingLoss(model, gather_across_devices=True, **config).calculate_loss(
        [[anchors], [positives]]
    )
    torch.testing.assert_close(rank1, reference)


def test_mega_batch_margin_wants_exactly_two_columns() -> None:
    model = LookupModel(fixed_table(3))
    for mini_batched in (True, False):
        loss = MegaBatchMarginLoss(model, use_mini_batched_version=mini_batched, mini_batch_size=2)
        with pytest.raises(ValueError, match=r"expects exactly 2 input columns, \(anchor, positive\), but got 3"):
            loss(lookup_features(3), None)


def test_a_removed_stand_in_falls_back_to_the_real_distributed_helpers() -> None:
    # A stand-in put on the loss module and then deleted (rather than restored) leaves the real helper.
    from embedforge.sentence_transformer.losses import cached_gist_embed, gist_embed
    from embedforge.util import distributed

    for module in (cmnrl_module, cached_gist_embed, gist_embed):
        module.all_gather_with_grad = lambda tensor: tensor  # type: ignore[attr-defined]
        del module.all_gather_with_grad
        assert module.all_gather_with_grad is distributed.all_gather_with_grad
        assert module.get_rank is distributed.get_rank
