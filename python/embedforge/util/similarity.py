"""Similarity functions between embeddings, and the ``SimilarityFunction`` enum that names them.

Every function takes lists, numpy arrays or tensors (dense or sparse COO) and returns a dense
torch tensor, with the formulas, dtypes and shapes of ``sentence_transformers.util``. They are
written in torch rather than delegated to the Rust core because losses call them on tensors
that need gradients; the Rust core serves the no-gradient paths (top-k search, evaluators).

The ``*_sim``/``*_score`` functions compare every row of ``a`` with every row of ``b`` and
return an ``(len(a), len(b))`` matrix; a 1-D input counts as one row. The ``pairwise_*``
functions compare ``a[i]`` with ``b[i]`` and return a vector (broadcasting like ``a * b``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from enum import Enum

import torch
from torch import Tensor

from ..exceptions import InvalidArgumentError
from .late_interaction import _chunk_ranges, maxsim, maxsim_pairwise, mean_maxsim, mean_maxsim_pairwise  # noqa: F401
from .tensor import (
    EmbeddingsLike,
    _convert_to_batch_tensor,
    _convert_to_float_tensor,
    normalize_embeddings,
    to_scipy_coo,
)

logger = logging.getLogger(__name__)

#: The signature shared by every similarity function in this module.
SimilarityFn = Callable[[EmbeddingsLike, EmbeddingsLike], Tensor]


@functools.cache
def _warn_once(message: str) -> None:
    """Log ``message`` as a warning the first time it is seen; these warnings would otherwise repeat every batch."""
    logger.warning(message)


def _check_matrices(a: Tensor, b: Tensor, *, allow_batched: bool = False) -> None:
    """Reject inputs that cannot be compared row against row, naming the shapes received."""
    for name, tensor in (("a", a), ("b", b)):
        # cdist also accepts stacked (..., rows, dim) batches of dense matrices, so the
        # distance-based functions keep accepting them as sentence-transformers does.
        batched_ok = allow_batched and tensor.dim() > 2 and not tensor.is_sparse
        if tensor.dim() != 2 and not batched_ok:
            raise InvalidArgumentError(
                f"{name} must be one embedding (1-D) or a matrix of embeddings (2-D), "
                f"got a {tensor.dim()}-D input of shape {tuple(tensor.shape)}."
            )
    if a.shape[-1] != b.shape[-1]:
        raise InvalidArgumentError(
            f"a and b must have the same embedding dimension, got a of shape {tuple(a.shape)} "
            f"and b of shape {tuple(b.shape)}."
        )


def _check_pairs(a: Tensor, b: Tensor) -> None:
    """Reject pairwise inputs whose shapes do not broadcast against each other."""
    try:
        torch.broadcast_shapes(a.shape, b.shape)
    except RuntimeError:
        raise InvalidArgumentError(
            f"a and b must hold the same number of embeddings of the same dimension (or broadcast), "
            f"got a of shape {tuple(a.shape)} and b of shape {tuple(b.shape)}."
        ) from None


def _match_layouts(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Make both tensors sparse when exactly one of them is, so mixed input takes the sparse path."""
    # The dense side of such a mix is usually a mostly-zero sparse embedding that was densified,
    # so sparsifying it is cheap, while densifying the sparse side could allocate a huge matrix.
    if a.is_sparse and not b.is_sparse:
        return a, b.to_sparse()
    if b.is_sparse and not a.is_sparse:
        return a.to_sparse(), b
    return a, b


def cos_sim(a: EmbeddingsLike, b: EmbeddingsLike) -> Tensor:
    """Cosine similarity of every row of ``a`` with every row of ``b``: ``res[i][j] = cos(a[i], b[j])``."""
    a = _convert_to_batch_tensor(a)
    b = _convert_to_batch_tensor(b)
    _check_matrices(a, b)
    # Normalising first turns the cosine into a single matmul; an all-zero row scores 0, not NaN.
    return torch.mm(normalize_embeddings(a), normalize_embeddings(b).transpose(0, 1)).to_dense()


def pytorch_cos_sim(a: EmbeddingsLike, b: EmbeddingsLike) -> Tensor:
    """Legacy name of :func:`cos_sim`, kept for older scripts."""
    return cos_sim(a, b)


def dot_score(a: EmbeddingsLike, b: EmbeddingsLike) -> Tensor:
    """Dot product of every row of ``a`` with every row of ``b``: ``res[i][j] = a[i] . b[j]``."""
    a = _convert_to_batch_tensor(a)
    b = _convert_to_batch_tensor(b)
    _check_matrices(a, b)
    return torch.mm(a, b.transpose(0, 1)).to_dense()


def manhattan_sim(a: EmbeddingsLike, b: EmbeddingsLike) -> Tensor:
    """Negative L1 distance between every row of ``a`` and every row of ``b``: ``res[i][j] = -|a[i] - b[j]|_1``."""
    a = _convert_to_batch_tensor(a)
    b = _convert_to_batch_tensor(b)
    _check_matrices(a, b, allow_batched=True)

    if not (a.is_sparse or b.is_sparse):
        return -torch.cdist(a, b, p=1.0)

    a, b = _match_layouts(a, b)
    try:
        from sklearn.metrics import pairwise_distances
    except ImportError:
        # Without scikit-learn there is no sparse L1 kernel at hand; densifying gives the same
        # numbers, only with more memory.
        _warn_once("scikit-learn is not installed: computing the sparse Manhattan similarity on dense copies.")
        return -torch.cdist(a.to_dense(), b.to_dense(), p=1.0)
    # torch has no sparse L1 cdist; scikit-learn's sparse kernel visits only the non-zeros.
    distances = pairwise_distances(to_scipy_coo(a), to_scipy_coo(b), metric="manhattan")
    return torch.from_numpy(-distances).float().to(a.device)


def euclidean_sim(a: EmbeddingsLike, b: EmbeddingsLike) -> Tensor:
    """Negative L2 distance between every row of ``a`` and every row of ``b``: ``res[i][j] = -|a[i] - b[j]|_2``."""
    a = _convert_to_batch_tensor(a)
    b = _convert_to_batch_tensor(b)
    _check_matrices(a, b, allow_batched=True)

    if not (a.is_sparse or b.is_sparse):
        # torch.cdist, as sentence-transformers uses: for larger inputs it switches to the
        # |x|^2 - 2xy + |y|^2 matmul form, and matching its rounding keeps scores identical.
        return -torch.cdist(a, b, p=2.0)

    a, b = _match_layouts(a, b)
    # Expand |a - b|^2 so that only sparse-friendly operations (row sums, one matmul) are needed.
    a_sq = torch.sparse.sum(a * a, dim=1).to_dense().unsqueeze(1)
    b_sq = torch.sparse.sum(b * b, dim=1).to_dense().unsqueeze(0)
    squared = a_sq - 2 * torch.matmul(a, b.t()).to_dense() + b_sq
    # Cancellation can leave tiny negative values where the true distance is 0.
    return -torch.sqrt(torch.clamp(squared, min=0.0))


def pairwise_cos_sim(a: EmbeddingsLike, b: EmbeddingsLike) -> Tensor:
    """Cosine similarity of matching rows: ``res[i] = cos(a[i], b[i])``."""
    a = _convert_to_float_tensor(a)
    b = _convert_to_float_tensor(b)
    _check_pairs(a, b)
    if a.is_sparse or b.is_sparse:
        return (normalize_embeddings(a) * normalize_embeddings(b)).sum(dim=-1).to_dense()
    return pairwise_dot_score(normalize_embeddings(a), normalize_embeddings(b))


def pairwise_dot_score(a: EmbeddingsLike, b: EmbeddingsLike) -> Tensor:
    """Dot product of matching rows: ``res[i] = a[i] . b[i]``."""
    a = _convert_to_float_tensor(a)
    b = _convert_to_float_tensor(b)
    _check_pairs(a, b)
    return (a * b).sum(dim=-1).to_dense()


def pairwise_manhattan_sim(a: EmbeddingsLike, b: EmbeddingsLike) -> Tensor:
    """Negative L1 distance between matching rows: ``res[i] = -|a[i] - b[i]|_1``."""
    a = _convert_to_float_tensor(a)
    b = _convert_to_float_tensor(b)
    _check_pairs(a, b)
    a, b = _match_layouts(a, b)
    return -torch.sum(torch.abs(a - b), dim=-1).to_dense()


def pairwise_euclidean_sim(a: EmbeddingsLike, b: EmbeddingsLike) -> Tensor:
    """Negative L2 distance between matching rows: ``res[i] = -|a[i] - b[i]|_2``."""
    a = _convert_to_float_tensor(a)
    b = _convert_to_float_tensor(b)
    _check_pairs(a, b)
    a, b = _match_layouts(a, b)
    diff = a - b
    if diff.is_sparse or not diff.is_floating_point():
        # vector_norm supports neither sparse nor integer tensors; spell the norm out.
        return -diff.square().sum(dim=-1).sqrt().to_dense()
    return -torch.linalg.vector_norm(diff, dim=-1)


def pairwise_angle_sim(x: EmbeddingsLike, y: EmbeddingsLike) -> Tensor:
    """AnglE similarity of matching rows: ``|cos + sin|`` of the angle between ``x[i]`` and ``y[i]``.

    Each embedding is read as a complex vector whose real part is its first half and whose
    imaginary part is its second half (see AnglELoss, https://arxiv.org/abs/2309.12871).
    """
    x = _convert_to_float_tensor(x)
    y = _convert_to_float_tensor(y)
    _check_pairs(x, y)

    if x.is_sparse or y.is_sparse:
        _warn_once("pairwise_angle_sim does not support sparse tensors; converting them to dense.")
        x = x.to_dense()
        y = y.to_dense()

    if x.shape[-1] % 2 != 0:
        # The halves must have equal length: a zero appended to an odd dimension changes no norm
        # and no product.
        x = torch.nn.functional.pad(x, (0, 1), mode="constant", value=0)
        y = torch.nn.functional.pad(y, (0, 1), mode="constant", value=0)

    # With z = x_re + i*x_im and w = y_re + i*y_im of unit length, z . conj(w) has real part
    # x . y (the cosine) and imaginary part x_im . y_re - x_re . y_im (the sine term of AnglE).
    x = torch.nn.functional.normalize(x, p=2, dim=-1)
    y = torch.nn.functional.normalize(y, p=2, dim=-1)
    cosines = torch.sum(x * y, dim=-1)
    x_re, x_im = torch.chunk(x, 2, dim=-1)
    y_re, y_im = torch.chunk(y, 2, dim=-1)
    sines = torch.sum(x_im * y_re - x_re * y_im, dim=-1)
    return torch.abs(cosines + sines)


class SimilarityFunction(Enum):
    """The similarity functions a model can be configured with, by the name saved in its config.

    ``COSINE`` ("cosine"), ``DOT_PRODUCT`` ("dot", also reachable as ``DOT``), ``EUCLIDEAN``
    ("euclidean", negative L2 distance), ``MANHATTAN`` ("manhattan", negative L1 distance), and the
    late-interaction pair ``MAXSIM`` ("maxsim") and ``MEAN_MAXSIM`` ("meanmaxsim": MaxSim divided by
    the query's token count), which compare per-token embeddings (see :func:`maxsim`).
    """

    COSINE = "cosine"
    DOT_PRODUCT = "dot"
    # Same value, so Enum makes it an alias of DOT_PRODUCT rather than a fifth member.
    DOT = "dot"  # noqa: PIE796
    EUCLIDEAN = "euclidean"
    MANHATTAN = "manhattan"
    MAXSIM = "maxsim"
    MEAN_MAXSIM = "meanmaxsim"

    @classmethod
    def _missing_(cls, value: object) -> SimilarityFunction:
        """Accept a member of another enum with a valid value; otherwise raise a clear error."""
        # A config object may carry sentence-transformers' own SimilarityFunction member.
        other = getattr(value, "value", None)
        if isinstance(value, Enum) and isinstance(other, str) and other in cls._value2member_map_:
            return cls(other)
        raise InvalidArgumentError(
            f"similarity_function must be one of {cls.possible_values()} (or a SimilarityFunction), got {value!r}."
        )

    @staticmethod
    def to_similarity_fn(similarity_function: str | SimilarityFunction) -> SimilarityFn:
        """The all-pairs function (``res[i][j]``) for a name such as "cosine" or a member of this enum."""
        return _MATRIX_FUNCTIONS[SimilarityFunction(similarity_function)]

    @staticmethod
    def to_similarity_pairwise_fn(similarity_function: str | SimilarityFunction) -> SimilarityFn:
        """The matching-rows function (``res[i]``) for a name such as "cosine" or a member of this enum."""
        return _PAIRWISE_FUNCTIONS[SimilarityFunction(similarity_function)]

    @staticmethod
    def possible_values() -> list[str]:
        """The accepted names, one per function: "cosine", "dot", "euclidean", "manhattan", "maxsim", "meanmaxsim"."""
        # Iterating an Enum skips aliases, so "dot" is listed once.
        return [member.value for member in SimilarityFunction]


# Kept outside the enum body: a dict assigned there would itself become an enum member.
_MATRIX_FUNCTIONS: dict[SimilarityFunction, SimilarityFn] = {
    SimilarityFunction.COSINE: cos_sim,
    SimilarityFunction.DOT_PRODUCT: dot_score,
    SimilarityFunction.EUCLIDEAN: euclidean_sim,
    SimilarityFunction.MANHATTAN: manhattan_sim,
    SimilarityFunction.MAXSIM: maxsim,
    SimilarityFunction.MEAN_MAXSIM: mean_maxsim,
}
_PAIRWISE_FUNCTIONS: dict[SimilarityFunction, SimilarityFn] = {
    SimilarityFunction.COSINE: pairwise_cos_sim,
    SimilarityFunction.DOT_PRODUCT: pairwise_dot_score,
    SimilarityFunction.EUCLIDEAN: pairwise_euclidean_sim,
    SimilarityFunction.MANHATTAN: pairwise_manhattan_sim,
    SimilarityFunction.MAXSIM: maxsim_pairwise,
    SimilarityFunction.MEAN_MAXSIM: mean_maxsim_pairwise,
}


__all__ = [
    "SimilarityFunction",
    "cos_sim",
    "dot_score",
    "euclidean_sim",
    "manhattan_sim",
    "maxsim",
    "maxsim_pairwise",
    "mean_maxsim",
    "mean_maxsim_pairwise",
    "pairwise_angle_sim",
    "pairwise_cos_sim",
    "pairwise_dot_score",
    "pairwise_euclidean_sim",
    "pairwise_manhattan_sim",
    "pytorch_cos_sim",
]
