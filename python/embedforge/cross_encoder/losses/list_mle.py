"""ListMLELoss (Xia et al. 2008): the Plackett-Luce likelihood of the true ranking of each query's documents."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import nn

from embedforge.cross_encoder.losses.plist_mle import PListMLELoss

if TYPE_CHECKING:
    # Only for annotations: the model module imports the legacy fit, which imports these losses.
    from embedforge.cross_encoder.model import CrossEncoder


class ListMLELoss(PListMLELoss):
    """ListMLE: :class:`PListMLELoss` with every position weighted equally.

    The loss of a list is ``-sum_pos log(exp(s_pos) / sum(exp(s) of the documents from pos on))``
    in the true order; the batch loss is the mean over lists.

    Args:
        model: The CrossEncoder to train; it must have a single output label.
        activation_fn: Applied to the logits first; None for identity. Defaults to identity.
        mini_batch_size: Pairs per forward pass: None (or 0) for as many as the batch has queries, a
            negative value for all pairs at once.
        respect_input_order: True (default) takes each document list as already in the true order;
            False orders it by the labels, highest first.

    Inputs:
        ``(query, [doc_1, ..., doc_n])`` rows with labels ``[label_1, ..., label_n]``; lists may differ in length.
    """

    citation = """
@inproceedings{10.1145/1390156.1390306,
    title = {Listwise Approach to Learning to Rank - Theory and Algorithm},
    author = {Xia, Fen and Liu, Tie-Yan and Wang, Jue and Zhang, Wensheng and Li, Hang},
    booktitle = {Proceedings of the 25th International Conference on Machine Learning},
    pages = {1192-1199},
    year = {2008},
    url = {https://doi.org/10.1145/1390156.1390306},
}
"""

    def __init__(
        self,
        model: CrossEncoder,
        activation_fn: nn.Module | None = nn.Identity(),  # noqa: B008 - the sentence-transformers default, stateless
        mini_batch_size: int | None = None,
        respect_input_order: bool = True,
    ) -> None:
        super().__init__(
            model,
            lambda_weight=None,
            activation_fn=activation_fn,
            mini_batch_size=mini_batch_size,
            respect_input_order=respect_input_order,
        )

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card (no position weights, so not listed)."""
        config = super().get_config_dict()
        del config["lambda_weight"]
        return config
