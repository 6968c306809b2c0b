"""Contrastive Tension (Carlsson et al., 2021): two copies of the encoder learn to agree only on identical inputs."""

from __future__ import annotations

import copy
import itertools
import math
import random
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from embedforge.base.losses.base import Loss
from embedforge.exceptions import InvalidArgumentError
from embedforge.sentence_transformer.losses.multiple_negatives_ranking import similarity_fct_name
from embedforge.util.similarity import cos_sim

CT_CITATION = """
@inproceedings{carlsson2021semantic,
    title={Semantic Re-tuning with Contrastive Tension},
    author={Fredrik Carlsson and Amaru Cuba Gyllensten and Evangelia Gogoulou and Erik Ylip{\\"a}{\\"a} Hellqvist and Magnus Sahlgren},
    booktitle={International Conference on Learning Representations (ICLR)},
    year={2021},
    url={https://openreview.net/forum?id=Ov_sMNau-PF}
}
"""


def independent_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` with its own parameters.

    The Rust tokenizers embedforge modules hold cannot be pickled; they are immutable from Python
    (a module rebuilds its own when its tokenizer is replaced), so the copy shares them.
    """
    memo: dict[int, Any] = {}
    for module in model.modules():
        for value in vars(module).values():
            if type(value).__module__.startswith("embedforge._core"):
                memo[id(value)] = value
    return copy.deepcopy(model, memo)


def _identical_rows(features1: dict[str, Tensor], features2: dict[str, Tensor]) -> Tensor:
    """1.0 where row i of both columns has the same tokens (padding ignored), else 0.0."""
    ids1, ids2 = features1["input_ids"], features2["input_ids"]
    mask1, mask2 = features1.get("attention_mask"), features2.get("attention_mask")
    if mask1 is not None and mask2 is not None:
        same = [
            torch.equal(row1[keep1], row2[keep2])
            for row1, keep1, row2, keep2 in zip(ids1, mask1.bool(), ids2, mask2.bool(), strict=True)
        ]
    elif ids1.dim() == 1 and "offsets" in features1 and "offsets" in features2:
        # Static models give one flat id stream with start offsets per text.
        rows1, rows2 = _split_flat(ids1, features1["offsets"]), _split_flat(ids2, features2["offsets"])
        if len(rows1) != len(rows2):
            raise InvalidArgumentError(
                f"ContrastiveTensionLoss got columns of {len(rows1)} and {len(rows2)} texts; both must have the same"
            )
        same = [torch.equal(row1, row2) for row1, row2 in zip(rows1, rows2, strict=True)]
    else:
        return (ids1 == ids2).all(dim=1).float()
    return torch.tensor(same, dtype=torch.float32, device=ids1.device)


def _split_flat(ids: Tensor, offsets: Tensor) -> list[Tensor]:
    bounds = [*offsets.tolist(), len(ids)]
    return [ids[start:end] for start, end in itertools.pairwise(bounds)]


class ContrastiveTensionLoss(Loss):
    """Binary cross-entropy on ``dot(model1(a), model2(b))``: identical pairs are positives, others negatives.

    ``model2`` is the model passed in (the one kept after training); ``model1`` is an independent copy
    made at construction and encodes the first column. Without a label column the targets are
    derived from the tokens (1 when the two texts of a row are identical); the per-pair losses are
    summed, not averaged. Batches usually come from :class:`ContrastiveTensionDataLoader`.
    """

    input_columns: ClassVar[tuple[int, int | None]] = (2, 2)
    requires_label: ClassVar[bool | None] = None
    citation: ClassVar[str] = CT_CITATION

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model2 = model  # trained and kept: the final encoder
        self.model1 = independent_copy(model)
        self.criterion = nn.BCEWithLogitsLoss(reduction="sum")

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        """Summed BCE-with-logits of the pairs' dot products against identical/different targets."""
        features1, features2 = self.check_features(sentence_features, labels)
        embeddings1 = self.model1(features1)["sentence_embedding"]
        embeddings2 = self.model2(features2)["sentence_embedding"]
        scores = (embeddings1 * embeddings2).sum(dim=-1)
        if labels is None:
            labels = _identical_rows(features1, features2)
        targets = labels.reshape(-1).to(device=scores.device, dtype=scores.dtype)
        if targets.shape != scores.shape:
            raise InvalidArgumentError(
                f"ContrastiveTensionLoss got {targets.numel()} labels for a batch of {scores.numel()} pairs"
            )
        return self.criterion(scores, targets)

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card (there are none)."""
        return {}


class ContrastiveTensionLossInBatchNegatives(Loss):
    """Symmetric in-batch cross-entropy between ``model1`` and ``model2`` embeddings of the same texts.

    Scores are ``similarity_fct(model1(x), model2(x)) * exp(logit_scale)``, where ``logit_scale`` is a
    trainable parameter starting at ``log(scale)``; row i's positive is column i. The loss is the mean
    of the row-wise and column-wise cross-entropies. ``model2`` is the model passed in, ``model1`` a copy.
    """

    input_columns: ClassVar[tuple[int, int | None]] = (1, 1)
    requires_label: ClassVar[bool | None] = False
    citation: ClassVar[str] = CT_CITATION

    def __init__(
        self, model: nn.Module, scale: float = 20.0, similarity_fct: Callable[[Tensor, Tensor], Tensor] = cos_sim
    ) -> None:
        super().__init__()
        if not 0 < scale < math.inf:
            raise InvalidArgumentError(f"scale must be a positive finite number, but got {scale!r}")
        self.model2 = model  # trained and kept: the final encoder
        self.model1 = independent_copy(model)
        self.similarity_fct = similarity_fct
        self.cross_entropy_loss = nn.CrossEntropyLoss()
        self.logit_scale = nn.Parameter(torch.ones([]) * math.log(scale))

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        """Mean of both directions' cross-entropy over the in-batch similarity matrix."""
        (features,) = self.check_features(sentence_features, labels)
        embeddings_a = self.model1(features)["sentence_embedding"]
        embeddings_b = self.model2(features)["sentence_embedding"]
        scores = self.similarity_fct(embeddings_a, embeddings_b) * self.logit_scale.exp()
        targets = torch.arange(len(scores), dtype=torch.long, device=scores.device)
        return (self.cross_entropy_loss(scores, targets) + self.cross_entropy_loss(scores.t(), targets)) / 2

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card (``scale`` is the current, learned value)."""
        return {"scale": self.logit_scale.exp().item(), "similarity_fct": similarity_fct_name(self.similarity_fct)}


class ContrastiveTensionDataLoader:
    """Batches of sentence pairs for :class:`ContrastiveTensionLoss`: one identical pair per ``pos_neg_ratio`` pairs.

    Each batch has ``batch_size`` pairs; pair ``i`` is ``[s, s]`` (label 1) when ``i % pos_neg_ratio == 0``
    and ``[s, t]`` with two different draws (label 0) otherwise. ``sentences`` is shuffled in place with
    the ``random`` module at the start of every pass; leftover sentences that do not fill a batch are
    not used in that pass. Yields lists of ``InputExample`` (or ``collate_fn(batch)`` when it is set).
    """

    def __init__(self, sentences: list[str], batch_size: int, pos_neg_ratio: int = 8) -> None:
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise InvalidArgumentError(f"batch_size must be a positive integer, but got {batch_size!r}")
        if not isinstance(pos_neg_ratio, int) or pos_neg_ratio <= 0:
            raise InvalidArgumentError(f"pos_neg_ratio must be a positive integer, but got {pos_neg_ratio!r}")
        if batch_size % pos_neg_ratio != 0:
            raise InvalidArgumentError(
                f"ContrastiveTensionDataLoader got pos_neg_ratio={pos_neg_ratio} and batch_size={batch_size}; "
                "the batch size must be divisible by pos_neg_ratio"
            )
        self.sentences = sentences
        self.batch_size = batch_size
        self.pos_neg_ratio = pos_neg_ratio
        self.collate_fn: Callable[[list[Any]], Any] | None = None

    def __iter__(self) -> Iterator[Any]:
        example_class = _input_example_class()
        random.shuffle(self.sentences)
        remaining = iter(self.sentences)
        for _ in range(len(self)):
            batch = []
            for pair_index in range(self.batch_size):
                first = next(remaining)
                label = int(pair_index % self.pos_neg_ratio == 0)
                second = first if label else next(remaining)
                batch.append(example_class(texts=[first, second], label=label))
            yield self.collate_fn(batch) if self.collate_fn is not None else batch

    def __len__(self) -> int:
        # A positive pair uses one sentence, a negative pair two.
        sentences_per_batch = 2 * self.batch_size - self.batch_size // self.pos_neg_ratio
        return len(self.sentences) // sentences_per_batch


class _PairExample:
    """Stand-in for ``InputExample`` (``texts``, ``label``, ``guid``) until embedforge.sentence_transformer.readers provides it."""

    def __init__(self, guid: str = "", texts: list[str] | None = None, label: float = 0) -> None:
        self.guid = guid
        self.texts = texts or []
        self.label = label

    def __repr__(self) -> str:
        return f"<InputExample> label: {self.label}, texts: {'; '.join(self.texts)}"


def _input_example_class() -> Callable[..., Any]:
    try:
        from embedforge.sentence_transformer.readers import InputExample  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return _PairExample
    return InputExample  # type: ignore[no-any-return,unused-ignore]
