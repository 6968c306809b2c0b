"""RankNetLoss (Burges et al. 2005): the pairwise logistic loss over each query's ordered document pairs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from torch import nn

from embedforge.cross_encoder.losses.lambda_loss import LambdaLoss, NoWeightingScheme

if TYPE_CHECKING:
    # Only for annotations: the model module imports the legacy fit, which imports these losses.
    from embedforge.cross_encoder.model import CrossEncoder


class RankNetLoss(LambdaLoss):
    """RankNet: :class:`LambdaLoss` with every ordered document pair weighted equally.

    For each query, every pair of documents with label_i > label_j (and one of them in the model's
    top ``k``) adds ``-log(sigmoid(sigma * (s_i - s_j)))``; the loss is the mean over those pairs.

    Args:
        model: The CrossEncoder to train; it must have a single output label.
        k: Only pairs with a document in the model's top ``k`` count; None for all.
        sigma: Slope of the sigmoid on score differences. Defaults to 1.0.
        eps: Numerical floor (of maxDCG, unused by the equal weights). Defaults to 1e-10.
        reduction_log: ``"binary"`` (log2, the default) or ``"natural"`` logarithm.
        activation_fn: Applied to the logits first; None for identity. Defaults to identity.
        mini_batch_size: Pairs per forward pass (None or 0: as many as there are queries; negative: all).

    Inputs:
        ``(query, [doc_1, ..., doc_n])`` with labels ``[label_1, ..., label_n]``; lists may differ in length.
    """

    citation = """
@inproceedings{burges2005learning,
  title={Learning to Rank using Gradient Descent},
  author={Burges, Chris and Shaked, Tal and Renshaw, Erin and Lazier, Ari and Deeds, Matt and Hamilton, Nicole and Hullender, Greg},
  booktitle={Proceedings of the 22nd international conference on Machine learning},
  pages={89--96},
  year={2005}
}
"""

    def __init__(
        self,
        model: CrossEncoder,
        k: int | None = None,
        sigma: float = 1.0,
        eps: float = 1e-10,
        reduction_log: Literal["natural", "binary"] = "binary",
        activation_fn: nn.Module | None = nn.Identity(),  # noqa: B008 - the sentence-transformers default, stateless
        mini_batch_size: int | None = None,
    ) -> None:
        super().__init__(
            model,
            weighting_scheme=NoWeightingScheme(),
            k=k,
            sigma=sigma,
            eps=eps,
            reduction_log=reduction_log,
            activation_fn=activation_fn,
            mini_batch_size=mini_batch_size,
        )

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card (the weighting is fixed, so not listed)."""
        config = super().get_config_dict()
        del config["weighting_scheme"]
        return config
