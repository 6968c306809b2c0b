"""DistillKLDivLoss: match the student's candidate distribution to the teacher's with a KL divergence."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from embedforge.base.losses.base import Loss
from embedforge.base.losses.merged_forward import embed_columns
from embedforge.exceptions import InvalidArgumentError
from embedforge.sentence_transformer.losses.multiple_negatives_ranking import similarity_fct_name
from embedforge.util.similarity import pairwise_dot_score

logger = logging.getLogger(__name__)


class DistillKLDivLoss(Loss):
    """KL(teacher || student) over the candidates of each query, scaled by the student temperature squared.

    Columns: query, then ``N >= 2`` candidates (positive, negatives...). The label holds the teacher's
    ``(batch, N)`` scores. Student scores ``similarity_fct(query, candidate_i)`` are divided by
    ``student_temperature`` and log-softmaxed; teacher scores are divided by ``teacher_temperature`` and
    softmaxed; the KL divergence is summed over candidates and averaged over rows ("batchmean").
    Both temperatures default to ``temperature``.
    """

    input_columns: ClassVar[tuple[int, int | None]] = (3, None)
    requires_label: ClassVar[bool | None] = True
    citation: ClassVar[str] = """
@misc{lin2020distilling,
    title={Distilling Dense Representations for Ranking using Tightly-Coupled Teachers},
    author={Sheng-Chieh Lin and Jheng-Hong Yang and Jimmy Lin},
    year={2020},
    eprint={2010.11386},
    archivePrefix={arXiv},
    primaryClass={cs.IR},
    url={https://arxiv.org/abs/2010.11386}
}
"""

    def __init__(
        self,
        model: nn.Module,
        similarity_fct: Callable[[Tensor, Tensor], Tensor] = pairwise_dot_score,
        temperature: float = 1.0,
        student_temperature: float | None = None,
        teacher_temperature: float | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.similarity_fct = similarity_fct
        self.temperature = temperature
        self.student_temperature = temperature if student_temperature is None else student_temperature
        self.teacher_temperature = temperature if teacher_temperature is None else teacher_temperature
        for name in ("temperature", "student_temperature", "teacher_temperature"):
            value = getattr(self, name)
            if not 0 < value < math.inf:
                raise InvalidArgumentError(f"{name} must be a positive finite number, but got {value!r}")
        self.loss_fct = nn.KLDivLoss(reduction="batchmean")
        # The teacher scores are inspected once (it costs a device sync), on the first batch.
        self._checked_teacher_scale = False

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor) -> Tensor:
        """KL divergence between the teacher's and the student's candidate distributions."""
        features = self.check_features(sentence_features, labels)
        embeddings = embed_columns(self.model, features)
        return self.compute_loss_from_embeddings(embeddings, labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor) -> Tensor:
        """The loss from per-column embeddings [query, candidates...] and the teacher scores."""
        if len(embeddings) < 3:
            # One candidate gives a constant softmax: zero loss and zero gradient, which is never intended.
            raise InvalidArgumentError(
                f"{type(self).__name__} needs at least 3 columns (query, positive, negative_1, ...), but got "
                f"{len(embeddings)}"
            )
        query = embeddings[0]
        num_candidates, batch_size = len(embeddings) - 1, query.size(0)
        if tuple(labels.shape) != (batch_size, num_candidates):
            raise InvalidArgumentError(
                f"{type(self).__name__} needs teacher scores of shape (batch_size, N) = "
                f"({batch_size}, {num_candidates}), one per candidate column, but got labels of shape "
                f"{tuple(labels.shape)}"
            )
        student_scores = torch.stack([self.similarity_fct(query, other) for other in embeddings[1:]], dim=1)
        student_log_probs = torch.log_softmax(student_scores / self.student_temperature, dim=1)
        teacher_probs = torch.softmax(labels.detach() / self.teacher_temperature, dim=1)
        if not self._checked_teacher_scale:
            self._checked_teacher_scale = True
            self._check_teacher_scores(teacher_probs, labels)
        # The T^2 factor keeps gradient magnitudes comparable across temperatures (Hinton et al.).
        return self.loss_fct(student_log_probs, teacher_probs) * self.student_temperature**2

    def _check_teacher_scores(self, teacher_probs: Tensor, labels: Tensor) -> None:
        """Fail on NaN teacher scores; warn when the teacher softmax underflows candidates to zero."""
        scores = labels.detach().float()
        if scores.isnan().any():
            raise InvalidArgumentError(
                f"{type(self).__name__}: the teacher scores contain NaN (in the label column), which would make "
                "the loss and every gradient NaN"
            )
        if scores.isinf().any():
            # An infinite score deliberately masks a candidate out.
            return
        underflowed = int((teacher_probs == 0).sum())
        if underflowed:
            spread = (scores.max(dim=-1).values - scores.min(dim=-1).values).max().item()
            logger.warning(
                "%s: teacher_temperature=%s turns %d of %d teacher probabilities into exactly zero, so those "
                "candidates carry no gradient (widest score spread in a row: %.1f; a float32 softmax "
                "underflows once spread / temperature exceeds about 100). Use teacher_temperature above %.3g.",
                type(self).__name__,
                self.teacher_temperature,
                underflowed,
                teacher_probs.numel(),
                spread,
                spread / 100,
            )

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card (per-side temperatures only when they differ)."""
        config: dict[str, Any] = {
            "similarity_fct": similarity_fct_name(self.similarity_fct),
            "temperature": self.temperature,
        }
        if self.student_temperature != self.temperature:
            config["student_temperature"] = self.student_temperature
        if self.teacher_temperature != self.temperature:
            config["teacher_temperature"] = self.teacher_temperature
        return config
