"""CachedMultipleNegativesRankingLoss: MultipleNegativesRankingLoss with GradCache, for batches beyond memory."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any, Literal

import torch
from torch import Tensor, nn

from embedforge.base.losses.base import Loss
from embedforge.base.losses.gradcache import (
    CachedLossMixin,
    RandContext,
    create_minibatch,
    minibatch_ranges,
    reject_static_embedding,
    validate_mini_batch_arguments,
)
from embedforge.base.losses.row_chunks import sum_row_chunks
from embedforge.sentence_transformer.losses.multiple_negatives_ranking import (
    Direction,
    MultipleNegativesRankingLoss,
    similarity_fct_name,
)
from embedforge.util import cos_sim
from embedforge.util.distributed import all_gather_with_grad, get_rank

# The mini-batching helpers were importable from this module in sentence-transformers; keep them reachable.
__all__ = ["CachedMultipleNegativesRankingLoss", "RandContext", "create_minibatch", "minibatch_ranges"]

#: The real distributed helpers, for when a stand-in put on this module is removed by deleting it.
_DISTRIBUTED_HELPERS: dict[str, Any] = {"all_gather_with_grad": all_gather_with_grad, "get_rank": get_rank}


def __getattr__(name: str) -> Any:
    if name in _DISTRIBUTED_HELPERS:
        return _DISTRIBUTED_HELPERS[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


CITATION_GRADCACHE = """
@misc{gao2021scaling,
    title={Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup},
    author={Luyu Gao and Yunyi Zhang and Jiawei Han and Jamie Callan},
    year={2021},
    eprint={2101.06983},
    archivePrefix={arXiv},
    primaryClass={cs.LG}
}
"""

#: Hyperparameters owned by the wrapped MultipleNegativesRankingLoss; reading or setting them here reaches it.
_DELEGATED = (
    "scale",
    "similarity_fct",
    "gather_across_devices",
    "directions",
    "partition_mode",
    "hardness_mode",
    "hardness_strength",
)


class CachedMultipleNegativesRankingLoss(CachedLossMixin, Loss):
    """MultipleNegativesRankingLoss computed with GradCache: same loss and gradients, memory set by ``mini_batch_size``."""

    input_columns = (2, None)
    requires_label = False
    citation = CITATION_GRADCACHE

    def __init__(
        self,
        model: nn.Module,
        scale: float = 20.0,
        similarity_fct: Callable[[Tensor, Tensor], Tensor] = cos_sim,
        mini_batch_size: int = 32,
        mini_batch_num_tokens: int | None = None,
        gather_across_devices: bool = False,
        directions: tuple[Direction, ...] = ("query_to_doc",),
        partition_mode: Literal["joint", "per_direction"] = "joint",
        show_progress_bar: bool = False,
        hardness_mode: Literal["in_batch_negatives", "hard_negatives", "all_negatives"] | None = None,
        hardness_strength: float = 0.0,
    ) -> None:
        """Same options as MultipleNegativesRankingLoss, plus the mini-batch size (rows or token budget) and a bar."""
        super().__init__()
        reject_static_embedding(model, type(self).__name__, "MultipleNegativesRankingLoss")
        validate_mini_batch_arguments(mini_batch_size, mini_batch_num_tokens)
        self.model = model
        # The uncached loss owns the formula and validates every hyperparameter; this class only
        # decides how the embeddings are produced and how the loss is chunked.
        self.loss = MultipleNegativesRankingLoss(
            model,
            scale=scale,
            similarity_fct=similarity_fct,
            gather_across_devices=gather_across_devices,
            directions=directions,
            partition_mode=partition_mode,
            hardness_mode=hardness_mode,
            hardness_strength=hardness_strength,
        )
        self.mini_batch_size = mini_batch_size
        self.mini_batch_num_tokens = mini_batch_num_tokens
        self.show_progress_bar = show_progress_bar

    def __getattr__(self, name: str) -> Any:
        if name in _DELEGATED:
            return getattr(self.loss, name)
        return super().__getattr__(name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _DELEGATED and isinstance(self.__dict__.get("_modules", {}).get("loss"), nn.Module):
            setattr(self.loss, name, value)
        else:
            super().__setattr__(name, value)

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        """Embed the columns in mini-batches and return the loss; the model's gradients arrive on backward."""
        return self.forward_cached(self.check_features(sentence_features, labels), labels)

    def calculate_loss(
        self, reps: list[list[Tensor]], labels: Tensor | None = None, *, with_backward: bool = False
    ) -> Tensor:
        """The MNRL loss on cached embeddings, in chunks of ``mini_batch_size`` anchors."""
        embeddings = [torch.cat(column) for column in reps]
        module = sys.modules[__name__]
        # Gathered through this module's names, so a test (or a user) can stand in for torch.distributed here.
        state = self.loss.prepare_embeddings(
            embeddings, labels, gather=module.all_gather_with_grad, rank=module.get_rank
        )
        return sum_row_chunks(self.loss, state, self.mini_batch_size, with_backward, self.show_progress_bar)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None = None) -> Tensor:
        """The loss from full per-column embeddings, exactly as the uncached loss computes it."""
        return self.loss.compute_loss_from_embeddings(embeddings, labels)

    def get_config_dict(self) -> dict[str, Any]:
        """The constructor arguments, as sentence-transformers reports them."""
        return {
            "scale": self.scale,
            "similarity_fct": similarity_fct_name(self.similarity_fct),
            "mini_batch_size": self.mini_batch_size,
            "mini_batch_num_tokens": self.mini_batch_num_tokens,
            "gather_across_devices": self.gather_across_devices,
            "directions": self.directions,
            "partition_mode": self.partition_mode,
            "hardness_mode": self.hardness_mode,
            "hardness_strength": self.hardness_strength,
        }

    @property
    def temperature(self) -> float:
        """``1 / scale``."""
        return 1.0 / self.scale
