"""Helpers users import from ``sentence_transformers.util``, under the same names.

Importing this package loads only torch, numpy and ``embedforge.exceptions``, never the models,
losses or trainer, so scripts that only need ``cos_sim`` or ``quantize_embeddings`` start fast.
Each submodule mirrors the sentence-transformers file of the same name; new helpers (for example
``semantic_search`` in ``retrieval.py``) get their own submodule and one more import block here.
"""

from __future__ import annotations

from .community import community_detection
from .hard_negatives import mine_hard_negatives
from .paraphrase import paraphrase_mining, paraphrase_mining_embeddings
from .quantization import quantize_embeddings
from .retrieval import semantic_search
from .similarity import (
    SimilarityFunction,
    cos_sim,
    dot_score,
    euclidean_sim,
    manhattan_sim,
    pairwise_angle_sim,
    pairwise_cos_sim,
    pairwise_dot_score,
    pairwise_euclidean_sim,
    pairwise_manhattan_sim,
    pytorch_cos_sim,
)
from .tensor import (
    _convert_to_batch,
    _convert_to_batch_tensor,
    _convert_to_tensor,
    _move_tensors_to_cpu,
    batch_to_device,
    compute_count_vector,
    normalize_embeddings,
    select_max_active_dims,
    to_scipy_coo,
    truncate_embeddings,
)

__all__ = [
    "SimilarityFunction",
    "_convert_to_batch",
    "_convert_to_batch_tensor",
    "_convert_to_tensor",
    "_move_tensors_to_cpu",
    "batch_to_device",
    "community_detection",
    "compute_count_vector",
    "cos_sim",
    "dot_score",
    "euclidean_sim",
    "manhattan_sim",
    "mine_hard_negatives",
    "normalize_embeddings",
    "pairwise_angle_sim",
    "pairwise_cos_sim",
    "pairwise_dot_score",
    "pairwise_euclidean_sim",
    "pairwise_manhattan_sim",
    "paraphrase_mining",
    "paraphrase_mining_embeddings",
    "pytorch_cos_sim",
    "quantize_embeddings",
    "select_max_active_dims",
    "semantic_search",
    "to_scipy_coo",
    "truncate_embeddings",
]
