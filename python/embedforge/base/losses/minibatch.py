"""Splitting one column's tokenised features into mini-batches, for the losses that embed in pieces.

Three feature layouts reach a loss:

* padded text: ``input_ids`` / ``attention_mask`` of shape ``(batch, width)``;
* flattened text (``DataCollatorWithFlattening``): one token stream ``(1, tokens)`` plus the sequence
  boundaries in ``cu_seq_lens_q`` (and FlashAttention metadata: ``cu_seq_lens_k``, ``max_length_q``,
  ``max_length_k``, ``seq_idx``);
* padded text plus images or videos, whose tensors are indexed per image or per visual token rather
  than per row: Qwen2-VL style grids (``image_grid_thw`` with ``pixel_values`` of one row per visual
  token) or one ``pixel_values`` row per image (LLaVA / Gemma 3 style), mapped to rows through
  ``num_images_per_sample`` / ``num_videos_per_sample``.

A mini-batch of rows ``begin:end`` must take, from every tensor, exactly the part those rows own.
"""

from __future__ import annotations

import bisect
from typing import Any

from torch import Tensor

from embedforge.exceptions import InvalidArgumentError

__all__ = ["batch_size_of", "create_minibatch", "minibatch_ranges"]

# (grid, visual tokens, items per row): a grid row per image/video, whose product counts its visual tokens.
_GRID_LAYOUTS = (
    ("image_grid_thw", "pixel_values", "num_images_per_sample"),
    ("video_grid_thw", "pixel_values_videos", "num_videos_per_sample"),
)
# Tensors with one entry per image (not per row) in processors without grids.
_PER_IMAGE_KEYS = ("pixel_values", "image_position_ids", "image_sizes")
# Processors that pad images per row emit these; their pixel_values are then indexed by row after all.
_PER_ROW_IMAGE_MARKERS = ("pixel_attention_mask", "aspect_ratio_ids")
# Keys that describe a flattened batch's sequence boundaries.
_FLAT_OFFSETS = ("cu_seq_lens_q", "cu_seq_lens_k")
_FLAT_MAX_LENGTHS = ("max_length_q", "max_length_k")


def batch_size_of(features: dict[str, Any]) -> int:
    """How many rows (sequences) ``features`` holds, for padded and flattened layouts alike."""
    if "cu_seq_lens_q" in features:
        return len(features["cu_seq_lens_q"]) - 1
    # input_ids / attention_mask first: visual tensors can have a first axis that is not the batch.
    for key in ("input_ids", "attention_mask"):
        value = features.get(key)
        if isinstance(value, Tensor) and value.ndim > 0:
            return int(value.shape[0])
    for value in features.values():
        if isinstance(value, Tensor) and value.ndim > 0:
            return int(value.shape[0])
    raise InvalidArgumentError(
        f"cannot tell the batch size of features with keys {sorted(features)}: none of them is a tensor"
    )


def minibatch_ranges(
    features: dict[str, Any], mini_batch_size: int, mini_batch_num_tokens: int | None = None
) -> list[tuple[int, int]]:
    """``(begin, end)`` row ranges that split a batch into mini-batches, in order and covering every row.

    Without ``mini_batch_num_tokens`` each range holds ``mini_batch_size`` rows (the last may hold
    fewer). With it, each range packs as many consecutive rows as fit in that many real tokens
    (padding does not count); a row longer than the budget gets a range of its own.
    """
    size = batch_size_of(features)
    if mini_batch_num_tokens is None:
        return [(begin, min(begin + mini_batch_size, size)) for begin in range(0, size, mini_batch_size)]

    if "cu_seq_lens_q" in features:
        # Already cumulative: [0, len_0, len_0 + len_1, ...].
        cumulative = [int(value) for value in features["cu_seq_lens_q"][1:].tolist()]
    elif isinstance(features.get("attention_mask"), Tensor):
        cumulative = [int(value) for value in features["attention_mask"].sum(dim=1).cumsum(dim=0).tolist()]
    else:
        raise ValueError(
            "mini_batch_num_tokens needs per-sequence token counts, but the tokenized inputs contain "
            f"neither 'cu_seq_lens_q' (flattened inputs) nor 'attention_mask' (padded inputs); they have "
            f"keys {sorted(features)}. Use mini_batch_size instead."
        )

    ranges: list[tuple[int, int]] = []
    begin = 0
    while begin < size:
        spent = cumulative[begin - 1] if begin else 0
        end = bisect.bisect_right(cumulative, spent + mini_batch_num_tokens)
        end = max(end, begin + 1)  # a single over-long row still has to go somewhere
        ranges.append((begin, end))
        begin = end
    return ranges


def create_minibatch(features: dict[str, Any], begin: int, end: int) -> dict[str, Any]:
    """The features of rows ``begin:end`` (``end`` is clamped to the batch), as a batch of their own.

    Padded features lose the trailing padding columns that no row of the mini-batch uses, so a
    mini-batch of short texts is not embedded at the width of the batch's longest text (the token
    budget would bound nothing otherwise). Leading padding stays, so positions derived from it do not
    move, and so do positions flagged by ``query_expansion_positions`` (masked, but scored).
    """
    if "cu_seq_lens_q" in features:
        return _flattened_minibatch(features, begin, end)
    return _padded_minibatch(features, begin, end)


def _cumulative_range(counts: Tensor, begin: int, end: int) -> tuple[int, int]:
    """The span of items owned by rows ``begin:end``, given each row's item count."""
    if end <= begin:
        return 0, 0
    cumulative = counts.cumsum(dim=0)
    first = int(cumulative[begin - 1].item()) if begin else 0
    return first, int(cumulative[end - 1].item())


def _visual_ranges(features: dict[str, Any], begin: int, end: int, size: int) -> dict[str, tuple[int, int]]:
    """Key -> slice of the tensors indexed per image / visual token rather than per row."""
    ranges: dict[str, tuple[int, int]] = {}
    for grid_key, token_key, count_key in _GRID_LAYOUTS:
        grid, tokens = features.get(grid_key), features.get(token_key)
        if not isinstance(grid, Tensor) or not isinstance(tokens, Tensor):
            continue
        counts = features.get(count_key)
        if isinstance(counts, Tensor):
            items = _cumulative_range(counts, begin, end)
            ranges[grid_key] = items
        elif grid.shape[0] == size:
            items = (begin, end)  # one item per row: the grid slices like any per-row tensor
        else:
            continue  # no way to tell which row owns which grid row: leave it whole
        ranges[token_key] = _cumulative_range(grid.prod(dim=1), *items) if items[0] < items[1] else (0, 0)

    images, pixels = features.get("num_images_per_sample"), features.get("pixel_values")
    if (
        isinstance(images, Tensor)
        and isinstance(pixels, Tensor)
        and "pixel_values" not in ranges
        and not any(key in features for key in _PER_ROW_IMAGE_MARKERS)
        and pixels.shape[0] == int(images.sum().item())
    ):
        span = _cumulative_range(images, begin, end)
        for key in _PER_IMAGE_KEYS:
            if key in features:
                ranges[key] = span
    return ranges


def _trimmed_width(features: dict[str, Any], begin: int, end: int) -> tuple[int | None, int | None]:
    """``(full width, kept width)`` of the token axis; kept is None when nothing can be trimmed."""
    mask = features.get("attention_mask")
    if not isinstance(mask, Tensor) or mask.ndim != 2:
        return None, None
    width = int(mask.shape[1])
    used = mask[begin:end].bool()
    expansion = features.get("query_expansion_positions")
    if isinstance(expansion, Tensor):
        used = used | expansion[begin:end].bool()
    columns = used.any(dim=0)
    if not columns.any():
        return width, None
    last = int(columns.nonzero().max().item()) + 1
    return width, (last if last < width else None)


def _padded_minibatch(features: dict[str, Any], begin: int, end: int) -> dict[str, Any]:
    size = batch_size_of(features)
    end = min(end, size)
    visual = _visual_ranges(features, begin, end, size)
    width, kept = _trimmed_width(features, begin, end)
    minibatch: dict[str, Any] = {}
    for key, value in features.items():
        if not isinstance(value, Tensor):
            minibatch[key] = value  # batch-level metadata (prompt_length, task, ...) applies unchanged
        elif key in visual:
            first, last = visual[key]
            # Rows without images get no visual tensors at all, so the model treats them as text only.
            if first != last:
                minibatch[key] = value[first:last]
        elif kept is not None and value.ndim >= 2 and value.shape[1] == width:
            minibatch[key] = value[begin:end, :kept]
        else:
            minibatch[key] = value[begin:end]
    return minibatch


def _flattened_minibatch(features: dict[str, Any], begin: int, end: int) -> dict[str, Any]:
    offsets = features["cu_seq_lens_q"]
    end = min(end, len(offsets) - 1)
    first_token, last_token = int(offsets[begin].item()), int(offsets[end].item())
    total_tokens = int(offsets[-1].item())
    # The mini-batch's own boundaries, starting again at 0.
    local_offsets = offsets[begin : end + 1] - offsets[begin]
    lengths = local_offsets[1:] - local_offsets[:-1]
    minibatch: dict[str, Any] = {}
    for key, value in features.items():
        if key in _FLAT_OFFSETS:
            minibatch[key] = local_offsets
        elif key in _FLAT_MAX_LENGTHS:
            minibatch[key] = int(lengths.max().item()) if lengths.numel() else 0
        elif key == "seq_idx":
            minibatch[key] = value[..., first_token:last_token] - begin
        elif isinstance(value, Tensor) and value.ndim >= 1 and value.shape[-1] == total_tokens:
            # Token-level tensors (input_ids, position_ids, ...) carry the token axis last.
            minibatch[key] = value[..., first_token:last_token]
        else:
            minibatch[key] = value
    return minibatch
