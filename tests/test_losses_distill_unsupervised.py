"""Distillation, regulariser and unsupervised losses: formulas, sentence-transformers parity, training, errors.

Fixed embeddings come from a static model over a word-level vocabulary ``w0 w1 ...``: the text
``"w3"`` embeds to row 3 of the weight matrix, so each reference below is the formula written out
in plain torch on a leaf copy of that matrix, and gradients are compared row by row.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from torch import Tensor

from conftest import random_sentences, write_wordpiece_tokenizer
from embedforge import SentenceTransformer
from embedforge.exceptions import InvalidArgumentError
from embedforge.losses import (
    DistillKLDivLoss,
    EmbedDistillLoss,
    MarginMSELoss,
    MSELoss,
)
from embedforge.models import StaticEmbedding
from embedforge.util import pairwise_cos_sim, pairwise_dot_score

VOCAB = 40
DIMS = 8

# -- helpers -------------------------------------------------------------------------------------


def word_tokenizer(size: int = VOCAB) -> Tokenizer:
    """Whitespace WordLevel tokenizer over ``w0 .. w{size-1}``: the text ``"w3"`` is the single token 3."""
    tokenizer = Tokenizer(models.WordLevel({f"w{i}": i for i in range(size)}, unk_token="w0"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return tokenizer


def fixed_weights(seed: int = 0, size: int = VOCAB, dims: int = DIMS) -> Tensor:
    return torch.randn(size, dims, generator=torch.Generator().manual_seed(seed))


def lookup_model(weights: Tensor) -> SentenceTransformer:
    """A model whose embedding of ``"w<i>"`` is exactly ``weights[i]``."""
    return SentenceTransformer(
        modules=[StaticEmbedding(word_tokenizer(len(weights)), embedding_weights=weights.clone())]
    )


def words(ids: list[int]) -> list[str]:
    return [f"w{i}" for i in ids]


def features_of(model: Any, columns: list[list[str]]) -> list[dict[str, Tensor]]:
    return [model.preprocess(column) for column in columns]


def weight_grad(model: Any) -> Tensor:
    grad = model[0].embedding.weight.grad
    assert grad is not None
    return grad


def check_against_reference(
    loss_factory: Callable[[SentenceTransformer], Any],
    reference: Callable[[list[Tensor], Tensor | None], Tensor],
    columns: list[list[int]],
    labels: Tensor | None,
    seed: int = 0,
) -> Tensor:
    """Our loss on the lookup model against ``reference(embeddings, labels)`` in plain torch: value and gradient."""
    weights = fixed_weights(seed)
    model = lookup_model(weights)
    loss = loss_factory(model)
    value = loss(features_of(model, [words(ids) for ids in columns]), labels)
    if isinstance(value, dict):
        value = sum(value.values())
    value.backward()

    leaf = weights.clone().requires_grad_(True)
    expected = reference([leaf[ids] for ids in columns], labels)
    expected.backward()
    torch.testing.assert_close(value.detach(), expected.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(weight_grad(model), leaf.grad, rtol=1e-4, atol=1e-6)
    return value.detach()


@pytest.fixture(scope="module")
def wordpiece_json(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("wordpiece")
    write_wordpiece_tokenizer(folder)
    return (folder / "tokenizer.json").read_text(encoding="utf-8")


def static_pair(tokenizer_json: str, dims: int = 16, seed: int = 3) -> tuple[SentenceTransformer, Any]:
    """The same StaticEmbedding model in embedforge and in sentence-transformers."""
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import SentenceTransformer as StModel
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding as StStatic

    tokenizer = Tokenizer.from_str(tokenizer_json)
    weights = torch.randn(tokenizer.get_vocab_size(), dims, generator=torch.Generator().manual_seed(seed)) * 0.5
    ours = SentenceTransformer(
        modules=[StaticEmbedding(Tokenizer.from_str(tokenizer_json), embedding_weights=weights.clone())]
    )
    theirs = StModel(
        modules=[StStatic(Tokenizer.from_str(tokenizer_json), embedding_weights=weights.clone())], device="cpu"
    )
    return ours, theirs


def assert_parity(
    ours_model: Any,
    theirs_model: Any,
    ours_loss: Any,
    theirs_loss: Any,
    columns: list[list[str]],
    labels: Tensor | None,
) -> None:
    """Loss value and embedding-weight gradient agree with sentence-transformers to 1e-4 relative."""
    values = []
    for model, loss in ((ours_model, ours_loss), (theirs_model, theirs_loss)):
        value = loss(features_of(model, columns), None if labels is None else labels.clone())
        if isinstance(value, dict):
            value = sum(value.values())
        value.backward()
        values.append(value.detach())
    torch.testing.assert_close(values[0], values[1], rtol=1e-4, atol=1e-7)
    ours_grad, theirs_grad = weight_grad(ours_model), weight_grad(theirs_model)
    assert ours_grad.abs().sum() > 0
    torch.testing.assert_close(ours_grad.norm(), theirs_grad.norm(), rtol=1e-4, atol=1e-8)
    torch.testing.assert_close(ours_grad, theirs_grad, rtol=1e-4, atol=1e-6)


def train_lowers_loss(
    loss_factory: Callable[[SentenceTransformer], Any],
    columns: list[list[str]],
    labels: Tensor | None,
    steps: int = 15,
    lr: float = 0.05,
    tokenizer_json: str | None = None,
) -> tuple[float, float]:
    """A few Adam steps on a tiny static model; returns the loss before and after."""
    if tokenizer_json is None:
        model = lookup_model(fixed_weights(5))
    else:
        tokenizer = Tokenizer.from_str(tokenizer_json)
        weights = torch.randn(tokenizer.get_vocab_size(), 16, generator=torch.Generator().manual_seed(5)) * 0.5
        model = SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_weights=weights)])
    loss = loss_factory(model)
    optimizer = torch.optim.Adam(loss.parameters(), lr=lr)
    history = []
    for _ in range(steps):
        optimizer.zero_grad()
        value = loss(features_of(model, columns), labels)
        if isinstance(value, dict):
            value = sum(value.values())
        value.backward()
        optimizer.step()
        history.append(value.item())
    return history[0], history[-1]


def batch_ids(rows: int, columns: int, seed: int) -> list[list[int]]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randint(1, VOCAB, (rows,), generator=generator).tolist() for _ in range(columns)]


# -- EmbedDistillLoss / MSELoss ------------------------------------------------------------------


def _distance(student: Tensor, teacher: Tensor, metric: str) -> Tensor:
    if metric == "mse":
        return ((student - teacher) ** 2).mean()
    if metric == "l2":
        return ((student - teacher) ** 2).sum(dim=-1).sqrt().mean()
    cosine = (student * teacher).sum(-1) / (student.norm(dim=-1) * teacher.norm(dim=-1))
    return (1 - cosine).mean()


@pytest.mark.parametrize("metric", ["mse", "l2", "cosine"])
@pytest.mark.parametrize("label_rank", [2, 3])
def test_embed_distill_matches_formula(metric: str, label_rank: int) -> None:
    columns = batch_ids(5, 3, seed=1)
    generator = torch.Generator().manual_seed(2)
    shape = (5, DIMS) if label_rank == 2 else (5, 3, DIMS)
    labels = torch.randn(*shape, generator=generator)

    def reference(embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        assert labels is not None
        targets = [labels if label_rank == 2 else labels[:, i] for i in range(len(embeddings))]
        terms = [_distance(e, t, metric) for e, t in zip(embeddings, targets)]
        return sum(terms) / len(terms)

    factory = (lambda m: MSELoss(m)) if metric == "mse" else (lambda m: EmbedDistillLoss(m, distance_metric=metric))
    check_against_reference(factory, reference, columns, labels)


def test_embed_distill_projection_matches_formula(tmp_path: Path) -> None:
    columns = batch_ids(4, 2, seed=3)
    labels = torch.randn(4, 2, 5, generator=torch.Generator().manual_seed(4))
    weights = fixed_weights(0)
    model = lookup_model(weights)
    torch.manual_seed(0)
    loss = EmbedDistillLoss(model, distance_metric="l2", projection_dim=5)
    assert loss.projection is not None and loss.projection.in_features == DIMS
    value = loss(features_of(model, [words(ids) for ids in columns]), labels)
    value.backward()
    leaf = weights.clone().requires_grad_(True)
    w, b = loss.projection.weight.detach(), loss.projection.bias.detach()
    expected = sum(_distance(leaf[ids] @ w.T + b, labels[:, i], "l2") for i, ids in enumerate(columns)) / 2
    expected.backward()
    torch.testing.assert_close(value.detach(), expected.detach())
    torch.testing.assert_close(weight_grad(model), leaf.grad)
    assert loss.projection.weight.grad is not None

    # The projection survives a save / load round trip into a loss built without one.
    loss.save_projection(tmp_path / "projection.safetensors")
    fresh = EmbedDistillLoss(model, distance_metric="l2")
    fresh.load_projection(tmp_path / "projection.safetensors")
    assert fresh.projection_dim == 5 and fresh.get_config_dict() == {"distance_metric": "l2", "projection_dim": 5}
    torch.testing.assert_close(fresh.projection.weight, loss.projection.weight)  # type: ignore[union-attr]
    with pytest.raises(InvalidArgumentError, match="maps 8 -> 5"):
        EmbedDistillLoss(model, projection_dim=3).load_projection(tmp_path / "projection.safetensors")
    with pytest.raises(InvalidArgumentError, match="no projection layer"):
        EmbedDistillLoss(model).save_projection(tmp_path / "none.safetensors")


@pytest.mark.parametrize("metric", ["mse", "l2", "cosine"])
def test_embed_distill_parity(metric: str, wordpiece_json: str) -> None:
    from sentence_transformers.sentence_transformer import losses as st_losses

    ours, theirs = static_pair(wordpiece_json)
    columns = [random_sentences(6, seed=1), random_sentences(6, seed=2)]
    labels = torch.randn(6, 2, 16, generator=torch.Generator().manual_seed(7))
    if metric == "mse":
        pair = MSELoss(ours), st_losses.MSELoss(theirs)
    else:
        pair = (
            EmbedDistillLoss(ours, distance_metric=metric),
            st_losses.EmbedDistillLoss(theirs, distance_metric=metric),
        )  # type: ignore[assignment]
    assert pair[0].get_config_dict() == pair[1].get_config_dict()
    assert_parity(ours, theirs, *pair, columns, labels)


def test_mse_training_lowers_loss() -> None:
    columns = [words(ids) for ids in batch_ids(8, 2, seed=9)]
    labels = torch.randn(8, DIMS, generator=torch.Generator().manual_seed(1))
    first, last = train_lowers_loss(lambda m: MSELoss(m), columns, labels)
    assert last < 0.5 * first


def test_embed_distill_errors() -> None:
    model = lookup_model(fixed_weights())
    feats = features_of(model, [words([1, 2]), words([3, 4])])
    with pytest.raises(InvalidArgumentError, match=r"MSELoss needs at least 1 text column and a label column"):
        MSELoss(model)(feats, None)
    with pytest.raises(InvalidArgumentError, match=r"3 teacher embeddings per row for 2 text columns"):
        MSELoss(model)(feats, torch.zeros(2, 3, DIMS))
    with pytest.raises(InvalidArgumentError, match=r"4-D tensor"):
        MSELoss(model)(feats, torch.zeros(2, 2, 1, DIMS))
    with pytest.raises(InvalidArgumentError, match=r"projection_dim=5"):
        EmbedDistillLoss(model)(feats, torch.zeros(2, 5))
    with pytest.raises(InvalidArgumentError, match=r"distance_metric must be one of"):
        EmbedDistillLoss(model, distance_metric="dot")  # type: ignore[arg-type]
    MSELoss(model).check_input_columns(["english", "french"], has_label=True)
    with pytest.raises(InvalidArgumentError, match=r"got text columns \['english'\] and no label"):
        MSELoss(model).check_input_columns(["english"], has_label=False)
    assert "2004.09813" in MSELoss.citation and "2301.12005" in EmbedDistillLoss.citation


# -- MarginMSELoss -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("num_negatives", "label_kind"), [(1, "margin_1d"), (1, "scores"), (3, "margins"), (3, "scores")]
)
def test_margin_mse_matches_formula(num_negatives: int, label_kind: str) -> None:
    columns = batch_ids(5, 2 + num_negatives, seed=11)
    generator = torch.Generator().manual_seed(12)
    if label_kind == "margin_1d":
        labels = torch.randn(5, generator=generator)
    elif label_kind == "scores":
        labels = torch.randn(5, num_negatives + 1, generator=generator)
    else:
        labels = torch.randn(5, num_negatives, generator=generator)

    def reference(embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        assert labels is not None
        query, positive, negatives = embeddings[0], embeddings[1], embeddings[2:]
        predicted = torch.stack([(query * positive).sum(-1) - (query * n).sum(-1) for n in negatives], dim=1)
        if label_kind == "scores":
            gold = labels[:, :1] - labels[:, 1:]
        else:
            gold = labels.reshape(5, num_negatives)
        return ((predicted - gold) ** 2).mean()

    check_against_reference(lambda m: MarginMSELoss(m), reference, columns, labels)


def test_margin_mse_parity(wordpiece_json: str) -> None:
    from sentence_transformers.sentence_transformer import losses as st_losses
    from sentence_transformers.util import pairwise_cos_sim as st_pairwise_cos_sim

    for ours_fct, theirs_fct, negatives in ((pairwise_dot_score, None, 1), (pairwise_cos_sim, st_pairwise_cos_sim, 2)):
        ours, theirs = static_pair(wordpiece_json)
        columns = [random_sentences(6, seed=20 + i) for i in range(2 + negatives)]
        labels = torch.randn(6, negatives, generator=torch.Generator().manual_seed(8))
        ours_loss = MarginMSELoss(ours, similarity_fct=ours_fct)
        theirs_loss = (
            st_losses.MarginMSELoss(theirs)
            if theirs_fct is None
            else st_losses.MarginMSELoss(theirs, similarity_fct=theirs_fct)
        )
        assert ours_loss.get_config_dict() == theirs_loss.get_config_dict()
        assert_parity(ours, theirs, ours_loss, theirs_loss, columns, labels)


def test_margin_mse_training_lowers_loss() -> None:
    columns = [words(ids) for ids in batch_ids(8, 3, seed=13)]
    labels = torch.randn(8, generator=torch.Generator().manual_seed(2))
    first, last = train_lowers_loss(lambda m: MarginMSELoss(m), columns, labels)
    assert last < 0.5 * first


def test_margin_mse_errors() -> None:
    model = lookup_model(fixed_weights())
    loss = MarginMSELoss(model)
    pair = features_of(model, [words([1, 2]), words([3, 4])])
    with pytest.raises(InvalidArgumentError, match=r"MarginMSELoss needs at least 3 text columns and a label column"):
        loss(pair, torch.zeros(2))
    triplet = features_of(model, [words([1, 2]), words([3, 4]), words([5, 6])])
    with pytest.raises(InvalidArgumentError, match=r"got text columns .* and no label"):
        loss(triplet, None)
    with pytest.raises(InvalidArgumentError, match=r"expected \(2, 1\) teacher margins or \(2, 2\) teacher scores"):
        loss(triplet, torch.zeros(2, 3))
    assert "2010.02666" in MarginMSELoss.citation


# -- DistillKLDivLoss ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("temperature", "student_temperature", "teacher_temperature", "cosine"),
    [(1.0, None, None, False), (2.0, None, None, False), (1.0, 0.5, 3.0, True)],
)
def test_distill_kl_div_matches_formula(
    temperature: float, student_temperature: float | None, teacher_temperature: float | None, cosine: bool
) -> None:
    columns = batch_ids(6, 4, seed=21)
    labels = torch.randn(6, 3, generator=torch.Generator().manual_seed(22)) * 3
    t_student = student_temperature or temperature
    t_teacher = teacher_temperature or temperature

    def reference(embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        assert labels is not None
        query = embeddings[0]
        if cosine:
            scores = torch.stack(
                [(query * c).sum(-1) / (query.norm(dim=-1) * c.norm(dim=-1)) for c in embeddings[1:]], dim=1
            )
        else:
            scores = torch.stack([(query * c).sum(-1) for c in embeddings[1:]], dim=1)
        log_q = scores / t_student - torch.logsumexp(scores / t_student, dim=1, keepdim=True)
        p = torch.exp(labels / t_teacher) / torch.exp(labels / t_teacher).sum(dim=1, keepdim=True)
        return (p * (p.log() - log_q)).sum() / len(query) * t_student**2

    check_against_reference(
        lambda m: DistillKLDivLoss(
            m,
            similarity_fct=pairwise_cos_sim if cosine else pairwise_dot_score,
            temperature=temperature,
            student_temperature=student_temperature,
            teacher_temperature=teacher_temperature,
        ),
        reference,
        columns,
        labels,
    )


def test_distill_kl_div_parity(wordpiece_json: str) -> None:
    from sentence_transformers.sentence_transformer import losses as st_losses

    ours, theirs = static_pair(wordpiece_json)
    columns = [random_sentences(6, seed=30 + i) for i in range(4)]
    labels = torch.randn(6, 3, generator=torch.Generator().manual_seed(9)) * 2
    kwargs = {"temperature": 2.0, "teacher_temperature": 0.7}
    ours_loss, theirs_loss = DistillKLDivLoss(ours, **kwargs), st_losses.DistillKLDivLoss(theirs, **kwargs)
    assert ours_loss.get_config_dict() == theirs_loss.get_config_dict()
    assert_parity(ours, theirs, ours_loss, theirs_loss, columns, labels)


def test_distill_kl_div_training_lowers_loss() -> None:
    columns = [words(ids) for ids in batch_ids(8, 4, seed=23)]
    labels = torch.randn(8, 3, generator=torch.Generator().manual_seed(3)) * 2
    first, last = train_lowers_loss(lambda m: DistillKLDivLoss(m), columns, labels)
    assert last < 0.5 * first


def test_distill_kl_div_errors(caplog: pytest.LogCaptureFixture) -> None:
    model = lookup_model(fixed_weights())
    triplet = features_of(model, [words([1, 2]), words([3, 4]), words([5, 6])])
    with pytest.raises(InvalidArgumentError, match=r"DistillKLDivLoss needs at least 3 text columns and a label"):
        DistillKLDivLoss(model)(triplet[:2], torch.zeros(2, 1))
    with pytest.raises(InvalidArgumentError, match=r"shape \(batch_size, candidates\) = \(2, 2\).*\(2, 3\)"):
        DistillKLDivLoss(model)(triplet, torch.zeros(2, 3))
    with pytest.raises(InvalidArgumentError, match=r"contain NaN"):
        DistillKLDivLoss(model)(triplet, torch.tensor([[0.0, math.nan], [1.0, 2.0]]))
    for bad in (0.0, -1.0, math.inf):
        with pytest.raises(InvalidArgumentError, match=r"temperature must be a positive finite number"):
            DistillKLDivLoss(model, temperature=bad)
    with caplog.at_level("WARNING"):
        DistillKLDivLoss(model, teacher_temperature=0.01)(triplet, torch.tensor([[0.0, 5.0], [1.0, 2.0]]))
    assert "underflows" in caplog.text or "exactly zero" in caplog.text
    assert "2010.11386" in DistillKLDivLoss.citation
