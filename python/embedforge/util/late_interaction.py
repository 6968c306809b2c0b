"""Late-interaction (ColBERT-style) MaxSim scoring between multi-vector embeddings.

A multi-vector embedding holds one vector per token. MaxSim scores a query against a document as
``sum_i max_j (q_i . d_j)``: every query token picks its best-matching document token, and the
picks are added up. MeanMaxSim divides that sum by the query's number of real tokens.

Inputs come as a pre-padded 3-D ``(batch, tokens, dim)`` tensor or array, a list of 2-D
``(tokens_i, dim)`` items of any length, or one bare 2-D item (a batch of one). Ragged batches are
padded one chunk at a time, and chunks are sized by an element budget, so one long outlier never
forces the whole batch to its width. Written in torch (not the Rust core) because losses need
gradients through these scores.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from ..exceptions import InvalidArgumentError
from .tensor import EmbeddingsLike, _convert_to_tensor

logger = logging.getLogger(__name__)

#: What a caller may pass as a token mask: one tensor/array for the batch, or one 1-D mask per item.
MaskLike = Tensor | np.ndarray | list | tuple | None

#: Elements one chunk may hold (padded queries, padded documents and token scores) when the caller
#: sets no budget: about 400 MB in float32, half that in bf16/fp16.
DEFAULT_CHUNK_ELEMENTS = 100_000_000

#: Score of a document with no token left to match. Finite on purpose: it must rank below every
#: real score yet survive loss arithmetic (scaling, softmax, squared margins) without overflowing.
EMPTY_DOCUMENT_SCORE = -1e9

_EMPTY_DOCUMENT_WARNING = (
    "Some documents have no scoreable token in multi-vector (MaxSim) scoring: every token is masked "
    "(for example by MultiVectorMask's keep_only_token_ids or skiplist_words) or the document has zero "
    f"token vectors. They score {EMPTY_DOCUMENT_SCORE:.0e} (before any length normalisation), below every "
    "real document."
)


# torch.compiler.is_compiling arrived in torch 2.3; older releases cannot compile this code anyway.
_is_compiling = getattr(torch.compiler, "is_compiling", None) or (lambda: False)


@functools.cache
def _warn_once_fallback(message: str) -> None:
    """Log ``message`` once per process, for when transformers has not added ``Logger.warning_once``."""
    logger.warning(message)


def _warn_empty_documents_once() -> None:
    """Log the empty-document warning once; it would otherwise repeat every batch."""
    # transformers' Logger.warning_once is what sentence-transformers uses, and test suites written
    # for it reset that cache between tests, so prefer it when transformers has been imported.
    warning_once = getattr(logger, "warning_once", None)
    if warning_once is not None:
        warning_once(_EMPTY_DOCUMENT_WARNING)
    else:
        _warn_once_fallback(_EMPTY_DOCUMENT_WARNING)


def _chunk_ranges(
    item_widths: Sequence[int], per_item_token: int, element_budget: int, per_item_fixed: int = 0
) -> list[tuple[int, int]]:
    """Split items into consecutive ``(start, end)`` chunks whose cost stays within the budget.

    A chunk of ``n`` items padded to width ``w`` costs ``(per_item_token * w + per_item_fixed) * n``
    elements. Items are taken greedily in order; a chunk always holds at least one item, so a single
    item above the budget still gets a chunk of its own.
    """
    ranges: list[tuple[int, int]] = []
    start = 0
    chunk_width = 0
    for index, width in enumerate(item_widths):
        wider = max(chunk_width, width)
        count = index - start + 1
        if count > 1 and (per_item_token * wider + per_item_fixed) * count > element_budget:
            ranges.append((start, index))
            start, chunk_width = index, width
        else:
            chunk_width = wider
    ranges.append((start, len(item_widths)))
    return ranges


def _prepare_side(embeddings: EmbeddingsLike, mask: MaskLike, mask_name: str) -> tuple[EmbeddingsLike, Tensor | None]:
    """Bring one side to batch form: a bare 2-D item becomes a batch of one, a mask becomes one tensor."""
    if isinstance(mask, (list, tuple)):
        # One 1-D mask per item, of each item's own length: pad them to the batch's width.
        mask = torch.nn.utils.rnn.pad_sequence([_convert_to_tensor(item) for item in mask], batch_first=True)
    elif isinstance(mask, np.ndarray):
        mask = _convert_to_tensor(mask)
    elif mask is not None and not isinstance(mask, Tensor):
        raise TypeError(
            f"`{mask_name}` must be a tensor, a numpy array or a list of per-item masks, got {type(mask).__name__}."
        )
    if isinstance(embeddings, (np.ndarray, Tensor)) and embeddings.ndim == 2:
        embeddings = embeddings[None]
        if mask is not None and mask.dim() == 1:
            mask = mask.unsqueeze(0)
    return embeddings, mask


def _widths(embeddings: EmbeddingsLike) -> list[int]:
    """Token count of every item (the padded width for every item of a 3-D input)."""
    if isinstance(embeddings, list):
        # len() rather than .shape: items may be nested Python lists.
        return [len(item) for item in embeddings]
    return [int(embeddings.shape[1])] * len(embeddings)


def _dim(embeddings: EmbeddingsLike) -> int:
    """The embedding dimension, read without padding anything."""
    if isinstance(embeddings, list):
        return next((len(item[0]) for item in embeddings if len(item) > 0), 1)
    return int(embeddings.shape[-1])


def _device_of(embeddings: EmbeddingsLike) -> torch.device | None:
    """The device tensor inputs live on; None for numpy, nested lists and empty inputs."""
    if isinstance(embeddings, Tensor):
        return embeddings.device
    if isinstance(embeddings, list) and embeddings and isinstance(embeddings[0], Tensor):
        return embeddings[0].device
    return None


def _check_mask_width(mask: Tensor, width: int, mask_name: str) -> None:
    """A caller's mask must span exactly the padded width; anything else is a construction bug."""
    if mask.shape[-1] != width:
        raise InvalidArgumentError(
            f"`{mask_name}` covers {mask.shape[-1]} tokens, but the padded embeddings have {width}."
        )


def _as_float(tensor: Tensor) -> Tensor:
    """Upcast quantised (integer or bool) embeddings; floating tensors keep their precision."""
    return tensor if tensor.is_floating_point() else tensor.float()


def _zero_row_mask(padded: Tensor) -> Tensor:
    """A ``(batch, tokens)`` mask of a pre-padded tensor, reading all-zero token rows as padding.

    A real token is all zeros only by accident (for example a pooled cluster of opposite vectors);
    callers that can produce one should pass an explicit mask.
    """
    return padded.any(dim=-1)


def _padded_chunk(
    embeddings: EmbeddingsLike, mask: Tensor | None, start: int, end: int, device: torch.device
) -> tuple[Tensor, Tensor]:
    """Pad items ``start:end`` to their own widest item, on ``device``, with a mask of that width."""
    items = embeddings[start:end]
    if isinstance(items, list):
        tensors = [_as_float(_convert_to_tensor(item)).to(device) for item in items]
        lengths = torch.tensor([len(item) for item in tensors], device=device)
        padded = torch.nn.utils.rnn.pad_sequence(tensors, batch_first=True)
        derived = torch.arange(padded.shape[1], device=device)[None, :] < lengths[:, None]
    else:
        padded = _as_float(_convert_to_tensor(items)).to(device)
        derived = _zero_row_mask(padded)
    if mask is None:
        return padded, derived
    # The caller's mask spans the batch's widest item; this chunk may be narrower.
    return padded, mask[start:end, : padded.shape[1]].to(device)


def _query_token_counts(embeddings: EmbeddingsLike, mask: Tensor | None) -> Tensor:
    """Real query tokens per item, the MeanMaxSim divisor: never below 1, so nothing divides by 0."""
    if mask is not None:
        counts = mask.bool().sum(dim=-1)
    elif isinstance(embeddings, list):
        counts = torch.tensor([len(item) for item in embeddings])
    else:
        counts = _zero_row_mask(_convert_to_tensor(embeddings)).sum(dim=-1)
    return counts.clamp(min=1)


def _common_dtype(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """einsum needs one dtype on both sides; promote the narrower one."""
    if a.dtype == b.dtype:
        return a, b
    dtype = torch.promote_types(a.dtype, b.dtype)
    return a.to(dtype), b.to(dtype)


def _reduce_token_scores(token_scores: Tensor, query_mask: Tensor, document_mask: Tensor) -> Tensor:
    """Turn ``(..., q_tokens, d_tokens)`` token scores into float32 MaxSim scores ``(...)``.

    ``query_mask`` and ``document_mask`` must already broadcast against ``(..., q_tokens)`` and
    ``(..., d_tokens)`` respectively (as ``(..., q_tokens, 1)`` / ``(..., 1, d_tokens)`` shapes).
    """
    if token_scores.shape[-1] == 0:
        # No document token at all: nothing to take a maximum over.
        best = token_scores.new_zeros(token_scores.shape[:-1], dtype=torch.float32)
    else:
        # Masked document tokens go to the dtype minimum, not 0: a zero would beat a real negative
        # similarity. Filled in place, since a copy would double the largest tensor alive.
        token_scores.masked_fill_(~document_mask, torch.finfo(token_scores.dtype).min)
        # Sum in float32: in bf16 the sum of many maxima lands on a grid coarse enough to tie scores.
        # max, not amax: on a tie the gradient goes to one token, as sentence-transformers does.
        best = token_scores.max(dim=-1).values.float()
    return (best * query_mask.to(torch.float32)).sum(dim=-1)


def _fill_empty_documents(scores: Tensor, empty: Tensor) -> Tensor:
    """Give documents with no unmasked token the finite EMPTY_DOCUMENT_SCORE."""
    # Reading ``empty`` costs a device sync on accelerators and is a data-dependent branch that
    # torch.compile cannot capture, so only the CPU, uncompiled path looks at it to warn.
    if not _is_compiling() and empty.device.type == "cpu" and bool(empty.any()):
        _warn_empty_documents_once()
    return scores.masked_fill(empty, EMPTY_DOCUMENT_SCORE)


def _score_all_pairs(a: Tensor, b: Tensor, a_mask: Tensor, b_mask: Tensor) -> Tensor:
    """MaxSim of every query chunk item against every document chunk item: ``(len(a), len(b))``."""
    a, b = _common_dtype(a, b)
    token_scores = torch.einsum("qsd,ktd->qkst", a, b)
    document_mask = b_mask.bool()
    scores = _reduce_token_scores(token_scores, a_mask[:, None, :], document_mask[None, :, None, :])
    return _fill_empty_documents(scores, ~document_mask.any(dim=-1)[None, :].expand_as(scores))


def _score_aligned_pairs(a: Tensor, b: Tensor, a_mask: Tensor, b_mask: Tensor) -> Tensor:
    """MaxSim of ``a[i]`` against ``b[i]`` for every ``i`` of a chunk: ``(len(a),)``."""
    a, b = _common_dtype(a, b)
    token_scores = torch.einsum("isd,itd->ist", a, b)
    document_mask = b_mask.bool()
    scores = _reduce_token_scores(token_scores, a_mask, document_mask[:, None, :])
    return _fill_empty_documents(scores, ~document_mask.any(dim=-1))


def _prepare_masks(
    a: EmbeddingsLike, b: EmbeddingsLike, a_mask: Tensor | None, b_mask: Tensor | None
) -> tuple[list[int], list[int], Tensor | None, Tensor | None]:
    """Measure both sides and check each caller mask against its side's padded width."""
    query_widths, document_widths = _widths(a), _widths(b)
    if a_mask is not None:
        _check_mask_width(a_mask, max(query_widths), "a_mask")
        a_mask = a_mask.expand(len(query_widths), -1)
    if b_mask is not None:
        _check_mask_width(b_mask, max(document_widths), "b_mask")
        b_mask = b_mask.expand(len(document_widths), -1)
    return query_widths, document_widths, a_mask, b_mask


def maxsim(
    a: EmbeddingsLike,
    b: EmbeddingsLike,
    a_mask: MaskLike = None,
    b_mask: MaskLike = None,
    chunk_elements: int | None = None,
    length_normalize: bool = False,
    device: str | torch.device | None = None,
) -> Tensor:
    """MaxSim of every query in ``a`` against every document in ``b``: a float32 ``(len(a), len(b))`` matrix.

    ``a``/``b``: a 3-D ``(batch, tokens, dim)`` tensor or array (all-zero token rows count as
    padding unless a mask says otherwise), a list of 2-D ``(tokens_i, dim)`` items, or one 2-D item.
    ``a_mask``/``b_mask``: ``(batch, tokens)`` (``(tokens,)`` beside a 2-D item) or a list of per-item
    1-D masks; a zero/False query token adds nothing to the sum, a zero/False document token is
    never picked by the max. A document with no token left scores ``-1e9``.
    ``chunk_elements``: element budget of one chunk (padded queries, padded documents and token
    scores), 100 million by default; a single query-document pair may exceed it.
    ``length_normalize``: divide by each query's real token count (MeanMaxSim).
    ``device``: where to compute, one chunk at a time; scores return on the documents' device
    (the queries' when the documents are numpy).
    """
    a, a_mask_tensor = _prepare_side(a, a_mask, "a_mask")
    b, b_mask_tensor = _prepare_side(b, b_mask, "b_mask")
    result_device = _device_of(b) or _device_of(a) or torch.device("cpu")
    if len(a) == 0 or len(b) == 0:
        return torch.zeros(len(a), len(b), dtype=torch.float32, device=result_device)
    query_widths, document_widths, a_mask_tensor, b_mask_tensor = _prepare_masks(a, b, a_mask_tensor, b_mask_tensor)
    compute_device = torch.device(device) if device is not None else result_device
    budget = DEFAULT_CHUNK_ELEMENTS if chunk_elements is None else chunk_elements

    query_dim, document_dim = _dim(a), _dim(b)
    widest_document = max(document_widths)
    # A query chunk must leave room for at least one (widest) document next to it: its padded
    # embeddings plus one token-score row per query token.
    query_ranges = _chunk_ranges(query_widths, widest_document + query_dim, budget - widest_document * document_dim)
    rows = []
    for q_start, q_end in query_ranges:
        queries, queries_mask = _padded_chunk(a, a_mask_tensor, q_start, q_end, compute_device)
        query_tokens = queries.shape[0] * queries.shape[1]
        # Per document token: its embedding plus one score per query token in this chunk.
        document_ranges = _chunk_ranges(document_widths, query_tokens + document_dim, budget - queries.numel())
        row = []
        for d_start, d_end in document_ranges:
            documents, documents_mask = _padded_chunk(b, b_mask_tensor, d_start, d_end, compute_device)
            row.append(_score_all_pairs(queries, documents, queries_mask, documents_mask).to(result_device))
        rows.append(row[0] if len(row) == 1 else torch.cat(row, dim=1))
    scores = rows[0] if len(rows) == 1 else torch.cat(rows, dim=0)
    if length_normalize:
        counts = _query_token_counts(a, a_mask_tensor).to(device=scores.device, dtype=scores.dtype)
        scores = scores / counts[:, None]
    return scores


def maxsim_pairwise(
    a: EmbeddingsLike,
    b: EmbeddingsLike,
    a_mask: MaskLike = None,
    b_mask: MaskLike = None,
    chunk_elements: int | None = None,
    length_normalize: bool = False,
    device: str | torch.device | None = None,
) -> Tensor:
    """MaxSim of ``a[i]`` against ``b[i]`` for every ``i``: a float32 ``(len(a),)`` vector.

    Takes the inputs, masks and options of :func:`maxsim`; both sides must hold the same number of
    items. Pairs are packed greedily into chunks padded to their own widest item, within the
    ``chunk_elements`` budget (padded queries, padded documents and token scores).
    """
    a, a_mask_tensor = _prepare_side(a, a_mask, "a_mask")
    b, b_mask_tensor = _prepare_side(b, b_mask, "b_mask")
    if len(a) != len(b):
        raise InvalidArgumentError(
            f"`a` and `b` must hold the same number of items to score as pairs, got {len(a)} and {len(b)}."
        )
    result_device = _device_of(b) or _device_of(a) or torch.device("cpu")
    if len(a) == 0:
        return torch.zeros(0, dtype=torch.float32, device=result_device)
    query_widths, document_widths, a_mask_tensor, b_mask_tensor = _prepare_masks(a, b, a_mask_tensor, b_mask_tensor)
    compute_device = torch.device(device) if device is not None else result_device
    budget = DEFAULT_CHUNK_ELEMENTS if chunk_elements is None else chunk_elements

    # Per pair: the padded query (widest query x dim, whatever the document's width) plus, per
    # document token, its embedding and one score per query token.
    widest_query, dim = max(query_widths), _dim(b)
    ranges = _chunk_ranges(document_widths, widest_query + dim, budget, per_item_fixed=widest_query * dim)
    parts = []
    for start, end in ranges:
        queries, queries_mask = _padded_chunk(a, a_mask_tensor, start, end, compute_device)
        documents, documents_mask = _padded_chunk(b, b_mask_tensor, start, end, compute_device)
        parts.append(_score_aligned_pairs(queries, documents, queries_mask, documents_mask).to(result_device))
    scores = parts[0] if len(parts) == 1 else torch.cat(parts)
    if length_normalize:
        scores = scores / _query_token_counts(a, a_mask_tensor).to(device=scores.device, dtype=scores.dtype)
    return scores


def mean_maxsim(
    a: EmbeddingsLike,
    b: EmbeddingsLike,
    a_mask: MaskLike = None,
    b_mask: MaskLike = None,
    chunk_elements: int | None = None,
    length_normalize: bool = True,
    device: str | torch.device | None = None,
) -> Tensor:
    """MeanMaxSim: :func:`maxsim` divided by each query's real token count (``length_normalize=False`` gives MaxSim).

    Averaging keeps scores in the per-token similarity range whatever the query length, so they
    compare across queries; the ranking of documents for one query does not change.
    """
    return maxsim(
        a,
        b,
        a_mask=a_mask,
        b_mask=b_mask,
        chunk_elements=chunk_elements,
        length_normalize=length_normalize,
        device=device,
    )


def mean_maxsim_pairwise(
    a: EmbeddingsLike,
    b: EmbeddingsLike,
    a_mask: MaskLike = None,
    b_mask: MaskLike = None,
    chunk_elements: int | None = None,
    length_normalize: bool = True,
    device: str | torch.device | None = None,
) -> Tensor:
    """Pairwise MeanMaxSim: :func:`maxsim_pairwise` divided by each query's real token count."""
    return maxsim_pairwise(
        a,
        b,
        a_mask=a_mask,
        b_mask=b_mask,
        chunk_elements=chunk_elements,
        length_normalize=length_normalize,
        device=device,
    )


__all__ = ["maxsim", "maxsim_pairwise", "mean_maxsim", "mean_maxsim_pairwise"]
