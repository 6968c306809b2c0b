"""SparseGradientAdamW and StaticEmbedding's row-sparse gradients against torch's dense reference."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from conftest import embedforge_static, random_sentences, static_weights
from embedforge.exceptions import InvalidArgumentError
from embedforge.optim import SparseGradientAdamW
from embedforge.static.bag_mean_rows import BagMeanRowGradient


def linear_warmup(step: int) -> float:
    """transformers' linear schedule with 2 warm-up steps over 6 steps."""
    return (step + 1) / 3 if step < 2 else max(0.0, (6 - step) / 4)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_sparse_rows_match_dense_adamw(fused: bool, weight_decay: float) -> None:
    generator = torch.Generator().manual_seed(0)
    start = torch.randn(12, 5, generator=generator)
    bias_start = torch.randn(5, generator=generator)
    ours = [torch.nn.Parameter(start.clone()), torch.nn.Parameter(bias_start.clone())]
    reference = [torch.nn.Parameter(start.clone()), torch.nn.Parameter(bias_start.clone())]
    settings = {"lr": 0.1, "betas": (0.8, 0.95), "eps": 1e-6, "fused": fused}
    optimizer = SparseGradientAdamW(
        [{"params": [ours[0]], "weight_decay": weight_decay}, {"params": [ours[1]], "weight_decay": 0.0}], **settings
    )
    expected = torch.optim.AdamW(
        [{"params": [reference[0]], "weight_decay": weight_decay}, {"params": [reference[1]], "weight_decay": 0.0}],
        **settings,
    )
    schedules = [torch.optim.lr_scheduler.LambdaLR(opt, linear_warmup) for opt in (optimizer, expected)]
    # Rows 9-11 never get a gradient; rows 0 and 5 skip some steps; step 3 repeats a row (summed).
    touched = [[0, 3, 5], [7, 1], [2, 4, 6, 8], [5, 0, 5], [3], [1, 2, 3, 4]]
    for rows in touched:
        grad = torch.zeros_like(start)
        dense_rows = torch.randn(len(rows), 5, generator=generator)
        grad.index_add_(0, torch.tensor(rows), dense_rows)
        bias_grad = torch.randn(5, generator=generator)
        ours[0].grad = torch.sparse_coo_tensor(
            torch.tensor(rows).unsqueeze(0), dense_rows, start.shape, check_invariants=True
        )
        ours[1].grad = bias_grad.clone()
        reference[0].grad = grad
        reference[1].grad = bias_grad.clone()
        optimizer.step()
        expected.step()
        for schedule in schedules:
            schedule.step()
        # The caller's sparse gradient is left in place, as a dense optimizer leaves .grad alone.
        assert ours[0].grad is not None and ours[0].grad.is_sparse
        for mine, theirs in zip(ours, reference):
            torch.testing.assert_close(mine.detach(), theirs.detach(), rtol=0, atol=1e-6)
    for mine, theirs in zip(ours, reference):
        for key in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(optimizer.state[mine][key], expected.state[theirs][key], rtol=0, atol=1e-6)
    assert optimizer.state_dict()["state"].keys() == expected.state_dict()["state"].keys()


def test_amsgrad_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="amsgrad"):
        SparseGradientAdamW([torch.nn.Parameter(torch.zeros(2))], amsgrad=True)


def test_row_sparse_bag_gradient_equals_dense_embedding_bag() -> None:
    generator = torch.Generator().manual_seed(1)
    weight = torch.randn(20, 6, generator=generator)
    # Texts of 3, 0 (empty), 4 and 1 tokens; token 7 repeats inside and across texts.
    input_ids = torch.tensor([7, 2, 7, 7, 11, 3, 19, 2])
    offsets = torch.tensor([0, 3, 3, 7])
    upstream = torch.randn(4, 6, generator=generator)

    dense = weight.clone().requires_grad_()
    F.embedding_bag(input_ids, dense, offsets, mode="mean").backward(upstream)
    sparse = weight.clone().requires_grad_()
    output = BagMeanRowGradient.apply(input_ids, offsets, sparse)
    torch.testing.assert_close(output, F.embedding_bag(input_ids, weight, offsets, mode="mean"), rtol=0, atol=0)
    output.backward(upstream)

    assert sparse.grad is not None and sparse.grad.is_sparse
    assert sorted(sparse.grad.coalesce().indices()[0].tolist()) == [2, 3, 7, 11, 19]
    # Hand-written reference: text 0 = rows (7, 2, 7) / 3, text 2 = (7, 11, 3, 19) / 4, text 3 = (2,) / 1.
    expected = torch.zeros_like(weight)
    for row, text, length in [(7, 0, 3), (2, 0, 3), (7, 0, 3), (7, 2, 4), (11, 2, 4), (3, 2, 4), (19, 2, 4), (2, 3, 1)]:
        expected[row] += upstream[text] / length
    torch.testing.assert_close(sparse.grad.to_dense(), expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(dense.grad, expected, rtol=1e-6, atol=1e-6)


def manual_training_losses(sparse: bool, steps: int = 5) -> list[float]:
    """Per-step losses of MatryoshkaLoss(MNRL) on a tiny StaticEmbedding, with the Trainer's clip + AdamW."""
    from embedforge.sentence_transformer.losses import MatryoshkaLoss, MultipleNegativesRankingLoss

    model = embedforge_static(static_weights(seed=3, dim=8))
    static = model[0]
    static.sparse_gradients = sparse
    loss = MatryoshkaLoss(model, MultipleNegativesRankingLoss(model), [8, 4, 2])
    optimizer_cls = SparseGradientAdamW if sparse else torch.optim.AdamW
    optimizer = optimizer_cls(model.parameters(), lr=0.2, weight_decay=0.01, fused=True)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, linear_warmup)
    anchors = random_sentences(16 * steps, seed=4)
    positives = random_sentences(16 * steps, seed=5)
    losses = []
    for step in range(steps):
        batch = slice(16 * step, 16 * (step + 1))
        features = [static.tokenize(anchors[batch]), static.tokenize(positives[batch])]
        value = loss(features, None)
        value.backward()
        assert static.embedding.weight.grad is not None
        assert static.embedding.weight.grad.is_sparse == sparse
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        model.zero_grad()
        losses.append(value.item())
    return losses


def test_sparse_path_trains_with_the_same_losses() -> None:
    dense = manual_training_losses(sparse=False)
    sparse = manual_training_losses(sparse=True)
    assert dense[0] != dense[-1]
    assert sparse == pytest.approx(dense, rel=1e-5, abs=1e-6)


def test_sparse_mode_keeps_inference_outputs() -> None:
    model = embedforge_static(static_weights(seed=6, dim=8))
    sentences = random_sentences(10, seed=7)
    before = model.encode(sentences, convert_to_tensor=True)
    model[0].sparse_gradients = True
    torch.testing.assert_close(model.encode(sentences, convert_to_tensor=True), before, rtol=0, atol=0)


def test_closure_gradients_are_used_once() -> None:
    start = torch.randn(10, 3, generator=torch.Generator().manual_seed(2))
    ours, reference = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    optimizer = SparseGradientAdamW([ours], lr=0.1, weight_decay=0.01)
    expected = torch.optim.AdamW([reference], lr=0.1, weight_decay=0.01)
    for rows in ([1, 4], [4, 7], [0]):
        index = torch.tensor(rows)

        def sparse_closure(index: torch.Tensor = index) -> float:
            values = 2 * ours.detach()[index]  # gradient of sum(p[rows] ** 2)
            ours.grad = torch.sparse_coo_tensor(index.unsqueeze(0), values, ours.shape, check_invariants=True)
            return float((ours.detach()[index] ** 2).sum())

        def dense_closure(index: torch.Tensor = index) -> float:
            reference.grad = torch.zeros_like(reference).index_copy_(0, index, 2 * reference.detach()[index])
            return float((reference.detach()[index] ** 2).sum())

        assert optimizer.step(sparse_closure) == pytest.approx(expected.step(dense_closure), rel=1e-6)
        torch.testing.assert_close(ours.detach(), reference.detach(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("maximize", [False, True])
def test_native_step_matches_dense_adamw_and_hands_over_its_state(
    maximize: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A float32 CPU matrix takes the Rust step; its weights and state equal torch's dense AdamW, and the
    state loads into torch's AdamW, which then continues exactly as if it had run all along."""
    from embedforge import _core
    from embedforge.optim import sparse_adamw

    calls: list[int] = []
    native = _core.adamw_sparse_rows
    monkeypatch.setattr(sparse_adamw._core, "adamw_sparse_rows", lambda *a, **k: calls.append(1) or native(*a, **k))
    generator = torch.Generator().manual_seed(3)
    start = torch.randn(700, 4, generator=generator)
    ours = torch.nn.Parameter(start.clone())
    reference = torch.nn.Parameter(start.clone())
    settings = {"lr": 0.05, "betas": (0.9, 0.99), "eps": 1e-8, "weight_decay": 0.02, "maximize": maximize}
    optimizer = SparseGradientAdamW([ours], **settings)
    expected = torch.optim.AdamW([reference], foreach=False, **settings)
    for step in range(4):
        rows = torch.tensor(sorted({(7 * step + 3 * k) % 700 for k in range(60)}))
        values = torch.randn(len(rows), 4, generator=generator)
        ours.grad = torch.sparse_coo_tensor(rows.unsqueeze(0), values, start.shape, check_invariants=True)
        dense = torch.zeros_like(start)
        dense[rows] = values
        reference.grad = dense
        optimizer.step()
        expected.step()
        torch.testing.assert_close(ours.detach(), reference.detach(), rtol=0, atol=1e-6)
    assert len(calls) == 4
    for key in ("exp_avg", "exp_avg_sq"):
        torch.testing.assert_close(optimizer.state[ours][key], expected.state[reference][key], rtol=0, atol=1e-6)
    assert optimizer.state[ours]["step"].item() == expected.state[reference]["step"].item() == 4

    # The state dict is torch's: a plain AdamW resumes from it.
    resumed = torch.optim.AdamW([ours], foreach=False, **settings)
    resumed.load_state_dict(optimizer.state_dict())
    grad = torch.randn(700, 4, generator=generator)
    ours.grad, reference.grad = grad.clone(), grad.clone()
    resumed.step()
    expected.step()
    torch.testing.assert_close(ours.detach(), reference.detach(), rtol=0, atol=1e-6)


def test_scaled_gradient_with_sorted_rows_needs_no_merge_and_repeated_rows_are_merged() -> None:
    from embedforge.optim.sparse_adamw import _unique_rows

    rows = torch.tensor([[1, 4, 7]])
    values = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    grad = torch.sparse_coo_tensor(rows, values, (9, 4), is_coalesced=True, check_invariants=True)
    torch._foreach_mul_([grad], torch.tensor(0.5))  # what gradient clipping does: the flag is gone
    assert not grad.is_coalesced()
    got_rows, got_values = _unique_rows(grad)
    assert got_rows.tolist() == [1, 4, 7]
    torch.testing.assert_close(got_values, values * 0.5)
    repeated = torch.sparse_coo_tensor(torch.tensor([[4, 1, 4]]), values, (9, 4))
    got_rows, got_values = _unique_rows(repeated)
    assert got_rows.tolist() == [1, 4]
    torch.testing.assert_close(got_values, torch.stack([values[1], values[0] + values[2]]))
