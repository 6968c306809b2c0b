"""Tensor conversion and embedding post-processing helpers.

These are the helpers ``sentence_transformers.util`` exposes for turning user input (lists,
numpy arrays, tensors, sparse tensors) into tensors, normalising and truncating embeddings,
and moving batches between devices. They follow sentence-transformers' conversion rules
exactly, because the similarity functions built on them must return the same dtypes and
shapes for the same inputs.
"""

from __future__ import annotations

from itertools import pairwise
from typing import TYPE_CHECKING, Any, overload

import numpy as np
import torch
from torch import Tensor

from ..exceptions import InvalidArgumentError

if TYPE_CHECKING:
    from scipy.sparse import coo_matrix

#: What the similarity helpers accept as a batch of embeddings (or a single embedding).
EmbeddingsLike = list | np.ndarray | Tensor


def _wrap_numpy(array: np.ndarray) -> Tensor:
    """Turn a numpy array into a tensor, sharing its memory when torch allows it."""
    # Sharing avoids a full copy of a (possibly large) corpus matrix. torch cannot share
    # read-only buffers (memmaps, broadcast views) or dtypes it has no equivalent for, so
    # those fall back to a copy. Callers must never write into the result in place.
    if array.flags.writeable:
        try:
            return torch.from_numpy(array)
        except TypeError:
            pass
    return torch.tensor(array)


def _convert_to_tensor(a: EmbeddingsLike) -> Tensor:
    """Convert a list, numpy array or tensor into one tensor, stacking lists along a new first axis."""
    if isinstance(a, list):
        if a and all(isinstance(item, Tensor) and item.is_sparse for item in a):
            # Sparse rows stay sparse: densifying a batch of vocabulary-sized vectors is what
            # the sparse path exists to avoid.
            return torch.stack([item.coalesce().to(dtype=torch.float32) for item in a])
        if a and all(isinstance(item, Tensor) for item in a):
            result = torch.stack(a)
        elif a and all(isinstance(item, np.ndarray) for item in a):
            # torch.tensor() would walk a list of arrays element by element; viewing each array
            # and stacking once is far faster and yields the same values.
            result = torch.stack([_wrap_numpy(item) for item in a])
        else:
            result = torch.tensor(a)
    elif isinstance(a, np.ndarray):
        result = _wrap_numpy(a)
    elif isinstance(a, Tensor):
        result = a
    else:
        result = torch.tensor(a)
    if result.is_sparse:
        # sentence-transformers computes every sparse score in float32.
        return result.to(dtype=torch.float32)
    return result


def _convert_to_float_tensor(a: EmbeddingsLike) -> Tensor:
    """Convert like :func:`_convert_to_tensor`, then widen half-precision floats to float32."""
    result = _convert_to_tensor(a)
    # A matmul rounds its output to the input dtype; in float16/bfloat16 that rounding makes
    # distinct similarity scores collide, so scores are computed in float32 at least.
    if torch.is_floating_point(result) and torch.finfo(result.dtype).bits < 32:
        result = result.to(torch.float32)
    return result


def _convert_to_batch(a: Tensor) -> Tensor:
    """Add a leading batch axis to a 1-D tensor; leave other tensors as they are."""
    if a.dim() == 1:
        return a.unsqueeze(0)
    return a


def _convert_to_batch_tensor(a: EmbeddingsLike) -> Tensor:
    """Convert input into a float tensor with a batch axis, so one embedding becomes one row."""
    return _convert_to_batch(_convert_to_float_tensor(a))


def _tensor_to_numpy(tensor: Tensor) -> np.ndarray:
    """Copy a tensor to a CPU numpy array, widening bfloat16 (which numpy lacks) to float32."""
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    # detach() so tensors that still track gradients can be exported too.
    return tensor.detach().cpu().numpy()


def normalize_embeddings(embeddings: Tensor) -> Tensor:
    """Scale every embedding (the last axis) to unit L2 length; dense or sparse COO input."""
    if not embeddings.is_sparse:
        # F.normalize divides by max(norm, 1e-12), so an all-zero row stays zero instead of NaN.
        return torch.nn.functional.normalize(embeddings, p=2, dim=-1)

    embeddings = embeddings.coalesce()
    indices, values = embeddings.indices(), embeddings.values()

    if embeddings.dim() == 1:
        # A single sparse vector: its stored values are the only non-zeros, so normalising
        # them alone gives the normalised vector.
        normalized = torch.nn.functional.normalize(values, p=2, dim=0)
        return torch.sparse_coo_tensor(indices, normalized, embeddings.size(), check_invariants=False)

    if values.dtype in (torch.float16, torch.bfloat16):
        # Summing many squares in half precision loses too much; accumulate in float32.
        values = values.float()

    # Per-row squared norms, accumulated from the stored values only (no densifying).
    row_norms = values.new_zeros(embeddings.size(0))
    row_norms.index_add_(0, indices[0], values**2)
    value_norms = torch.sqrt(row_norms).index_select(0, indices[0])

    # Explicitly stored zeros in an otherwise empty row would give 0 / 0; leave them as they are.
    nonzero = value_norms > 0
    normalized = values.clone()
    normalized[nonzero] /= value_norms[nonzero]
    # The indices come from a coalesced tensor, so re-validating them would only cost time.
    return torch.sparse_coo_tensor(indices, normalized.to(embeddings.dtype), embeddings.size(), check_invariants=False)


@overload
def truncate_embeddings(embeddings: np.ndarray, truncate_dim: int | None) -> np.ndarray: ...


@overload
def truncate_embeddings(embeddings: Tensor, truncate_dim: int | None) -> Tensor: ...


def truncate_embeddings(embeddings: np.ndarray | Tensor, truncate_dim: int | None) -> np.ndarray | Tensor:
    """Keep the first ``truncate_dim`` dimensions of each embedding (Matryoshka style); None keeps all."""
    # A slice is a view, not a copy, and `:None` selects everything.
    return embeddings[..., :truncate_dim]


@overload
def select_max_active_dims(embeddings: np.ndarray | Tensor, max_active_dims: int) -> Tensor: ...


@overload
def select_max_active_dims(embeddings: np.ndarray, max_active_dims: None) -> np.ndarray: ...


@overload
def select_max_active_dims(embeddings: Tensor, max_active_dims: None) -> Tensor: ...


def select_max_active_dims(embeddings: np.ndarray | Tensor, max_active_dims: int | None) -> np.ndarray | Tensor:
    """Return a dense copy keeping only the ``max_active_dims`` largest-magnitude values of each embedding."""
    if max_active_dims is None:
        return embeddings
    if max_active_dims <= 0:
        raise InvalidArgumentError(f"max_active_dims must be a positive integer or None, got {max_active_dims!r}.")

    tensor = _convert_to_tensor(embeddings)
    k = min(max_active_dims, tensor.shape[-1])
    # Rank by magnitude, but keep the signed values at the winning positions.
    _, top_indices = torch.topk(tensor.abs(), k=k, dim=-1)
    selected = torch.zeros_like(tensor)
    selected.scatter_(-1, top_indices, tensor.gather(-1, top_indices))
    return selected


#: Keys that only make sense for a flattened batch; they describe the flat layout and go once it is undone.
_FLATTENED_ONLY_KEYS = ("cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k", "seq_idx", "position_ids")


def _pad_segments(flat: Tensor, bounds: list[int], padding_value: float) -> Tensor:
    """Cut the first axis of ``flat`` at ``bounds`` and stack the pieces, right-padded to the longest."""
    lengths = [end - start for start, end in pairwise(bounds)]
    longest = max(lengths, default=0)
    padded = flat.new_full((len(lengths), longest, *flat.shape[1:]), padding_value)
    for row, (start, length) in enumerate(zip(bounds[:-1], lengths)):
        padded[row, :length] = flat[start : start + length]
    return padded


def repad_flattened_features(features: dict[str, Any]) -> dict[str, Any]:
    """Undo FA2-style flattening in place: pad ``token_embeddings``/``input_ids`` to ``(B, T_max, ...)``.

    A flattened batch holds ``token_embeddings`` of shape ``(1, sum_lens, D)``, ``input_ids`` of shape
    ``(1, sum_lens)`` and the cumulative sequence lengths ``cu_seq_lens_q`` instead of an attention mask.
    Afterwards each sequence is one right-padded row (zeros), ``attention_mask`` is a boolean
    ``(B, T_max)`` mask of the real tokens, and the flat-layout keys (``cu_seq_lens_q``, ``cu_seq_lens_k``,
    ``max_length_q``, ``max_length_k``, ``seq_idx``, ``position_ids``) are removed. The caller decides
    whether the batch is flattened (``"cu_seq_lens_q" in features``); the dict itself is returned.
    """
    for key in ("cu_seq_lens_q", "token_embeddings"):
        if key not in features:
            raise InvalidArgumentError(
                f"repad_flattened_features needs a flattened features dict with {key!r}; got keys {sorted(features)}."
            )
    cu_seq_lens = features["cu_seq_lens_q"]
    bounds = [int(bound) for bound in (cu_seq_lens.tolist() if isinstance(cu_seq_lens, Tensor) else cu_seq_lens)]
    # A first offset above 0 would silently drop the leading tokens.
    if not bounds or bounds[0] != 0 or any(end < start for start, end in pairwise(bounds)):
        raise InvalidArgumentError(f"cu_seq_lens_q must be non-decreasing offsets starting at 0, got {bounds!r}.")
    # input_ids is optional: some callers flatten only the encoder output.
    flat_keys = [key for key in ("token_embeddings", "input_ids") if key in features]
    for key in flat_keys:
        value = features[key]
        # The flat layout is one row holding every token, and cu_seq_lens_q must cover exactly that row.
        if value.dim() < 2 or value.size(0) != 1 or value.size(1) != bounds[-1]:
            raise InvalidArgumentError(
                f"{key} must have shape (1, {bounds[-1]}, ...) to match cu_seq_lens_q, got {tuple(value.shape)}."
            )

    device = features["token_embeddings"].device
    for key in flat_keys:
        features[key] = _pad_segments(features[key][0], bounds, 0)
    lengths = torch.tensor([end - start for start, end in pairwise(bounds)], device=device)
    positions = torch.arange(features["token_embeddings"].size(1), device=device)
    features["attention_mask"] = positions.unsqueeze(0) < lengths.unsqueeze(1)
    for key in _FLATTENED_ONLY_KEYS:
        features.pop(key, None)
    return features


def _pad_token_axis(embeddings: list[Tensor], masks: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
    """Right-pad every ``(B, T_i, D)`` embedding (zeros) and ``(B, T_i)`` mask (False/0) to the largest ``T_i``."""
    if not embeddings or len(embeddings) != len(masks):
        raise InvalidArgumentError(
            "embeddings and masks must be non-empty lists of the same length, "
            f"got {len(embeddings)} embeddings and {len(masks)} masks."
        )
    longest = max(embedding.size(1) for embedding in embeddings)
    # Padding copies; when every piece already has the same token count there is nothing to do.
    if all(embedding.size(1) == longest for embedding in embeddings):
        return embeddings, masks
    padded_embeddings = [
        torch.nn.functional.pad(embedding, (0, 0, 0, longest - embedding.size(1))) for embedding in embeddings
    ]
    padded_masks = [torch.nn.functional.pad(mask, (0, longest - mask.size(1))) for mask in masks]
    return padded_embeddings, padded_masks


def stack_padded_token_embeddings(embeddings: list[Tensor], masks: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Stack ``(B, T_i, D)`` token embeddings and ``(B, T_i)`` masks into ``(B, N, T_max, D)`` and ``(B, N, T_max)``."""
    embeddings, masks = _pad_token_axis(embeddings, masks)
    return torch.stack(embeddings, dim=1), torch.stack(masks, dim=1)


def cat_padded_token_embeddings(embeddings: list[Tensor], masks: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Concatenate ``(B_i, T_i, D)`` token embeddings and ``(B_i, T_i)`` masks into ``(sum B_i, T_max, ...)``."""
    embeddings, masks = _pad_token_axis(embeddings, masks)
    return torch.cat(embeddings, dim=0), torch.cat(masks, dim=0)


def batch_to_device(batch: dict[str, Any], target_device: str | torch.device) -> dict[str, Any]:
    """Move every tensor value of a features dict to ``target_device`` (in place; the dict is returned)."""
    for key, value in batch.items():
        if isinstance(value, Tensor):
            batch[key] = value.to(target_device)
    return batch


def _move_tensors_to_device(value: Any, target_device: str | torch.device) -> Any:
    """Move every tensor nested in dicts, lists and tuples to ``target_device``; other values pass through."""
    target_device = torch.device(target_device)
    if isinstance(value, Tensor):
        return value.to(target_device)
    if isinstance(value, dict):
        return {key: _move_tensors_to_device(item, target_device) for key, item in value.items()}
    if isinstance(value, list):
        return [_move_tensors_to_device(item, target_device) for item in value]
    if isinstance(value, tuple):
        return tuple(_move_tensors_to_device(item, target_device) for item in value)
    return value


def _move_tensors_to_cpu(value: Any) -> Any:
    """Move every tensor nested in ``value`` to the CPU, keeping the container structure."""
    # Results handed back by a worker process must not reference accelerator memory that
    # disappears when the worker exits.
    return _move_tensors_to_device(value, "cpu")


def to_scipy_coo(x: Tensor) -> coo_matrix:
    """Convert a 2-D sparse COO tensor into a ``scipy.sparse.coo_matrix`` with the same entries."""
    # scipy is only needed by the sparse paths, so it is not imported with the package.
    from scipy.sparse import coo_matrix

    x = x.coalesce()
    indices = x.indices().cpu().numpy()
    return coo_matrix((_tensor_to_numpy(x.values()), (indices[0], indices[1])), shape=tuple(x.shape))


def compute_count_vector(embeddings: Tensor) -> Tensor:
    """Count, for every dimension, how many embeddings have a non-zero value there (int32)."""
    if not embeddings.is_sparse:
        embeddings = embeddings.to_sparse()
    embeddings = embeddings.coalesce()

    counts = torch.zeros(embeddings.size(-1), device=embeddings.device, dtype=torch.int32)
    if embeddings.dim() == 1:
        counts[embeddings.indices().squeeze(0)] = 1
        return counts
    if embeddings.dim() == 2:
        if embeddings.values().numel() > 0:
            dims, dim_counts = torch.unique(embeddings.indices()[1], return_counts=True)
            counts[dims] = dim_counts.int()
        return counts

    raise InvalidArgumentError(
        f"embeddings must be a 1-D or 2-D tensor, got a {embeddings.dim()}-D tensor of shape {tuple(embeddings.shape)}."
    )


__all__ = [
    "_convert_to_batch",
    "_convert_to_batch_tensor",
    "_convert_to_float_tensor",
    "_convert_to_tensor",
    "_move_tensors_to_cpu",
    "_move_tensors_to_device",
    "_tensor_to_numpy",
    "batch_to_device",
    "cat_padded_token_embeddings",
    "compute_count_vector",
    "normalize_embeddings",
    "repad_flattened_features",
    "select_max_active_dims",
    "stack_padded_token_embeddings",
    "to_scipy_coo",
    "truncate_embeddings",
]
