"""CachedMultipleNegativesSymmetricRankingLoss: the symmetric InfoNCE loss with GradCache."""

from __future__ import annotations

import warnings
from collections.abc import Callable

from torch import Tensor, nn

from embedforge.sentence_transformer.losses.cached_multiple_negatives_ranking import CachedMultipleNegativesRankingLoss
from embedforge.util import cos_sim


class CachedMultipleNegativesSymmetricRankingLoss(CachedMultipleNegativesRankingLoss):
    """Deprecated alias of the cached MNRL with ``directions=("query_to_doc", "doc_to_query")``, per direction."""

    def __init__(
        self,
        model: nn.Module,
        scale: float = 20.0,
        similarity_fct: Callable[[Tensor, Tensor], Tensor] = cos_sim,
        mini_batch_size: int = 32,
        mini_batch_num_tokens: int | None = None,
        gather_across_devices: bool = False,
        show_progress_bar: bool = False,
    ) -> None:
        """MultipleNegativesSymmetricRankingLoss's value and gradients, embedded in mini-batches."""
        # sentence-transformers marks this class deprecated in favour of the cached MNRL options below.
        warnings.warn(
            "CachedMultipleNegativesSymmetricRankingLoss is deprecated: use CachedMultipleNegativesRankingLoss with "
            "directions=('query_to_doc', 'doc_to_query') and partition_mode='per_direction'",
            DeprecationWarning,
            stacklevel=2,
        )
        super().__init__(
            model,
            scale=scale,
            similarity_fct=similarity_fct,
            mini_batch_size=mini_batch_size,
            mini_batch_num_tokens=mini_batch_num_tokens,
            gather_across_devices=gather_across_devices,
            directions=("query_to_doc", "doc_to_query"),
            partition_mode="per_direction",
            show_progress_bar=show_progress_bar,
        )
