"""MultipleNegativesRankingLoss and its GradCache twin for cross-encoders.

Checked against the formula written out here, against sentence-transformers on the same weights
(including its random choice of in-batch negatives and, in training mode, its dropout masks), and
cached against uncached for several mini-batch sizes.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from conftest import random_sentences
from embedforge.cross_encoder.losses import CachedMultipleNegativesRankingLoss, MultipleNegativesRankingLoss
from embedforge.exceptions import InvalidArgumentError
from test_ce_losses_helpers import PairScorer, assert_same_run, our_model, run, run_reference, st_losses, st_model

ANCHORS = random_sentences(4, seed=21)
POSITIVES = random_sentences(4, seed=22, max_words=16)
HARD = random_sentences(4, seed=23, max_words=16)


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


def _mnrl_formula(columns: list[list[str]], scale: float, activation: Any) -> Any:
    """All in-batch negatives (num_negatives=None): anchor i against its positive, every candidate of the
    other rows (any column), and its own hard negatives; softmax cross-entropy on the positive."""

    def formula(score: PairScorer) -> Tensor:
        terms = []
        for i, anchor in enumerate(ANCHORS):
            candidates = [columns[0][i]]
            candidates += [column[j] for column in columns for j in range(len(ANCHORS)) if j != i]
            candidates += [column[i] for column in columns[1:]]
            logits = torch.stack([score(anchor, text)[0] for text in candidates])
            logits = activation(logits) if activation is not None else logits
            logits = logits * scale if scale else logits
            terms.append(torch.logsumexp(logits, dim=0) - logits[0])
        return torch.stack(terms).mean()

    return formula


@pytest.mark.parametrize("hard", [False, True], ids=["pairs", "triplets"])
@pytest.mark.parametrize(("scale", "activation"), [(10.0, nn.Sigmoid()), (3.0, None), (0.0, nn.Tanh())])
def test_mnrl_matches_formula(scorer: Any, hard: bool, scale: float, activation: Any) -> None:
    columns = [POSITIVES, HARD] if hard else [POSITIVES]
    reference = run_reference(scorer, _mnrl_formula(columns, scale, activation))
    for cls, options in (
        (MultipleNegativesRankingLoss, {}),
        (CachedMultipleNegativesRankingLoss, {"mini_batch_size": 3}),
    ):
        loss = cls(scorer, num_negatives=None, scale=scale, activation_fn=activation, **options)
        assert_same_run(run(loss, scorer, [ANCHORS, *columns], None), reference)


def test_mnrl_draws_the_requested_number_of_negatives(scorer: Any) -> None:
    """num_negatives columns are drawn, none from the anchor's own row; more than available means all."""
    loss = MultipleNegativesRankingLoss(scorer, num_negatives=2)
    torch.manual_seed(0)
    drawn = list(loss.get_in_batch_negatives(ANCHORS, [POSITIVES, HARD]))
    assert len(drawn) == 2
    for column in drawn:
        for i, text in enumerate(column):
            assert text not in (POSITIVES[i], HARD[i]) and text in POSITIVES + HARD
    assert (
        len(list(MultipleNegativesRankingLoss(scorer, num_negatives=50).get_in_batch_negatives(ANCHORS, [POSITIVES])))
        == 3
    )
    assert (
        list(MultipleNegativesRankingLoss(scorer, num_negatives=0).get_in_batch_negatives(ANCHORS, [POSITIVES])) == []
    )


@pytest.mark.parametrize("num_negatives", [None, 2, 4])
@pytest.mark.parametrize("hard", [False, True], ids=["pairs", "triplets"])
def test_mnrl_matches_sentence_transformers(scorer: Any, num_negatives: int | None, hard: bool) -> None:
    theirs = st_model(1)
    inputs = [ANCHORS, POSITIVES, HARD] if hard else [ANCHORS, POSITIVES]
    ours_loss = MultipleNegativesRankingLoss(scorer, num_negatives=num_negatives)
    st_loss = st_losses().MultipleNegativesRankingLoss(theirs, num_negatives=num_negatives)
    # The same seed draws the same negatives: the draw uses the same RNG calls in the same order.
    assert_same_run(run(ours_loss, scorer, inputs, None, seed=3), run(st_loss, theirs, inputs, None, seed=3))
    assert ours_loss.get_config_dict() == st_loss.get_config_dict()


@pytest.mark.parametrize("mini_batch_size", [1, 3, 32])
@pytest.mark.parametrize("num_negatives", [None, 2])
def test_cached_matches_sentence_transformers(scorer: Any, mini_batch_size: int, num_negatives: int | None) -> None:
    theirs = st_model(1)
    inputs = [ANCHORS, POSITIVES, HARD]
    ours_loss = CachedMultipleNegativesRankingLoss(scorer, num_negatives=num_negatives, mini_batch_size=mini_batch_size)
    st_loss = st_losses().CachedMultipleNegativesRankingLoss(
        theirs, num_negatives=num_negatives, mini_batch_size=mini_batch_size
    )
    assert_same_run(run(ours_loss, scorer, inputs, None, seed=4), run(st_loss, theirs, inputs, None, seed=4))
    assert ours_loss.get_config_dict() == st_loss.get_config_dict()


@pytest.mark.parametrize("mini_batch_size", [1, 2, 5, 64])
@pytest.mark.parametrize("num_negatives", [None, 1, 3])
def test_cached_equals_uncached(scorer: Any, mini_batch_size: int, num_negatives: int | None) -> None:
    inputs = [ANCHORS, POSITIVES, HARD]
    uncached = MultipleNegativesRankingLoss(scorer, num_negatives=num_negatives)
    cached = CachedMultipleNegativesRankingLoss(scorer, num_negatives=num_negatives, mini_batch_size=mini_batch_size)
    # In eval mode no forward pass draws random numbers, so both draw the same negatives from the seed.
    assert_same_run(run(cached, scorer, inputs, None, seed=5), run(uncached, scorer, inputs, None, seed=5))


def test_cached_without_grad_gives_the_value(scorer: Any) -> None:
    inputs = [ANCHORS, POSITIVES]
    expected = run(MultipleNegativesRankingLoss(scorer, num_negatives=None), scorer, inputs, None)[0]
    with torch.no_grad():
        value = CachedMultipleNegativesRankingLoss(scorer, num_negatives=None, mini_batch_size=3)(inputs, None)
    assert not value.requires_grad and abs(value.item() - expected) < 1e-5


def test_cached_gradient_is_scaled_by_the_outer_backward(scorer: Any) -> None:
    """Gradient accumulation and loss scaling multiply the loss; the replayed gradients must follow."""
    loss = CachedMultipleNegativesRankingLoss(scorer, num_negatives=None, mini_batch_size=2)
    plain = run(loss, scorer, [ANCHORS, POSITIVES], None)[1]
    tripled = run(lambda *a: 3 * loss(*a), scorer, [ANCHORS, POSITIVES], None)[1]
    assert all(torch.allclose(tripled[name], 3 * plain[name], atol=1e-6) for name in plain)


@pytest.mark.parametrize("cls", ["MultipleNegativesRankingLoss", "CachedMultipleNegativesRankingLoss"])
def test_dropout_masks_match_sentence_transformers_in_training_mode(cls: str) -> None:
    """With dropout on and the same seed, both libraries draw the same negatives and the same masks; the
    cached loss replays each mini-batch's masks in its backward pass."""
    from embedforge.cross_encoder import losses

    ours, theirs = our_model(1).train(), st_model(1).train()
    options: dict[str, Any] = {"num_negatives": 2}
    if cls.startswith("Cached"):
        options["mini_batch_size"] = 3
    inputs = [ANCHORS, POSITIVES, HARD]
    ours_run = run(getattr(losses, cls)(ours, **options), ours, inputs, None, seed=6)
    assert_same_run(ours_run, run(getattr(st_losses(), cls)(theirs, **options), theirs, inputs, None, seed=6))
    # Dropout is really on: another seed gives another loss.
    assert abs(ours_run[0] - run(getattr(losses, cls)(ours, **options), ours, inputs, None, seed=7)[0]) > 1e-6


def test_in_batch_losses_reject_bad_input(scorer: Any, caplog: pytest.LogCaptureFixture) -> None:
    for loss in (MultipleNegativesRankingLoss(scorer), CachedMultipleNegativesRankingLoss(scorer)):
        # sentence-transformers fails here with an IndexError; ours says what is missing.
        with pytest.raises(InvalidArgumentError, match="at least 2 non-label input columns"):
            loss([ANCHORS], None)
        with pytest.raises(InvalidArgumentError, match="column 2 has 3 rows"):
            loss([ANCHORS, POSITIVES, HARD[:3]], None)
        with pytest.raises(InvalidArgumentError, match="at least 2 text columns"):
            loss.check_input_columns(["query"], has_label=False)
        # A label column is ignored (with a warning), as sentence-transformers ignores it.
        with caplog.at_level(logging.WARNING):
            loss.check_input_columns(["query", "answer"], has_label=True, label_column="label")
        assert "does not use labels" in caplog.text
    with pytest.raises(InvalidArgumentError, match="num_negatives"):
        MultipleNegativesRankingLoss(scorer, num_negatives=-1)
    with pytest.raises(InvalidArgumentError, match="mini_batch_size"):
        CachedMultipleNegativesRankingLoss(scorer, mini_batch_size=0)
    with pytest.raises(InvalidArgumentError, match="num_labels=3"):
        MultipleNegativesRankingLoss(our_model(3))
    assert MultipleNegativesRankingLoss.citation == CachedMultipleNegativesRankingLoss.citation == ""
