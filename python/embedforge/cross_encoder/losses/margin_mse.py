"""MarginMSELoss: the score margin between two documents of a query regressed onto a gold margin."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from embedforge.cross_encoder.losses._common import CrossEncoderLoss, pairs_of
from embedforge.exceptions import InvalidArgumentError
from embedforge.util.misc import fullname

if TYPE_CHECKING:
    # Only for annotations: the model module imports the legacy fit, which imports these losses.
    from embedforge.cross_encoder.model import CrossEncoder


class MarginMSELoss(CrossEncoderLoss):
    """MSE between the model's margins ``score(q, d_1) - score(q, d_i)`` and the gold (teacher) margins.

    Unlike an in-batch ranking loss, neither document has to be the relevant one: only the gap
    between their scores is learnt, which suits distillation from a stronger teacher.

    Args:
        model: The CrossEncoder to train; it must have a single output label.
        activation_fn: Applied to every logit before the margins are taken. Defaults to identity.
        **kwargs: Passed on to :class:`torch.nn.MSELoss`.

    Inputs:
        Columns ``(query, document_1, document_2, ..., document_n)`` with n >= 2, and labels per row
        given either as the ``n - 1`` margins ``gold(q, d_1) - gold(q, d_i)`` (a single value when
        n = 2) or as the ``n`` gold scores ``[gold(q, d_1), ..., gold(q, d_n)]``.
    """

    input_columns = (3, None)
    requires_label = True
    citation = """
@misc{hofstätter2021improving,
    title={Improving Efficient Neural Ranking Models with Cross-Architecture Knowledge Distillation},
    author={Sebastian Hofstätter and Sophia Althammer and Michael Schröder and Mete Sertkan and Allan Hanbury},
    year={2021},
    eprint={2010.02666},
    archivePrefix={arXiv},
    primaryClass={cs.IR}
}
"""

    def __init__(
        self,
        model: CrossEncoder,
        activation_fn: nn.Module = nn.Identity(),  # noqa: B008 - the sentence-transformers default, stateless
        **kwargs: Any,
    ) -> None:
        super().__init__(model)
        self.activation_fn = activation_fn
        self.loss_fct = nn.MSELoss(**kwargs)

    def forward(
        self,
        inputs: list[list[str]],
        labels: Tensor | list[Tensor],
        prompt: str | None = None,
        task: str | None = None,
    ) -> Tensor:
        """The loss of a batch of ``[queries, documents_1, ..., documents_n]`` with margins or scores as labels."""
        self.check_column_count(inputs)
        queries, first, others = inputs[0], inputs[1], inputs[2:]
        targets = self._margin_targets(labels, len(queries), len(others))
        first_scores = self.logits_from_pairs(pairs_of(queries, first, 1), prompt=prompt, task=task)
        other_scores = torch.stack(
            [
                self.logits_from_pairs(pairs_of(queries, column, index), prompt=prompt, task=task)
                for index, column in enumerate(others, start=2)
            ],
            dim=1,
        )
        margins = first_scores.unsqueeze(1) - other_scores
        return self.loss_fct(margins, targets.to(margins.device).detach().float())

    def _margin_targets(self, labels: Tensor | list[Tensor] | None, batch_size: int, num_others: int) -> Tensor:
        """The gold margins, shape ``(batch_size, num_others)``, from margins or from per-document scores."""
        if labels is None:
            raise InvalidArgumentError(f"{type(self).__name__} needs a label column, but the batch has no labels")
        # A list-valued label column arrives as one tensor per row.
        targets = torch.stack([torch.as_tensor(row) for row in labels]) if isinstance(labels, list) else labels
        if targets.shape == (batch_size, num_others + 1):
            targets = targets[:, :1] - targets[:, 1:]
        if targets.shape == (batch_size,):
            targets = targets.unsqueeze(1)
        if targets.shape != (batch_size, num_others):
            raise InvalidArgumentError(
                f"{type(self).__name__}: labels of shape {tuple(targets.shape)} do not match the batch; expected "
                f"({batch_size}, {num_others}) margins gold(query, document_1) - gold(query, document_i), or "
                f"({batch_size}, {num_others + 1}) gold scores, one per document column"
            )
        return targets

    def logits_from_pairs(
        self, pairs: list[tuple[str, str]], prompt: str | None = None, task: str | None = None
    ) -> Tensor:
        """The activated score of each pair, shape ``(len(pairs),)``."""
        return self.activation_fn(self.score_pairs(pairs, prompt=prompt, task=task).view(-1))

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {"activation_fn": fullname(self.activation_fn)}
