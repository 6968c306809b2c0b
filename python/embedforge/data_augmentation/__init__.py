"""Augmented SBERT: a cross-encoder labels new sentence pairs ("silver" data) for a bi-encoder to train on.

The recipe of sentence-transformers' Augmented SBERT documentation, as functions to combine and as
one call per scenario:

- :func:`sample_pairs` (:func:`bm25_pairs`, :func:`semantic_pairs`, :func:`random_pairs`):
  recombine sentences into new pairs, never repeating a gold pair;
- :func:`label_pairs`: score them with a CrossEncoder; :func:`gold_and_silver` joins gold and silver;
- :func:`train_cross_encoder`, :func:`train_bi_encoder`: the two training steps;
- :func:`augment_in_domain` (few labelled pairs) and :func:`augment_domain_transfer` (labels only
  in another domain): the whole scenario, with metrics and time per stage;
- :func:`seed_search`: seed optimisation with early stopping;
- :class:`SynonymAugmenter`: synonym replacement in single sentences, from local resources.

``embedforge augment CONFIG`` runs a scenario from the command line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from embedforge._internal.lazy import lazy_attributes

if TYPE_CHECKING:
    from embedforge.data_augmentation.labeling import both_orders, gold_and_silver, label_pairs
    from embedforge.data_augmentation.pair_sampling import (
        STRATEGIES,
        PairSet,
        bm25_pairs,
        random_pairs,
        sample_pairs,
        semantic_pairs,
        unique_sentences,
    )
    from embedforge.data_augmentation.recipe import AugmentationReport, augment_domain_transfer, augment_in_domain
    from embedforge.data_augmentation.seed_optimization import SeedSearchResult, StopAfterStepsCallback, seed_search
    from embedforge.data_augmentation.synonyms import SynonymAugmenter, augment_dataset
    from embedforge.data_augmentation.training import TrainingSettings, train_bi_encoder, train_cross_encoder

# Names load on first use: the seed search needs transformers' Trainer classes, and the
# `embedforge` command imports this package's config pieces on every start.
__getattr__, __dir__ = lazy_attributes(
    __name__,
    {
        **dict.fromkeys(["both_orders", "gold_and_silver", "label_pairs"], "embedforge.data_augmentation.labeling"),
        **dict.fromkeys(
            [
                "STRATEGIES",
                "PairSet",
                "bm25_pairs",
                "random_pairs",
                "sample_pairs",
                "semantic_pairs",
                "unique_sentences",
            ],
            "embedforge.data_augmentation.pair_sampling",
        ),
        **dict.fromkeys(
            ["AugmentationReport", "augment_domain_transfer", "augment_in_domain"],
            "embedforge.data_augmentation.recipe",
        ),
        **dict.fromkeys(
            ["SeedSearchResult", "StopAfterStepsCallback", "seed_search"],
            "embedforge.data_augmentation.seed_optimization",
        ),
        **dict.fromkeys(["SynonymAugmenter", "augment_dataset"], "embedforge.data_augmentation.synonyms"),
        **dict.fromkeys(
            ["TrainingSettings", "train_bi_encoder", "train_cross_encoder"], "embedforge.data_augmentation.training"
        ),
    },
    globals(),
)

__all__ = [
    "STRATEGIES",
    "AugmentationReport",
    "PairSet",
    "SeedSearchResult",
    "StopAfterStepsCallback",
    "SynonymAugmenter",
    "TrainingSettings",
    "augment_dataset",
    "augment_domain_transfer",
    "augment_in_domain",
    "bm25_pairs",
    "both_orders",
    "gold_and_silver",
    "label_pairs",
    "random_pairs",
    "sample_pairs",
    "seed_search",
    "semantic_pairs",
    "train_bi_encoder",
    "train_cross_encoder",
    "unique_sentences",
]
