"""Merged forward passes: the candidate columns of a batch embedded in one forward, as sentence-transformers 6 does.

With dropout on, the number and shape of the forward passes decide which random numbers each row
draws; embedding columns the way sentence-transformers does keeps per-step losses equal for the same
seed. The anchor column runs alone; the other columns share one right-padded batch when they can.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_MERGING_OFF: ContextVar[bool] = ContextVar("embedforge_column_merging_off", default=False)


@contextmanager
def column_merging_disabled() -> Iterator[None]:
    """Embed every column on its own inside the block.

    For wrappers that call the inner loss several times and hand state from one call to the next
    through the per-column feature dicts (AdaptiveLayerLoss's cached hidden states): a merged
    forward writes into a fresh dict that the next call never sees.
    """
    token = _MERGING_OFF.set(True)
    try:
        yield
    finally:
        _MERGING_OFF.reset(token)


def merge_feature_batches(features: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The columns' features as one batch (column after column, right-padded to the widest), or None.

    sentence-transformers 6 embeds like-shaped candidate columns in one forward pass. With dropout
    on, the number and shape of the forward passes decide which random numbers each row draws, so
    the same merge (same order, same padded width, same refusals) is needed for equal losses.
    None when merging is disabled or the columns cannot share a batch: different feature keys,
    flattened (``cu_seq_lens_q``) or 1-D token streams (StaticEmbedding), tensors not indexed by
    row, float tensors that would need padding, or differing non-tensor values / ``prompt_length``.
    """
    if _MERGING_OFF.get() or len(features) < 2:
        return None
    first = features[0]
    if any(set(column) != set(first) for column in features[1:]) or "cu_seq_lens_q" in first:
        return None
    row_keys = [key for key in ("input_ids", "attention_mask") if isinstance(first.get(key), Tensor)]
    if not any(first[key].ndim >= 2 for key in row_keys):
        return None
    rows = first[row_keys[0]].shape[0]
    merged: dict[str, Any] = {}
    for key, value in first.items():
        values = [column[key] for column in features]
        if isinstance(value, Tensor) and key != "prompt_length":
            if any(
                not isinstance(v, Tensor) or v.ndim != value.ndim or v.ndim == 0 or v.shape[0] != rows for v in values
            ):
                return None
            if value.ndim >= 2:
                if any(v.shape[2:] != value.shape[2:] for v in values):
                    return None
                width = max(v.shape[1] for v in values)
                if any(v.shape[1] != width for v in values):
                    # Zero padding is only harmless for token ids and masks (attention_mask 0 hides it).
                    if value.is_floating_point() or value.is_complex():
                        return None
                    values = [F.pad(v, [0, 0] * (v.ndim - 2) + [0, width - v.shape[1]]) for v in values]
            merged[key] = torch.cat(values, dim=0)
            continue
        # Per-batch metadata (prompt_length, task, ...) is shared, so it must agree across columns.
        try:
            if isinstance(value, Tensor):
                same = all(isinstance(v, Tensor) and torch.equal(v, value) for v in values[1:])
            else:
                same = all(not bool(v != value) for v in values[1:])
        except (RuntimeError, ValueError):
            return None
        if not same:
            return None
        merged[key] = value
    return merged


def merge_token_streams(model: nn.Module, features: Sequence[dict[str, Any]]) -> dict[str, Tensor] | None:
    """Every column's flat token stream (StaticEmbedding's ``input_ids`` and ``offsets``) as one stream, or None.

    A StaticEmbedding text is the mean of its own tokens' vectors, so one lookup over all columns gives
    each text the vector it gets alone, and the backward pass yields one row-sparse gradient per step
    instead of one per column (which the optimizer would otherwise have to add up and coalesce).
    Only for a model whose first module reads token streams directly (no Router, whose routes differ
    per column) and in which no dropout is active: then how the columns are grouped into forward
    passes cannot change a single random draw, and the merge is invisible apart from the speed.
    """
    if _MERGING_OFF.get() or len(features) < 2:
        return None
    if any(set(column) != {"input_ids", "offsets"} for column in features):
        return None
    model = getattr(model, "_orig_mod", model)
    first = next(iter(model.children()), None)
    if not getattr(first, "flat_token_inputs", False):
        return None
    if any(isinstance(m, nn.modules.dropout._DropoutNd) and m.training and m.p > 0 for m in model.modules()):
        return None
    ids = [column["input_ids"] for column in features]
    offsets = [column["offsets"] for column in features]
    if any(t.ndim != 1 for t in (*ids, *offsets)) or len({t.dtype for t in ids}) != 1:
        return None
    shifted = []
    start = 0
    for column_ids, column_offsets in zip(ids, offsets):
        shifted.append(column_offsets + start)
        start += column_ids.numel()
    return {"input_ids": torch.cat(ids), "offsets": torch.cat(shifted)}


def embed_columns(model: nn.Module, features: Sequence[dict[str, Tensor]], separate_first: bool = True) -> list[Tensor]:
    """One ``sentence_embedding`` tensor per input column, forwarded as sentence-transformers 6 does.

    The first (anchor) column runs alone; the remaining columns share one merged forward pass when
    :func:`merge_feature_batches` accepts them, else run one by one. Dropout draws therefore match
    sentence-transformers' for the same seed (e.g. MNRL on triplets: 2 forwards, not 3). StaticEmbedding
    columns, which draw nothing, all share one pass (:func:`merge_token_streams`).
    """
    features = list(features)
    streams = merge_token_streams(model, features)
    if streams is not None:
        sizes = [column["offsets"].numel() for column in features]
        return list(model(streams)["sentence_embedding"].split(sizes))
    if separate_first and features:
        return [model(features[0])["sentence_embedding"], *embed_columns(model, features[1:], separate_first=False)]
    merged = merge_feature_batches(features)
    if merged is None:
        return [model(column)["sentence_embedding"] for column in features]
    embeddings = model(merged)["sentence_embedding"]
    return list(embeddings.reshape(len(features), -1, *embeddings.shape[1:]).unbind(0))


__all__ = ["column_merging_disabled", "embed_columns", "merge_feature_batches", "merge_token_streams"]
