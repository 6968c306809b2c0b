"""Distillation, regulariser and unsupervised losses: formulas, sentence-transformers parity, training, errors.

Fixed embeddings come from a static model over a word-level vocabulary ``w0 w1 ...``: the text
``"w3"`` embeds to row 3 of the weight matrix, so each reference below is the formula written out
in plain torch on a leaf copy of that matrix, and gradients are compared row by row.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from torch import Tensor

from conftest import random_sentences, write_wordpiece_tokenizer
from embedforge import SentenceTransformer
from embedforge.exceptions import InvalidArgumentError, ModelNotFoundError
from embedforge.sentence_transformer.losses import (
    ContrastiveTensionDataLoader,
    ContrastiveTensionLoss,
    ContrastiveTensionLossInBatchNegatives,
    DenoisingAutoEncoderLoss,
    DistillKLDivLoss,
    EmbedDistillLoss,
    GlobalOrthogonalRegularizationLoss,
    MarginMSELoss,
    MSELoss,
)
from embedforge.sentence_transformer.modules import StaticEmbedding
from embedforge.util import cos_sim, dot_score, pairwise_cos_sim, pairwise_dot_score

VOCAB = 40
DIMS = 8

# -- helpers -------------------------------------------------------------------------------------


@pytest.fixture(autouse=True, scope="module")
def _single_torch_thread() -> Iterator[None]:
    """These models are tiny: intra-op threads only add synchronisation, which is slow on a busy machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


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
    with pytest.raises(InvalidArgumentError, match="No projection layer"):
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
    with pytest.raises(InvalidArgumentError, match=r"MSELoss requires pre-computed teacher embeddings as labels"):
        MSELoss(model)(feats, None)
    with pytest.raises(
        InvalidArgumentError, match=r"Number of label columns \(3\) does not match number of input text columns \(2\)"
    ):
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
        gold = labels[:, :1] - labels[:, 1:] if label_kind == "scores" else labels.reshape(5, num_negatives)
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
    with pytest.raises(InvalidArgumentError, match=r"shape \(batch_size, N\) = \(2, 2\).*\(2, 3\)"):
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


# -- GlobalOrthogonalRegularizationLoss ----------------------------------------------------------


def _gor_reference(
    embeddings: list[Tensor], mean_weight: float, second_moment_weight: float, aggregation: str, cosine: bool
) -> dict[str, Tensor]:
    means, seconds = [], []
    for column in embeddings:
        n, d = column.shape
        unit = column / column.norm(dim=-1, keepdim=True) if cosine else column
        sims = unit @ unit.T
        off = [sims[i, j] for i in range(n) for j in range(n) if i != j]
        stacked = torch.stack(off) if off else torch.zeros(1)
        count = max(len(off), 1)
        means.append((stacked.sum() / count) ** 2)
        seconds.append(torch.clamp((stacked**2).sum() / count - 1.0 / d, min=0.0))
    combine = (lambda xs: sum(xs)) if aggregation == "sum" else (lambda xs: sum(xs) / len(xs))
    result = {}
    if mean_weight:
        result["gor_mean"] = mean_weight * combine(means)
    if second_moment_weight:
        result["gor_second_moment"] = second_moment_weight * combine(seconds)
    return result


@pytest.mark.parametrize(
    ("mean_weight", "second_moment_weight", "aggregation", "cosine"),
    [(1.0, 1.0, "mean", True), (0.5, 2.0, "sum", False), (0.0, 1.0, "sum", True), (1.0, None, "mean", False)],
)
def test_gor_matches_formula(
    mean_weight: float, second_moment_weight: float | None, aggregation: str, cosine: bool
) -> None:
    columns = batch_ids(6, 2, seed=41)
    # Small dimension with correlated rows so the relu on the second moment is active.
    weights = fixed_weights(1, dims=3) + 1.0
    model = lookup_model(weights)
    loss = GlobalOrthogonalRegularizationLoss(
        model,
        similarity_fct=cos_sim if cosine else dot_score,
        mean_weight=mean_weight,
        second_moment_weight=second_moment_weight,
        aggregation=aggregation,  # type: ignore[arg-type]
    )
    result = loss(features_of(model, [words(ids) for ids in columns]))
    leaf = weights.clone().requires_grad_(True)
    expected = _gor_reference(
        [leaf[ids] for ids in columns], mean_weight, second_moment_weight or 0, aggregation, cosine
    )
    assert set(result) == set(expected)
    assert expected.get("gor_second_moment", torch.ones(())).item() > 0
    for key in result:
        torch.testing.assert_close(result[key].detach(), expected[key].detach())
    sum(result.values()).backward()
    sum(expected.values()).backward()
    torch.testing.assert_close(weight_grad(model), leaf.grad, rtol=1e-4, atol=1e-6)


def test_gor_single_row_is_zero_not_nan() -> None:
    model = lookup_model(fixed_weights())
    result = GlobalOrthogonalRegularizationLoss(model)(features_of(model, [words([3])]))
    assert all(value.item() == 0.0 for value in result.values())


def test_gor_parity_and_combination_with_mnrl(wordpiece_json: str) -> None:
    from sentence_transformers.sentence_transformer import losses as st_losses

    ours, theirs = static_pair(wordpiece_json)
    columns = [random_sentences(6, seed=50), random_sentences(6, seed=51)]
    kwargs = {"mean_weight": 0.5, "aggregation": "sum"}
    ours_loss = GlobalOrthogonalRegularizationLoss(ours, **kwargs)
    theirs_loss = st_losses.GlobalOrthogonalRegularizationLoss(theirs, **kwargs)
    assert ours_loss.get_config_dict() == theirs_loss.get_config_dict()
    assert_parity(ours, theirs, ours_loss, theirs_loss, columns, None)
    # The documented way to combine it with a primary loss: per-term dict from shared embeddings.
    embeddings = [ours(f)["sentence_embedding"] for f in features_of(ours, columns)]
    theirs_embeddings = [theirs(f)["sentence_embedding"] for f in features_of(theirs, columns)]
    ours_terms = ours_loss.compute_loss_from_embeddings(embeddings, None)
    theirs_terms = theirs_loss.compute_loss_from_embeddings(theirs_embeddings, None)
    assert set(ours_terms) == set(theirs_terms) == {"gor_mean", "gor_second_moment"}
    for key in ours_terms:
        torch.testing.assert_close(ours_terms[key], theirs_terms[key], rtol=1e-4, atol=1e-7)


def test_gor_training_lowers_loss() -> None:
    columns = [words(ids) for ids in batch_ids(10, 1, seed=43)]
    first, last = train_lowers_loss(lambda m: GlobalOrthogonalRegularizationLoss(m), columns, None, lr=0.1)
    assert last < 0.5 * first


def test_gor_errors() -> None:
    model = lookup_model(fixed_weights())
    with pytest.raises(InvalidArgumentError, match="At least one of mean_weight"):
        GlobalOrthogonalRegularizationLoss(model, mean_weight=0, second_moment_weight=None)
    with pytest.raises(InvalidArgumentError, match="aggregation must be 'mean' or 'sum'"):
        GlobalOrthogonalRegularizationLoss(model, aggregation="max")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match=r"needs at least 1 text column \(a label column is optional\)"):
        GlobalOrthogonalRegularizationLoss(model)([], None)
    assert "1708.06320" in GlobalOrthogonalRegularizationLoss.citation


# -- ContrastiveTensionLoss / InBatchNegatives / DataLoader --------------------------------------


def test_contrastive_tension_matches_formula_and_copies_the_model() -> None:
    weights = fixed_weights(2)
    model = lookup_model(weights)
    loss = ContrastiveTensionLoss(model)
    assert loss.model2 is model and loss.model1 is not model
    assert loss.model1[0].embedding.weight.data_ptr() != model[0].embedding.weight.data_ptr()
    first = [1, 2, 3, 4, 5, 6]
    second = [1, 9, 3, 11, 12, 6]  # rows 0, 2 and 5 are identical pairs
    value = loss(features_of(model, [words(first), words(second)]), None)
    value.backward()

    leaf1, leaf2 = weights.clone().requires_grad_(True), weights.clone().requires_grad_(True)
    logits = (leaf1[first] * leaf2[second]).sum(-1)
    targets = torch.tensor([1.0, 0, 1, 0, 0, 1])
    # Summed binary cross-entropy with logits, written out with a stable softplus.
    expected = (torch.nn.functional.softplus(logits) - targets * logits).sum()
    expected.backward()
    torch.testing.assert_close(value.detach(), expected.detach())
    torch.testing.assert_close(weight_grad(model), leaf2.grad)
    torch.testing.assert_close(weight_grad(loss.model1), leaf1.grad)
    # Explicit labels override the token comparison.
    model.zero_grad()
    explicit = loss(features_of(model, [words(first), words(second)]), torch.zeros(6))
    torch.testing.assert_close(explicit.detach(), torch.nn.functional.softplus(logits).sum().detach())


def test_contrastive_tension_in_batch_matches_formula() -> None:
    weights = fixed_weights(3)
    model = lookup_model(weights)
    loss = ContrastiveTensionLossInBatchNegatives(model, scale=10.0)
    ids = [1, 4, 7, 9, 13]
    value = loss(features_of(model, [words(ids)]), None)
    value.backward()
    leaf1, leaf2 = weights.clone().requires_grad_(True), weights.clone().requires_grad_(True)
    log_scale = torch.tensor(math.log(10.0), requires_grad=True)
    a = leaf1[ids] / leaf1[ids].norm(dim=-1, keepdim=True)
    b = leaf2[ids] / leaf2[ids].norm(dim=-1, keepdim=True)
    scores = a @ b.T * log_scale.exp()
    rows = (torch.logsumexp(scores, dim=1) - scores.diag()).mean()
    cols = (torch.logsumexp(scores, dim=0) - scores.diag()).mean()
    expected = (rows + cols) / 2
    expected.backward()
    torch.testing.assert_close(value.detach(), expected.detach())
    torch.testing.assert_close(weight_grad(model), leaf2.grad)
    torch.testing.assert_close(weight_grad(loss.model1), leaf1.grad)
    torch.testing.assert_close(loss.logit_scale.grad, log_scale.grad)
    assert loss.get_config_dict() == {"scale": pytest.approx(10.0), "similarity_fct": "cos_sim"}


def test_contrastive_tension_parity(wordpiece_json: str, tiny_bert_dir: Path) -> None:
    from sentence_transformers import SentenceTransformer as StModel
    from sentence_transformers.sentence_transformer import losses as st_losses

    texts = random_sentences(6, seed=60)
    others = [texts[0], *random_sentences(3, seed=61), texts[4], texts[5]]
    # Static models: labels given (sentence-transformers cannot derive them from a flat id stream).
    ours, theirs = static_pair(wordpiece_json)
    labels = torch.tensor([1.0, 0, 0, 0, 1, 1])
    assert_parity(
        ours, theirs, ContrastiveTensionLoss(ours), st_losses.ContrastiveTensionLoss(theirs), [texts, others], labels
    )
    ours, theirs = static_pair(wordpiece_json)
    assert_parity(
        ours,
        theirs,
        ContrastiveTensionLossInBatchNegatives(ours, scale=15.0),
        st_losses.ContrastiveTensionLossInBatchNegatives(theirs, scale=15.0),
        [texts],
        None,
    )
    # A transformer: labels derived from the padded token ids, gradients on every parameter of model2.
    ours_bert = SentenceTransformer(str(tiny_bert_dir)).eval()
    theirs_bert = StModel(str(tiny_bert_dir), device="cpu").eval()
    ours_loss, theirs_loss = ContrastiveTensionLoss(ours_bert), st_losses.ContrastiveTensionLoss(theirs_bert)
    values = []
    for model, loss in ((ours_bert, ours_loss), (theirs_bert, theirs_loss)):
        value = loss(features_of(model, [texts, others]), None)
        value.backward()
        values.append(value.detach())
    torch.testing.assert_close(values[0], values[1], rtol=1e-4, atol=1e-6)
    # The two libraries name the wrapped model differently (auto_model / model): pair parameters by order.
    ours_parameters, theirs_parameters = list(ours_bert.parameters()), list(theirs_bert.named_parameters())
    assert len(ours_parameters) == len(theirs_parameters)
    for ours_parameter, (name, parameter) in zip(ours_parameters, theirs_parameters):
        assert ours_parameter.shape == parameter.shape, name
        if parameter.grad is None:
            assert ours_parameter.grad is None or not ours_parameter.grad.any()
            continue
        torch.testing.assert_close(ours_parameter.grad, parameter.grad, rtol=1e-4, atol=1e-5, msg=name)


def test_contrastive_tension_static_labels_from_tokens() -> None:
    model = lookup_model(fixed_weights())
    loss = ContrastiveTensionLoss(model)
    feats = features_of(model, [["w1 w2", "w3", "w4 w5"], ["w1 w2", "w3 w3", "w4 w5"]])
    with torch.no_grad():
        derived = loss(feats, None)
        explicit = loss(feats, torch.tensor([1.0, 0.0, 1.0]))
    torch.testing.assert_close(derived, explicit)


def test_contrastive_tension_training_lowers_loss() -> None:
    sentences = [f"w{i} w{i + 1}" for i in range(1, 30)]
    loader = ContrastiveTensionDataLoader(list(sentences), batch_size=8, pos_neg_ratio=4)
    random.seed(0)
    batch = next(iter(loader))
    columns = [[example.texts[0] for example in batch], [example.texts[1] for example in batch]]
    first, last = train_lowers_loss(lambda m: ContrastiveTensionLoss(m), columns, None)
    assert last < 0.5 * first
    first, last = train_lowers_loss(lambda m: ContrastiveTensionLossInBatchNegatives(m), [sentences[:8]], None)
    assert last < 0.5 * first


def test_contrastive_tension_data_loader() -> None:
    sentences = [f"sentence {i}" for i in range(100)]
    loader = ContrastiveTensionDataLoader(list(sentences), batch_size=8, pos_neg_ratio=4)
    # 8 pairs per batch: 2 positives (1 sentence each) and 6 negatives (2 each) = 14 sentences.
    assert len(loader) == 100 // 14
    random.seed(1)
    batches = list(loader)
    assert len(batches) == len(loader)
    used = []
    for batch in batches:
        assert len(batch) == 8
        for index, example in enumerate(batch):
            if index % 4 == 0:
                assert example.label == 1 and example.texts[0] == example.texts[1]
                used.append(example.texts[0])
            else:
                assert example.label == 0 and example.texts[0] != example.texts[1]
                used.extend(example.texts)
    assert len(used) == len(set(used)) == 14 * len(loader)
    assert set(used) <= set(sentences)
    loader.collate_fn = len
    assert list(loader) == [8] * len(loader)
    with pytest.raises(InvalidArgumentError, match="must be divisible by pos_neg_ratio"):
        ContrastiveTensionDataLoader(sentences, batch_size=10, pos_neg_ratio=4)


def test_contrastive_tension_errors(caplog: pytest.LogCaptureFixture) -> None:
    model = lookup_model(fixed_weights())
    one = features_of(model, [words([1, 2])])
    with pytest.raises(InvalidArgumentError, match=r"ContrastiveTensionLoss needs 2 text columns"):
        ContrastiveTensionLoss(model)(one, None)
    with pytest.raises(InvalidArgumentError, match=r"got 3 labels for a batch of 2 pairs"):
        ContrastiveTensionLoss(model)(one * 2, torch.zeros(3))
    in_batch = ContrastiveTensionLossInBatchNegatives(model)
    with pytest.raises(InvalidArgumentError, match=r"needs 1 text column and no label column"):
        in_batch(one * 2, None)
    # A label column is ignored with a warning (sentence-transformers ignores it silently).
    with caplog.at_level("WARNING"):
        in_batch.check_input_columns(["text"], has_label=True, label_column="label")
    assert "does not use labels; the label column 'label' is ignored" in caplog.text
    with pytest.raises(InvalidArgumentError, match="scale must be a positive finite number"):
        ContrastiveTensionLossInBatchNegatives(model, scale=0.0)
    assert "Ov_sMNau-PF" in ContrastiveTensionLoss.citation


# -- DenoisingAutoEncoderLoss --------------------------------------------------------------------


def _damage(texts: list[str]) -> list[str]:
    """Deterministic deletion noise: keep every other word."""
    return [" ".join(text.split()[::2]) or text for text in texts]


def _dae_pair(folder: Path, tie: bool) -> tuple[Any, Any, Any, Any]:
    """The same tiny BERT and DenoisingAutoEncoderLoss in both libraries, with identical decoder weights."""
    from sentence_transformers import SentenceTransformer as StModel
    from sentence_transformers.sentence_transformer.losses import DenoisingAutoEncoderLoss as StDAE

    ours = SentenceTransformer(str(folder)).eval()
    theirs = StModel(str(folder), device="cpu").eval()
    decoder_path = None if tie else str(folder)
    ours_loss = DenoisingAutoEncoderLoss(ours, decoder_name_or_path=decoder_path, tie_encoder_decoder=tie)
    theirs_loss = StDAE(theirs, decoder_name_or_path=decoder_path, tie_encoder_decoder=tie)
    # Cross-attention and LM-head weights start random: copy sentence-transformers' across
    # (with tying this also sets the shared encoder weights, which were equal already).
    ours_loss.decoder.load_state_dict(theirs_loss.decoder.state_dict())
    ours_loss.decoder.eval()
    theirs_loss.decoder.eval()
    return ours, theirs, ours_loss, theirs_loss


def test_dae_matches_written_out_cross_entropy(tiny_bert_dir: Path) -> None:
    model = SentenceTransformer(str(tiny_bert_dir)).eval()
    loss = DenoisingAutoEncoderLoss(model)
    loss.decoder.eval()
    texts = random_sentences(5, seed=70, min_words=3)
    source, target = features_of(model, [_damage(texts), texts])
    value = loss([dict(source), dict(target)], None)

    with torch.no_grad():
        # Reference: mean-pooled embedding of the damaged text as the only cross-attention state,
        # then next-token negative log-likelihood over the non-padding targets.
        hidden = model[0].auto_model(**{k: source[k] for k in ("input_ids", "attention_mask")}).last_hidden_state
        mask = source["attention_mask"].unsqueeze(-1).float()
        embedding = (hidden * mask).sum(1) / mask.sum(1)
        ids = target["input_ids"]
        logits = loss.decoder(input_ids=ids[:, :-1], encoder_hidden_states=embedding[:, None], use_cache=False).logits
        log_probs = logits - torch.logsumexp(logits, dim=-1, keepdim=True)
        picked = log_probs.gather(-1, ids[:, 1:, None]).squeeze(-1)
        keep = ids[:, 1:] != model.tokenizer.pad_token_id
        expected = -(picked * keep).sum() / keep.sum()
    assert keep.sum() < keep.numel()  # padding is present and ignored
    torch.testing.assert_close(value.detach(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("tie", [True, False])
def test_dae_parity(tiny_bert_dir: Path, tie: bool) -> None:
    ours, theirs, ours_loss, theirs_loss = _dae_pair(tiny_bert_dir, tie)
    assert ours_loss.get_config_dict() == theirs_loss.get_config_dict()
    texts = random_sentences(6, seed=71, min_words=2)
    values = []
    for model, loss in ((ours, ours_loss), (theirs, theirs_loss)):
        value = loss(features_of(model, [_damage(texts), texts]), None)
        value.backward()
        values.append(value.detach())
    torch.testing.assert_close(values[0], values[1], rtol=1e-4, atol=1e-6)
    # Parameters paired by order (the libraries name the wrapped model differently).
    ours_parameters = list(ours_loss.parameters())
    theirs_parameters = list(theirs_loss.named_parameters())
    assert len(ours_parameters) == len(theirs_parameters)
    compared = 0
    for ours_parameter, (name, parameter) in zip(ours_parameters, theirs_parameters):
        assert ours_parameter.shape == parameter.shape, name
        if parameter.grad is None:
            assert ours_parameter.grad is None, name
            continue
        torch.testing.assert_close(ours_parameter.grad, parameter.grad, rtol=1e-4, atol=1e-5, msg=name)
        compared += 1
    assert compared > 30


def test_dae_ties_encoder_to_decoder(tiny_bert_dir: Path) -> None:
    tied = DenoisingAutoEncoderLoss(SentenceTransformer(str(tiny_bert_dir)))
    encoder = tied.encoder[0].auto_model
    decoder = tied.decoder.bert
    assert encoder.embeddings.word_embeddings.weight is decoder.embeddings.word_embeddings.weight
    assert encoder.encoder.layer[1].attention.self.query.weight is decoder.encoder.layer[1].attention.self.query.weight
    assert not hasattr(encoder.encoder.layer[0], "crossattention")
    assert hasattr(decoder.encoder.layer[0], "crossattention")
    untied = DenoisingAutoEncoderLoss(
        SentenceTransformer(str(tiny_bert_dir)), decoder_name_or_path=str(tiny_bert_dir), tie_encoder_decoder=False
    )
    encoder, decoder = untied.encoder[0].auto_model, untied.decoder.bert
    assert encoder.embeddings.word_embeddings.weight is not decoder.embeddings.word_embeddings.weight
    torch.testing.assert_close(encoder.embeddings.word_embeddings.weight, decoder.embeddings.word_embeddings.weight)


def test_dae_training_lowers_loss(tiny_bert_dir: Path) -> None:
    torch.manual_seed(0)
    model = SentenceTransformer(str(tiny_bert_dir))
    loss = DenoisingAutoEncoderLoss(model)
    loss.train()
    texts = random_sentences(4, seed=72, min_words=3, max_words=8)
    optimizer = torch.optim.Adam(loss.parameters(), lr=1e-2)
    history = []
    for _ in range(8):
        optimizer.zero_grad()
        value = loss(features_of(model, [_damage(texts), texts]), None)
        value.backward()
        optimizer.step()
        history.append(value.item())
    assert history[-1] < 0.7 * history[0]


def test_dae_errors(tiny_bert_dir: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="not compatible with a SentenceTransformer model based on a Static"):
        DenoisingAutoEncoderLoss(lookup_model(fixed_weights()))
    model = SentenceTransformer(str(tiny_bert_dir))
    with pytest.raises(InvalidArgumentError, match="decoder_name_or_path is required when tie_encoder_decoder=False"):
        DenoisingAutoEncoderLoss(model, tie_encoder_decoder=False)
    with pytest.raises(ModelNotFoundError, match="never downloads"):
        DenoisingAutoEncoderLoss(model, decoder_name_or_path="bert-base-uncased", tie_encoder_decoder=False)
    loss = DenoisingAutoEncoderLoss(model)
    texts = random_sentences(2, seed=73)
    with pytest.raises(InvalidArgumentError, match=r"DenoisingAutoEncoderLoss needs 2 text columns and no label"):
        loss(features_of(model, [texts]), None)
    # A label is ignored, as sentence-transformers does.
    assert torch.isfinite(loss(features_of(model, [texts, texts]), torch.zeros(2)))
    assert "2104.06979" in DenoisingAutoEncoderLoss.citation


@pytest.fixture(scope="module")
def tiny_gpt2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-layer GPT-2 (hidden 32) with its own byte-level BPE tokenizer: a decoder that needs re-tokenisation."""
    from tokenizers import decoders, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

    folder = tmp_path_factory.mktemp("tiny-gpt2")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(random_sentences(300, seed=5), trainer)
    special = "<|endoftext|>"
    tokenizer = GPT2TokenizerFast(tokenizer_object=bpe, bos_token=special, eos_token=special, unk_token=special)
    tokenizer.save_pretrained(str(folder))
    config = GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=1, n_head=4, n_positions=64)
    config.bos_token_id = config.eos_token_id = tokenizer.eos_token_id
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(str(folder))
    return folder


def test_dae_parity_with_retokenizing_decoder(tiny_bert_dir: Path, tiny_gpt2_dir: Path) -> None:
    from sentence_transformers import SentenceTransformer as StModel
    from sentence_transformers.sentence_transformer.losses import DenoisingAutoEncoderLoss as StDAE

    ours = SentenceTransformer(str(tiny_bert_dir)).eval()
    theirs = StModel(str(tiny_bert_dir), device="cpu").eval()
    ours_loss = DenoisingAutoEncoderLoss(ours, decoder_name_or_path=str(tiny_gpt2_dir), tie_encoder_decoder=False)
    theirs_loss = StDAE(theirs, decoder_name_or_path=str(tiny_gpt2_dir), tie_encoder_decoder=False)
    assert ours_loss.need_retokenization and ours_loss.get_config_dict() == theirs_loss.get_config_dict()
    # GPT-2 has no pad token: end-of-text stands in, so padded targets are ignored.
    assert ours_loss.tokenizer_decoder.pad_token == "<|endoftext|>"
    ours_loss.decoder.load_state_dict(theirs_loss.decoder.state_dict())
    ours_loss.decoder.eval()
    theirs_loss.decoder.eval()
    texts = random_sentences(5, seed=74, min_words=2)
    retokenized = ours_loss.retokenize(ours.preprocess(texts))["input_ids"]
    assert retokenized.max() < len(ours_loss.tokenizer_decoder)
    values = []
    for model, loss in ((ours, ours_loss), (theirs, theirs_loss)):
        value = loss(features_of(model, [_damage(texts), texts]), None)
        value.backward()
        values.append(value.detach())
    torch.testing.assert_close(values[0], values[1], rtol=1e-4, atol=1e-6)
    for ours_parameter, theirs_parameter in zip(ours_loss.parameters(), theirs_loss.parameters()):
        assert (ours_parameter.grad is None) == (theirs_parameter.grad is None)
        if theirs_parameter.grad is not None:
            torch.testing.assert_close(ours_parameter.grad, theirs_parameter.grad, rtol=1e-4, atol=1e-5)
    with pytest.raises(InvalidArgumentError, match="hidden size"):
        small = SentenceTransformer(str(tiny_bert_dir))
        small[0].auto_model.config.hidden_size = 16
        DenoisingAutoEncoderLoss(small, decoder_name_or_path=str(tiny_gpt2_dir), tie_encoder_decoder=False)
