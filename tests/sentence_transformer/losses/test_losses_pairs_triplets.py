"""Pair and triplet losses: each checked against a formula written out here, against
sentence-transformers on the same static model, in a short training loop, and on bad input."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from tokenizers import Tokenizer
from torch import Tensor, nn

from conftest import random_sentences, write_wordpiece_tokenizer
from embedforge import SentenceTransformer
from embedforge.exceptions import InvalidArgumentError
from embedforge.sentence_transformer.losses import (
    AnglELoss,
    BatchAllTripletLoss,
    BatchHardSoftMarginTripletLoss,
    BatchHardTripletLoss,
    BatchHardTripletLossDistanceFunction,
    BatchSemiHardTripletLoss,
    ContrastiveLoss,
    CoSENTLoss,
    CosineSimilarityLoss,
    OnlineContrastiveLoss,
    SiameseDistanceMetric,
    SoftmaxLoss,
    TripletDistanceMetric,
    TripletLoss,
)
from embedforge.sentence_transformer.modules import StaticEmbedding

DIMS = 16
BATCH = 8

# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


class LookupModel(nn.Module):
    """Stand-in model: ``{"ids": row indices}`` -> those rows of a trainable table as the embeddings."""

    def __init__(self, table: Tensor) -> None:
        super().__init__()
        self.table = nn.Parameter(table.clone())

    def forward(self, features: dict[str, Tensor]) -> dict[str, Tensor]:
        return {**features, "sentence_embedding": self.table[features["ids"]]}


def fixed_table(rows: int, seed: int = 0) -> Tensor:
    """Deterministic embeddings, distinct enough that no distance is 0 or tied."""
    return torch.randn(rows, DIMS, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).float()


def columns_of(count: int, batch: int = BATCH) -> list[dict[str, Tensor]]:
    """Column k of the batch uses table rows k*batch .. (k+1)*batch - 1."""
    return [{"ids": torch.arange(k * batch, (k + 1) * batch)} for k in range(count)]


def check_against_reference(
    make_loss: Callable[[nn.Module], nn.Module],
    reference: Callable[[Tensor], Tensor],
    n_columns: int,
    labels: Tensor | None,
    seed: int = 0,
    scale: float = 1.0,
) -> None:
    """The loss of a LookupModel and its gradient on the table equal ``reference(table)`` and its gradient."""
    table = fixed_table(n_columns * BATCH, seed) * scale
    model = LookupModel(table)
    loss = make_loss(model)(columns_of(n_columns), labels)
    loss.backward()
    expected_table = table.double().clone().requires_grad_(True)
    expected = reference(expected_table)
    expected.backward()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-6)
    torch.testing.assert_close(model.table.grad.double(), expected_table.grad, rtol=1e-4, atol=1e-6)


def rows(table: Tensor, column: int, batch: int = BATCH) -> Tensor:
    """Embeddings of one column of the batch built by ``columns_of``."""
    return table[column * batch : (column + 1) * batch]


@pytest.fixture(scope="module")
def tokenizer_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("loss-tokenizer")
    write_wordpiece_tokenizer(folder)
    return folder / "tokenizer.json"


def static_weights(tokenizer: Tokenizer, seed: int = 3) -> Tensor:
    return torch.randn(tokenizer.get_vocab_size(), DIMS, generator=torch.Generator().manual_seed(seed))


def our_static_model(tokenizer_file: Path, seed: int = 3) -> SentenceTransformer:
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    return SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_weights=static_weights(tokenizer, seed))])


def text_columns(n_columns: int, batch: int = BATCH, seed: int = 0) -> list[list[str]]:
    return [random_sentences(batch, seed=seed + 100 * k, min_words=2, max_words=8) for k in range(n_columns)]


# ---------------------------------------------------------------------------------------------
# Cases: one per loss configuration, shared by the parity and training tests
# ---------------------------------------------------------------------------------------------

SCORES = torch.tensor([0.9, 0.1, 0.5, 0.5, 0.0, 1.0, 0.3, 0.7])
BINARY = torch.tensor([1, 0, 1, 1, 0, 0, 1, 0])
CLASSES = torch.tensor([0, 0, 1, 1, 2, 2, 0, 1])


def st_losses() -> Any:
    pytest.importorskip("sentence_transformers")
    from sentence_transformers.sentence_transformer import losses

    return losses


#: name -> (our loss factory, sentence-transformers loss factory, number of text columns, labels)
CASES: dict[str, tuple[Callable[[Any], nn.Module], Callable[[Any], nn.Module], int, Tensor | None]] = {
    "cosent": (lambda m: CoSENTLoss(m), lambda m: st_losses().CoSENTLoss(m), 2, SCORES),
    "cosent-scale5": (lambda m: CoSENTLoss(m, scale=5.0), lambda m: st_losses().CoSENTLoss(m, scale=5.0), 2, SCORES),
    "angle-pairs": (lambda m: AnglELoss(m), lambda m: st_losses().AnglELoss(m), 2, SCORES),
    "angle-triplets": (lambda m: AnglELoss(m), lambda m: st_losses().AnglELoss(m), 3, None),
    "angle-4-columns-labelled": (
        lambda m: AnglELoss(m),
        lambda m: st_losses().AnglELoss(m),
        4,
        torch.tensor([1.0, 0.8, 0.9, 1.0, 0.7, 1.0, 0.6, 1.0]),
    ),
    "cosine-similarity": (lambda m: CosineSimilarityLoss(m), lambda m: st_losses().CosineSimilarityLoss(m), 2, SCORES),
    "cosine-similarity-l1-tanh": (
        lambda m: CosineSimilarityLoss(m, loss_fct=nn.L1Loss(), cos_score_transformation=nn.Tanh()),
        lambda m: st_losses().CosineSimilarityLoss(m, loss_fct=nn.L1Loss(), cos_score_transformation=nn.Tanh()),
        2,
        SCORES,
    ),
    "contrastive": (lambda m: ContrastiveLoss(m), lambda m: st_losses().ContrastiveLoss(m), 2, BINARY),
    "contrastive-euclidean-sum": (
        lambda m: ContrastiveLoss(m, SiameseDistanceMetric.EUCLIDEAN, margin=6.0, size_average=False),
        lambda m: st_losses().ContrastiveLoss(
            m, st_losses().SiameseDistanceMetric.EUCLIDEAN, margin=6.0, size_average=False
        ),
        2,
        BINARY,
    ),
    "contrastive-manhattan": (
        lambda m: ContrastiveLoss(m, SiameseDistanceMetric.MANHATTAN, margin=20.0),
        lambda m: st_losses().ContrastiveLoss(m, st_losses().SiameseDistanceMetric.MANHATTAN, margin=20.0),
        2,
        BINARY,
    ),
    "online-contrastive": (
        lambda m: OnlineContrastiveLoss(m),
        lambda m: st_losses().OnlineContrastiveLoss(m),
        2,
        BINARY,
    ),
    "online-contrastive-euclidean": (
        lambda m: OnlineContrastiveLoss(m, SiameseDistanceMetric.EUCLIDEAN, margin=6.0),
        lambda m: st_losses().OnlineContrastiveLoss(m, st_losses().SiameseDistanceMetric.EUCLIDEAN, margin=6.0),
        2,
        BINARY,
    ),
    "softmax": (lambda m: SoftmaxLoss(m, DIMS, 3), lambda m: st_losses().SoftmaxLoss(m, DIMS, 3), 2, CLASSES),
    "softmax-all-parts": (
        lambda m: SoftmaxLoss(m, DIMS, 3, concatenation_sent_multiplication=True),
        lambda m: st_losses().SoftmaxLoss(m, DIMS, 3, concatenation_sent_multiplication=True),
        2,
        CLASSES,
    ),
    "softmax-probabilities": (
        lambda m: SoftmaxLoss(m, DIMS, 3, concatenation_sent_rep=False),
        lambda m: st_losses().SoftmaxLoss(m, DIMS, 3, concatenation_sent_rep=False),
        2,
        torch.softmax(torch.randn(BATCH, 3, generator=torch.Generator().manual_seed(5)), dim=1),
    ),
    "triplet": (lambda m: TripletLoss(m), lambda m: st_losses().TripletLoss(m), 3, None),
    "triplet-cosine": (
        lambda m: TripletLoss(m, TripletDistanceMetric.COSINE, triplet_margin=0.5),
        lambda m: st_losses().TripletLoss(m, st_losses().TripletDistanceMetric.COSINE, triplet_margin=0.5),
        3,
        None,
    ),
    "triplet-manhattan": (
        lambda m: TripletLoss(m, TripletDistanceMetric.MANHATTAN, triplet_margin=2.0),
        lambda m: st_losses().TripletLoss(m, st_losses().TripletDistanceMetric.MANHATTAN, triplet_margin=2.0),
        3,
        None,
    ),
    "batch-hard": (lambda m: BatchHardTripletLoss(m), lambda m: st_losses().BatchHardTripletLoss(m), 1, CLASSES),
    "batch-hard-cosine": (
        lambda m: BatchHardTripletLoss(m, BatchHardTripletLossDistanceFunction.cosine_distance, margin=0.3),
        lambda m: st_losses().BatchHardTripletLoss(
            m, st_losses().BatchHardTripletLossDistanceFunction.cosine_distance, margin=0.3
        ),
        1,
        CLASSES,
    ),
    "batch-all": (lambda m: BatchAllTripletLoss(m), lambda m: st_losses().BatchAllTripletLoss(m), 1, CLASSES),
    "batch-all-margin": (
        lambda m: BatchAllTripletLoss(m, margin=0.5),
        lambda m: st_losses().BatchAllTripletLoss(m, margin=0.5),
        1,
        CLASSES,
    ),
    "batch-semi-hard": (
        lambda m: BatchSemiHardTripletLoss(m),
        lambda m: st_losses().BatchSemiHardTripletLoss(m),
        1,
        CLASSES,
    ),
    "batch-semi-hard-cosine": (
        lambda m: BatchSemiHardTripletLoss(m, BatchHardTripletLossDistanceFunction.cosine_distance, margin=0.2),
        lambda m: st_losses().BatchSemiHardTripletLoss(
            m, st_losses().BatchHardTripletLossDistanceFunction.cosine_distance, margin=0.2
        ),
        1,
        CLASSES,
    ),
    "batch-hard-soft-margin": (
        lambda m: BatchHardSoftMarginTripletLoss(m),
        lambda m: st_losses().BatchHardSoftMarginTripletLoss(m),
        1,
        CLASSES,
    ),
}


def prepare_pair(loss_name: str, ours_model: nn.Module, theirs_model: nn.Module) -> tuple[nn.Module, nn.Module]:
    """Both losses of a case; trainable loss heads (SoftmaxLoss) start from the same weights."""
    make_ours, make_theirs, _, _ = CASES[loss_name]
    ours, theirs = make_ours(ours_model), make_theirs(theirs_model)
    our_params = dict(ours.named_parameters())
    for name, parameter in theirs.named_parameters():
        if not name.startswith(("model.", "sentence_embedder.")):
            with torch.no_grad():
                our_params[name].copy_(parameter)
    return ours, theirs


@pytest.mark.parametrize("case", list(CASES))
def test_parity_with_sentence_transformers(case: str, tokenizer_file: Path) -> None:
    """Same static model, same batch: same loss and same gradient on the embedding matrix (and any head)."""
    st = pytest.importorskip("sentence_transformers")
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding as StStatic

    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    weights = static_weights(tokenizer)
    ours_model = SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_weights=weights.clone())])
    theirs_model = st.SentenceTransformer(
        modules=[StStatic(Tokenizer.from_str(tokenizer.to_str()), embedding_weights=weights.clone())], device="cpu"
    )
    _, _, n_columns, labels = CASES[case]
    ours, theirs = prepare_pair(case, ours_model, theirs_model)
    columns = text_columns(n_columns)

    our_loss = ours([ours_model.preprocess(texts) for texts in columns], None if labels is None else labels.clone())
    their_loss = theirs(
        [theirs_model.preprocess(texts) for texts in columns], None if labels is None else labels.clone()
    )
    our_loss.backward()
    their_loss.backward()
    assert ours.get_config_dict() == theirs.get_config_dict()
    # A batch where nothing contributes would make the comparison vacuous.
    assert their_loss.item() > 0
    assert our_loss.item() == pytest.approx(their_loss.item(), rel=1e-4, abs=1e-7)
    our_grads = dict(ours.named_parameters())
    for name, parameter in theirs.named_parameters():
        # The wrapped model is "model." in some losses and "sentence_embedder." in others, in both libraries.
        our_grad, their_grad = our_grads[name].grad, parameter.grad
        assert their_grad is not None and our_grad is not None, name
        assert their_grad.norm().item() > 0, name
        assert our_grad.norm().item() == pytest.approx(their_grad.norm().item(), rel=1e-4, abs=1e-8), name
        torch.testing.assert_close(our_grad, their_grad, rtol=1e-4, atol=1e-6 * max(1.0, their_grad.abs().max().item()))


@pytest.mark.parametrize("case", list(CASES))
def test_training_lowers_the_loss(case: str, tokenizer_file: Path) -> None:
    """A few Adam steps on a tiny static model (and the loss's own head) lower the loss of the batch."""
    make_ours, _, n_columns, labels = CASES[case]
    model = our_static_model(tokenizer_file)
    loss_module = make_ours(model)
    features = [model.preprocess(texts) for texts in text_columns(n_columns)]
    optimizer = torch.optim.Adam(loss_module.parameters(), lr=0.05)
    values = []
    for _ in range(15):
        optimizer.zero_grad()
        value = loss_module(features, labels)
        value.backward()
        optimizer.step()
        values.append(value.item())
    final = loss_module(features, labels).item()
    assert math.isfinite(final)
    assert final < 0.8 * values[0], [*values, final]


# ---------------------------------------------------------------------------------------------
# Scored pairs
# ---------------------------------------------------------------------------------------------


def cos(a: Tensor, b: Tensor) -> Tensor:
    return (a * b).sum() / (a.norm() * b.norm())


def cosent_reference(scores: Tensor, labels: Tensor) -> Tensor:
    """log(1 + sum over (i, j) with labels[i] < labels[j] of exp(scores[i] - scores[j])), as a double loop."""
    total = torch.ones((), dtype=scores.dtype)
    for i in range(len(scores)):
        for j in range(len(scores)):
            if labels[i] < labels[j]:
                total = total + torch.exp(scores[i] - scores[j])
    return torch.log(total)


def angle_sim_reference(a: Tensor, b: Tensor) -> Tensor:
    """|Re + Im| of <a, conj(b)> with each unit vector read as complex (first half real, second half imaginary)."""
    a, b = a / a.norm(), b / b.norm()
    half = a.shape[0] // 2
    za, zb = torch.complex(a[:half], a[half:]), torch.complex(b[:half], b[half:])
    product = (za * zb.conj()).sum()
    return (product.real + product.imag).abs()


@pytest.mark.parametrize("scale", [20.0, 3.0])
def test_cosent_matches_formula(scale: float) -> None:
    def reference(table: Tensor) -> Tensor:
        a, b = rows(table, 0), rows(table, 1)
        scores = torch.stack([cos(a[i], b[i]) for i in range(BATCH)]) * scale
        return cosent_reference(scores, SCORES.double())

    check_against_reference(lambda m: CoSENTLoss(m, scale=scale), reference, 2, SCORES)


def test_cosent_custom_similarity_and_bool_labels() -> None:
    from embedforge.util import pairwise_dot_score

    labels = BINARY.bool()

    def reference(table: Tensor) -> Tensor:
        a, b = rows(table, 0), rows(table, 1)
        scores = torch.stack([(a[i] * b[i]).sum() for i in range(BATCH)]) * 0.5
        return cosent_reference(scores, labels.int())

    check_against_reference(lambda m: CoSENTLoss(m, scale=0.5, similarity_fct=pairwise_dot_score), reference, 2, labels)


def test_cosent_all_labels_equal_is_log_2_free() -> None:
    """With no ranked pair the sum is empty: the loss is log(1) = 0."""
    loss = CoSENTLoss(LookupModel(fixed_table(2 * BATCH)))(columns_of(2), torch.full((BATCH,), 0.5))
    assert loss.item() == 0.0


def test_angle_pairs_match_formula() -> None:
    def reference(table: Tensor) -> Tensor:
        a, b = rows(table, 0), rows(table, 1)
        scores = torch.stack([angle_sim_reference(a[i], b[i]) for i in range(BATCH)]) * 20.0
        return cosent_reference(scores, SCORES.double())

    check_against_reference(lambda m: AnglELoss(m), reference, 2, SCORES)


@pytest.mark.parametrize("labelled", [False, True])
def test_angle_n_tuples_match_formula(labelled: bool) -> None:
    """Anchor/positive pairs carry the label (1 without labels), anchor/negative pairs 1 - label."""
    labels = torch.tensor([1.0, 0.9, 0.8, 1.0, 0.7, 0.95, 1.0, 0.85]) if labelled else None
    positive_labels = labels.double() if labels is not None else torch.ones(BATCH, dtype=torch.float64)

    def reference(table: Tensor) -> Tensor:
        anchor = rows(table, 0)
        scores, pair_labels = [], []
        for column in (1, 2, 3):
            other = rows(table, column)
            for i in range(BATCH):
                scores.append(angle_sim_reference(anchor[i], other[i]) * 20.0)
                pair_labels.append(positive_labels[i] if column == 1 else 1 - positive_labels[i])
        return cosent_reference(torch.stack(scores), torch.stack(pair_labels))

    check_against_reference(lambda m: AnglELoss(m), reference, 4, labels)


@pytest.mark.parametrize("transform", ["identity", "tanh"])
def test_cosine_similarity_matches_formula(transform: str) -> None:
    def reference(table: Tensor) -> Tensor:
        a, b = rows(table, 0), rows(table, 1)
        scores = torch.stack([cos(a[i], b[i]) for i in range(BATCH)])
        if transform == "tanh":
            scores = torch.tanh(scores)
        return ((scores - SCORES.double()) ** 2).mean()

    module = nn.Tanh() if transform == "tanh" else nn.Identity()
    check_against_reference(lambda m: CosineSimilarityLoss(m, cos_score_transformation=module), reference, 2, SCORES)


def test_scored_pair_configs_match_sentence_transformers_keys() -> None:
    model = LookupModel(fixed_table(4))
    assert CoSENTLoss(model).get_config_dict() == {"scale": 20.0, "similarity_fct": "pairwise_cos_sim"}
    assert AnglELoss(model, scale=10.0).get_config_dict() == {"scale": 10.0, "similarity_fct": "pairwise_angle_sim"}
    assert CosineSimilarityLoss(model).get_config_dict() == {
        "loss_fct": "torch.nn.modules.loss.MSELoss",
        "cos_score_transformation": "torch.nn.modules.linear.Identity",
    }
    assert "CoSENT" in CoSENTLoss.citation and "Angle-optimized" in AnglELoss.citation


# ---------------------------------------------------------------------------------------------
# Labelled pairs
# ---------------------------------------------------------------------------------------------


def pair_distances(table: Tensor, metric: str) -> list[Tensor]:
    a, b = rows(table, 0), rows(table, 1)
    if metric == "cosine":
        return [1 - cos(a[i], b[i]) for i in range(BATCH)]
    if metric == "euclidean":
        return [((a[i] - b[i]) ** 2).sum().sqrt() for i in range(BATCH)]
    return [(a[i] - b[i]).abs().sum() for i in range(BATCH)]


METRICS = {
    "cosine": SiameseDistanceMetric.COSINE_DISTANCE,
    "euclidean": SiameseDistanceMetric.EUCLIDEAN,
    "manhattan": SiameseDistanceMetric.MANHATTAN,
}


@pytest.mark.parametrize(
    ("metric", "margin", "size_average"),
    [("cosine", 0.5, True), ("cosine", 1.2, False), ("euclidean", 6.0, True), ("manhattan", 20.0, True)],
)
def test_contrastive_matches_formula(metric: str, margin: float, size_average: bool) -> None:
    def reference(table: Tensor) -> Tensor:
        terms = []
        for d, y in zip(pair_distances(table, metric), BINARY.tolist()):
            terms.append(0.5 * d**2 if y == 1 else 0.5 * torch.clamp(margin - d, min=0) ** 2)
        total = torch.stack(terms).sum()
        return total / BATCH if size_average else total

    check_against_reference(
        lambda m: ContrastiveLoss(m, METRICS[metric], margin=margin, size_average=size_average), reference, 2, BINARY
    )


@pytest.mark.parametrize(("metric", "margin"), [("cosine", 0.5), ("cosine", 1.3), ("euclidean", 6.0)])
def test_online_contrastive_matches_formula(metric: str, margin: float) -> None:
    def reference(table: Tensor) -> Tensor:
        distances = pair_distances(table, metric)
        positives = [d for d, y in zip(distances, BINARY.tolist()) if y == 1]
        negatives = [d for d, y in zip(distances, BINARY.tolist()) if y == 0]
        farthest_positive = max(d.item() for d in positives)
        closest_negative = min(d.item() for d in negatives)
        total = torch.zeros((), dtype=table.dtype)
        for d in positives:
            if d.item() > closest_negative:
                total = total + d**2
        for d in negatives:
            if d.item() < farthest_positive:
                total = total + torch.clamp(margin - d, min=0) ** 2
        return total

    check_against_reference(lambda m: OnlineContrastiveLoss(m, METRICS[metric], margin=margin), reference, 2, BINARY)


def test_online_contrastive_selects_some_but_not_all_pairs() -> None:
    """The fixed batch of the formula test really exercises the hard-pair selection."""
    table = fixed_table(2 * BATCH)
    distances = 1 - torch.cosine_similarity(rows(table, 0), rows(table, 1))
    positives, negatives = distances[BINARY == 1], distances[BINARY == 0]
    hard = (positives > negatives.min()).sum() + (negatives < positives.max()).sum()
    assert 0 < hard < BATCH


def test_contrastive_warns_once_on_non_binary_labels() -> None:
    for loss_class in (ContrastiveLoss, OnlineContrastiveLoss):
        loss = loss_class(LookupModel(fixed_table(2 * BATCH)))
        with pytest.warns(UserWarning, match=f"{loss_class.__name__} expects binary labels"):
            loss(columns_of(2), SCORES)


@pytest.mark.parametrize(
    ("flags", "labels"),
    [
        ((True, True, False), CLASSES),
        ((True, True, True), CLASSES),
        ((False, False, True), CLASSES),
        ((False, True, False), torch.softmax(torch.randn(BATCH, 3, generator=torch.Generator().manual_seed(1)), 1)),
    ],
)
def test_softmax_matches_formula(flags: tuple[bool, bool, bool], labels: Tensor) -> None:
    """Value and gradients (embeddings and classifier) of cross-entropy over the concatenated features."""
    rep, difference, multiplication = flags
    table = fixed_table(2 * BATCH)
    model = LookupModel(table)
    loss_module = SoftmaxLoss(model, DIMS, 3, rep, difference, multiplication)
    weight = loss_module.classifier.weight.detach().double().clone().requires_grad_(True)
    bias = loss_module.classifier.bias.detach().double().clone().requires_grad_(True)
    loss_module(columns_of(2), labels).backward()

    expected_table = table.double().clone().requires_grad_(True)
    a, b = rows(expected_table, 0), rows(expected_table, 1)
    total = torch.zeros((), dtype=torch.float64)
    for i in range(BATCH):
        parts = ([a[i], b[i]] if rep else []) + ([(a[i] - b[i]).abs()] if difference else [])
        parts += [a[i] * b[i]] if multiplication else []
        logits = weight @ torch.cat(parts) + bias
        log_probs = logits - torch.logsumexp(logits, 0)
        target = labels[i].double() if labels.ndim == 2 else torch.eye(3, dtype=torch.float64)[labels[i]]
        total = total - (target * log_probs).sum()
    expected = total / BATCH
    expected.backward()
    assert loss_module(columns_of(2), labels).item() == pytest.approx(expected.item(), rel=1e-5)
    torch.testing.assert_close(model.table.grad.double(), expected_table.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(loss_module.classifier.weight.grad.double(), weight.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(loss_module.classifier.bias.grad.double(), bias.grad, rtol=1e-4, atol=1e-6)


def test_softmax_classifier_shape_prediction_and_deprecated_name(tokenizer_file: Path) -> None:
    model = our_static_model(tokenizer_file)
    loss_module = SoftmaxLoss(
        model, model.get_embedding_dimension(), num_labels=4, concatenation_sent_multiplication=True
    )
    assert isinstance(loss_module.classifier, nn.Linear)
    assert tuple(loss_module.classifier.weight.shape) == (4, 4 * DIMS)
    # The classifier is a parameter of the loss, so an optimizer over loss.parameters() trains it.
    assert any(p is loss_module.classifier.weight for p in loss_module.parameters())
    features = [model.preprocess(texts) for texts in text_columns(2)]
    embeddings, logits = loss_module(features, None)
    assert len(embeddings) == 2 and tuple(logits.shape) == (BATCH, 4)
    old = SoftmaxLoss(model, sentence_embedding_dimension=DIMS, num_labels=2)
    assert tuple(old.classifier.weight.shape) == (2, 3 * DIMS)
    assert old.get_config_dict() == {
        "num_labels": 2,
        "concatenation_sent_rep": True,
        "concatenation_sent_difference": True,
        "concatenation_sent_multiplication": False,
    }


def test_labelled_pair_configs() -> None:
    model = LookupModel(fixed_table(4))
    assert ContrastiveLoss(model).get_config_dict() == {
        "distance_metric": "SiameseDistanceMetric.COSINE_DISTANCE",
        "margin": 0.5,
        "size_average": True,
    }
    assert OnlineContrastiveLoss(model, SiameseDistanceMetric.EUCLIDEAN, 2.0).get_config_dict() == {
        "distance_metric": "SiameseDistanceMetric.EUCLIDEAN",
        "margin": 2.0,
    }
    assert "Hadsell" in ContrastiveLoss.citation and "Sentence-{BERT}" in SoftmaxLoss.citation


# ---------------------------------------------------------------------------------------------
# Triplets
# ---------------------------------------------------------------------------------------------


def distance(x: Tensor, y: Tensor, metric: str) -> Tensor:
    if metric == "cosine":
        return 1 - cos(x, y)
    if metric == "euclidean":
        return ((x - y) ** 2).sum().sqrt()
    return (x - y).abs().sum()


TRIPLET_METRICS = {
    "cosine": TripletDistanceMetric.COSINE,
    "euclidean": TripletDistanceMetric.EUCLIDEAN,
    "manhattan": TripletDistanceMetric.MANHATTAN,
}
BATCH_METRICS = {
    "cosine": BatchHardTripletLossDistanceFunction.cosine_distance,
    "euclidean": BatchHardTripletLossDistanceFunction.euclidean_distance,
}


@pytest.mark.parametrize(
    ("metric", "margin"), [("euclidean", 5.0), ("euclidean", 1.0), ("cosine", 0.3), ("manhattan", 3.0)]
)
def test_triplet_matches_formula(metric: str, margin: float) -> None:
    def reference(table: Tensor) -> Tensor:
        a, p, n = rows(table, 0), rows(table, 1), rows(table, 2)
        terms = [
            torch.clamp(distance(a[i], p[i], metric) - distance(a[i], n[i], metric) + margin, min=0)
            for i in range(BATCH)
        ]
        return torch.stack(terms).mean()

    check_against_reference(lambda m: TripletLoss(m, TRIPLET_METRICS[metric], margin), reference, 3, None)


def distance_matrix(table: Tensor, metric: str) -> list[list[Tensor]]:
    """d[i][j] for the first BATCH rows, with an exact zero (no gradient) on the diagonal for euclidean."""
    e = rows(table, 0)
    zero = torch.zeros((), dtype=table.dtype)
    return [
        [zero if (i == j and metric == "euclidean") else distance(e[i], e[j], metric) for j in range(BATCH)]
        for i in range(BATCH)
    ]


def hardest(table: Tensor, metric: str) -> list[tuple[Tensor, Tensor]]:
    """Per anchor: (largest distance to a same-label row, smallest distance to another-label row)."""
    d = distance_matrix(table, metric)
    labels = CLASSES.tolist()
    result = []
    for a in range(BATCH):
        positives = [d[a][p] for p in range(BATCH) if p != a and labels[p] == labels[a]]
        negatives = [d[a][n] for n in range(BATCH) if labels[n] != labels[a]]
        result.append((max(positives, key=lambda x: x.item()), min(negatives, key=lambda x: x.item())))
    return result


@pytest.mark.parametrize(("metric", "margin"), [("euclidean", 5.0), ("euclidean", 0.5), ("cosine", 0.2)])
def test_batch_hard_triplet_matches_formula(metric: str, margin: float) -> None:
    def reference(table: Tensor) -> Tensor:
        terms = [torch.clamp(p - n + margin, min=0) for p, n in hardest(table, metric)]
        return torch.stack(terms).mean()

    check_against_reference(lambda m: BatchHardTripletLoss(m, BATCH_METRICS[metric], margin), reference, 1, CLASSES)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_batch_hard_soft_margin_matches_formula(metric: str) -> None:
    def reference(table: Tensor) -> Tensor:
        return torch.stack([torch.log1p(torch.exp(p - n)) for p, n in hardest(table, metric)]).mean()

    check_against_reference(lambda m: BatchHardSoftMarginTripletLoss(m, BATCH_METRICS[metric]), reference, 1, CLASSES)


def valid_triplets() -> list[tuple[int, int, int]]:
    labels = CLASSES.tolist()
    return [
        (a, p, n)
        for a in range(BATCH)
        for p in range(BATCH)
        for n in range(BATCH)
        if a != p and labels[a] == labels[p] and labels[n] != labels[a]
    ]


@pytest.mark.parametrize(("metric", "margin"), [("euclidean", 5.0), ("euclidean", 0.5), ("cosine", 0.1)])
def test_batch_all_triplet_matches_formula(metric: str, margin: float) -> None:
    def reference(table: Tensor) -> Tensor:
        d = distance_matrix(table, metric)
        terms = [torch.clamp(d[a][p] - d[a][n] + margin, min=0) for a, p, n in valid_triplets()]
        active = sum(1 for t in terms if t.item() > 1e-16)
        return torch.stack(terms).sum() / active

    check_against_reference(lambda m: BatchAllTripletLoss(m, BATCH_METRICS[metric], margin), reference, 1, CLASSES)


def test_batch_all_margin_leaves_some_triplets_inactive() -> None:
    """The small-margin case above really averages over a strict subset of the triplets."""
    d = distance_matrix(fixed_table(BATCH), "euclidean")
    active = sum(1 for a, p, n in valid_triplets() if (d[a][p] - d[a][n]).item() + 0.5 > 0)
    assert 0 < active < len(valid_triplets())


@pytest.mark.parametrize(("metric", "margin"), [("euclidean", 5.0), ("euclidean", 0.5), ("cosine", 0.1)])
def test_batch_semi_hard_triplet_matches_formula(metric: str, margin: float) -> None:
    labels = CLASSES.tolist()

    def reference(table: Tensor) -> Tensor:
        d = distance_matrix(table, metric)
        terms = []
        for a in range(BATCH):
            negatives = [d[a][n] for n in range(BATCH) if labels[n] != labels[a]]
            for p in range(BATCH):
                if p == a or labels[p] != labels[a]:
                    continue
                farther = [x for x in negatives if x.item() > d[a][p].item()]
                chosen = min(farther, key=lambda x: x.item()) if farther else max(negatives, key=lambda x: x.item())
                terms.append(torch.clamp(d[a][p] - chosen + margin, min=0))
        return torch.stack(terms).mean()

    check_against_reference(lambda m: BatchSemiHardTripletLoss(m, BATCH_METRICS[metric], margin), reference, 1, CLASSES)


def test_semi_hard_batch_has_both_kinds_of_negative() -> None:
    """Some positive pairs have a farther negative and some have none, so both branches are exercised."""
    d = distance_matrix(fixed_table(BATCH), "euclidean")
    labels = CLASSES.tolist()
    has_farther = []
    for a in range(BATCH):
        for p in range(BATCH):
            if p != a and labels[p] == labels[a]:
                has_farther.append(any(d[a][n].item() > d[a][p].item() for n in range(BATCH) if labels[n] != labels[a]))
    assert any(has_farther) and not all(has_farther)


def test_euclidean_distance_matrix_and_masks() -> None:
    e = fixed_table(5).requires_grad_(True)
    d = BatchHardTripletLossDistanceFunction.euclidean_distance(e)
    expected = torch.cdist(e.detach().double(), e.detach().double())
    torch.testing.assert_close(d.double(), expected, rtol=1e-5, atol=1e-5)
    assert torch.all(d.diagonal() == 0)
    squared = BatchHardTripletLossDistanceFunction.euclidean_distance(e, squared=True)
    torch.testing.assert_close(squared.double(), expected**2, rtol=1e-5, atol=1e-4)
    d.sum().backward()
    assert torch.isfinite(e.grad).all()
    assert (
        BatchHardTripletLossDistanceFunction.eucledian_distance
        is BatchHardTripletLossDistanceFunction.euclidean_distance
    )

    labels = torch.tensor([0, 1, 0, 2, 1])
    triplet_mask = BatchHardTripletLoss.get_triplet_mask(labels)
    for a in range(5):
        for p in range(5):
            assert BatchHardTripletLoss.get_anchor_positive_triplet_mask(labels)[a, p] == (
                a != p and labels[a] == labels[p]
            )
            assert BatchHardTripletLoss.get_anchor_negative_triplet_mask(labels)[a, p] == (labels[a] != labels[p])
            for n in range(5):
                expected_valid = len({a, p, n}) == 3 and labels[a] == labels[p] and labels[n] != labels[a]
                assert triplet_mask[a, p, n] == expected_valid


def test_triplet_configs() -> None:
    model = LookupModel(fixed_table(4))
    assert TripletLoss(model).get_config_dict() == {
        "distance_metric": "TripletDistanceMetric.EUCLIDEAN",
        "triplet_margin": 5,
    }
    assert BatchHardTripletLoss(model).get_config_dict() == {"distance_metric": "euclidean_distance", "margin": 5}
    assert BatchSemiHardTripletLoss(model, BATCH_METRICS["cosine"], 1.0).get_config_dict() == {
        "distance_metric": "cosine_distance",
        "margin": 1.0,
    }
    assert BatchHardSoftMarginTripletLoss(model).get_config_dict() == {"distance_metric": "euclidean_distance"}
    assert "1703.07737" in BatchAllTripletLoss.citation


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make_loss", "n_columns", "labels", "message"),
    [
        (CoSENTLoss, 3, SCORES, r"CoSENTLoss needs 2 text columns and a label column, but got text columns \["),
        (CoSENTLoss, 2, None, r"CoSENTLoss needs 2 text columns and a label column, .* and no label"),
        (CoSENTLoss, 2, SCORES[:5], r"CoSENTLoss expects 8 labels .* got 5"),
        (AnglELoss, 2, None, r"AnglELoss needs 2 text columns and a label column, or at least 3"),
        (AnglELoss, 1, SCORES, r"AnglELoss needs"),
        (AnglELoss, 3, SCORES[:4], r"AnglELoss expects 8 labels .* got 4"),
        (CosineSimilarityLoss, 1, SCORES, r"CosineSimilarityLoss needs 2 text columns and a label column"),
        (CosineSimilarityLoss, 2, None, r"CosineSimilarityLoss needs 2 text columns and a label column"),
        (CosineSimilarityLoss, 2, SCORES[:3], r"CosineSimilarityLoss expects 8 labels"),
        (ContrastiveLoss, 3, BINARY, r"ContrastiveLoss needs 2 text columns and a label column, but got"),
        (ContrastiveLoss, 2, None, r"ContrastiveLoss needs 2 text columns and a label column, .* and no label"),
        (ContrastiveLoss, 2, BINARY[:2], r"ContrastiveLoss expects 8 labels"),
        (OnlineContrastiveLoss, 1, BINARY, r"OnlineContrastiveLoss needs 2 text columns and a label column"),
        (OnlineContrastiveLoss, 2, None, r"OnlineContrastiveLoss needs 2 text columns and a label column"),
        (OnlineContrastiveLoss, 2, BINARY[:7], r"OnlineContrastiveLoss expects 8 labels"),
        (lambda m: SoftmaxLoss(m, DIMS, 3), 3, CLASSES, r"SoftmaxLoss needs 2 text columns and a label column"),
        (TripletLoss, 2, None, r"TripletLoss needs 3 text columns and no label column, but got text columns"),
        (BatchHardTripletLoss, 2, CLASSES, r"BatchHardTripletLoss needs 1 text column and a label column"),
        (BatchHardTripletLoss, 1, None, r"BatchHardTripletLoss needs 1 text column and a label column"),
        (BatchHardTripletLoss, 1, CLASSES[:6], r"BatchHardTripletLoss expects 8 labels"),
        (BatchAllTripletLoss, 3, CLASSES, r"BatchAllTripletLoss needs 1 text column and a label column"),
        (BatchAllTripletLoss, 1, None, r"BatchAllTripletLoss needs 1 text column and a label column"),
        (BatchAllTripletLoss, 1, CLASSES[:6], r"BatchAllTripletLoss expects 8 labels"),
        (BatchSemiHardTripletLoss, 2, CLASSES, r"BatchSemiHardTripletLoss needs 1 text column and a label column"),
        (BatchSemiHardTripletLoss, 1, None, r"BatchSemiHardTripletLoss needs 1 text column and a label column"),
        (BatchSemiHardTripletLoss, 1, CLASSES[:6], r"BatchSemiHardTripletLoss expects 8 labels"),
        (BatchHardSoftMarginTripletLoss, 2, CLASSES, r"BatchHardSoftMarginTripletLoss needs 1 text column and a"),
        (BatchHardSoftMarginTripletLoss, 1, None, r"BatchHardSoftMarginTripletLoss needs 1 text column and a"),
        (BatchHardSoftMarginTripletLoss, 1, CLASSES[:6], r"BatchHardSoftMarginTripletLoss expects 8 labels"),
    ],
)
def test_wrong_inputs_fail_clearly(
    make_loss: Callable[[nn.Module], nn.Module], n_columns: int, labels: Tensor | None, message: str
) -> None:
    loss = make_loss(LookupModel(fixed_table(4 * BATCH)))
    with pytest.raises(InvalidArgumentError, match=message):
        loss(columns_of(n_columns), labels)


def test_softmax_needs_some_features_and_sizes() -> None:
    model = LookupModel(fixed_table(4))
    with pytest.raises(InvalidArgumentError, match="at least one of concatenation_sent_rep"):
        SoftmaxLoss(model, DIMS, 3, False, False, False)
    with pytest.raises(InvalidArgumentError, match="embedding_dimension"):
        SoftmaxLoss(model, num_labels=3)


def test_column_check_runs_before_training() -> None:
    model = LookupModel(fixed_table(4))
    with pytest.raises(
        InvalidArgumentError, match=r"CoSENTLoss needs .* got text columns \['anchor'\] and label column 'score'"
    ):
        CoSENTLoss(model).check_input_columns(["anchor"], True, "score")
    AnglELoss(model).check_input_columns(["a", "p", "n"], False)
    AnglELoss(model).check_input_columns(["a", "b"], True, "score")
    with pytest.raises(InvalidArgumentError, match="AnglELoss needs"):
        AnglELoss(model).check_input_columns(["a", "b"], False)
