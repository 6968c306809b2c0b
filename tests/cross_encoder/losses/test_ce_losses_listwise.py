"""Listwise cross-encoder losses: LambdaLoss (every weighting scheme), RankNetLoss, ListNetLoss, ListMLELoss,
PListMLELoss and ADRMSELoss, on ragged document lists.

Each formula is written out here query by query, in plain Python over per-pair scores taken straight
from the Hugging Face model (no padding, no vectorisation), and compared with the loss's value and
parameter gradients; then each loss is compared with sentence-transformers on the same weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from conftest import random_sentences
from embedforge.cross_encoder import losses
from embedforge.exceptions import InvalidArgumentError
from test_ce_losses_helpers import PairScorer, assert_same_run, our_model, run, run_reference, st_losses, st_model

QUERIES = random_sentences(4, seed=31)
#: Ragged lists: 3, 1, 5 and 2 documents (so the batch pads to 5), graded labels with ties and a negative one.
DOCS = [random_sentences(count, seed=40 + i, max_words=14) for i, count in enumerate([3, 1, 5, 2])]
LABELS = [[1.0, 0.0, 2.0], [1.0], [0.0, 1.0, 3.0, 0.0, -1.0], [0.5, 0.2]]
#: The same documents with labels without ties (the order by label is then unambiguous).
DISTINCT = [[1.0, 0.0, 2.0], [1.0], [0.0, 1.0, 3.0, 0.5, -1.0], [0.5, 0.2]]
MAX_DOCS = 5


def tensors(labels: list[list[float]]) -> list[Tensor]:
    """The collator's form of a list-valued label column: one tensor per row."""
    return [torch.tensor(row) for row in labels]


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


def _lists(score: PairScorer, activation: Callable[[Tensor], Tensor] | None = None) -> list[list[Tensor]]:
    act = activation or (lambda x: x)
    return [[act(score(query, doc)[0]) for doc in docs] for query, docs in zip(QUERIES, DOCS)]


# -- reference formulas ------------------------------------------------------------------------------


def ref_lambda(
    scheme: str, k: int | None = None, sigma: float = 1.0, log: str = "binary", mu: float = 10.0, eps: float = 1e-10
) -> Callable[[PairScorer], Tensor]:
    """LambdaLoss: for each list sorted by score, every counted pair (r, t) of predicted positions adds
    -w_rt * log sigmoid(sigma * (s_r - s_t)) (in bits for "binary"); the loss is the mean over counted pairs."""

    def formula(score: PairScorer) -> Tensor:
        cutoff = k or MAX_DOCS
        terms = []
        for scores, labels in zip(_lists(score), LABELS):
            order = sorted(range(len(scores)), key=lambda i: -scores[i].item())
            s = [scores[i] for i in order]
            y = [labels[i] for i in order]
            ideal = sorted((max(v, 0.0) for v in labels), reverse=True)
            max_dcg = max(sum((2 ** ideal[r] - 1) / math.log2(r + 2) for r in range(min(cutoff, len(y)))), eps)
            gain = [(2 ** max(v, 0.0) - 1) / max_dcg for v in y]

            def lambda_rank(r: int, t: int, gain: list[float] = gain) -> float:
                return abs(1 / math.log2(r + 2) - 1 / math.log2(t + 2)) * abs(gain[r] - gain[t])

            def ndcg2(r: int, t: int, gain: list[float] = gain) -> float:
                d = abs(r - t)
                step = 0.0 if d == 0 else abs(1 / math.log2(1 + d) - 1 / math.log2(2 + d))
                return step * abs(gain[r] - gain[t])

            for r in range(len(s)):
                for t in range(len(s)):
                    # NDCG-Loss1 counts every pair of real documents (the diagonal too); the others only
                    # pairs whose labels are ordered. Either way one of the two must be in the top k.
                    counted = True if scheme == "NDCGLoss1Scheme" else y[r] > y[t]
                    if not counted or not (r < cutoff or t < cutoff):
                        continue
                    weight = {
                        "NoWeightingScheme": lambda r, t: 1.0,
                        "NDCGLoss1Scheme": lambda r, t, gain=gain: gain[r] / math.log2(r + 2),
                        "NDCGLoss2Scheme": ndcg2,
                        "LambdaRankScheme": lambda_rank,
                        "NDCGLoss2PPScheme": lambda r, t: mu * ndcg2(r, t) + lambda_rank(r, t),
                    }[scheme](r, t)
                    term = -weight * nn.functional.logsigmoid(sigma * (s[r] - s[t]))
                    terms.append(term / math.log(2) if log == "binary" else term)
        return torch.stack(terms).mean()

    return formula


def ref_list_net(activation: Callable[[Tensor], Tensor] | None = None) -> Callable[[PairScorer], Tensor]:
    """ListNet: per list, -sum softmax(labels)_i * log softmax(scores)_i; mean over lists."""

    def formula(score: PairScorer) -> Tensor:
        terms = []
        for scores, labels in zip(_lists(score, activation), LABELS):
            target = torch.softmax(torch.tensor(labels), dim=0)
            terms.append(-(target * torch.log_softmax(torch.stack(scores), dim=0)).sum())
        return torch.stack(terms).mean()

    return formula


def default_position_weights(count: int) -> list[float]:
    return [2.0 ** (count - rank) - 1 for rank in range(1, count + 1)]


def ref_plist_mle(
    weights: Callable[[int], list[float]] | None, by_label: bool = False, labels_list: list[list[float]] = LABELS
) -> Callable[[PairScorer], Tensor]:
    """(P)ListMLE: per list in the true order, -sum_i w_i * (s_i - log sum_{j >= i} exp s_j), with w normalised
    to sum to 1 (w = 1 without position weights); mean over lists."""

    def formula(score: PairScorer) -> Tensor:
        terms = []
        for scores, labels in zip(_lists(score), labels_list):
            order = sorted(range(len(scores)), key=lambda i: -labels[i]) if by_label else range(len(scores))
            s = [scores[i] for i in order]
            if weights is None:
                w = [1.0] * len(s)
            else:
                raw = weights(len(s))
                w = [value / (sum(raw) + 1e-10) for value in raw]
            log_likelihood = sum(w[i] * (s[i] - torch.logsumexp(torch.stack(s[i:]), dim=0)) for i in range(len(s)))
            terms.append(-log_likelihood)
        return torch.stack(terms).mean()

    return formula


def ref_adr_mse(alpha: float = 1.0) -> Callable[[PairScorer], Tensor]:
    """ADR-MSE: per document, (true_rank - approx_rank)^2 / log2(1 + true_rank), averaged over all documents;
    true ranks average over tied labels, approx_rank_i = 1 + sum_{j != i} sigmoid(alpha (s_j - s_i))."""

    def formula(score: PairScorer) -> Tensor:
        terms = []
        for scores, labels in zip(_lists(score), LABELS):
            for i, (s_i, y_i) in enumerate(zip(scores, labels)):
                higher = sum(1 for y in labels if y > y_i)
                tied_others = sum(1 for j, y in enumerate(labels) if y == y_i and j != i)
                true_rank = 1 + higher + tied_others / 2
                approx = 1 + sum(
                    (torch.sigmoid(alpha * (s_j - s_i)) for j, s_j in enumerate(scores) if j != i), torch.zeros(())
                )
                terms.append((true_rank - approx) ** 2 / math.log2(1 + true_rank))
        return torch.stack(terms).mean()

    return formula


SCHEMES = ["NoWeightingScheme", "NDCGLoss1Scheme", "NDCGLoss2Scheme", "LambdaRankScheme", "NDCGLoss2PPScheme"]


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("options", [{}, {"k": 2, "sigma": 0.5, "reduction_log": "natural"}], ids=["default", "k2"])
def test_lambda_loss_matches_formula(scorer: Any, scheme: str, options: dict[str, Any]) -> None:
    loss = losses.LambdaLoss(scorer, weighting_scheme=getattr(losses, scheme)(), **options)
    reference = ref_lambda(
        scheme, k=options.get("k"), sigma=options.get("sigma", 1.0), log=options.get("reduction_log", "binary")
    )
    assert_same_run(run(loss, scorer, [QUERIES, DOCS], tensors(LABELS)), run_reference(scorer, reference))


def test_lambda_loss_without_scheme_and_rank_net_are_unweighted(scorer: Any) -> None:
    reference = run_reference(scorer, ref_lambda("NoWeightingScheme", k=3))
    for loss in (losses.LambdaLoss(scorer, weighting_scheme=None, k=3), losses.RankNetLoss(scorer, k=3)):
        assert_same_run(run(loss, scorer, [QUERIES, DOCS], tensors(LABELS)), reference)


def test_ndcg_loss2pp_mu(scorer: Any) -> None:
    loss = losses.LambdaLoss(scorer, weighting_scheme=losses.NDCGLoss2PPScheme(mu=2.5))
    reference = run_reference(scorer, ref_lambda("NDCGLoss2PPScheme", mu=2.5))
    assert_same_run(run(loss, scorer, [QUERIES, DOCS], tensors(LABELS)), reference)


@pytest.mark.parametrize("activation", [None, nn.Sigmoid()])
def test_list_net_matches_formula(scorer: Any, activation: nn.Module | None) -> None:
    loss = losses.ListNetLoss(scorer, activation_fn=activation)
    assert_same_run(
        run(loss, scorer, [QUERIES, DOCS], tensors(LABELS)), run_reference(scorer, ref_list_net(activation))
    )


@pytest.mark.parametrize("respect_input_order", [True, False])
def test_list_mle_and_plist_mle_match_formula(scorer: Any, respect_input_order: bool) -> None:
    inputs, labels = [QUERIES, DOCS], tensors(DISTINCT)
    by_label = not respect_input_order
    cases = [
        (losses.ListMLELoss(scorer, respect_input_order=respect_input_order), None),
        (losses.PListMLELoss(scorer, respect_input_order=respect_input_order), default_position_weights),
        (losses.PListMLELoss(scorer, lambda_weight=None, respect_input_order=respect_input_order), None),
    ]
    for loss, weights in cases:
        reference = run_reference(scorer, ref_plist_mle(weights, by_label, DISTINCT))
        assert_same_run(run(loss, scorer, inputs, labels), reference)


def test_plist_mle_with_a_custom_rank_discount(scorer: Any) -> None:
    def discount(mask: Tensor) -> Tensor:
        return (1.0 / torch.log1p(mask.cumsum(dim=-1).float())).masked_fill(~mask, 0.0)

    loss = losses.PListMLELoss(scorer, lambda_weight=losses.PListMLELambdaWeight(rank_discount_fn=discount))
    reference = ref_plist_mle(lambda count: [1 / math.log(1 + rank) for rank in range(1, count + 1)])
    assert_same_run(run(loss, scorer, [QUERIES, DOCS], tensors(LABELS)), run_reference(scorer, reference))


def test_default_position_weights_stay_finite_for_long_lists() -> None:
    mask = torch.zeros(2, 300, dtype=torch.bool)
    mask[0, :300] = True
    mask[1, :3] = True
    weights = losses.PListMLELambdaWeight()(mask)
    assert torch.isfinite(weights).all() and (weights[:, -1] == 0).all()
    assert weights[1, :3].tolist() == [3.0, 1.0, 0.0]
    # Rescaled by a common factor: the ratio of neighbours stays ~2.
    assert torch.allclose(weights[0, 100] / weights[0, 101], torch.tensor(2.0))


@pytest.mark.parametrize("alpha", [1.0, 3.0])
def test_adr_mse_matches_formula(scorer: Any, alpha: float) -> None:
    loss = losses.ADRMSELoss(scorer, alpha=alpha)
    assert_same_run(run(loss, scorer, [QUERIES, DOCS], tensors(LABELS)), run_reference(scorer, ref_adr_mse(alpha)))


# -- mini-batches and padding ------------------------------------------------------------------------

ALL_LOSSES = ["LambdaLoss", "RankNetLoss", "ListNetLoss", "ListMLELoss", "PListMLELoss", "ADRMSELoss"]


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_mini_batch_size_does_not_change_the_loss(scorer: Any, name: str) -> None:
    """Pairs per forward pass (None or 0: as many as there are queries; negative: all) do not change the loss."""
    cls = getattr(losses, name)
    expected = run(cls(scorer), scorer, [QUERIES, DOCS], tensors(LABELS))
    for size in (1, 4, 0, -1):
        assert_same_run(run(cls(scorer, mini_batch_size=size), scorer, [QUERIES, DOCS], tensors(LABELS)), expected)


@pytest.mark.parametrize(
    ("name", "per_document"),
    [("ListNetLoss", False), ("ListMLELoss", False), ("PListMLELoss", False), ("ADRMSELoss", True)],
)
def test_padding_is_invisible(scorer: Any, name: str, per_document: bool) -> None:
    """The batch loss of ragged lists (padded to 5) equals the average of each list's loss computed alone
    (unpadded), per list or, for ADR-MSE, per document."""
    cls = getattr(losses, name)
    batch = run(cls(scorer), scorer, [QUERIES, DOCS], tensors(LABELS))
    alone = [
        run(cls(scorer), scorer, [[query], [docs]], tensors([labels]))
        for query, docs, labels in zip(QUERIES, DOCS, LABELS)
    ]
    weights = [len(docs) if per_document else 1 for docs in DOCS]
    total = sum(weights)
    value = sum(weight * part[0] for weight, part in zip(weights, alone)) / total
    gradients = {
        name: sum(weight * part[1].get(name, 0.0) for weight, part in zip(weights, alone)) / total for name in batch[1]
    }
    assert_same_run(batch, (value, gradients))


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("LambdaLoss", {}),
        ("LambdaLoss", {"weighting_scheme": None, "k": 2, "mini_batch_size": 3}),
        ("LambdaLoss", {"scheme": "NDCGLoss1Scheme", "reduction_log": "natural"}),
        ("LambdaLoss", {"scheme": "NDCGLoss2Scheme", "activation_fn": nn.Sigmoid()}),
        ("LambdaLoss", {"scheme": "LambdaRankScheme", "sigma": 2.0}),
        ("RankNetLoss", {"k": 3}),
        ("ListNetLoss", {"mini_batch_size": 2}),
        ("ListMLELoss", {}),
        ("ListMLELoss", {"respect_input_order": False}),
        ("PListMLELoss", {}),
        ("PListMLELoss", {"respect_input_order": False, "mini_batch_size": -1}),
        ("ADRMSELoss", {"alpha": 2.0}),
    ],
)
def test_matches_sentence_transformers(scorer: Any, name: str, options: dict[str, Any]) -> None:
    theirs, st = st_model(1), st_losses()
    ours_options, st_options = dict(options), dict(options)
    if "scheme" in options:
        scheme = ours_options.pop("scheme")
        st_options.pop("scheme")
        ours_options["weighting_scheme"] = getattr(losses, scheme)()
        st_options["weighting_scheme"] = getattr(st, scheme)()
    ours_loss, st_loss = getattr(losses, name)(scorer, **ours_options), getattr(st, name)(theirs, **st_options)
    # LABELS has ties: with respect_input_order=False both order tied documents with the same sort.
    assert_same_run(
        run(ours_loss, scorer, [QUERIES, DOCS], tensors(LABELS)), run(st_loss, theirs, [QUERIES, DOCS], tensors(LABELS))
    )
    ours_config = ours_loss.get_config_dict()
    st_config = {
        key: value.replace("sentence_transformers.", "embedforge.") if isinstance(value, str) else value
        for key, value in st_loss.get_config_dict().items()
    }
    assert ours_config == st_config
    assert ours_loss.citation == st_loss.citation


def test_lists_of_one_document_give_plist_mle_no_gradient(scorer: Any) -> None:
    """Nothing to rank: zero loss, and (as in sentence-transformers) no gradient reaches the model."""
    inputs, labels = [QUERIES[:2], [DOCS[0][:1], DOCS[1]]], tensors([[1.0], [0.0]])
    value, gradients = run(losses.PListMLELoss(scorer), scorer, inputs, labels)
    assert value == 0.0 and gradients == {}
    theirs = st_model(1)
    assert run(st_losses().PListMLELoss(theirs), theirs, inputs, labels) == (0.0, {})


# -- errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_bad_listwise_input_raises_like_sentence_transformers(scorer: Any, name: str) -> None:
    ours = getattr(losses, name)(scorer)
    try:
        theirs: Any = getattr(st_losses(), name)(st_model(1))
    except pytest.skip.Exception:
        theirs = None
    bad_calls = [
        ([QUERIES, DOCS], torch.ones(4)),  # one label per row instead of one per document
        ([QUERIES, DOCS, QUERIES], tensors(LABELS)),  # a third column
        ([QUERIES, DOCS], tensors([[1.0, 0.0], [1.0], [0.0] * 5, [0.5, 0.2]])),  # 2 labels for 3 documents
    ]
    for call in bad_calls:
        with pytest.raises(InvalidArgumentError):
            ours(*call)
        if theirs is not None:
            with pytest.raises(ValueError):
                theirs(*call)
    with pytest.raises(InvalidArgumentError, match="expected a list of documents"):
        ours([QUERIES[:1], ["just one text"]], tensors([[1.0]]))
    with pytest.raises(InvalidArgumentError, match="needs a label column"):
        ours([QUERIES, DOCS], None)
    with pytest.raises(InvalidArgumentError, match="without any documents"):
        ours([QUERIES[:1], [[]]], [torch.tensor([])])
    with pytest.raises(InvalidArgumentError, match="needs 2 text columns and a label column"):
        ours.check_input_columns(["query", "docs"], has_label=False)
    with pytest.raises(InvalidArgumentError, match="num_labels=3"):
        getattr(losses, name)(our_model(3))


def test_list_net_rejects_an_empty_document_list(scorer: Any) -> None:
    """sentence-transformers returns NaN here (the empty list has no label distribution); ours says why."""
    with pytest.raises(InvalidArgumentError, match=r"at least one document per query.*\[2, 0\]"):
        losses.ListNetLoss(scorer)([QUERIES[:2], [DOCS[3], []]], tensors([[1.0, 0.0], []]))
    # The other listwise losses skip an empty list, as sentence-transformers does.
    value = losses.LambdaLoss(scorer)([QUERIES[:2], [DOCS[0], []]], tensors([[1.0, 0.0, 2.0], []]))
    assert torch.isfinite(value)


def test_argument_checks(scorer: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="reduction_log"):
        losses.LambdaLoss(scorer, reduction_log="ten")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="k is -1"):
        losses.RankNetLoss(scorer, k=-1)
    with pytest.raises(InvalidArgumentError, match="mini_batch_size"):
        losses.ListNetLoss(scorer, mini_batch_size=2.5)  # type: ignore[arg-type]
