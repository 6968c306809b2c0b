"""MatryoshkaLoss(MultipleNegativesRankingLoss) forward + backward: embedforge vs sentence-transformers.

Run: python benches/bench_matryoshka.py
Both libraries score the same random (anchor, positive) embeddings, 2048 pairs x 1024 dims, at
Matryoshka dims (1024, 512, 256, 128, 64, 32). The model is a stand-in whose forward hands out leaf
tensors, so the timing is the loss alone (no encoder).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from common import best_time, report

PAIRS = 2048
WIDTH = 1024
DIMS = [1024, 512, 256, 128, 64, 32]
ROUNDS = 5


class LeafModel(nn.Module):
    """``sentence_embedding`` of column ``c`` is the leaf tensor ``columns[c]`` (requires grad)."""

    def __init__(self, columns: list[Tensor]) -> None:
        super().__init__()
        self.columns = columns

    def forward(self, features: dict[str, Any]) -> dict[str, Any]:
        return {**features, "sentence_embedding": self.columns[int(features["column"])]}

    def get_embedding_dimension(self) -> int:
        return WIDTH

    def get_sentence_embedding_dimension(self) -> int:
        return WIDTH


def step(loss: nn.Module, leaves: list[Tensor]) -> float:
    """One forward + backward; returns the loss value."""
    for leaf in leaves:
        leaf.grad = None
    value = loss([{"column": torch.tensor(c)} for c in range(len(leaves))], None)
    value.backward()
    return value.item()


def main() -> None:
    from sentence_transformers.sentence_transformer import losses as st_losses

    from embedforge.sentence_transformer.losses import MatryoshkaLoss, MultipleNegativesRankingLoss

    generator = torch.Generator().manual_seed(0)
    base = [torch.randn(PAIRS, WIDTH, generator=generator) for _ in range(2)]
    ours_leaves = [tensor.clone().requires_grad_() for tensor in base]
    theirs_leaves = [tensor.clone().requires_grad_() for tensor in base]
    ours_model, theirs_model = LeafModel(ours_leaves), LeafModel(theirs_leaves)
    ours = MatryoshkaLoss(ours_model, MultipleNegativesRankingLoss(ours_model), DIMS)
    theirs = st_losses.MatryoshkaLoss(theirs_model, st_losses.MultipleNegativesRankingLoss(theirs_model), DIMS)

    # The first step of each also serves as its warm-up.
    ours_value, theirs_value = step(ours, ours_leaves), step(theirs, theirs_leaves)
    assert abs(ours_value - theirs_value) <= 1e-4 * abs(theirs_value), (ours_value, theirs_value)
    for mine, other in zip(ours_leaves, theirs_leaves):
        assert mine.grad is not None and other.grad is not None
        scale = other.grad.abs().max().item()
        assert torch.allclose(mine.grad, other.grad, rtol=1e-4, atol=1e-4 * scale), "gradients differ"
    print(f"loss: embedforge {ours_value:.6f}, sentence-transformers {theirs_value:.6f}", flush=True)

    # Alternate the two libraries, one timed step each per round, so a busy spell on a shared
    # machine hits both alike; best of the rounds (after the warm-up step above) for each.
    ours_seconds = theirs_seconds = float("inf")
    for _ in range(ROUNDS):
        ours_seconds = min(ours_seconds, best_time(lambda: step(ours, ours_leaves), repeats=1, warmup=0))
        theirs_seconds = min(theirs_seconds, best_time(lambda: step(theirs, theirs_leaves), repeats=1, warmup=0))
    print(f"seconds per step: embedforge {ours_seconds:.3f}, sentence-transformers {theirs_seconds:.3f}", flush=True)
    report(
        f"MatryoshkaLoss(MNRL) fwd+bwd, {PAIRS} pairs x {WIDTH} dims, dims {DIMS}",
        ours_seconds,
        theirs_seconds,
        PAIRS,
        "pairs",
        ">= 2x",
    )


if __name__ == "__main__":
    main()
