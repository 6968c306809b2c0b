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

from conftest import embedforge_static, random_sentences, st_static, static_weights
from embedforge.exceptions import InvalidArgumentError
from embedforge.sentence_transformer.losses import (
    CachedGISTEmbedLoss,
    CachedMultipleNegativesRankingLoss,
    CachedMultipleNegativesSymmetricRankingLoss,
    GISTEmbedLoss,
    MegaBatchMarginLoss,
    MultipleNegativesRankingLoss,
    MultipleNegativesSymmetricRankingLoss,
)

BATCH = 5
DIM = 6
RTOL = 1e-4


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Any:
    """These tensors are tiny: one intra-op thread is faster than contending for a busy machine's cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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
    # Labels are ignored, as sentence-transformers' label-free losses do.
    torch.testing.assert_close(loss(lookup_features(2), torch.zeros(BATCH)), loss(lookup_features(2), None))
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


# == GradCache twins: shared checks =================================================================


def max_saved_numel(run: Callable[[], None]) -> int:
    """Largest tensor autograd saves for backward while ``run`` executes: a proxy for peak activation memory."""
    largest = 0

    def pack(tensor: Tensor) -> Tensor:
        nonlocal largest
        largest = max(largest, tensor.numel())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        run()
    return largest


def bert_pair(folder: Path) -> tuple[Any, Any]:
    """The same tiny BERT in embedforge and sentence-transformers, dropout off so both passes agree."""
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import SentenceTransformer as StModel

    from embedforge import SentenceTransformer

    ours, theirs = SentenceTransformer(str(folder), device="cpu"), StModel(str(folder), device="cpu")
    ours.eval()
    theirs.eval()
    return ours, theirs


def bert_grad(model: Any) -> Tensor:
    return model[0].auto_model.embeddings.word_embeddings.weight.grad


def bert_parity(folder: Path, make_ours: Callable[[Any], nn.Module], make_theirs: Callable[[Any], nn.Module]) -> None:
    ours_model, theirs_model = bert_pair(folder)
    texts = text_columns(3, batch=7, seed=21)
    ours_value, _ = run_loss(make_ours(ours_model), ours_model, texts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        theirs_loss = make_theirs(theirs_model)
    theirs_value, _ = run_loss(theirs_loss, theirs_model, texts)
    assert ours_value == pytest.approx(theirs_value, rel=RTOL)
    assert_close_grads(bert_grad(ours_model), bert_grad(theirs_model))


MINI_BATCH_SIZES = [1, 3, BATCH, BATCH + 4]


def assert_cached_matches(
    make_uncached: Callable[[nn.Module], nn.Module],
    make_cached: Callable[[nn.Module, int], nn.Module],
    columns: int,
    seed: int = 0,
) -> None:
    """Same loss and gradients as the uncached twin for every mini-batch size, and never a bigger model call."""
    table = fixed_table(columns, seed=seed)
    model = LookupModel(table)
    expected, expected_grad = loss_and_grad(make_uncached(model), model, lookup_features(columns))
    for mini_batch_size in MINI_BATCH_SIZES:
        model = LookupModel(table)
        value, grad = loss_and_grad(make_cached(model, mini_batch_size), model, lookup_features(columns))
        assert value == pytest.approx(expected, rel=1e-12), mini_batch_size
        torch.testing.assert_close(grad, expected_grad, rtol=1e-10, atol=1e-13)
        # Stage 1 without autograd, stage 3 with it, each mini-batch at most mini_batch_size rows.
        assert [grad_on for _, grad_on in model.calls] == [False] * (len(model.calls) // 2) + [True] * (
            len(model.calls) // 2
        )
        assert max(rows for rows, _ in model.calls) == min(mini_batch_size, BATCH)
        with torch.no_grad():
            assert make_cached(LookupModel(table), mini_batch_size)(lookup_features(columns), None).item() == (
                pytest.approx(expected, rel=1e-12)
            )


def assert_memory_follows_mini_batch(make_cached: Callable[[nn.Module, int], nn.Module], columns: int) -> None:
    """The largest tensor kept for backward scales with the mini-batch, not with the batch squared."""
    batch = 64
    table = torch.randn(columns * batch, DIM, generator=torch.Generator().manual_seed(5))
    sizes = {}
    for mini_batch_size in (4, 64):
        model = LookupModel(table)
        loss = make_cached(model, mini_batch_size)
        sizes[mini_batch_size] = max_saved_numel(lambda fn=loss: fn(lookup_features(columns, batch), None).backward())
    # Full-batch scoring saves at least one 64 x 64 score block. Four-row chunks save at most what scoring
    # 4 anchors against every candidate needs (4 x candidates x DIM for a broadcast cosine), or the batch's
    # embeddings themselves (candidates x DIM).
    assert sizes[4] <= 4 * batch * columns * DIM
    assert sizes[64] >= batch * batch
    assert sizes[64] >= 4 * sizes[4]


def assert_dropout_replayed(make_cached: Callable[[nn.Module, int], nn.Module], columns: int) -> None:
    """The re-embedding pass reproduces the first pass exactly, dropout masks included."""
    model = LookupModel(fixed_table(columns), dropout=0.5)
    loss = make_cached(model, 2)
    torch.manual_seed(0)
    loss(lookup_features(columns), None).backward()
    half = len(model.outputs) // 2
    for first, replay in zip(model.outputs[:half], model.outputs[half:]):
        torch.testing.assert_close(first, replay, rtol=0, atol=0)
    # Dropout really was active, or the comparison above would prove nothing.
    assert any((output == 0).any() for output in model.outputs[:half])


def assert_cached_rejects(make_cached: Callable[[nn.Module, int], nn.Module], name: str) -> None:
    with pytest.raises(
        InvalidArgumentError,
        match=f"{name} is not compatible with a SentenceTransformer model based on a StaticEmbedding",
    ):
        make_cached(embedforge_static(static_weights()), 4)
    with pytest.raises(InvalidArgumentError, match="mini_batch_size"):
        make_cached(LookupModel(fixed_table(2)), 0)
    loss = make_cached(LookupModel(fixed_table(2)), 2)
    with pytest.raises(InvalidArgumentError, match=f"{name} needs"):
        loss(lookup_features(1), None)
    # Labels are ignored, as sentence-transformers' label-free losses do.
    assert torch.isfinite(loss(lookup_features(2), torch.ones(BATCH)))


def cached_training_lowers_loss(make_cached: Callable[[nn.Module, int], nn.Module], columns: int) -> None:
    model = LookupModel(fixed_table(columns, batch=8, seed=9).float())
    loss = make_cached(model, 3)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    values = []
    for _ in range(15):
        optimizer.zero_grad()
        value = loss(lookup_features(columns, batch=8), None)
        value.backward()
        optimizer.step()
        values.append(value.item())
    assert values[-1] < values[0] * 0.8, values


def test_minibatch_ranges_and_slicing() -> None:
    from embedforge.base.losses.gradcache import minibatch_ranges, slice_features

    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    features = {"input_ids": mask * 7, "attention_mask": mask, "prompt_length": 2}
    assert minibatch_ranges(features, 3) == [(0, 3), (3, 4)]
    # Token budget 5: rows of 3+2 tokens fit, the 5-token row alone, then the last row.
    assert minibatch_ranges(features, 32, mini_batch_num_tokens=5) == [(0, 2), (2, 3), (3, 4)]
    assert minibatch_ranges(features, 32, mini_batch_num_tokens=2) == [(0, 1), (1, 2), (2, 3), (3, 4)]
    part = slice_features(features, 0, 2)
    # Trailing padding columns that no row of the slice uses are dropped; metadata passes through.
    assert part["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert part["input_ids"].shape == (2, 3)
    assert part["prompt_length"] == 2
    assert slice_features(features, 2, 4)["attention_mask"].shape == (2, 5)


# == CachedMultipleNegativesRankingLoss ==============================================================


def _cached_mnrl(options: dict[str, Any]) -> Callable[[nn.Module, int], nn.Module]:
    return lambda model, size: CachedMultipleNegativesRankingLoss(model, mini_batch_size=size, **options)


@pytest.mark.parametrize("columns", [2, 3])
@pytest.mark.parametrize("options", MNRL_VARIANTS)
def test_cached_mnrl_matches_uncached(columns: int, options: dict[str, Any]) -> None:
    assert_cached_matches(lambda m: MultipleNegativesRankingLoss(m, **options), _cached_mnrl(options), columns)


def test_cached_mnrl_memory_dropout_training_and_errors() -> None:
    assert_memory_follows_mini_batch(_cached_mnrl({}), columns=2)
    assert_dropout_replayed(_cached_mnrl({}), columns=3)
    cached_training_lowers_loss(_cached_mnrl({}), columns=3)
    assert_cached_rejects(_cached_mnrl({}), "CachedMultipleNegativesRankingLoss")


def test_cached_mnrl_config_and_delegation() -> None:
    loss = CachedMultipleNegativesRankingLoss(LookupModel(fixed_table(2)), scale=10.0, mini_batch_size=4)
    assert loss.get_config_dict() == {
        "scale": 10.0,
        "similarity_fct": "cos_sim",
        "mini_batch_size": 4,
        "mini_batch_num_tokens": None,
        "gather_across_devices": False,
        "directions": ("query_to_doc",),
        "partition_mode": "joint",
        "hardness_mode": None,
        "hardness_strength": 0.0,
    }
    loss.scale = 5.0
    assert loss.loss.scale == 5.0 and loss.temperature == pytest.approx(0.2)
    assert "2101.06983" in loss.citation
    assert loss.uses_gradient_cache


def test_cached_mnrl_parity_with_sentence_transformers(tiny_bert_dir: Path) -> None:
    losses = st_losses()
    options = {"directions": ("query_to_doc", "doc_to_query"), "hardness_mode": "all_negatives"}
    options["hardness_strength"] = 2.0
    bert_parity(
        tiny_bert_dir,
        lambda m: CachedMultipleNegativesRankingLoss(m, mini_batch_size=3, **options),
        lambda m: losses.CachedMultipleNegativesRankingLoss(m, mini_batch_size=3, **options),
    )


def test_cached_mnrl_on_bert_matches_uncached_with_token_budget(tiny_bert_dir: Path) -> None:
    """Real padded features: per-mini-batch trimming and token budgets leave loss and gradients unchanged."""
    from embedforge import SentenceTransformer

    texts = text_columns(3, batch=7, seed=21)
    results = []
    for make in (
        lambda m: MultipleNegativesRankingLoss(m),
        lambda m: CachedMultipleNegativesRankingLoss(m, mini_batch_size=2),
        lambda m: CachedMultipleNegativesRankingLoss(m, mini_batch_num_tokens=12),
    ):
        model = SentenceTransformer(str(tiny_bert_dir), device="cpu")
        model.eval()
        value, _ = run_loss(make(model), model, texts)
        results.append((value, bert_grad(model).clone()))
    for value, grad in results[1:]:
        assert value == pytest.approx(results[0][0], rel=1e-5)
        torch.testing.assert_close(grad, results[0][1], rtol=1e-4, atol=1e-6)


# == CachedMultipleNegativesSymmetricRankingLoss =====================================================


def _cached_symmetric(model: nn.Module, size: int) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return CachedMultipleNegativesSymmetricRankingLoss(model, scale=12.0, mini_batch_size=size)


def _symmetric(model: nn.Module) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return MultipleNegativesSymmetricRankingLoss(model, scale=12.0)


@pytest.mark.parametrize("columns", [2, 3])
def test_cached_symmetric_matches_uncached(columns: int) -> None:
    assert_cached_matches(_symmetric, _cached_symmetric, columns)


def test_cached_symmetric_memory_dropout_training_errors_and_parity(tiny_bert_dir: Path) -> None:
    assert_memory_follows_mini_batch(_cached_symmetric, columns=2)
    assert_dropout_replayed(_cached_symmetric, columns=2)
    cached_training_lowers_loss(_cached_symmetric, columns=2)
    assert_cached_rejects(_cached_symmetric, "CachedMultipleNegativesSymmetricRankingLoss")
    with pytest.warns(DeprecationWarning):
        CachedMultipleNegativesSymmetricRankingLoss(LookupModel(fixed_table(2)))
    losses = st_losses()
    bert_parity(
        tiny_bert_dir,
        lambda m: _cached_symmetric(m, 2),
        lambda m: losses.CachedMultipleNegativesSymmetricRankingLoss(m, scale=12.0, mini_batch_size=2),
    )


# == GISTEmbedLoss ===================================================================================


def ref_gist(
    table: Tensor,
    guide_table: Tensor,
    columns: int,
    temperature: float = 0.01,
    margin_strategy: str = "absolute",
    margin: float = 0.0,
    contrast_anchors: bool = True,
    contrast_positives: bool = True,
    masked: list[int] | None = None,
    batch: int = BATCH,
) -> Tensor:
    def split(t: Tensor) -> list[Tensor]:
        return [unit(t[c * batch : (c + 1) * batch]) for c in range(columns)]

    a, p, *negs = split(table)
    ga, gp, *gnegs = split(guide_table)
    losses = []
    for i in range(batch):
        positive = ga[i] @ gp[i]
        threshold = positive - margin if margin_strategy == "absolute" else positive - positive.abs() * margin
        logits = []
        pairs = [(a[i], p, ga[i], gp, True)]
        if contrast_anchors:
            pairs.append((a[i], a, ga[i], ga, False))
        if contrast_positives:
            pairs.append((p[i], p, gp[i], gp, False))
        pairs += [(a[i], n, ga[i], gn, False) for n, gn in zip(negs, gnegs)]
        for row, block, guide_row, guide_block, is_positive_block in pairs:
            for j in range(batch):
                keep = (is_positive_block and j == i) or guide_row @ guide_block[j] <= threshold
                if not keep and masked is not None:
                    masked.append(1)
                logits.append(row @ block[j] if keep else torch.tensor(-torch.inf, dtype=table.dtype))
        scores = torch.stack(logits) / temperature
        losses.append(torch.logsumexp(scores, dim=0) - scores[i])
    return torch.stack(losses).mean()


GIST_VARIANTS = [
    {},
    {"temperature": 0.05, "margin": 0.1},
    {"margin_strategy": "relative", "margin": 0.2, "temperature": 0.1},
    {"margin": -0.2, "contrast_anchors": False},
    {"contrast_positives": False, "temperature": 0.5},
]


def guide_table_for(table: Tensor) -> Tensor:
    # A guide that mostly agrees with the model, so its filtering removes some but not all candidates.
    return table + 0.8 * torch.randn(table.shape, generator=torch.Generator().manual_seed(7), dtype=table.dtype)


@pytest.mark.parametrize("columns", [2, 3])
@pytest.mark.parametrize("options", GIST_VARIANTS)
def test_gist_matches_formula(columns: int, options: dict[str, Any]) -> None:
    table = fixed_table(columns, seed=2)
    guide_table = guide_table_for(table)
    model, guide = LookupModel(table), LookupModel(guide_table)
    loss = GISTEmbedLoss(model, guide, **options)
    value, grad = loss_and_grad(loss, model, lookup_features(columns))
    masked: list[int] = []
    expected, expected_grad = reference_grad(
        lambda t: ref_gist(t, guide_table, columns, masked=masked, **options), table
    )
    assert value == pytest.approx(expected, rel=1e-10)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-9, atol=1e-12)
    assert masked, "the guide filtered nothing: the case does not exercise the filter"
    assert guide.table.grad is None


def test_gist_hand_computed_case() -> None:
    # Guide = model, two orthogonal pairs, no anchor/positive contrast: each row's only negative has
    # cos 0 < 1, so it stays; loss per row = log(1 + e^(-1/T)).
    table = torch.eye(2, dtype=torch.float64).repeat(2, 1)
    model, guide = LookupModel(table), LookupModel(table)
    loss = GISTEmbedLoss(model, guide, temperature=0.5, contrast_anchors=False, contrast_positives=False)
    value = loss(lookup_features(2, batch=2), None).item()
    assert value == pytest.approx(math.log(1 + math.exp(-2.0)))


@pytest.fixture(scope="module")
def guide_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second tiny BERT (other weights, same tokenizer) to act as the guide."""
    from transformers import BertConfig, BertModel

    from conftest import write_wordpiece_tokenizer

    folder = tmp_path_factory.mktemp("guide-bert")
    write_wordpiece_tokenizer(folder)
    vocab_size = len((folder / "vocab.txt").read_text(encoding="utf-8").splitlines())
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    torch.manual_seed(1)
    BertModel(config).save_pretrained(str(folder))
    return folder


def gist_parity(
    model_dir: Path,
    guide_dir: Path,
    make_ours: Callable[[Any, Any], nn.Module],
    make_theirs: Callable[[Any, Any], nn.Module],
    guide_max_length: int | None = None,
) -> None:
    ours_guide, theirs_guide = bert_pair(guide_dir)
    if guide_max_length is not None:
        ours_guide.max_seq_length = theirs_guide.max_seq_length = guide_max_length
    losses: list[nn.Module] = []
    bert_parity(
        model_dir,
        lambda m: losses.append(make_ours(m, ours_guide)) or losses[-1],
        lambda m: make_theirs(m, theirs_guide),
    )
    assert losses[0].must_retokenize == (guide_max_length is not None)


@pytest.mark.parametrize("guide_max_length", [None, 16])
def test_gist_parity_with_sentence_transformers(
    tiny_bert_dir: Path, guide_bert_dir: Path, guide_max_length: int | None
) -> None:
    losses = st_losses()
    options = {"temperature": 0.05, "margin": 0.05, "margin_strategy": "relative"}
    gist_parity(
        tiny_bert_dir,
        guide_bert_dir,
        lambda m, g: GISTEmbedLoss(m, g, **options),
        lambda m, g: losses.GISTEmbedLoss(m, g, **options),
        guide_max_length,
    )


def test_gist_training_lowers_loss() -> None:
    guide = embedforge_static(static_weights(seed=4))
    train_lowers_loss(lambda m: GISTEmbedLoss(m, guide, temperature=0.05), columns=3)


def test_gist_config_citation_and_errors(guide_bert_dir: Path) -> None:
    from embedforge import SentenceTransformer

    model, guide = LookupModel(fixed_table(2)), LookupModel(fixed_table(2, seed=1))
    loss = GISTEmbedLoss(model, guide)
    assert loss.get_config_dict() == {
        "guide": guide,
        "temperature": 0.01,
        "margin_strategy": "absolute",
        "margin": 0.0,
        "contrast_anchors": True,
        "contrast_positives": True,
        "gather_across_devices": False,
    }
    assert "2402.16829" in loss.citation
    with pytest.raises(InvalidArgumentError, match="margin_strategy"):
        GISTEmbedLoss(model, guide, margin_strategy="percent")
    with pytest.raises(InvalidArgumentError, match="GISTEmbedLoss needs 2 to 3 text columns"):
        loss(lookup_features(4), None)
    with pytest.raises(InvalidArgumentError, match="GISTEmbedLoss needs 2 to 3 text columns"):
        loss(lookup_features(1), None)
    torch.testing.assert_close(loss(lookup_features(2), torch.ones(BATCH)), loss(lookup_features(2), None))
    with pytest.raises(InvalidArgumentError, match="get_vocab"):
        GISTEmbedLoss(model, nn.Linear(2, 2))
    # A static model cannot be decoded back to text for a guide with another tokenizer.
    with pytest.raises(InvalidArgumentError, match="StaticEmbedding"):
        GISTEmbedLoss(embedforge_static(static_weights()), SentenceTransformer(str(guide_bert_dir), device="cpu"))


# == CachedGISTEmbedLoss =============================================================================


def _cached_gist(options: dict[str, Any], guide_table: Tensor) -> Callable[[nn.Module, int], nn.Module]:
    return lambda model, size: CachedGISTEmbedLoss(model, LookupModel(guide_table), mini_batch_size=size, **options)


@pytest.mark.parametrize("columns", [2, 3])
@pytest.mark.parametrize("options", GIST_VARIANTS)
def test_cached_gist_matches_uncached(columns: int, options: dict[str, Any]) -> None:
    guide_table = guide_table_for(fixed_table(columns, seed=2))
    assert_cached_matches(
        lambda m: GISTEmbedLoss(m, LookupModel(guide_table), **options),
        _cached_gist(options, guide_table),
        columns,
        seed=2,
    )


def test_cached_gist_many_negatives_matches_formula() -> None:
    table = fixed_table(4, seed=2)
    guide_table = guide_table_for(table)
    model = LookupModel(table)
    value, grad = loss_and_grad(_cached_gist({"margin": 0.1}, guide_table)(model, 2), model, lookup_features(4))
    expected, expected_grad = reference_grad(lambda t: ref_gist(t, guide_table, 4, margin=0.1), table)
    assert value == pytest.approx(expected, rel=1e-10)
    torch.testing.assert_close(grad, expected_grad)


def test_cached_gist_memory_dropout_training_errors_and_config() -> None:
    guide_tables = {columns: guide_table_for(fixed_table(columns)) for columns in (2, 3)}
    batch_guide = torch.randn(2 * 64, DIM, generator=torch.Generator().manual_seed(3))
    assert_memory_follows_mini_batch(_cached_gist({"temperature": 0.05}, batch_guide), columns=2)
    assert_dropout_replayed(_cached_gist({}, guide_tables[3]), columns=3)
    train_guide = guide_table_for(fixed_table(3, batch=8, seed=9)).float()
    cached_training_lowers_loss(_cached_gist({"temperature": 0.05}, train_guide), columns=3)
    assert_cached_rejects(_cached_gist({}, guide_tables[2]), "CachedGISTEmbedLoss")
    guide = LookupModel(guide_tables[2])
    loss = CachedGISTEmbedLoss(LookupModel(fixed_table(2)), guide, mini_batch_size=8)
    assert list(loss.get_config_dict()) == [
        "guide",
        "temperature",
        "mini_batch_size",
        "mini_batch_num_tokens",
        "margin_strategy",
        "margin",
        "contrast_anchors",
        "contrast_positives",
        "gather_across_devices",
    ]
    assert loss.get_config_dict()["guide"] is guide


@pytest.mark.parametrize("guide_max_length", [None, 16])
def test_cached_gist_parity_with_sentence_transformers(
    tiny_bert_dir: Path, guide_bert_dir: Path, guide_max_length: int | None
) -> None:
    losses = st_losses()
    options = {"temperature": 0.05, "margin": 0.05}
    gist_parity(
        tiny_bert_dir,
        guide_bert_dir,
        lambda m, g: CachedGISTEmbedLoss(m, g, mini_batch_size=3, **options),
        lambda m, g: losses.CachedGISTEmbedLoss(m, g, mini_batch_size=3, **options),
        guide_max_length,
    )


# == MegaBatchMarginLoss =============================================================================


def ref_mega_batch(
    table: Tensor, positive_margin: float = 0.8, negative_margin: float = 0.3, batch: int = BATCH
) -> Tensor:
    a, p = unit(table[:batch]), unit(table[batch : 2 * batch])
    losses = []
    for i in range(batch):
        hardest = max(a[i] @ p[j] for j in range(batch) if j != i)
        losses.append(torch.relu(positive_margin - a[i] @ p[i]) + torch.relu(hardest - negative_margin))
    return torch.stack(losses).mean()


MEGA_VARIANTS = [
    {},
    {"positive_margin": 0.5, "negative_margin": -0.2},
    {"positive_margin": 1.0, "negative_margin": 0.0},
]


@pytest.mark.parametrize("mini_batched", [False, True])
@pytest.mark.parametrize("options", MEGA_VARIANTS)
def test_mega_batch_margin_matches_formula(options: dict[str, Any], mini_batched: bool) -> None:
    table = fixed_table(2, seed=6)
    model = LookupModel(table)
    loss = MegaBatchMarginLoss(model, use_mini_batched_version=mini_batched, mini_batch_size=2, **options)
    value, grad = loss_and_grad(loss, model, lookup_features(2))
    expected, expected_grad = reference_grad(lambda t: ref_mega_batch(t, **options), table)
    assert expected > 0
    assert value == pytest.approx(expected, rel=1e-10)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-9, atol=1e-12)


def test_mega_batch_margin_hand_computed_case() -> None:
    # a0 = p0 = e0, a1 = p1 = e1: positives score 1 (no positive loss), the hardest negative scores 0.
    table = torch.eye(2, dtype=torch.float64).repeat(2, 1)
    loss = MegaBatchMarginLoss(LookupModel(table), use_mini_batched_version=False, negative_margin=-0.25)
    assert loss(lookup_features(2, batch=2), None).item() == pytest.approx(0.25)


@pytest.mark.parametrize("columns", [2])
def test_mega_batch_margin_cached_matches_uncached(columns: int) -> None:
    assert_cached_matches(
        lambda m: MegaBatchMarginLoss(m, use_mini_batched_version=False),
        lambda m, size: MegaBatchMarginLoss(m, mini_batch_size=size),
        columns,
        seed=6,
    )


def test_mega_batch_margin_parity_with_sentence_transformers(tiny_bert_dir: Path) -> None:
    losses = st_losses()
    options = {"positive_margin": 0.9, "negative_margin": 0.1}
    # The whole-batch version runs on a static model in both libraries; the mini-batched one on BERT.
    weights = static_weights(2)
    texts = text_columns(2)
    ours_model, theirs_model = embedforge_static(weights), st_static(weights)
    ours = run_loss(MegaBatchMarginLoss(ours_model, use_mini_batched_version=False, **options), ours_model, texts)[0]
    theirs_loss = losses.MegaBatchMarginLoss(theirs_model, use_mini_batched_version=False, **options)
    theirs = run_loss(theirs_loss, theirs_model, texts)[0]
    assert ours == pytest.approx(theirs, rel=RTOL) and ours > 0
    assert_close_grads(static_grad(ours_model), static_grad(theirs_model))

    ours_model, theirs_model = bert_pair(tiny_bert_dir)
    texts = text_columns(2, batch=7, seed=21)
    ours = run_loss(MegaBatchMarginLoss(ours_model, mini_batch_size=3, **options), ours_model, texts)[0]
    theirs = run_loss(losses.MegaBatchMarginLoss(theirs_model, mini_batch_size=3, **options), theirs_model, texts)[0]
    assert ours == pytest.approx(theirs, rel=RTOL)
    assert_close_grads(bert_grad(ours_model), bert_grad(theirs_model))


def test_mega_batch_margin_memory_dropout_training_errors_and_config() -> None:
    assert_memory_follows_mini_batch(lambda m, size: MegaBatchMarginLoss(m, mini_batch_size=size), columns=2)
    assert_dropout_replayed(lambda m, size: MegaBatchMarginLoss(m, mini_batch_size=size), columns=2)
    cached_training_lowers_loss(lambda m, size: MegaBatchMarginLoss(m, mini_batch_size=size), columns=2)
    train_lowers_loss(lambda m: MegaBatchMarginLoss(m, use_mini_batched_version=False), columns=2)
    with pytest.raises(InvalidArgumentError, match="use_mini_batched_version=False"):
        MegaBatchMarginLoss(embedforge_static(static_weights()))
    with pytest.raises(InvalidArgumentError, match="mini_batch_size"):
        MegaBatchMarginLoss(LookupModel(fixed_table(2)), mini_batch_size=-1)
    for mini_batched in (False, True):
        loss = MegaBatchMarginLoss(LookupModel(fixed_table(3)), use_mini_batched_version=mini_batched)
        assert loss.uses_gradient_cache is mini_batched
        with pytest.raises(InvalidArgumentError, match="MegaBatchMarginLoss expects exactly 2 input columns"):
            loss(lookup_features(3), None)
        torch.testing.assert_close(loss(lookup_features(2), torch.ones(BATCH)), loss(lookup_features(2), None))
    assert loss.get_config_dict() == {
        "positive_margin": 0.8,
        "negative_margin": 0.3,
        "mini_batch_size": 50,
        "mini_batch_num_tokens": None,
    }
    assert "P18-1042" in loss.citation


# == gather_across_devices with two real processes ===================================================

GATHER_BATCH = 3
GATHER_COLUMNS = 3
GATHER_MNRL = {
    "directions": ("query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc"),
    "hardness_mode": "all_negatives",
    "hardness_strength": 2.0,
}
GATHER_GIST = {"contrast_anchors": False, "margin": 0.1, "temperature": 0.1}


def _gather_worker(rank: int, world: int, rendezvous: str, out_dir: str) -> None:
    """One rank: score its own rows against every rank's candidates; sum the gradients over ranks."""
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world)
    full_batch = GATHER_BATCH * world
    table = fixed_table(GATHER_COLUMNS, batch=full_batch, seed=8)
    guide_table = guide_table_for(table)
    features = [
        {"ids": torch.arange(c * full_batch + rank * GATHER_BATCH, c * full_batch + (rank + 1) * GATHER_BATCH)}
        for c in range(GATHER_COLUMNS)
    ]
    makers = {
        "mnrl": lambda m: MultipleNegativesRankingLoss(m, gather_across_devices=True, **GATHER_MNRL),
        "cached_mnrl": lambda m: CachedMultipleNegativesRankingLoss(
            m, gather_across_devices=True, mini_batch_size=2, **GATHER_MNRL
        ),
        "gist": lambda m: GISTEmbedLoss(m, LookupModel(guide_table), gather_across_devices=True, **GATHER_GIST),
        "cached_gist": lambda m: CachedGISTEmbedLoss(
            m, LookupModel(guide_table), gather_across_devices=True, mini_batch_size=2, **GATHER_GIST
        ),
    }
    results = {}
    try:
        for name, make in makers.items():
            model = LookupModel(table)
            value, grad = loss_and_grad(make(model), model, features)
            dist.all_reduce(grad)
            results[name] = (value, grad)
    finally:
        dist.destroy_process_group()
    torch.save(results, f"{out_dir}/rank{rank}.pt")


def test_gather_across_devices_two_processes(tmp_path: Path) -> None:
    """Two gloo ranks with gathering give the full two-rank batch's loss (averaged) and gradient (summed)."""
    import torch.distributed as dist
    import torch.multiprocessing as mp

    if not dist.is_available():
        pytest.skip("torch.distributed is not available")
    world = 2
    # fork, not spawn: the workers need nothing but torch and this module, already loaded here, and
    # re-importing them in fresh interpreters would cost most of this file's time budget.
    start_method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    args = (world, str(tmp_path / "rendezvous"), str(tmp_path))
    mp.start_processes(_gather_worker, args=args, nprocs=world, join=True, start_method=start_method)
    ranks = [torch.load(tmp_path / f"rank{rank}.pt") for rank in range(world)]
    full_batch = GATHER_BATCH * world
    table = fixed_table(GATHER_COLUMNS, batch=full_batch, seed=8)
    guide_table = guide_table_for(table)
    references = {
        "mnrl": lambda t: ref_mnrl(t, GATHER_COLUMNS, batch=full_batch, **GATHER_MNRL),
        "gist": lambda t: ref_gist(t, guide_table, GATHER_COLUMNS, batch=full_batch, **GATHER_GIST),
    }
    for name in ("mnrl", "cached_mnrl", "gist", "cached_gist"):
        expected, expected_grad = reference_grad(references[name.removeprefix("cached_")], table)
        average = sum(result[name][0] for result in ranks) / world
        assert average == pytest.approx(expected, rel=1e-10), name
        for result in ranks:
            # The summed per-rank gradients are d(sum of rank losses) = world x d(full-batch mean loss).
            torch.testing.assert_close(result[name][1], world * expected_grad, rtol=1e-9, atol=1e-12)


def test_cached_backward_scales_with_outer_gradient() -> None:
    """Gradient accumulation or loss scaling multiplies the loss; the replayed gradients must follow."""
    table = fixed_table(3)
    model = LookupModel(table)
    _, expected_grad = loss_and_grad(MultipleNegativesRankingLoss(model), model, lookup_features(3))
    model = LookupModel(table)
    (CachedMultipleNegativesRankingLoss(model, mini_batch_size=2)(lookup_features(3), None) * 0.25).backward()
    torch.testing.assert_close(model.table.grad, 0.25 * expected_grad)
