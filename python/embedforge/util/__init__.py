"""Helpers users import from ``sentence_transformers.util``, under the same names.

Its own modules import only torch, numpy, tqdm and embedforge's exceptions and path checks, never
the models, losses or trainer, so scripts that only need ``cos_sim`` or ``quantize_embeddings`` start fast.
Each submodule mirrors the sentence-transformers file of the same name; new helpers (for example
``semantic_search`` in ``retrieval.py``) get their own submodule and one more import block here.
"""

from __future__ import annotations

from .bm25 import BM25
from .community import community_detection
from .dataset import resolve_ids
from .decorators import save_to_hub_args_decorator
from .distributed import all_gather, all_gather_padded, all_gather_with_grad, get_rank, get_world_size
from .environment import (
    check_package_availability,
    check_version_requirements,
    get_device_name,
    is_accelerate_available,
    is_datasets_available,
    is_dist_initialized,
    is_training_available,
)
from .file_io import disabled_tqdm, http_get, is_sentence_transformer_model, load_dir_path, load_file_path
from .hard_negatives import mine_hard_negatives
from .late_interaction import maxsim, maxsim_pairwise, mean_maxsim, mean_maxsim_pairwise
from .logging import LoggingHandler, install_logger
from .misc import (
    append_to_last_row,
    disable_datasets_caching,
    disable_logging,
    fullname,
    import_from_string,
    import_module_class,
    similarity_fct_name,
)
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
    cat_padded_token_embeddings,
    compute_count_vector,
    normalize_embeddings,
    repad_flattened_features,
    select_max_active_dims,
    stack_padded_token_embeddings,
    to_scipy_coo,
    truncate_embeddings,
)

__all__ = [
    "BM25",
    "LoggingHandler",
    "SimilarityFunction",
    "_convert_to_batch",
    "_convert_to_batch_tensor",
    "_convert_to_tensor",
    "_move_tensors_to_cpu",
    "all_gather",
    "all_gather_padded",
    "all_gather_with_grad",
    "append_to_last_row",
    "batch_to_device",
    "cat_padded_token_embeddings",
    "check_package_availability",
    "check_version_requirements",
    "community_detection",
    "compute_count_vector",
    "cos_sim",
    "disable_datasets_caching",
    "disable_logging",
    "disabled_tqdm",
    "dot_score",
    "euclidean_sim",
    "fullname",
    "get_device_name",
    "get_rank",
    "get_world_size",
    "http_get",
    "import_from_string",
    "import_module_class",
    "install_logger",
    "is_accelerate_available",
    "is_datasets_available",
    "is_dist_initialized",
    "is_sentence_transformer_model",
    "is_training_available",
    "load_dir_path",
    "load_file_path",
    "manhattan_sim",
    "maxsim",
    "maxsim_pairwise",
    "mean_maxsim",
    "mean_maxsim_pairwise",
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
    "repad_flattened_features",
    "resolve_ids",
    "save_to_hub_args_decorator",
    "select_max_active_dims",
    "semantic_search",
    "similarity_fct_name",
    "stack_padded_token_embeddings",
    "to_scipy_coo",
    "truncate_embeddings",
]
