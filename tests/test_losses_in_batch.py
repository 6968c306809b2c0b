"""In-batch-negative losses: MNRL and friends, GIST, MegaBatchMargin, and their GradCache twins.

Every loss is checked four ways: against the formula written out here on fixed embeddings (value and
gradient), against sentence-transformers on the same tiny model, by a few optimiser steps, and on
bad input. The cached twins must match their uncached twins for every mini-batch size.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from conftest import WORDS, random_sentences
from embedforge.exceptions import InvalidArgumentError
from embedforge.losses import (
    MultipleNegativesRankingLoss,
    MultipleNegativesSymmetricRankingLoss,
)

BATCH = 5
DIM = 6
RTOL = 1e-4

# -- stand-in models --------------------------------------------------------------------------------


class _Vocab:
    """Just enough of a tokenizer for the GIST losses' vocabulary comparison."""

    def __init__(self, size: int) -> None:
        self.size = size

    def get_vocab(self) -> dict[str, int]:
        return {f"t{i}": i for i in range(self.size)}


class LookupModel(nn.Module):
    """``sentence_embedding = table[ids]`` (optionally through dropout); records every forward's row count."""

    def __init__(self, table: Tensor, dropout: float = 0.0) -> None:
        super().__init__()
        self.table = nn.Parameter(table.clone())
        self.dropout = nn.Dropout(dropout)
        self.calls: list[tuple[int, bool]] = []
        self.outputs: list[Tensor] = []
        self.tokenizer = _Vocab(table.shape[0])
        self.max_seq_length = 128

    def forward(self, features: dict[str, Any]) -> dict[str, Any]:
        ids = features["ids"]
        self.calls.append((ids.shape[0], torch.is_grad_enabled()))
        out = self.dropout(self.table[ids])
        self.outputs.append(out.detach().clone())
        return {**features, "sentence_embedding": out}


def lookup_features(columns: int, batch: int = BATCH) -> list[dict[str, Tensor]]:
    """Column ``c`` row ``i`` looks up table row ``c * batch + i``."""
    return [{"ids": torch.arange(c * batch, (c + 1) * batch)} for c in range(columns)]


def fixed_table(columns: int, batch: int = BATCH, seed: int = 0) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(columns * batch, DIM, generator=generator, dtype=torch.float64)


def loss_and_grad(loss: nn.Module, model: LookupModel, features: list[dict[str, Tensor]]) -> tuple[float, Tensor]:
    model.zero_grad()
    value = loss(features, None)
    value.backward()
    return value.item(), model.table.grad.clone()


def reference_grad(formula: Callable[[Tensor], Tensor], table: Tensor) -> tuple[float, Tensor]:
    leaf = table.clone().requires_grad_()
    value = formula(leaf)
    value.backward()
    return value.item(), leaf.grad


def unit(x: Tensor) -> Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)


# -- reference formulas, written out row by row -----------------------------------------------------


def ref_mnrl(
    table: Tensor,
    columns: int,
    scale: float = 20.0,
    directions: tuple[str, ...] = ("query_to_doc",),
    partition_mode: str = "joint",
    hardness_mode: str | None = None,
    hardness_strength: float = 0.0,
    similarity: str = "cos",
    batch: int = BATCH,
) -> Tensor:
    q = table[:batch]
    docs = [table[c * batch : (c + 1) * batch] for c in range(1, columns)]

    def sim(a: Tensor, b: Tensor) -> Tensor:
        return (unit(a) * unit(b)).sum() if similarity == "cos" else (a * b).sum()

    losses = []
    for i in range(batch):
        groups: dict[str, list[Tensor]] = {d: [] for d in directions}
        positive = None
        for c, column in enumerate(docs):
            for j in range(batch):
                logit = sim(q[i], column[j]) * scale
                penalty_applies = (
                    (hardness_mode == "in_batch_negatives" and j != i)
                    or (hardness_mode == "hard_negatives" and j == i and c > 0)
                    or (hardness_mode == "all_negatives" and not (j == i and c == 0))
                )
                if hardness_strength > 0 and penalty_applies:
                    logit = logit + hardness_strength * sim(q[i], column[j]).detach()
                if c == 0 and j == i:
                    positive = logit
                groups["query_to_doc"].append(logit)
        if "query_to_query" in directions:
            groups["query_to_query"] += [sim(q[i], q[j]) * scale for j in range(batch) if j != i]
        if "doc_to_query" in directions:
            groups["doc_to_query"] += [sim(docs[0][i], q[j]) * scale for j in range(batch)]
        if "doc_to_doc" in directions:
            groups["doc_to_doc"] += [
                sim(docs[0][i], column[j]) * scale for column in docs for j in range(batch) if j != i
            ]
        if partition_mode == "joint":
            log_z = torch.logsumexp(torch.stack([x for g in groups.values() for x in g]), dim=0)
        else:
            log_z = sum(torch.logsumexp(torch.stack(g), dim=0) for g in groups.values()) / len(groups)
        losses.append(log_z - positive)
    return torch.stack(losses).mean()


# -- a tiny StaticEmbedding model in both libraries ------------------------------------------------


def word_level_tokenizer() -> Any:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    vocab = {"[UNK]": 0, **{word: i + 1 for i, word in enumerate(dict.fromkeys(WORDS))}}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return tokenizer


def static_weights(seed: int = 0, dim: int = 8) -> Tensor:
    vocab_size = word_level_tokenizer().get_vocab_size()
    return torch.randn(vocab_size, dim, generator=torch.Generator().manual_seed(seed))


def embedforge_static(weights: Tensor) -> Any:
    from embedforge import SentenceTransformer
    from embedforge.models import StaticEmbedding

    return SentenceTransformer(modules=[StaticEmbedding(word_level_tokenizer(), embedding_weights=weights.clone())])


def st_static(weights: Tensor) -> Any:
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import SentenceTransformer as StModel
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding as StStatic

    return StModel(modules=[StStatic(word_level_tokenizer(), embedding_weights=weights.clone())], device="cpu")


def text_columns(columns: int, batch: int = 6, seed: int = 3) -> list[list[str]]:
    return [random_sentences(batch, seed=seed + c, min_words=2, max_words=8) for c in range(columns)]


def static_grad(model: Any) -> Tensor:
    return model[0].embedding.weight.grad


def run_loss(loss: nn.Module, model: Any, texts: list[list[str]]) -> tuple[float, Tensor]:
    model.zero_grad()
    features = [
        model.preprocess(column) if hasattr(model, "preprocess") else model.tokenize(column) for column in texts
    ]
    value = loss(features, None)
    value.backward()
    return value.item(), model


def assert_close_grads(ours: Tensor, theirs: Tensor) -> None:
    assert ours.norm().item() == pytest.approx(theirs.norm().item(), rel=RTOL)
    scale = theirs.abs().max().item()
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=RTOL, atol=RTOL * scale)


def parity(
    make_ours: Callable[[Any], nn.Module], make_theirs: Callable[[Any], nn.Module], columns: int, seed: int = 0
) -> None:
    """Same static model, same texts: same loss and same embedding-weight gradient as sentence-transformers."""
    weights = static_weights(seed)
    texts = text_columns(columns)
    ours_model, theirs_model = embedforge_static(weights), st_static(weights)
    ours_value, _ = run_loss(make_ours(ours_model), ours_model, texts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        theirs_loss = make_theirs(theirs_model)
    theirs_value, _ = run_loss(theirs_loss, theirs_model, texts)
    assert ours_value == pytest.approx(theirs_value, rel=RTOL)
    assert_close_grads(static_grad(ours_model), static_grad(theirs_model))


def st_losses() -> Any:
    pytest.importorskip("sentence_transformers")
    from sentence_transformers.sentence_transformer import losses

    return losses


def train_lowers_loss(make_loss: Callable[[Any], nn.Module], columns: int, steps: int = 15) -> None:
    """A few Adam steps on a tiny static model must lower the loss on its training batch."""
    model = embedforge_static(static_weights(1))
    loss = make_loss(model)
    texts = text_columns(columns, batch=8, seed=11)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    values = []
    for _ in range(steps):
        optimizer.zero_grad()
        value = loss([model.preprocess(column) for column in texts], None)
        value.backward()
        optimizer.step()
        values.append(value.item())
    assert values[-1] < values[0] * 0.8, values


# == MultipleNegativesRankingLoss ====================================================================

MNRL_VARIANTS = [
    {},
    {"scale": 7.0},
    {"directions": ("query_to_doc", "doc_to_query"), "partition_mode": "per_direction"},
    {"directions": ("query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc")},
    {"directions": ("query_to_doc", "doc_to_doc")},
    {"hardness_mode": "in_batch_negatives", "hardness_strength": 9.0},
    {"hardness_mode": "hard_negatives", "hardness_strength": 5.0},
    {"hardness_mode": "all_negatives", "hardness_strength": 3.0, "directions": ("query_to_doc", "query_to_query")},
]


@pytest.mark.parametrize("columns", [2, 3, 4])
@pytest.mark.parametrize("options", MNRL_VARIANTS)
def test_mnrl_matches_formula(columns: int, options: dict[str, Any]) -> None:
    table = fixed_table(columns)
    model = LookupModel(table)
    value, grad = loss_and_grad(MultipleNegativesRankingLoss(model, **options), model, lookup_features(columns))
    expected, expected_grad = reference_grad(lambda t: ref_mnrl(t, columns, **options), table)
    assert value == pytest.approx(expected, rel=1e-10)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-9, atol=1e-12)


def test_mnrl_dot_product_similarity() -> None:
    from embedforge.util import dot_score

    table = fixed_table(3) * 0.3
    model = LookupModel(table)
    loss = MultipleNegativesRankingLoss(model, scale=1.0, similarity_fct=dot_score)
    value, grad = loss_and_grad(loss, model, lookup_features(3))
    expected, expected_grad = reference_grad(lambda t: ref_mnrl(t, 3, scale=1.0, similarity="dot"), table)
    assert value == pytest.approx(expected, rel=1e-10)
    torch.testing.assert_close(grad, expected_grad)
    assert loss.get_config_dict()["similarity_fct"] == "dot_score"


def test_mnrl_hand_computed_case() -> None:
    # Orthogonal unit vectors: cos(q_i, d_i) = 1 and 0 otherwise, so each row loses log(1 + (n-1) e^-s).
    table = torch.eye(4, dtype=torch.float64).repeat(2, 1)[:, :4]
    model = LookupModel(table)
    loss = MultipleNegativesRankingLoss(model, scale=2.0)
    value = loss(lookup_features(2, batch=4), None).item()
    assert value == pytest.approx(math.log(1 + 3 * math.exp(-2.0)))


@pytest.mark.parametrize("options", MNRL_VARIANTS)
def test_mnrl_parity_with_sentence_transformers(options: dict[str, Any]) -> None:
    losses = st_losses()
    parity(
        lambda m: MultipleNegativesRankingLoss(m, **options),
        lambda m: losses.MultipleNegativesRankingLoss(m, **options),
        columns=3,
    )


def test_mnrl_config_and_citation() -> None:
    model = LookupModel(fixed_table(2))
    loss = MultipleNegativesRankingLoss(model)
    assert loss.get_config_dict() == {
        "scale": 20.0,
        "similarity_fct": "cos_sim",
        "gather_across_devices": False,
        "directions": ("query_to_doc",),
        "partition_mode": "joint",
        "hardness_mode": None,
        "hardness_strength": 0.0,
    }
    assert "1807.03748" in loss.citation
    assert loss.temperature == pytest.approx(0.05)
    gte = MultipleNegativesRankingLoss(
        model, directions=("query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc")
    )
    assert "2308.03281" in gte.citation


def test_mnrl_training_lowers_loss() -> None:
    train_lowers_loss(lambda m: MultipleNegativesRankingLoss(m), columns=3)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"scale": 0.0}, "scale"),
        ({"directions": ()}, "directions"),
        ({"directions": ("doc_to_query",)}, "query_to_doc"),
        ({"directions": ("query_to_doc", "sideways")}, "sideways"),
        ({"partition_mode": "both"}, "partition_mode"),
        ({"partition_mode": "per_direction", "directions": ("query_to_doc", "doc_to_doc")}, "joint"),
        ({"hardness_mode": "hardest"}, "hardness_mode"),
        ({"hardness_strength": -1.0}, "hardness_strength"),
    ],
)
def test_mnrl_rejects_bad_arguments(options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        MultipleNegativesRankingLoss(LookupModel(fixed_table(2)), **options)


def test_mnrl_rejects_wrong_columns_and_labels() -> None:
    model = LookupModel(fixed_table(2))
    loss = MultipleNegativesRankingLoss(model)
    with pytest.raises(InvalidArgumentError, match=r"MultipleNegativesRankingLoss needs at least 2 text columns"):
        loss(lookup_features(1), None)
    with pytest.raises(InvalidArgumentError, match="no label column"):
        loss(lookup_features(2), torch.zeros(BATCH))
    with pytest.raises(InvalidArgumentError, match="at least 2"):
        loss.compute_loss_from_embeddings([torch.ones(3, 4)], None)


def test_mnrl_gather_across_devices_single_process_group(tmp_path: Path) -> None:
    """With a real (one-rank) process group the gather path runs and changes nothing."""
    import torch.distributed as dist

    if not dist.is_available():
        pytest.skip("torch.distributed is not available")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        table = fixed_table(3)
        model = LookupModel(table)
        options = {"directions": ("query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc")}
        loss = MultipleNegativesRankingLoss(model, gather_across_devices=True, **options)
        value, grad = loss_and_grad(loss, model, lookup_features(3))
    finally:
        dist.destroy_process_group()
    expected, expected_grad = reference_grad(lambda t: ref_mnrl(t, 3, **options), table)
    assert value == pytest.approx(expected, rel=1e-10)
    torch.testing.assert_close(grad, expected_grad)


# == MultipleNegativesSymmetricRankingLoss ===========================================================


@pytest.mark.parametrize("columns", [2, 3])
def test_symmetric_matches_formula(columns: int) -> None:
    table = fixed_table(columns, seed=4)
    model = LookupModel(table)
    with pytest.warns(DeprecationWarning):
        loss = MultipleNegativesSymmetricRankingLoss(model, scale=10.0)
    value, grad = loss_and_grad(loss, model, lookup_features(columns))
    symmetric = {"directions": ("query_to_doc", "doc_to_query"), "partition_mode": "per_direction", "scale": 10.0}
    expected, expected_grad = reference_grad(lambda t: ref_mnrl(t, columns, **symmetric), table)
    assert value == pytest.approx(expected, rel=1e-10)
    torch.testing.assert_close(grad, expected_grad)


def test_symmetric_parity_with_sentence_transformers() -> None:
    losses = st_losses()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        parity(
            lambda m: MultipleNegativesSymmetricRankingLoss(m, scale=15.0),
            lambda m: losses.MultipleNegativesSymmetricRankingLoss(m, scale=15.0),
            columns=2,
        )


def test_symmetric_training_and_errors() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        train_lowers_loss(lambda m: MultipleNegativesSymmetricRankingLoss(m), columns=2)
        loss = MultipleNegativesSymmetricRankingLoss(LookupModel(fixed_table(2)))
    assert loss.get_config_dict()["partition_mode"] == "per_direction"
    assert "2310.19923" in loss.citation
    with pytest.raises(InvalidArgumentError, match="MultipleNegativesSymmetricRankingLoss needs"):
        loss(lookup_features(1), None)
