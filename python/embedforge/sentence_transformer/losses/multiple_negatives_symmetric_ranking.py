"""MultipleNegativesSymmetricRankingLoss: the symmetric (query->doc and doc->query) form of InfoNCE."""

from __future__ import annotations

import warnings
from collections.abc import Callable

from torch import Tensor, nn

from embedforge.sentence_transformer.losses.multiple_negatives_ranking import MultipleNegativesRankingLoss
from embedforge.util import cos_sim


class MultipleNegativesSymmetricRankingLoss(MultipleNegativesRankingLoss):
    """Deprecated alias of MNRL with ``directions=("query_to_doc", "doc_to_query")``, ``partition_mode="per_direction"``."""

    def __init__(
        self,
        model: nn.Module,
        scale: float = 20.0,
        similarity_fct: Callable[[Tensor, Tensor], Tensor] = cos_sim,
        gather_across_devices: bool = False,
    ) -> None:
        """Average of the anchor->candidates and positive->anchors softmax losses, as sentence-transformers has it."""
        # sentence-transformers marks this class deprecated in favour of the MNRL options below.
        warnings.warn(
            "MultipleNegativesSymmetricRankingLoss is deprecated: use MultipleNegativesRankingLoss with "
            "directions=('query_to_doc', 'doc_to_query') and partition_mode='per_direction'",
            DeprecationWarning,
            stacklevel=2,
        )
        super().__init__(
            model,
            scale=scale,
            similarity_fct=similarity_fct,
            gather_across_devices=gather_across_devices,
            directions=("query_to_doc", "doc_to_query"),
            partition_mode="per_direction",
        )
