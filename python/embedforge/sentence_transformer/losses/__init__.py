"""Training losses, under the names, arguments and formulas of ``sentence_transformers.losses``.

Each loss lives in its own module; this package imports them on first use, so importing
``embedforge.sentence_transformer.losses`` stays cheap and one loss never pays for another's imports.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> the module (under embedforge.sentence_transformer.losses) that defines it.
LOSS_MODULES: dict[str, str] = {
    "AdaptiveLayerLoss": "adaptive_layer",
    "AnglELoss": "angle",
    "BatchAllTripletLoss": "batch_all_triplet",
    "BatchHardSoftMarginTripletLoss": "batch_hard_soft_margin_triplet",
    "BatchHardTripletLoss": "batch_hard_triplet",
    "BatchHardTripletLossDistanceFunction": "batch_hard_triplet",
    "BatchSemiHardTripletLoss": "batch_semi_hard_triplet",
    "CachedGISTEmbedLoss": "cached_gist_embed",
    "CachedMultipleNegativesRankingLoss": "cached_multiple_negatives_ranking",
    "CachedMultipleNegativesSymmetricRankingLoss": "cached_multiple_negatives_symmetric_ranking",
    "CoSENTLoss": "cosent",
    "ContrastiveLoss": "contrastive",
    "ContrastiveTensionDataLoader": "contrastive_tension",
    "ContrastiveTensionLoss": "contrastive_tension",
    "ContrastiveTensionLossInBatchNegatives": "contrastive_tension",
    "CosineSimilarityLoss": "cosine_similarity",
    "DenoisingAutoEncoderLoss": "denoising_auto_encoder",
    "DistillKLDivLoss": "distill_kl_div",
    "EmbedDistillLoss": "embed_distill",
    "GISTEmbedLoss": "gist_embed",
    "GlobalOrthogonalRegularizationLoss": "global_orthogonal_regularization",
    "MSELoss": "mse",
    "MarginMSELoss": "margin_mse",
    "Matryoshka2dLoss": "matryoshka_2d",
    "MatryoshkaLoss": "matryoshka",
    "MegaBatchMarginLoss": "mega_batch_margin",
    "MultipleNegativesRankingLoss": "multiple_negatives_ranking",
    "MultipleNegativesSymmetricRankingLoss": "multiple_negatives_symmetric_ranking",
    "OnlineContrastiveLoss": "online_contrastive",
    "SiameseDistanceMetric": "contrastive",
    "SoftmaxLoss": "softmax",
    "TripletDistanceMetric": "triplet",
    "TripletLoss": "triplet",
}

__all__ = [
    "AdaptiveLayerLoss",
    "AnglELoss",
    "BatchAllTripletLoss",
    "BatchHardSoftMarginTripletLoss",
    "BatchHardTripletLoss",
    "BatchHardTripletLossDistanceFunction",
    "BatchSemiHardTripletLoss",
    "CachedGISTEmbedLoss",
    "CachedMultipleNegativesRankingLoss",
    "CachedMultipleNegativesSymmetricRankingLoss",
    "CoSENTLoss",
    "ContrastiveLoss",
    "ContrastiveTensionDataLoader",
    "ContrastiveTensionLoss",
    "ContrastiveTensionLossInBatchNegatives",
    "CosineSimilarityLoss",
    "DenoisingAutoEncoderLoss",
    "DistillKLDivLoss",
    "EmbedDistillLoss",
    "GISTEmbedLoss",
    "GlobalOrthogonalRegularizationLoss",
    "MSELoss",
    "MarginMSELoss",
    "Matryoshka2dLoss",
    "MatryoshkaLoss",
    "MegaBatchMarginLoss",
    "MultipleNegativesRankingLoss",
    "MultipleNegativesSymmetricRankingLoss",
    "OnlineContrastiveLoss",
    "SiameseDistanceMetric",
    "SoftmaxLoss",
    "TripletDistanceMetric",
    "TripletLoss",
]


def __getattr__(name: str) -> Any:
    """Import a loss's module the first time the loss is used."""
    module_name = LOSS_MODULES.get(name)
    if module_name is None:
        raise AttributeError(f"module 'embedforge.sentence_transformer.losses' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"embedforge.sentence_transformer.losses.{module_name}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
