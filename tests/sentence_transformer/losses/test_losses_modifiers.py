"""Loss modifiers: MatryoshkaLoss, AdaptiveLayerLoss and Matryoshka2dLoss.

MatryoshkaLoss has three ways to compute the same thing: the fused prefix-cosine kernel (plain and
symmetric MNRL), the autograd prefix-cosine path (other MNRL options) and the generic per-dimension
path (any loss). Each is checked against the formula written out here, against the others, and
against sentence-transformers; the layer modifiers are checked against sentence-transformers on a
tiny BERT with Python's ``random`` seeded identically on both sides.
"""

from __future__ import annotations

import logging
import random
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from conftest import embedforge_static, random_sentences, st_static, static_weights
from embedforge.exceptions import InvalidArgumentError
from embedforge.sentence_transformer.losses import (
    AdaptiveLayerLoss,
    CoSENTLoss,
    Matryoshka2dLoss,
    MatryoshkaLoss,
    MultipleNegativesRankingLoss,
    MultipleNegativesSymmetricRankingLoss,
)
from embedforge.sentence_transformer.losses import matryoshka as matryoshka_module
from embedforge.util import cos_sim

BATCH = 5
WIDTH = 12
DIMS = [12, 8, 4, 2]
RTOL = 1e-4


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Any:
    """Tiny tensors: one intra-op thread beats contending for a busy machine's cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _quiet() -> Any:
    """The 'full dimension not in matryoshka_dims' warning and MNSRL's deprecation are expected here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        logging.disable(logging.WARNING)
        yield
        logging.disable(logging.NOTSET)


# -- stand-in model and reference formulas -----------------------------------------------------------


class LookupModel(nn.Module):
    """``sentence_embedding = table[ids]``; counts its forward calls."""

    def __init__(self, table: Tensor) -> None:
        super().__init__()
        self.table = nn.Parameter(table.clone())
        self.calls = 0

    def forward(self, features: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        return {**features, "sentence_embedding": self.table[features["ids"]]}

    def get_embedding_dimension(self) -> int:
        return self.table.shape[1]


def lookup_features(columns: int, batch: int = BATCH) -> list[dict[str, Tensor]]:
    return [{"ids": torch.arange(c * batch, (c + 1) * batch)} for c in range(columns)]


def fixed_table(columns: int, batch: int = BATCH, seed: int = 0) -> Tensor:
    return torch.randn(columns * batch, WIDTH, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def loss_and_grad(
    loss: nn.Module, model: LookupModel, columns: int, labels: Tensor | None = None
) -> tuple[float, Tensor]:
    model.zero_grad()
    value = loss(lookup_features(columns), labels)
    value.backward()
    return value.item(), model.table.grad.clone()


def unit(x: Tensor) -> Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def ref_mnrl(columns: list[Tensor], scale: float = 20.0, symmetric: bool = False) -> Tensor:
    """InfoNCE with in-batch negatives, row by row; ``symmetric`` averages in the positive->anchors softmax."""
    q, docs = columns[0], columns[1:]
    candidates = torch.cat(docs)
    losses = []
    for i in range(q.shape[0]):
        logits = torch.stack([(unit(q[i]) * unit(c)).sum() * scale for c in candidates])
        forward = torch.logsumexp(logits, dim=0) - logits[i]
        if symmetric:
            back = torch.stack([(unit(docs[0][i]) * unit(q[j])).sum() * scale for j in range(q.shape[0])])
            forward = 0.5 * forward + 0.5 * (torch.logsumexp(back, dim=0) - back[i])
        losses.append(forward)
    return torch.stack(losses).mean()


def ref_matryoshka(
    table: Tensor,
    columns: int,
    dims: list[int],
    weights: list[float],
    inner: Callable[[list[Tensor]], Tensor],
) -> tuple[float, Tensor]:
    """sum_d w_d * inner(unit(prefix_d of every column)), and its gradient with respect to the table."""
    leaf = table.clone().requires_grad_()
    parts = [leaf[c * BATCH : (c + 1) * BATCH] for c in range(columns)]
    value = sum(w * inner([unit(part[:, :d]) for part in parts]) for d, w in zip(dims, weights))
    value.backward()
    return value.item(), leaf.grad


def assert_close_grads(ours: Tensor, theirs: Tensor, rtol: float = RTOL) -> None:
    assert ours.norm().item() == pytest.approx(theirs.norm().item(), rel=rtol)
    scale = theirs.abs().max().item()
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=rtol, atol=rtol * scale)


class _Path:
    """Forces MatryoshkaLoss onto one of its three computation paths."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> None:
        self.saved = (matryoshka_module._fused_variant, matryoshka_module._prefix_cosine_applies)
        if self.name != "fused":
            matryoshka_module._fused_variant = lambda loss: None
        if self.name == "generic":
            matryoshka_module._prefix_cosine_applies = lambda loss: False

    def __exit__(self, *exc: object) -> None:
        matryoshka_module._fused_variant, matryoshka_module._prefix_cosine_applies = self.saved


# == MatryoshkaLoss against the formula, path by path ===============================================

MNRL_CASES = [
    (MultipleNegativesRankingLoss, {}, 2, False),
    (MultipleNegativesRankingLoss, {"scale": 7.0}, 3, False),
    (MultipleNegativesSymmetricRankingLoss, {}, 2, True),
    (
        MultipleNegativesRankingLoss,
        {"directions": ("query_to_doc", "doc_to_query"), "partition_mode": "per_direction"},
        3,
        True,
    ),
]


@pytest.mark.parametrize("path", ["fused", "autograd", "generic"])
@pytest.mark.parametrize(("loss_class", "options", "columns", "symmetric"), MNRL_CASES)
@pytest.mark.parametrize(
    ("dims", "weights"), [(DIMS, None), ([2, 12, 5, 8], [0.5, 2.0, 1.0, 3.0]), ([8, 4, 8], [1.0, 2.0, 0.5])]
)
def test_matryoshka_mnrl_matches_formula(
    path: str,
    loss_class: type,
    options: dict[str, Any],
    columns: int,
    symmetric: bool,
    dims: list[int],
    weights: list[float] | None,
) -> None:
    table = fixed_table(columns)
    model = LookupModel(table)
    loss = MatryoshkaLoss(model, loss_class(model, **options), dims, weights)
    with _Path(path):
        value, grad = loss_and_grad(loss, model, columns)
    scale = options.get("scale", 20.0)
    ref_value, ref_grad = ref_matryoshka(
        table, columns, dims, weights or [1.0] * len(dims), lambda cols: ref_mnrl(cols, scale, symmetric)
    )
    assert value == pytest.approx(ref_value, rel=1e-10)
    assert_close_grads(grad, ref_grad, rtol=1e-9)
    # One model pass per column, whatever the number of dimensions.
    assert model.calls == columns


@pytest.mark.parametrize("columns", [2, 3])
def test_matryoshka_float32_native_rows_match_torch_rows_and_formula(columns: int, monkeypatch: Any) -> None:
    """In float32 on the CPU the fused kernel's softmax and gradient passes run in Rust (one pass per
    matrix); forcing the torch chain instead, or computing the formula in float64, gives the same loss
    and gradient to float32 rounding."""
    table64 = fixed_table(columns, batch=40, seed=4) * 3.0
    table = table64.float()
    dims, weights = [12, 8, 4, 2], [1.0, 0.5, 2.0, 1.0]

    def run() -> tuple[float, Tensor]:
        model = LookupModel(table)
        loss = MatryoshkaLoss(model, MultipleNegativesRankingLoss(model), dims, weights)
        model.zero_grad()
        value = loss(lookup_features(columns, batch=40))
        value.backward()
        return value.item(), model.table.grad.clone()

    calls: list[bool] = []
    native = matryoshka_module._native_applies
    monkeypatch.setattr(matryoshka_module, "_native_applies", lambda *t: calls.append(native(*t)) or calls[-1])
    native_value, native_grad = run()
    assert calls and all(calls), "the float32 CPU case should take the Rust passes"
    monkeypatch.setattr(matryoshka_module, "_native_applies", lambda *t: False)
    torch_value, torch_grad = run()

    leaf = table64.clone().requires_grad_()
    parts = [leaf[c * 40 : (c + 1) * 40] for c in range(columns)]
    ref = sum(w * ref_mnrl([unit(part[:, :d]) for part in parts]) for d, w in zip(dims, weights))
    ref.backward()
    assert native_value == pytest.approx(torch_value, rel=1e-6)
    assert native_value == pytest.approx(ref.item(), rel=1e-5)
    assert_close_grads(native_grad, torch_grad, rtol=1e-5)
    assert_close_grads(native_grad.double(), leaf.grad, rtol=1e-4)


@pytest.mark.parametrize("path", ["autograd", "generic"])
@pytest.mark.parametrize(
    "options",
    [
        {"directions": ("query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc")},
        {"directions": ("query_to_doc", "doc_to_doc"), "partition_mode": "joint"},
        {"hardness_mode": "all_negatives", "hardness_strength": 3.0},
        {"hardness_mode": "hard_negatives", "hardness_strength": 2.0},
    ],
)
def test_matryoshka_prefix_path_matches_generic_for_other_mnrl_options(path: str, options: dict[str, Any]) -> None:
    """Options the fused kernel does not cover go through autograd prefix cosines: same as the per-dim path."""
    table = fixed_table(3, seed=4)
    results = {}
    for name in ("reference", path):
        model = LookupModel(table)
        inner = MultipleNegativesRankingLoss(model, **options)
        loss = MatryoshkaLoss(model, inner, DIMS, [1.0, 0.5, 2.0, 1.5])
        if name == "reference":
            # The inner loss on explicitly truncated, re-normalised embeddings, one dimension at a time.
            leaf = table.clone().requires_grad_()
            cols = [leaf[c * BATCH : (c + 1) * BATCH] for c in range(3)]
            value = sum(
                w * inner.compute_loss_from_embeddings([unit(col[:, :d]) for col in cols])
                for d, w in zip(DIMS, [1.0, 0.5, 2.0, 1.5])
            )
            value.backward()
            results[name] = (value.item(), leaf.grad)
        else:
            with _Path(path):
                results[name] = loss_and_grad(loss, model, 3)
    assert results[path][0] == pytest.approx(results["reference"][0], rel=1e-10)
    assert_close_grads(results[path][1], results["reference"][1], rtol=1e-9)


def test_matryoshka_dot_score_is_cosine_after_truncation() -> None:
    """Truncated embeddings are unit length, so MNRL with dot_score gives the cosine loss."""
    from embedforge.util import dot_score

    table = fixed_table(2)
    values = []
    for similarity in (cos_sim, dot_score):
        model = LookupModel(table)
        values.append(
            loss_and_grad(
                MatryoshkaLoss(model, MultipleNegativesRankingLoss(model, similarity_fct=similarity), DIMS), model, 2
            )
        )
    assert values[0][0] == pytest.approx(values[1][0], rel=1e-12)
    assert_close_grads(values[0][1], values[1][1], rtol=1e-10)


def test_matryoshka_generic_path_with_a_labelled_loss() -> None:
    """CoSENT (a label column, any loss): the per-dimension path against the written-out formula."""
    table = fixed_table(2, seed=2)
    labels = torch.tensor([0.1, 0.9, 0.4, 0.7, 0.2], dtype=torch.float64)
    model = LookupModel(table)
    loss = MatryoshkaLoss(model, CoSENTLoss(model), DIMS, [1, 2, 3, 4])
    value, grad = loss_and_grad(loss, model, 2, labels)

    def cosent(cols: list[Tensor]) -> Tensor:
        scores = (cols[0] * cols[1]).sum(-1) * 20.0
        diff = scores[:, None] - scores[None, :]
        diff = diff[labels[:, None] < labels[None, :]]
        return torch.logsumexp(torch.cat([torch.zeros(1, dtype=diff.dtype), diff]), dim=0)

    ref_value, ref_grad = ref_matryoshka(table, 2, DIMS, [1, 2, 3, 4], cosent)
    assert value == pytest.approx(ref_value, rel=1e-10)
    assert_close_grads(grad, ref_grad, rtol=1e-9)
    assert model.calls == 2


def test_matryoshka_truncates_embedding_labels() -> None:
    """Labels shaped like embeddings (distillation targets) are cut to each dimension, un-normalised."""
    from embedforge.sentence_transformer.losses import MSELoss

    table = fixed_table(1, seed=5)
    target = torch.randn(BATCH, WIDTH, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    model = LookupModel(table)
    value, grad = loss_and_grad(MatryoshkaLoss(model, MSELoss(model), DIMS), model, 1, target)
    ref_value, ref_grad = ref_matryoshka(
        table, 1, DIMS, [1.0] * 4, lambda cols: ((cols[0] - target[:, : cols[0].shape[1]]) ** 2).mean()
    )
    assert value == pytest.approx(ref_value, rel=1e-10)
    assert_close_grads(grad, ref_grad, rtol=1e-9)


@pytest.mark.parametrize("path", ["fused", "generic"])
def test_matryoshka_n_dims_per_step_samples_with_python_random(path: str) -> None:
    """n_dims_per_step draws ``random.sample(range(len(dims)), n)`` (sorted), as sentence-transformers does."""
    table = fixed_table(2, seed=6)
    weights = [1.0, 2.0, 3.0, 4.0]
    for seed in range(4):
        model = LookupModel(table)
        loss = MatryoshkaLoss(model, MultipleNegativesRankingLoss(model), DIMS, weights, n_dims_per_step=2)
        random.seed(seed)
        with _Path(path):
            value, grad = loss_and_grad(loss, model, 2)
        random.seed(seed)
        chosen = sorted(random.sample(range(4), 2))
        ref_value, ref_grad = ref_matryoshka(
            table, 2, [DIMS[i] for i in chosen], [weights[i] for i in chosen], ref_mnrl
        )
        assert value == pytest.approx(ref_value, rel=1e-10)
        assert_close_grads(grad, ref_grad, rtol=1e-9)


def test_matryoshka_dims_sorted_and_config() -> None:
    model = LookupModel(fixed_table(2))
    loss = MatryoshkaLoss(model, MultipleNegativesRankingLoss(model), [4, 12, 8], [0.5, 1, 2], n_dims_per_step=2)
    assert loss.get_config_dict() == {
        "loss": "MultipleNegativesRankingLoss",
        "matryoshka_dims": (12, 8, 4),
        "matryoshka_weights": (1, 2, 0.5),
        "n_dims_per_step": 2,
    }
    assert "kusupati2024matryoshka" in loss.citation and "2205.13147" in loss.citation
    default = MatryoshkaLoss(model, MultipleNegativesRankingLoss(model), [12, 4])
    assert default.matryoshka_weights == (1, 1)


def test_matryoshka_model_forward_restored() -> None:
    model = LookupModel(fixed_table(2))
    loss = MatryoshkaLoss(model, CoSENTLoss(model), DIMS)
    loss(lookup_features(2), torch.rand(BATCH, dtype=torch.float64))
    assert "forward" not in model.__dict__


def test_matryoshka_rejects_bad_arguments_and_inputs() -> None:
    model = LookupModel(fixed_table(2))
    inner = MultipleNegativesRankingLoss(model)
    with pytest.raises(InvalidArgumentError, match="at least one dimension in matryoshka_dims"):
        MatryoshkaLoss(model, inner, [])
    with pytest.raises(InvalidArgumentError, match="> 0"):
        MatryoshkaLoss(model, inner, [12, 0])
    with pytest.raises(InvalidArgumentError, match="same length"):
        MatryoshkaLoss(model, inner, [12, 4], [1.0])
    with pytest.raises(InvalidArgumentError, match="exceed the model's embedding dimension of 12"):
        MatryoshkaLoss(model, inner, [16, 4])
    loss = MatryoshkaLoss(model, inner, DIMS)
    for path in ("fused", "generic"):
        with _Path(path):
            with pytest.raises(InvalidArgumentError, match="MultipleNegativesRankingLoss needs at least 2"):
                loss(lookup_features(1), None)
            # Labels are ignored, as in sentence-transformers.
            torch.testing.assert_close(loss(lookup_features(2), torch.ones(BATCH)), loss(lookup_features(2), None))
    with pytest.raises(InvalidArgumentError, match="MatryoshkaLoss needs at least 1 text column"):
        loss([], None)
    assert "forward" not in model.__dict__


# == sentence-transformers parity on a tiny StaticEmbedding model ===================================


def st_losses() -> Any:
    pytest.importorskip("sentence_transformers")
    from sentence_transformers.sentence_transformer import losses

    return losses


def text_columns(columns: int, batch: int = 6, seed: int = 3) -> list[list[str]]:
    return [random_sentences(batch, seed=seed + c, min_words=2, max_words=8) for c in range(columns)]


def run_texts(loss: nn.Module, model: Any, texts: list[list[str]], labels: Tensor | None, seed: int) -> float:
    model.zero_grad()
    features = [
        model.preprocess(column) if hasattr(model, "preprocess") else model.tokenize(column) for column in texts
    ]
    random.seed(seed)
    value = loss(features, labels)
    value.backward()
    return value.item()


def static_parity(
    make_ours: Callable[[Any], nn.Module],
    make_theirs: Callable[[Any], nn.Module],
    columns: int,
    labels: Tensor | None = None,
    path: str = "fused",
) -> None:
    weights, texts = static_weights(dim=16), text_columns(columns)
    ours_model, theirs_model = embedforge_static(weights), st_static(weights)
    for seed in range(3):
        with _Path(path):
            ours_value = run_texts(make_ours(ours_model), ours_model, texts, labels, seed)
        theirs_value = run_texts(make_theirs(theirs_model), theirs_model, texts, labels, seed)
        assert ours_value == pytest.approx(theirs_value, rel=RTOL)
        assert_close_grads(ours_model[0].embedding.weight.grad, theirs_model[0].embedding.weight.grad)


@pytest.mark.parametrize("path", ["fused", "autograd", "generic"])
@pytest.mark.parametrize(
    ("dims", "weights", "n_dims_per_step"),
    [([16, 8, 4, 2], None, -1), ([4, 16, 8], [2.0, 1.0, 0.5], -1), ([16, 8, 4, 2], [1, 2, 3, 4], 2)],
)
def test_matryoshka_mnrl_parity_with_sentence_transformers(
    path: str, dims: list[int], weights: list[float] | None, n_dims_per_step: int
) -> None:
    losses = st_losses()
    static_parity(
        lambda m: MatryoshkaLoss(m, MultipleNegativesRankingLoss(m), dims, weights, n_dims_per_step),
        lambda m: losses.MatryoshkaLoss(m, losses.MultipleNegativesRankingLoss(m), dims, weights, n_dims_per_step),
        columns=3,
        path=path,
    )


@pytest.mark.parametrize("path", ["fused", "generic"])
def test_matryoshka_symmetric_parity_with_sentence_transformers(path: str) -> None:
    losses = st_losses()
    static_parity(
        lambda m: MatryoshkaLoss(m, MultipleNegativesSymmetricRankingLoss(m, scale=10.0), [16, 8, 2]),
        lambda m: losses.MatryoshkaLoss(m, losses.MultipleNegativesSymmetricRankingLoss(m, scale=10.0), [16, 8, 2]),
        columns=2,
        path=path,
    )


def test_matryoshka_cosent_parity_with_sentence_transformers() -> None:
    losses = st_losses()
    labels = torch.tensor([0.2, 0.8, 0.5, 0.1, 0.9, 0.4])
    static_parity(
        lambda m: MatryoshkaLoss(m, CoSENTLoss(m), [16, 8, 4], [1, 0.5, 0.25], n_dims_per_step=2),
        lambda m: losses.MatryoshkaLoss(m, losses.CoSENTLoss(m), [16, 8, 4], [1, 0.5, 0.25], n_dims_per_step=2),
        columns=2,
        labels=labels,
    )


def test_matryoshka_training_lowers_loss() -> None:
    model = embedforge_static(static_weights(1, dim=16))
    loss = MatryoshkaLoss(model, MultipleNegativesRankingLoss(model), [16, 8, 4])
    texts = text_columns(2, batch=8, seed=11)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    values = []
    for _ in range(15):
        optimizer.zero_grad()
        value = loss([model.preprocess(column) for column in texts], None)
        value.backward()
        optimizer.step()
        values.append(value.item())
    assert values[-1] < values[0] * 0.8, values


# == AdaptiveLayerLoss and Matryoshka2dLoss on a tiny BERT ==========================================


def bert_pair(folder: Path) -> tuple[Any, Any]:
    """The same 2-layer BERT + mean pooling in both libraries, dropout off so both passes agree."""
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import SentenceTransformer as StModel

    from embedforge import SentenceTransformer

    ours, theirs = SentenceTransformer(str(folder), device="cpu"), StModel(str(folder), device="cpu")
    ours.eval()
    theirs.eval()
    return ours, theirs


def bert_grad(model: Any) -> Tensor:
    return model[0].auto_model.embeddings.word_embeddings.weight.grad


def bert_parity(
    folder: Path,
    make_ours: Callable[[Any], nn.Module],
    make_theirs: Callable[[Any], nn.Module],
    columns: int = 2,
    labels: Tensor | None = None,
    seeds: range = range(4),
) -> None:
    ours_model, theirs_model = bert_pair(folder)
    texts = text_columns(columns, batch=5, seed=21)
    ours_loss, theirs_loss = make_ours(ours_model), make_theirs(theirs_model)
    for seed in seeds:
        ours_value = run_texts(ours_loss, ours_model, texts, labels, seed)
        ours_state = random.getstate()
        theirs_value = run_texts(theirs_loss, theirs_model, texts, labels, seed)
        # The same draws from Python's random, in the same order.
        assert random.getstate() == ours_state
        assert ours_value == pytest.approx(theirs_value, rel=RTOL)
        assert_close_grads(bert_grad(ours_model), bert_grad(theirs_model))
    assert "forward" not in ours_model.__dict__ and "forward" not in ours_model[0].__dict__


ADAPTIVE_OPTIONS = [
    {},
    {"n_layers_per_step": -1, "layer_weighting": "log", "kl_temperature": 0.5, "kl_div_weight": 2.0},
    {"n_layers_per_step": 2, "layer_weighting": "linear", "last_layer_weight": 0.5, "prior_layers_weight": 3.0},
    {"kl_temperature": 0.0},
]


@pytest.mark.parametrize("options", ADAPTIVE_OPTIONS)
def test_adaptive_layer_parity_with_sentence_transformers(tiny_bert_dir: Path, options: dict[str, Any]) -> None:
    losses = st_losses()
    bert_parity(
        tiny_bert_dir,
        lambda m: AdaptiveLayerLoss(m, MultipleNegativesRankingLoss(m), **options),
        lambda m: losses.AdaptiveLayerLoss(m, losses.MultipleNegativesRankingLoss(m), **options),
    )


def test_adaptive_layer_with_cosent_parity(tiny_bert_dir: Path) -> None:
    losses = st_losses()
    labels = torch.tensor([0.2, 0.8, 0.5, 0.1, 0.9])
    bert_parity(
        tiny_bert_dir,
        lambda m: AdaptiveLayerLoss(m, CoSENTLoss(m), layer_weighting=lambda i: 0.5 + i),
        lambda m: losses.AdaptiveLayerLoss(m, losses.CoSENTLoss(m), layer_weighting=lambda i: 0.5 + i),
        labels=labels,
    )


@pytest.mark.parametrize(
    "options",
    [{}, {"n_dims_per_step": -1, "n_layers_per_step": -1}, {"n_dims_per_step": 2, "matryoshka_weights": [1, 2, 3]}],
)
def test_matryoshka_2d_parity_with_sentence_transformers(tiny_bert_dir: Path, options: dict[str, Any]) -> None:
    losses = st_losses()
    bert_parity(
        tiny_bert_dir,
        lambda m: Matryoshka2dLoss(m, MultipleNegativesRankingLoss(m), [32, 16, 8], **options),
        lambda m: losses.Matryoshka2dLoss(m, losses.MultipleNegativesRankingLoss(m), [32, 16, 8], **options),
        columns=3,
    )


def test_adaptive_layer_matches_formula(tiny_bert_dir: Path) -> None:
    """Final-layer loss + mean of the sampled layers' losses + KL(final || layer), written out by hand."""
    from embedforge import SentenceTransformer

    model = SentenceTransformer(str(tiny_bert_dir), device="cpu")
    model.eval()
    texts = text_columns(2, batch=5, seed=8)
    features = [model.preprocess(column) for column in texts]
    loss = AdaptiveLayerLoss(model, MultipleNegativesRankingLoss(model), n_layers_per_step=-1, kl_temperature=0.4)
    value = loss([dict(f) for f in features], None).item()

    def pooled(column: dict[str, Tensor], layer: int) -> Tensor:
        inputs = {k: column[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in column}
        hidden = model[0].auto_model(**inputs, output_hidden_states=True).hidden_states[layer]
        mask = column["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)

    with torch.no_grad():
        layers = len(model[0].auto_model.encoder.layer) + 1
        per_layer = [[pooled(column, layer) for column in features] for layer in range(layers)]
        total = ref_mnrl(per_layer[-1])
        teacher = F.softmax(torch.cat(per_layer[-1]) / 0.4, dim=-1)
        for layer in range(layers - 1):
            total = total + ref_mnrl(per_layer[layer]) / (layers - 1)
            student = F.log_softmax(torch.cat(per_layer[layer]) / 0.4, dim=-1)
            kl = (teacher * (teacher.log() - student)).sum() / student.shape[0]
            total = total + kl * 0.4
    assert value == pytest.approx(total.item(), rel=RTOL)


def test_adaptive_layer_training_lowers_loss(tiny_bert_dir: Path) -> None:
    from embedforge import SentenceTransformer

    model = SentenceTransformer(str(tiny_bert_dir), device="cpu")
    model.eval()
    loss = Matryoshka2dLoss(
        model, MultipleNegativesRankingLoss(model), [32, 16], n_layers_per_step=-1, n_dims_per_step=-1
    )
    texts = text_columns(2, batch=6, seed=13)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    values = []
    for _ in range(12):
        optimizer.zero_grad()
        value = loss([model.preprocess(column) for column in texts], None)
        value.backward()
        optimizer.step()
        values.append(value.item())
    assert values[-1] < values[0] * 0.8, values


def test_adaptive_layer_config_citation_and_errors(tiny_bert_dir: Path) -> None:
    from embedforge import SentenceTransformer

    model = SentenceTransformer(str(tiny_bert_dir), device="cpu")
    loss = AdaptiveLayerLoss(model, MultipleNegativesRankingLoss(model), layer_weighting=lambda i: 1.0)
    assert loss.get_config_dict() == {
        "loss": "MultipleNegativesRankingLoss",
        "n_layers_per_step": 1,
        "last_layer_weight": 1.0,
        "prior_layers_weight": 1.0,
        "kl_div_weight": 1.0,
        "kl_temperature": 0.3,
        "layer_weighting": "<lambda>",
    }
    assert "li20242d" in loss.citation and "2402.14776" in loss.citation
    two_d = Matryoshka2dLoss(model, MultipleNegativesRankingLoss(model), [32, 16])
    assert two_d.get_config_dict() == {
        "loss": "MultipleNegativesRankingLoss",
        "n_layers_per_step": 1,
        "last_layer_weight": 1.0,
        "prior_layers_weight": 1.0,
        "kl_div_weight": 1.0,
        "kl_temperature": 0.3,
        "layer_weighting": "uniform",
        "matryoshka_dims": (32, 16),
        "matryoshka_weights": (1, 1),
        "n_dims_per_step": 1,
    }
    assert "li20242d" in two_d.citation
    with pytest.raises(InvalidArgumentError, match="layer_weighting is 'cubic'"):
        AdaptiveLayerLoss(model, MultipleNegativesRankingLoss(model), layer_weighting="cubic")  # type: ignore[arg-type]
    static = embedforge_static(static_weights(dim=16))
    with pytest.raises(InvalidArgumentError, match=r"first module is a Transformer.*StaticEmbedding"):
        AdaptiveLayerLoss(static, MultipleNegativesRankingLoss(static))
    with pytest.raises(InvalidArgumentError, match="MultipleNegativesRankingLoss needs at least 2"):
        loss([model.preprocess(["a b"])], None)
    assert "forward" not in model.__dict__ and "forward" not in model[0].__dict__


# == MatryoshkaLoss around gradient-caching losses ==================================================


@pytest.mark.parametrize("n_dims_per_step", [-1, 2])
def test_matryoshka_cached_mnrl_parity_and_uncached_equality(tiny_bert_dir: Path, n_dims_per_step: int) -> None:
    """Around CachedMNRL the truncation is applied to the cached embeddings: same result as uncached and as ST."""
    from embedforge.sentence_transformer.losses import CachedMultipleNegativesRankingLoss

    losses = st_losses()
    dims, weights = [32, 16, 8], [1.0, 2.0, 0.5]
    bert_parity(
        tiny_bert_dir,
        lambda m: MatryoshkaLoss(
            m, CachedMultipleNegativesRankingLoss(m, mini_batch_size=2), dims, weights, n_dims_per_step
        ),
        lambda m: losses.MatryoshkaLoss(
            m, losses.CachedMultipleNegativesRankingLoss(m, mini_batch_size=2), dims, weights, n_dims_per_step
        ),
        columns=3,
        seeds=range(2),
    )
    ours_model, _ = bert_pair(tiny_bert_dir)
    texts = text_columns(3, batch=5, seed=21)
    cached = MatryoshkaLoss(
        ours_model, CachedMultipleNegativesRankingLoss(ours_model, mini_batch_size=3), dims, weights, n_dims_per_step
    )
    cached_value = run_texts(cached, ours_model, texts, None, 7)
    cached_grad = bert_grad(ours_model).clone()
    plain = MatryoshkaLoss(ours_model, MultipleNegativesRankingLoss(ours_model), dims, weights, n_dims_per_step)
    plain_value = run_texts(plain, ours_model, texts, None, 7)
    assert cached_value == pytest.approx(plain_value, rel=RTOL)
    assert_close_grads(cached_grad, bert_grad(ours_model))


def test_matryoshka_cached_gist_parity(tiny_bert_dir: Path) -> None:
    """CachedGISTEmbedLoss: the model's embeddings are truncated per dimension, the guide's are not."""
    from embedforge import SentenceTransformer
    from embedforge.sentence_transformer.losses import CachedGISTEmbedLoss

    pytest.importorskip("sentence_transformers")
    from sentence_transformers import SentenceTransformer as StModel

    losses = st_losses()
    ours_guide = SentenceTransformer(str(tiny_bert_dir), device="cpu").eval()
    theirs_guide = StModel(str(tiny_bert_dir), device="cpu").eval()
    bert_parity(
        tiny_bert_dir,
        lambda m: MatryoshkaLoss(m, CachedGISTEmbedLoss(m, ours_guide, mini_batch_size=2), [32, 8]),
        lambda m: losses.MatryoshkaLoss(m, losses.CachedGISTEmbedLoss(m, theirs_guide, mini_batch_size=2), [32, 8]),
        columns=2,
        seeds=range(1),
    )


def test_adaptive_layer_warns_for_cached_losses(tiny_bert_dir: Path) -> None:
    from embedforge import SentenceTransformer
    from embedforge.sentence_transformer.losses import CachedMultipleNegativesRankingLoss

    model = SentenceTransformer(str(tiny_bert_dir), device="cpu")
    with pytest.warns(UserWarning, match="not compatible with CachedMultipleNegativesRankingLoss"):
        AdaptiveLayerLoss(model, CachedMultipleNegativesRankingLoss(model))
    with pytest.warns(UserWarning, match="not compatible with MatryoshkaLoss"):
        Matryoshka2dLoss(model, CachedMultipleNegativesRankingLoss(model), [32, 16])


@pytest.mark.parametrize("path", ["fused", "autograd", "generic"])
def test_matryoshka_evaluation_without_gradients(path: str) -> None:
    """Under no_grad (evaluation) every path gives the training value and builds no graph."""
    table = fixed_table(3, seed=12)
    model = LookupModel(table)
    loss = MatryoshkaLoss(model, MultipleNegativesRankingLoss(model), [12, 6, 3], [1.0, 0.5, 2.0])
    with _Path(path):
        trained, _ = loss_and_grad(loss, model, 3)
        with torch.no_grad():
            evaluated = loss(lookup_features(3), None)
    assert not evaluated.requires_grad
    assert evaluated.item() == pytest.approx(trained, rel=1e-12)
