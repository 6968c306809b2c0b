"""GISTEmbedLoss: in-batch negatives whose false negatives a guide model filters out (Solatorio 2024)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from embedforge.base.losses.base import Loss
from embedforge.base.losses.merged_forward import embed_columns
from embedforge.base.losses.row_chunks import sum_row_chunks
from embedforge.exceptions import InvalidArgumentError
from embedforge.util.distributed import all_gather_with_grad, get_rank
from embedforge.util.tensor import batch_to_device

if TYPE_CHECKING:
    from embedforge.sentence_transformer.model import SentenceTransformer

#: The real distributed helpers, for when a stand-in put on this module is removed by deleting it.
_DISTRIBUTED_HELPERS: dict[str, Any] = {"all_gather_with_grad": all_gather_with_grad, "get_rank": get_rank}


def __getattr__(name: str) -> Any:
    if name in _DISTRIBUTED_HELPERS:
        return _DISTRIBUTED_HELPERS[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


CITATION_GIST = """
@misc{solatorio2024gistembed,
    title={GISTEmbed: Guided In-sample Selection of Training Negatives for Text Embedding Fine-tuning},
    author={Aivin V. Solatorio},
    year={2024},
    eprint={2402.16829},
    archivePrefix={arXiv},
    primaryClass={cs.LG}
}
"""


def _vocab(tokenizer: Any) -> dict[str, int] | None:
    get_vocab = getattr(tokenizer, "get_vocab", None)
    return get_vocab() if callable(get_vocab) else None


def _max_length(model: nn.Module) -> float:
    value = getattr(model, "max_seq_length", None)
    return float("inf") if value is None else value


@dataclass
class _GuidedState:
    """What every row chunk of one GIST batch shares."""

    anchors: Tensor  # this rank's anchors: (batch, dim)
    anchors_guide: Tensor
    candidates: list[Tensor]  # positives, then each negative column, gathered: (world_batch, dim) each
    candidates_guide: list[Tensor]
    offset: int  # where this rank's rows start in the gathered candidates
    batch_size: int


class GuidedInBatchMixin:
    """The GIST formula and the guide handling, shared by GISTEmbedLoss and CachedGISTEmbedLoss."""

    model: nn.Module
    guide: SentenceTransformer
    temperature: float
    margin_strategy: str
    margin: float
    contrast_anchors: bool
    contrast_positives: bool
    gather_across_devices: bool
    must_retokenize: bool

    def _setup_guide(
        self,
        model: nn.Module,
        guide: SentenceTransformer,
        temperature: float,
        margin_strategy: str,
        margin: float,
        contrast_anchors: bool,
        contrast_positives: bool,
        gather_across_devices: bool,
    ) -> None:
        model_vocab, guide_vocab = _vocab(getattr(model, "tokenizer", None)), _vocab(getattr(guide, "tokenizer", None))
        if model_vocab is None or guide_vocab is None:
            raise InvalidArgumentError(
                f"{type(self).__name__} needs a model and a guide whose tokenizers have get_vocab(); got "
                f"{type(getattr(model, 'tokenizer', None)).__name__} and {type(getattr(guide, 'tokenizer', None)).__name__}"
            )
        if margin_strategy not in ("absolute", "relative"):
            raise InvalidArgumentError(f"margin_strategy is {margin_strategy!r}; expected 'absolute' or 'relative'")
        self.guide = guide
        self.temperature = temperature
        self.margin_strategy = margin_strategy
        self.margin = margin
        self.contrast_anchors = contrast_anchors
        self.contrast_positives = contrast_positives
        self.gather_across_devices = gather_across_devices
        # The guide can reuse the model's token ids only if it has the same vocabulary and reads as far.
        self.must_retokenize = model_vocab != guide_vocab or _max_length(guide) < _max_length(model)
        if self.must_retokenize and not callable(getattr(model.tokenizer, "batch_decode", None)):
            raise InvalidArgumentError(
                f"{type(self).__name__}: the guide tokenizes differently from the model, so the model's inputs must "
                "be decoded back to text, which needs a transformers tokenizer on the model; its tokenizer is "
                f"{type(model.tokenizer).__name__} (e.g. a StaticEmbedding). Use a guide with the same tokenizer."
            )
        self.cross_entropy_loss = nn.CrossEntropyLoss()

    def guide_features(self, features: dict[str, Any]) -> dict[str, Any]:
        """The features the guide embeds: the model's own, or re-tokenised text when the tokenizers differ."""
        if not self.must_retokenize:
            return dict(features)
        # nn.Module does not declare ``tokenizer``; __init__ checked that the model's has batch_decode.
        tokenizer: Any = getattr(self.model, "tokenizer", None)
        texts = tokenizer.batch_decode(features["input_ids"], skip_special_tokens=True)
        return batch_to_device(self.guide.preprocess(texts), self.guide.device)

    def embed_with_guide(self, features: dict[str, Any]) -> Tensor:
        """The guide's embeddings of one column, without gradients."""
        with torch.no_grad():
            return self.guide(self.guide_features(features))["sentence_embedding"]

    def sim_matrix(self, embed1: Tensor, embed2: Tensor) -> Tensor:
        """Cosine similarity of every row of ``embed1`` with every row of ``embed2``."""
        return F.cosine_similarity(embed1.unsqueeze(1), embed2.unsqueeze(0), dim=-1)

    # -- RowChunkedLoss ------------------------------------------------------------------------

    def prepare_guided(
        self,
        embeddings: list[Tensor],
        guide_embeddings: list[Tensor],
        gather: Callable[[Tensor], Tensor] | None = None,
        rank: Callable[[], int] | None = None,
    ) -> _GuidedState:
        """Gather the candidates (when asked); anchors stay local, as every rank scores only its own rows.

        ``gather`` / ``rank`` replace the torch.distributed helpers (a wrapping loss passes its own).
        """
        if len(embeddings) != len(guide_embeddings):
            raise InvalidArgumentError(
                f"{type(self).__name__} got {len(embeddings)} embedding columns but {len(guide_embeddings)} guide columns"
            )
        if len(embeddings) < 2:
            raise InvalidArgumentError(
                f"{type(self).__name__} needs at least 2 embedding columns (anchor, positive), got {len(embeddings)}"
            )
        anchors, anchors_guide = embeddings[0], guide_embeddings[0]
        candidates, candidates_guide = list(embeddings[1:]), list(guide_embeddings[1:])
        batch_size = anchors.size(0)
        offset = 0
        if self.gather_across_devices:
            # Looked up on the module at call time, so a test (or a user) can stand in for torch.distributed.
            module = sys.modules[__name__]
            gather = gather or module.all_gather_with_grad
            candidates = [gather(column) for column in candidates]
            candidates_guide = [gather(column) for column in candidates_guide]
            offset = (rank or module.get_rank)() * batch_size
        return _GuidedState(anchors, anchors_guide, candidates, candidates_guide, offset, batch_size)

    def num_rows(self, state: _GuidedState) -> int:
        """This rank's anchor rows."""
        return state.batch_size

    def loss_for_rows(self, state: _GuidedState, begin: int, end: int) -> Tensor:
        """Cross-entropy of anchors ``begin:end`` over their guide-filtered candidates, divided by the batch size."""
        device = state.anchors.device
        rows = torch.arange(end - begin, device=device)
        targets = state.offset + begin + rows
        anchors, anchors_guide = state.anchors[begin:end], state.anchors_guide[begin:end]

        guided_ap = self.sim_matrix(anchors_guide, state.candidates_guide[0])
        # The guide's anchor-positive similarity is each row's threshold for "too close to be a negative".
        threshold = guided_ap[rows, targets].view(-1, 1)
        if self.margin_strategy == "absolute":
            threshold = threshold - self.margin
        else:
            threshold = threshold - threshold.abs() * self.margin

        def suppress(scores: Tensor, guided: Tensor, protect: Tensor | None = None) -> Tensor:
            mask = guided > threshold
            if protect is not None:
                mask = mask & ~protect
            return scores.masked_fill(mask, -torch.inf)

        own_positive = torch.zeros_like(guided_ap, dtype=torch.bool)
        own_positive[rows, targets] = True
        blocks = [suppress(self.sim_matrix(anchors, state.candidates[0]), guided_ap, own_positive)]
        if self.contrast_anchors:
            blocks.append(
                suppress(self.sim_matrix(anchors, state.anchors), self.sim_matrix(anchors_guide, state.anchors_guide))
            )
        if self.contrast_positives:
            own = slice(state.offset + begin, state.offset + end)
            blocks.append(
                suppress(
                    self.sim_matrix(state.candidates[0][own], state.candidates[0]),
                    self.sim_matrix(state.candidates_guide[0][own], state.candidates_guide[0]),
                )
            )
        for negatives, negatives_guide in zip(state.candidates[1:], state.candidates_guide[1:]):
            blocks.append(
                suppress(self.sim_matrix(anchors, negatives), self.sim_matrix(anchors_guide, negatives_guide))
            )
        scores = torch.cat(blocks, dim=1) / self.temperature
        # Through the module attribute (a mean over the chunk), which users and tests may replace;
        # re-weighted so the chunks add up to the mean over the whole batch.
        return self.cross_entropy_loss(scores, targets) * ((end - begin) / state.batch_size)

    def guided_config(self) -> dict[str, Any]:
        """The config entries both GIST losses share."""
        return {
            "guide": self.guide,
            "temperature": self.temperature,
            "margin_strategy": self.margin_strategy,
            "margin": self.margin,
            "contrast_anchors": self.contrast_anchors,
            "contrast_positives": self.contrast_positives,
            "gather_across_devices": self.gather_across_devices,
        }


class GISTEmbedLoss(GuidedInBatchMixin, Loss):
    """In-batch InfoNCE at ``temperature`` in which candidates the guide scores above the positive are dropped."""

    input_columns = (2, 3)
    requires_label = False
    citation = CITATION_GIST

    def __init__(
        self,
        model: nn.Module,
        guide: SentenceTransformer,
        temperature: float = 0.01,
        margin_strategy: Literal["absolute", "relative"] = "absolute",
        margin: float = 0.0,
        contrast_anchors: bool = True,
        contrast_positives: bool = True,
        gather_across_devices: bool = False,
    ) -> None:
        """Use ``guide`` to drop false negatives: with margin m a candidate goes when the guide scores it above
        ``positive - m`` ("absolute") or ``positive - |positive| * m`` ("relative")."""
        super().__init__()
        self.model = model
        self._setup_guide(
            model,
            guide,
            temperature,
            margin_strategy,
            margin,
            contrast_anchors,
            contrast_positives,
            gather_across_devices,
        )

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        """Embed every column with the model and the guide and return the batch loss."""
        features = self.check_features(sentence_features, labels)
        # The guide reads shallow copies: models write their outputs into the dicts they are given.
        copies = [dict(feature) for feature in features]
        embeddings = embed_columns(self.model, features)
        with torch.no_grad():
            guide_embeddings = embed_columns(self.guide, [self.guide_features(feature) for feature in copies])
        return self.compute_loss_from_embeddings(embeddings, guide_embeddings)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], guide_embeddings: list[Tensor]) -> Tensor:
        """The loss from the model's and the guide's per-column embeddings ``[anchors, positives, *negatives]``."""
        return sum_row_chunks(self, self.prepare_guided(embeddings, guide_embeddings), chunk_size=None)

    def get_config_dict(self) -> dict[str, Any]:
        """The constructor arguments, as sentence-transformers reports them."""
        return self.guided_config()
