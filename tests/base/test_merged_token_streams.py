"""StaticEmbedding columns embedded in one lookup: same vectors and gradients as one lookup per column."""

from __future__ import annotations

import pytest
import torch

from conftest import embedforge_static, static_weights, word_level_tokenizer
from embedforge import SentenceTransformer
from embedforge.base.losses.merged_forward import embed_columns, merge_token_streams
from embedforge.sentence_transformer.modules import Dropout, Router, StaticEmbedding

ANCHORS = ["the cat sat", "a dog", "", "the bird flew over the house"]
POSITIVES = ["cat", "the dog barked loudly", "a bird", "house"]


def _columns(model: SentenceTransformer) -> list[dict[str, torch.Tensor]]:
    return [model.preprocess(ANCHORS), model.preprocess(POSITIVES)]


def _per_column(model: SentenceTransformer, columns: list[dict[str, torch.Tensor]]) -> list[torch.Tensor]:
    return [model(dict(column))["sentence_embedding"] for column in columns]


@pytest.mark.parametrize("sparse", [False, True])
def test_one_lookup_gives_each_column_its_own_vectors_and_gradient(sparse: bool) -> None:
    weights = static_weights(seed=3)
    merged_model, separate_model = embedforge_static(weights), embedforge_static(weights)
    for model in (merged_model, separate_model):
        model[0].sparse_gradients = sparse
    columns = _columns(merged_model)
    assert merge_token_streams(merged_model, columns) is not None

    merged = embed_columns(merged_model, columns)
    separate = _per_column(separate_model, _columns(separate_model))
    # A fixed, column-dependent objective, so each column's vectors get a different gradient.
    targets = [torch.randn(e.shape, generator=torch.Generator().manual_seed(i)) for i, e in enumerate(separate)]
    for embeddings in (merged, separate):
        sum((e * t).sum() for e, t in zip(embeddings, targets)).backward()

    for ours, reference in zip(merged, separate):
        torch.testing.assert_close(ours, reference, rtol=0, atol=0)
    merged_grad = merged_model[0].embedding.weight.grad
    separate_grad = separate_model[0].embedding.weight.grad
    assert merged_grad.is_sparse == sparse
    torch.testing.assert_close(merged_grad.to_dense(), separate_grad.to_dense(), rtol=1e-6, atol=1e-7)


def test_no_merge_when_dropout_draws_or_a_router_routes() -> None:
    weights = static_weights(seed=1)
    with_dropout = SentenceTransformer(
        modules=[StaticEmbedding(word_level_tokenizer(), embedding_weights=weights.clone()), Dropout(0.1)]
    )
    with_dropout.train()
    assert merge_token_streams(with_dropout, _columns(with_dropout)) is None
    # In eval mode the dropout draws nothing, so the merge is safe again.
    with_dropout.eval()
    assert merge_token_streams(with_dropout, _columns(with_dropout)) is not None

    static = StaticEmbedding(word_level_tokenizer(), embedding_weights=weights.clone())
    routed = SentenceTransformer(modules=[Router.for_query_document(query_modules=[static], document_modules=[static])])
    plain = embedforge_static(weights)
    assert merge_token_streams(routed, _columns(plain)) is None


def test_no_merge_for_a_single_column_or_extra_features() -> None:
    model = embedforge_static(static_weights())
    anchors, positives = _columns(model)
    assert merge_token_streams(model, [anchors]) is None
    assert merge_token_streams(model, [anchors, {**positives, "task": "query"}]) is None
