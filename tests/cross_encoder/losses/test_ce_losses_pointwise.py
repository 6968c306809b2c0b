"""Pointwise cross-encoder losses: BinaryCrossEntropyLoss, CrossEntropyLoss, MSELoss and MarginMSELoss.

Each is checked against its formula written out here (value and parameter gradients, on scores taken
straight from the Hugging Face model) and against sentence-transformers on the same weights and batch.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from conftest import random_sentences
from embedforge.cross_encoder.losses import BinaryCrossEntropyLoss, CrossEntropyLoss, MarginMSELoss, MSELoss
from embedforge.exceptions import InvalidArgumentError
from test_ce_losses_helpers import (
    ATOL,
    PairScorer,
    assert_same_run,
    max_grad_diff,
    our_model,
    run,
    run_reference,
    st_losses,
    st_model,
)

QUERIES = random_sentences(5, seed=11)
DOCS = random_sentences(5, seed=12, max_words=16)
NEGATIVES = [random_sentences(5, seed=13 + i, max_words=16) for i in range(2)]
BINARY = torch.tensor([1, 0, 1, 0, 0])
GRADED = torch.tensor([0.9, 0.1, 0.55, 0.0, 1.0])


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Any:
    """Tiny tensors: one intra-op thread beats contending for a busy machine's cores (by 10x and more)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def scorer() -> Any:
    return our_model(1)


@pytest.fixture(scope="module")
def classifier() -> Any:
    return our_model(3)


def _sigmoid_bce(logit: Tensor, target: float, pos_weight: float = 1.0) -> Tensor:
    # -[w * y * log s + (1 - y) * log(1 - s)], s = sigmoid(logit)
    p = torch.sigmoid(logit)
    return -(pos_weight * target * torch.log(p) + (1 - target) * torch.log(1 - p))


# -- BinaryCrossEntropyLoss --------------------------------------------------------------------------


@pytest.mark.parametrize("labels", [BINARY, GRADED], ids=["binary", "graded"])
@pytest.mark.parametrize("pos_weight", [None, 3.0])
def test_bce_matches_formula(scorer: Any, labels: Tensor, pos_weight: float | None) -> None:
    loss = BinaryCrossEntropyLoss(scorer, pos_weight=None if pos_weight is None else torch.tensor(pos_weight))

    def formula(score: PairScorer) -> Tensor:
        terms = [
            _sigmoid_bce(score(q, d)[0], float(y), pos_weight or 1.0) for q, d, y in zip(QUERIES, DOCS, labels.tolist())
        ]
        return torch.stack(terms).mean()

    assert_same_run(run(loss, scorer, [QUERIES, DOCS], labels), run_reference(scorer, formula))


def test_bce_activation_is_applied_before_the_sigmoid(scorer: Any) -> None:
    loss = BinaryCrossEntropyLoss(scorer, activation_fn=nn.Tanh())

    def formula(score: PairScorer) -> Tensor:
        return torch.stack(
            [_sigmoid_bce(torch.tanh(score(q, d)[0]), float(y)) for q, d, y in zip(QUERIES, DOCS, BINARY.tolist())]
        ).mean()

    assert_same_run(run(loss, scorer, [QUERIES, DOCS], BINARY), run_reference(scorer, formula))


@pytest.mark.parametrize(
    "options", [{}, {"pos_weight": torch.tensor(4.0)}, {"activation_fn": nn.Sigmoid()}, {"reduction": "sum"}]
)
def test_bce_matches_sentence_transformers(scorer: Any, options: dict[str, Any]) -> None:
    theirs = st_model(1)
    ours_loss, st_loss = (
        BinaryCrossEntropyLoss(scorer, **options),
        st_losses().BinaryCrossEntropyLoss(theirs, **options),
    )
    for labels in (BINARY, GRADED):
        assert_same_run(run(ours_loss, scorer, [QUERIES, DOCS], labels), run(st_loss, theirs, [QUERIES, DOCS], labels))
    assert ours_loss.get_config_dict() == st_loss.get_config_dict()


def test_prompt_reaches_the_tokenizer(scorer: Any) -> None:
    """``prompt`` changes the scored text, exactly as in sentence-transformers."""
    theirs = st_model(1)
    ours_run = run(BinaryCrossEntropyLoss(scorer), scorer, [QUERIES, DOCS], BINARY, prompt="relevance: ")
    assert abs(ours_run[0] - run(BinaryCrossEntropyLoss(scorer), scorer, [QUERIES, DOCS], BINARY)[0]) > 1e-6
    st_run = run(st_losses().BinaryCrossEntropyLoss(theirs), theirs, [QUERIES, DOCS], BINARY, prompt="relevance: ")
    assert_same_run(ours_run, st_run)


# -- CrossEntropyLoss --------------------------------------------------------------------------------

CLASSES = torch.tensor([0, 2, 1, 1, 0])


def test_cross_entropy_matches_formula(classifier: Any) -> None:
    def formula(score: PairScorer) -> Tensor:
        terms = []
        for q, d, y in zip(QUERIES, DOCS, CLASSES.tolist()):
            logits = score(q, d)
            terms.append(torch.logsumexp(logits, dim=0) - logits[y])
        return torch.stack(terms).mean()

    assert_same_run(
        run(CrossEntropyLoss(classifier), classifier, [QUERIES, DOCS], CLASSES), run_reference(classifier, formula)
    )
    # A (batch, 1) column of class indices is the same labels.
    column = CLASSES.unsqueeze(1)
    assert_same_run(
        run(CrossEntropyLoss(classifier), classifier, [QUERIES, DOCS], column), run_reference(classifier, formula)
    )


def test_cross_entropy_with_class_probabilities(classifier: Any) -> None:
    targets = torch.softmax(torch.randn(5, 3, generator=torch.Generator().manual_seed(0)), dim=1)

    def formula(score: PairScorer) -> Tensor:
        terms = []
        for q, d, p in zip(QUERIES, DOCS, targets):
            logits = score(q, d)
            terms.append(-(p * torch.log_softmax(logits, dim=0)).sum())
        return torch.stack(terms).mean()

    assert_same_run(
        run(CrossEntropyLoss(classifier), classifier, [QUERIES, DOCS], targets), run_reference(classifier, formula)
    )


@pytest.mark.parametrize("options", [{}, {"label_smoothing": 0.1}, {"weight": torch.tensor([1.0, 2.0, 0.5])}])
def test_cross_entropy_matches_sentence_transformers(classifier: Any, options: dict[str, Any]) -> None:
    theirs = st_model(3)
    assert_same_run(
        run(CrossEntropyLoss(classifier, **options), classifier, [QUERIES, DOCS], CLASSES),
        run(st_losses().CrossEntropyLoss(theirs, **options), theirs, [QUERIES, DOCS], CLASSES),
    )


# -- MSELoss -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", [None, nn.Sigmoid()])
def test_mse_matches_formula(scorer: Any, activation: nn.Module | None) -> None:
    loss = MSELoss(scorer) if activation is None else MSELoss(scorer, activation_fn=activation)
    act = activation or (lambda x: x)

    def formula(score: PairScorer) -> Tensor:
        return torch.stack([(act(score(q, d)[0]) - y) ** 2 for q, d, y in zip(QUERIES, DOCS, GRADED.tolist())]).mean()

    assert_same_run(run(loss, scorer, [QUERIES, DOCS], GRADED), run_reference(scorer, formula))


@pytest.mark.parametrize("options", [{}, {"activation_fn": nn.Sigmoid()}, {"reduction": "sum"}])
def test_mse_matches_sentence_transformers(scorer: Any, options: dict[str, Any]) -> None:
    theirs = st_model(1)
    ours_loss, st_loss = MSELoss(scorer, **options), st_losses().MSELoss(theirs, **options)
    assert_same_run(run(ours_loss, scorer, [QUERIES, DOCS], GRADED), run(st_loss, theirs, [QUERIES, DOCS], GRADED))
    assert ours_loss.get_config_dict() == st_loss.get_config_dict()


# -- MarginMSELoss -----------------------------------------------------------------------------------

GOLD = torch.tensor([[2.0, 0.5, -1.0], [1.0, 1.5, 0.0], [0.2, -0.3, 0.1], [3.0, 1.0, 2.0], [0.0, 0.0, 1.0]])


def _margin_formula(columns: int) -> Any:
    def formula(score: PairScorer) -> Tensor:
        terms = []
        for row, query in enumerate(QUERIES):
            first = score(query, DOCS[row])[0]
            for column in range(columns):
                gold = GOLD[row, 0] - GOLD[row, column + 1]
                terms.append((first - score(query, NEGATIVES[column][row])[0] - gold) ** 2)
        return torch.stack(terms).mean()

    return formula


@pytest.mark.parametrize("columns", [1, 2])
def test_margin_mse_matches_formula_for_scores_and_margins(scorer: Any, columns: int) -> None:
    inputs = [QUERIES, DOCS, *NEGATIVES[:columns]]
    reference = run_reference(scorer, _margin_formula(columns))
    scores = GOLD[:, : columns + 1]
    margins = scores[:, :1] - scores[:, 1:]
    # Gold scores per document, as one tensor or as the collator's list of per-row tensors, or the margins.
    for labels in (scores, list(scores), margins, list(margins)):
        assert_same_run(run(MarginMSELoss(scorer), scorer, inputs, labels), reference)
    if columns == 1:
        assert_same_run(run(MarginMSELoss(scorer), scorer, inputs, margins.view(-1)), reference)


@pytest.mark.parametrize("columns", [1, 2])
def test_margin_mse_matches_sentence_transformers(scorer: Any, columns: int) -> None:
    theirs = st_model(1)
    inputs = [QUERIES, DOCS, *NEGATIVES[:columns]]
    labels = list(GOLD[:, : columns + 1])
    ours_loss, st_loss = (
        MarginMSELoss(scorer, activation_fn=nn.Sigmoid()),
        st_losses().MarginMSELoss(theirs, activation_fn=nn.Sigmoid()),
    )
    assert_same_run(run(ours_loss, scorer, inputs, labels), run(st_loss, theirs, inputs, labels))
    assert ours_loss.get_config_dict() == st_loss.get_config_dict()
    assert ours_loss.citation == st_loss.citation


# -- errors, configs, column checks ------------------------------------------------------------------


def _raises_like_st(ours: Any, theirs: Any, call: tuple[Any, ...]) -> None:
    """Both raise ValueError; ours is InvalidArgumentError."""
    with pytest.raises(InvalidArgumentError):
        ours(*call)
    if theirs is not None:
        with pytest.raises(ValueError):
            theirs(*call)


@pytest.mark.parametrize("name", ["BinaryCrossEntropyLoss", "MSELoss", "CrossEntropyLoss"])
def test_pair_losses_reject_wrong_columns_and_labels(name: str) -> None:
    from embedforge.cross_encoder import losses

    num_labels = 3 if name == "CrossEntropyLoss" else 1
    ours = getattr(losses, name)(our_model(num_labels))
    try:
        theirs = getattr(st_losses(), name)(st_model(num_labels))
    except pytest.skip.Exception:
        theirs = None
    labels = CLASSES if name == "CrossEntropyLoss" else BINARY
    _raises_like_st(ours, theirs, ([QUERIES, DOCS, DOCS], labels))
    _raises_like_st(ours, theirs, ([QUERIES], labels))
    _raises_like_st(ours, theirs, ([QUERIES, DOCS], labels[:3]))
    # Before training: the trainer's column check names the loss and what it needs.
    with pytest.raises(InvalidArgumentError, match=rf"{name} needs 2 text columns and a label column"):
        ours.check_input_columns(["query", "answer", "negative"], has_label=True, label_column="label")
    with pytest.raises(InvalidArgumentError, match="no label"):
        ours.check_input_columns(["query", "answer"], has_label=False)
    ours.check_input_columns(["query", "answer"], has_label=True, label_column="label")


def test_cross_entropy_rejects_float_class_indices(classifier: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="class indices as integers"):
        CrossEntropyLoss(classifier)([QUERIES, DOCS], CLASSES.float())
    with pytest.raises(InvalidArgumentError, match=r"\(5, 3\)"):
        CrossEntropyLoss(classifier)([QUERIES, DOCS], torch.zeros(5, 2))


def test_margin_mse_rejects_label_shapes_and_too_few_columns(scorer: Any) -> None:
    try:
        theirs: Any = st_losses().MarginMSELoss(st_model(1))
    except pytest.skip.Exception:
        theirs = None
    ours = MarginMSELoss(scorer)
    inputs = [QUERIES, DOCS, *NEGATIVES]
    _raises_like_st(ours, theirs, (inputs, GOLD[:, :2].T))
    _raises_like_st(ours, theirs, (inputs, torch.zeros(5, 4)))
    with pytest.raises(InvalidArgumentError, match="at least 3"):
        ours([QUERIES, DOCS], GOLD[:, 0])
    with pytest.raises(InvalidArgumentError, match="needs a label column"):
        ours(inputs, None)


def test_single_label_losses_reject_other_models(classifier: Any) -> None:
    for cls in (BinaryCrossEntropyLoss, MSELoss, MarginMSELoss):
        with pytest.raises(InvalidArgumentError, match="num_labels=3"):
            cls(classifier)
        with pytest.raises(InvalidArgumentError, match="needs a CrossEncoder"):
            cls(nn.Linear(2, 1))  # type: ignore[arg-type]
    theirs = st_losses()
    with pytest.raises(ValueError):
        theirs.BinaryCrossEntropyLoss(st_model(3))


def test_configs_and_citations_match_sentence_transformers(scorer: Any, classifier: Any) -> None:
    theirs = st_losses()
    for cls, model, st_model_ in (
        (BinaryCrossEntropyLoss, scorer, st_model(1)),
        (MSELoss, scorer, st_model(1)),
        (MarginMSELoss, scorer, st_model(1)),
    ):
        ours_loss, st_loss = cls(model), getattr(theirs, cls.__name__)(st_model_)
        assert ours_loss.get_config_dict() == st_loss.get_config_dict()
        assert ours_loss.citation == getattr(st_loss, "citation", "")
    assert BinaryCrossEntropyLoss(scorer, pos_weight=torch.tensor(4)).get_config_dict()["pos_weight"] == 4
    # sentence-transformers' CrossEntropyLoss has neither a config nor a citation.
    assert CrossEntropyLoss(classifier).get_config_dict() == {}
    assert not hasattr(theirs.CrossEntropyLoss(st_model(3)), "citation") and CrossEntropyLoss.citation == ""


def test_labels_follow_the_model_device_and_dtype(scorer: Any) -> None:
    """Integer labels (the collator's default for 0/1) and float labels give the same loss."""
    value = run(BinaryCrossEntropyLoss(scorer), scorer, [QUERIES, DOCS], BINARY)[0]
    assert math.isclose(value, run(BinaryCrossEntropyLoss(scorer), scorer, [QUERIES, DOCS], BINARY.double())[0])
    assert (
        max_grad_diff(
            run(MSELoss(scorer), scorer, [QUERIES, DOCS], GRADED.view(5, 1))[1],
            run(MSELoss(scorer), scorer, [QUERIES, DOCS], GRADED)[1],
        )
        <= ATOL
    )
