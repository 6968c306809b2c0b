"""MSELoss: a cross-encoder's pair score regressed onto a target score (e.g. a teacher's)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from embedforge.cross_encoder.losses._common import CrossEncoderLoss, label_vector, pairs_of
from embedforge.util.misc import fullname

if TYPE_CHECKING:
    # Only for annotations: the model module imports the legacy fit, which imports these losses.
    from embedforge.cross_encoder.model import CrossEncoder


class MSELoss(CrossEncoderLoss):
    """Mean squared error between each pair's score and its label: distils a teacher reranker or fits gold scores.

    Scores and labels must live on the same scale: when the teacher's scores went through a sigmoid,
    pass ``activation_fn=nn.Sigmoid()`` here too.

    Args:
        model: The CrossEncoder to train; it must have a single output label.
        activation_fn: Applied to the logits before the loss. Defaults to identity.
        **kwargs: Passed on to :class:`torch.nn.MSELoss`.

    Inputs:
        Two text columns and a label column with the target score of each pair.
    """

    input_columns = (2, 2)
    requires_label = True

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
        self, inputs: list[list[str]], labels: Tensor, prompt: str | None = None, task: str | None = None
    ) -> Tensor:
        """The loss of a batch of ``[first_texts, second_texts]`` with one target score per row."""
        self.check_column_count(inputs)
        logits = self.score_pairs(pairs_of(inputs[0], inputs[1], 1), prompt=prompt, task=task).view(-1)
        logits = self.activation_fn(logits)
        # The targets are constants: a label that carries a graph (a teacher run in the same step) is cut off.
        targets = label_vector(self, labels, logits.shape[0], logits.device).detach()
        return self.loss_fct(logits, targets)

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {"activation_fn": fullname(self.activation_fn)}
