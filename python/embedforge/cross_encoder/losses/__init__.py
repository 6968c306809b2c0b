"""Losses for training a CrossEncoder (``sentence_transformers.cross_encoder.losses``).

Each loss is called by the trainer as ``loss(inputs, labels, prompt=None, task=None)``: ``inputs`` are
the batch's non-label text columns (raw strings; the loss tokenises the (query, document) pairs with
``model.preprocess``), ``labels`` a tensor with one value per row or, for list-valued label columns, a
list of tensors. Pointwise losses take pairs, MultipleNegativesRankingLoss takes (anchor, positive,
negatives...) columns, and the listwise losses take a query column and a column of document lists.
"""

from __future__ import annotations

from embedforge.cross_encoder.losses.adr_mse import ADRMSELoss
from embedforge.cross_encoder.losses.binary_cross_entropy import BinaryCrossEntropyLoss
from embedforge.cross_encoder.losses.cached_multiple_negatives_ranking import CachedMultipleNegativesRankingLoss
from embedforge.cross_encoder.losses.cross_entropy import CrossEntropyLoss
from embedforge.cross_encoder.losses.lambda_loss import (
    LambdaLoss,
    LambdaRankScheme,
    NDCGLoss1Scheme,
    NDCGLoss2PPScheme,
    NDCGLoss2Scheme,
    NoWeightingScheme,
)
from embedforge.cross_encoder.losses.list_mle import ListMLELoss
from embedforge.cross_encoder.losses.list_net import ListNetLoss
from embedforge.cross_encoder.losses.margin_mse import MarginMSELoss
from embedforge.cross_encoder.losses.mse import MSELoss
from embedforge.cross_encoder.losses.multiple_negatives_ranking import MultipleNegativesRankingLoss
from embedforge.cross_encoder.losses.plist_mle import PListMLELambdaWeight, PListMLELoss
from embedforge.cross_encoder.losses.rank_net import RankNetLoss

__all__ = [
    "ADRMSELoss",
    "BinaryCrossEntropyLoss",
    "CachedMultipleNegativesRankingLoss",
    "CrossEntropyLoss",
    "LambdaLoss",
    "LambdaRankScheme",
    "ListMLELoss",
    "ListNetLoss",
    "MSELoss",
    "MarginMSELoss",
    "MultipleNegativesRankingLoss",
    "NDCGLoss1Scheme",
    "NDCGLoss2PPScheme",
    "NDCGLoss2Scheme",
    "NoWeightingScheme",
    "PListMLELambdaWeight",
    "PListMLELoss",
    "RankNetLoss",
]
