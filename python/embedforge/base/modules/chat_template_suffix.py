"""Put a chat template's closing tokens back after truncation cut them off.

A chat template closes a conversation with fixed tokens (an end-of-turn marker, an assistant prefill).
Truncating the rendered text to ``max_length`` removes those first, and a model that reads the last
position (a causal reranker, last-token pooling) then reads content instead of the marker. The tokens
are found by rendering the conversation twice with different stand-in content: the token run the two
renders end with is the template's own tail. It is then written over the last real tokens of each
row that reached ``max_length``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

__all__ = ["common_tail", "message_skeleton", "write_suffix"]

# Stand-in contents that tokenise differently, so whatever the two renders share at the end is template.
FILLERS = ("0", "1 2 3 4")


def message_skeleton(conversation: list[Any], filler: str) -> list[Any]:
    """The conversation with every non-system content replaced by ``filler``; all else kept as is.

    System messages stay whole, so a prompt the template renders at the end counts as part of the tail.
    """
    skeleton = []
    for message in conversation:
        if not isinstance(message, dict) or message.get("role") == "system":
            skeleton.append(message)
        else:
            content = [{"type": "text", "text": filler}] if isinstance(message.get("content"), list) else filler
            skeleton.append({**message, "content": content})
    return skeleton


def common_tail(first: list[int], second: list[int]) -> list[int]:
    """The tokens both renders end with; empty when they never differ (nothing told content from template)."""
    shared = 0
    for left, right in zip(reversed(first), reversed(second)):
        if left != right:
            break
        shared += 1
    if 0 < shared < min(len(first), len(second)):
        return first[len(first) - shared :]
    return []


def write_suffix(
    features: dict[str, Any],
    row_count: int,
    max_length: int | None,
    suffix_for_row: Callable[[int], list[int]],
) -> None:
    """Write each truncated row's template tail over its last real tokens, in place.

    Only rows whose real length reached ``max_length`` can have been cut (None: every row is checked).
    Tensor batches need an ``attention_mask`` to find the real tokens and the padding side; token lists
    (unpadded batches) are all real tokens. Anything else (numpy arrays) is left alone.
    """
    input_ids = features.get("input_ids")
    least = max_length or 0
    if isinstance(input_ids, torch.Tensor):
        ids = input_ids if input_ids.dim() == 2 else input_ids.unsqueeze(0)  # a view: writes reach features
        width = ids.shape[-1]
        mask = features.get("attention_mask")
        if width < least or not isinstance(mask, torch.Tensor) or mask.numel() == 0:
            return
        mask = mask if mask.dim() == 2 else mask.unsqueeze(0)
        lengths = mask.long().sum(dim=1).tolist()
        left_padded = (mask[:, 0] == 0).tolist()
        for index in range(min(ids.shape[0], row_count)):
            if lengths[index] < least:
                continue
            suffix = suffix_for_row(index)
            keep = min(len(suffix), lengths[index])
            if keep:
                end = width if left_padded[index] else lengths[index]
                ids[index, end - keep : end] = torch.as_tensor(suffix[-keep:], dtype=ids.dtype, device=ids.device)
    elif isinstance(input_ids, list):
        for index in range(min(len(input_ids), row_count)):
            row = input_ids[index]
            if len(row) < least:
                continue
            suffix = suffix_for_row(index)
            keep = min(len(suffix), len(row))
            if keep:
                row[-keep:] = suffix[-keep:]
