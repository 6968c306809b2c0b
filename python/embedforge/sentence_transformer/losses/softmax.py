"""SoftmaxLoss: a linear classifier over (u, v, |u - v|, u * v) trained with the model (Sentence-BERT's NLI loss)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from embedforge.base.losses.base import Loss
from embedforge.base.losses.merged_forward import embed_columns
from embedforge.exceptions import InvalidArgumentError

logger = logging.getLogger(__name__)


class SoftmaxLoss(Loss):
    """Cross-entropy of ``classifier(concat(u, v, |u - v|, u * v))`` (the parts chosen by the flags) against the label.

    The classifier (``self.classifier``, an ``nn.Linear``) belongs to the loss, so the trainer optimises
    it together with the model; without labels ``forward`` returns ``(embeddings, logits)`` for prediction.
    """

    input_columns: ClassVar[tuple[int, int | None]] = (2, 2)
    requires_label: ClassVar[bool | None] = True
    citation: ClassVar[str] = """
@inproceedings{reimers2019sentencebert,
    title = "Sentence-{BERT}: Sentence Embeddings using {S}iamese {BERT}-Networks",
    author = "Reimers, Nils and Gurevych, Iryna",
    booktitle = "Proceedings of the 2019 Conference on Empirical Methods in Natural Language Processing and the 9th International Joint Conference on Natural Language Processing (EMNLP-IJCNLP)",
    month = nov,
    year = "2019",
    publisher = "Association for Computational Linguistics",
    url = "https://aclanthology.org/D19-1410/",
    doi = "10.18653/v1/D19-1410",
    pages = "3982--3992"
}
"""

    def __init__(
        self,
        model: nn.Module,
        embedding_dimension: int | None = None,
        num_labels: int | None = None,
        concatenation_sent_rep: bool = True,
        concatenation_sent_difference: bool = True,
        concatenation_sent_multiplication: bool = False,
        loss_fct: Callable[[Tensor, Tensor], Tensor] = nn.CrossEntropyLoss(),  # noqa: B008 - upstream default
        sentence_embedding_dimension: int | None = None,
    ) -> None:
        super().__init__()
        # sentence_embedding_dimension is the pre-6.0 name; the new name wins when both are given.
        if sentence_embedding_dimension is not None:
            logger.warning("SoftmaxLoss: `sentence_embedding_dimension` is deprecated; use `embedding_dimension`")
            if embedding_dimension is None:
                embedding_dimension = sentence_embedding_dimension
        if embedding_dimension is None:
            raise InvalidArgumentError(
                "SoftmaxLoss needs embedding_dimension (e.g. model.get_embedding_dimension()); got None"
            )
        if num_labels is None:
            raise InvalidArgumentError("SoftmaxLoss needs num_labels, the number of classes; got None")
        self.model = model
        self.num_labels = num_labels
        self.concatenation_sent_rep = concatenation_sent_rep
        self.concatenation_sent_difference = concatenation_sent_difference
        self.concatenation_sent_multiplication = concatenation_sent_multiplication
        parts = 2 * concatenation_sent_rep + concatenation_sent_difference + concatenation_sent_multiplication
        if parts == 0:
            raise InvalidArgumentError(
                "SoftmaxLoss: at least one of concatenation_sent_rep, concatenation_sent_difference or "
                "concatenation_sent_multiplication must be True; all are False"
            )
        logger.info("Softmax loss: %d vectors concatenated", parts)
        device = getattr(model, "device", None)
        self.classifier = nn.Linear(parts * embedding_dimension, num_labels, device=device)
        self.loss_fct = loss_fct

    def check_features(
        self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None
    ) -> list[dict[str, Tensor]]:
        """Like the base check, except that no labels is allowed: that is prediction, not training."""
        features = list(sentence_features)
        self.check_input_columns([f"column {index}" for index in range(len(features))], True)
        return features

    def forward(
        self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None
    ) -> Tensor | tuple[list[Tensor], Tensor]:
        """The classification loss, or ``(embeddings, logits)`` when ``labels`` is None."""
        features = self.check_features(sentence_features, labels)
        embeddings = embed_columns(self.model, features)
        u, v = embeddings
        parts = []
        if self.concatenation_sent_rep:
            parts += [u, v]
        if self.concatenation_sent_difference:
            parts.append(torch.abs(u - v))
        if self.concatenation_sent_multiplication:
            parts.append(u * v)
        logits = self.classifier(torch.cat(parts, dim=1).to(self.classifier.weight.dtype))
        if labels is None:
            return embeddings, logits
        # Class ids come as a vector; class probabilities as a (batch, num_labels) matrix that is kept.
        if self.num_labels == 1 or labels.shape != logits.shape:
            labels = labels.view(-1)
        return self.loss_fct(logits, labels)

    def get_config_dict(self) -> dict[str, Any]:
        """Same keys as sentence-transformers."""
        return {
            "num_labels": self.num_labels,
            "concatenation_sent_rep": self.concatenation_sent_rep,
            "concatenation_sent_difference": self.concatenation_sent_difference,
            "concatenation_sent_multiplication": self.concatenation_sent_multiplication,
        }
