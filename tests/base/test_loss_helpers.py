"""The shared loss helpers: which models have flat token inputs, and which losses cache gradients."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from embedforge import SentenceTransformer
from embedforge.base.losses import has_static_embedding_input, uses_gradient_cache
from embedforge.sentence_transformer.losses import CachedMultipleNegativesRankingLoss, MultipleNegativesRankingLoss
from embedforge.sentence_transformer.modules import Pooling, Router, StaticEmbedding, Transformer


def test_static_inputs_are_found_first_or_behind_a_router(tiny_bert_dir: Path) -> None:
    from conftest import word_level_tokenizer

    tokenizer = word_level_tokenizer()
    weights = np.ones((tokenizer.get_vocab_size(), 4), dtype=np.float32)
    static = StaticEmbedding(tokenizer, embedding_weights=weights)
    assert has_static_embedding_input(SentenceTransformer(modules=[static], device="cpu"))
    routed = Router.for_query_document(query_modules=[static], document_modules=[static])
    assert has_static_embedding_input(SentenceTransformer(modules=[routed], device="cpu"))
    transformer = Transformer(str(tiny_bert_dir))
    bert = SentenceTransformer(modules=[transformer, Pooling(transformer.get_embedding_dimension())], device="cpu")
    assert not has_static_embedding_input(bert)


def test_only_cached_losses_use_the_gradient_cache(tiny_bert_dir: Path) -> None:
    model = SentenceTransformer(str(tiny_bert_dir), device="cpu")
    assert uses_gradient_cache(CachedMultipleNegativesRankingLoss(model))
    assert not uses_gradient_cache(MultipleNegativesRankingLoss(model))
