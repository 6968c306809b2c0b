"""MultipleNegativesRankingLoss: InfoNCE with in-batch negatives (and its GTE / symmetric variants)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from embedforge.base.losses.base import Loss
from embedforge.base.losses.merged_forward import embed_columns
from embedforge.base.losses.row_chunks import chunked_loss
from embedforge.exceptions import InvalidArgumentError
from embedforge.util import cos_sim
from embedforge.util.distributed import all_gather_with_grad, get_rank

logger = logging.getLogger(__name__)

Direction = Literal["query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc"]
VALID_DIRECTIONS = ("query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc")
VALID_HARDNESS_MODES = (None, "in_batch_negatives", "hard_negatives", "all_negatives")

CITATION_INFONCE = """
@misc{oord2019representationlearningcontrastivepredictive,
      title={Representation Learning with Contrastive Predictive Coding},
      author={Aaron van den Oord and Yazhe Li and Oriol Vinyals},
      year={2019},
      eprint={1807.03748},
      archivePrefix={arXiv},
      primaryClass={cs.LG},
      url={https://arxiv.org/abs/1807.03748},
}
"""

CITATION_GTE = """
@misc{li2023generaltextembeddingsmultistage,
      title={Towards General Text Embeddings with Multi-stage Contrastive Learning},
      author={Zehan Li and Xin Zhang and Yanzhao Zhang and Dingkun Long and Pengjun Xie and Meishan Zhang},
      year={2023},
      eprint={2308.03281},
      archivePrefix={arXiv},
      primaryClass={cs.CL},
      url={https://arxiv.org/abs/2308.03281},
}
"""

CITATION_JINA = """
@misc{günther2024jinaembeddings28192token,
      title={Jina Embeddings 2: 8192-Token General-Purpose Text Embeddings for Long Documents},
      author={Michael Günther and Jackmin Ong and Isabelle Mohr and Alaeddine Abdessalem and Tanguy Abel and Mohammad Kalim Akram and Susana Guzman and Georgios Mastrapas and Saba Sturua and Bo Wang and Maximilian Werk and Nan Wang and Han Xiao},
      year={2024},
      eprint={2310.19923},
      archivePrefix={arXiv},
      primaryClass={cs.CL},
      url={https://arxiv.org/abs/2310.19923},
}
"""


def similarity_fct_name(similarity_fct: Callable[..., Any]) -> str:
    """The name a loss's config dict shows for its similarity callable (partials list their keywords)."""
    if isinstance(similarity_fct, functools.partial):
        name = getattr(similarity_fct.func, "__name__", type(similarity_fct.func).__name__)
        args = ", ".join(f"{key}={value!r}" for key, value in similarity_fct.keywords.items())
        return f"{name}({args})" if args else name
    name = getattr(similarity_fct, "__name__", type(similarity_fct).__name__)
    owner = getattr(similarity_fct, "__self__", None)
    if name in ("similarity", "similarity_pairwise") and owner is not None and hasattr(owner, "similarity_fn_name"):
        # model.similarity dispatches on the model's setting: report what it resolves to.
        from embedforge.util import SimilarityFunction

        resolve = (
            SimilarityFunction.to_similarity_fn
            if name == "similarity"
            else SimilarityFunction.to_similarity_pairwise_fn
        )
        return resolve(owner.similarity_fn_name).__name__
    config = getattr(similarity_fct, "get_config_dict", None)
    if config is not None:
        return f"{name}({', '.join(f'{key}={value!r}' for key, value in config().items())})"
    return name


@dataclass
class _InBatchState:
    """What every row chunk of one MNRL batch shares."""

    queries: Tensor  # all queries, gathered across ranks when asked: (world_batch, dim)
    docs_all: Tensor  # positives then each negative column, gathered: (world_batch * columns, dim)
    docs_pos: Tensor  # the positive column, gathered: (world_batch, dim)
    num_doc_columns: int
    offset: int  # where this rank's rows start in the gathered tensors
    batch_size: int  # this rank's rows


class MultipleNegativesRankingLoss(Loss):
    """InfoNCE over (anchor, positive, *negatives): each anchor must rank its positive above every other candidate."""

    input_columns = (2, None)
    requires_label = False

    def __init__(
        self,
        model: nn.Module,
        scale: float = 20.0,
        similarity_fct: Callable[[Tensor, Tensor], Tensor] = cos_sim,
        gather_across_devices: bool = False,
        directions: tuple[Direction, ...] = ("query_to_doc",),
        partition_mode: Literal["joint", "per_direction"] = "joint",
        hardness_mode: Literal["in_batch_negatives", "hard_negatives", "all_negatives"] | None = None,
        hardness_strength: float = 0.0,
    ) -> None:
        """Set up the loss; ``scale`` is the inverse temperature applied to the similarities.

        ``directions`` picks the score blocks in the softmax denominator (query->doc is mandatory,
        query->query, doc->query and doc->doc are optional); ``partition_mode`` chooses one joint
        softmax or one per direction averaged; ``hardness_mode``/``hardness_strength`` add
        ``strength * stop_grad(cos)`` to the chosen negatives' logits (Lan et al. 2025; EmbeddingGemma).
        """
        super().__init__()
        self.model = model
        if not scale > 0:
            raise InvalidArgumentError(f"Scale must be a positive value. Got scale={scale!r}.")
        self.scale = scale
        self.similarity_fct = similarity_fct
        self.gather_across_devices = gather_across_devices

        directions = tuple(directions)
        if not directions:
            raise InvalidArgumentError("directions is empty; at least one direction must be specified")
        unknown = set(directions) - set(VALID_DIRECTIONS)
        if unknown:
            raise InvalidArgumentError(f"directions has invalid entries {sorted(unknown)}; valid: {VALID_DIRECTIONS}")
        if "query_to_doc" not in directions:
            raise InvalidArgumentError(
                f"directions is {directions}; 'query_to_doc' is required (it holds the positive pair)"
            )
        self.directions = directions

        if partition_mode not in ("joint", "per_direction"):
            raise InvalidArgumentError(f"partition_mode is {partition_mode!r}; expected 'joint' or 'per_direction'")
        if partition_mode == "per_direction" and set(directions) & {"query_to_query", "doc_to_doc"}:
            # Those blocks never contain the positive, so a softmax of their own has nothing to rank first.
            raise InvalidArgumentError(
                "partition_mode='per_direction' needs every direction to contain the positive pair, which "
                "'query_to_query' and 'doc_to_doc' never do; use partition_mode='joint' with them"
            )
        self.partition_mode = partition_mode

        if hardness_mode not in VALID_HARDNESS_MODES:
            raise InvalidArgumentError(f"hardness_mode is {hardness_mode!r}; expected one of {VALID_HARDNESS_MODES}")
        if hardness_strength < 0.0:
            raise InvalidArgumentError(f"hardness_strength is {hardness_strength!r}; it must be non-negative")
        self.hardness_mode = hardness_mode
        self.hardness_strength = hardness_strength
        if hardness_mode is not None and hardness_strength == 0.0:
            logger.warning(
                "hardness_mode=%r with hardness_strength=0.0 has no effect; set a positive hardness_strength",
                hardness_mode,
            )

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        """Embed every column and return the batch loss."""
        features = self.check_features(sentence_features, labels)
        embeddings = embed_columns(self.model, features)
        return self.compute_loss_from_embeddings(embeddings, labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None = None) -> Tensor:
        """The loss from per-column embeddings ``[anchors, positives, *negatives]``, each ``(batch, dim)``."""
        return chunked_loss(self, embeddings, labels, chunk_size=None)

    # -- ChunkedLoss: the formula, evaluated for any chunk of anchor rows ------------------------

    def prepare_embeddings(
        self,
        embeddings: list[Tensor],
        labels: Tensor | None,
        gather: Callable[[Tensor], Tensor] | None = None,
        rank: Callable[[], int] | None = None,
    ) -> _InBatchState:
        """Gather (when asked) and concatenate the candidates every row chunk scores against.

        ``gather`` / ``rank`` replace the torch.distributed helpers (a wrapping loss passes its own).
        """
        if len(embeddings) < 2:
            raise InvalidArgumentError(
                f"{type(self).__name__} needs at least 2 embedding columns (anchor, positive), got {len(embeddings)}"
            )
        queries, docs = embeddings[0], list(embeddings[1:])
        batch_size = queries.size(0)
        offset = 0
        if self.gather_across_devices:
            # Each rank scores its own rows against every rank's candidates; gradients flow back home.
            gather = gather or all_gather_with_grad
            queries = gather(queries)
            docs = [gather(doc) for doc in docs]
            offset = (rank or get_rank)() * batch_size
        return _InBatchState(queries, torch.cat(docs, dim=0), docs[0], len(docs), offset, batch_size)

    def num_rows(self, state: _InBatchState) -> int:
        """This rank's anchor rows."""
        return state.batch_size

    def loss_for_rows(self, state: _InBatchState, begin: int, end: int) -> Tensor:
        """Sum of the per-anchor losses of rows ``begin:end``, divided by the batch size."""
        device = state.queries.device
        world = state.queries.size(0)
        own = torch.arange(state.offset + begin, state.offset + end, device=device)  # rows' own columns
        rows = torch.arange(end - begin, device=device)
        queries = state.queries[own]
        own_docs = state.docs_pos[own]

        blocks: dict[str, Tensor] = {"query_to_doc": self.similarity_fct(queries, state.docs_all)}
        # One-hot of each row's own pair index among the world batch; repeated per doc column it marks
        # the row's own positive and hard negatives.
        own_pair = torch.zeros(end - begin, world, dtype=torch.bool, device=device)
        own_pair[rows, own] = True
        if "query_to_query" in self.directions:
            block = self.similarity_fct(queries, state.queries)
            blocks["query_to_query"] = block.masked_fill(own_pair, -torch.inf)
        if "doc_to_query" in self.directions:
            blocks["doc_to_query"] = self.similarity_fct(state.queries, own_docs).T
        if "doc_to_doc" in self.directions:
            block = self.similarity_fct(state.docs_all, own_docs).T
            blocks["doc_to_doc"] = block.masked_fill(own_pair.repeat(1, state.num_doc_columns), -torch.inf)

        penalty = self._hardness_penalty(blocks["query_to_doc"], own_pair, state.num_doc_columns, world)
        blocks = {key: block * self.scale for key, block in blocks.items()}
        if penalty is not None:
            # The penalty is added after scaling: it is not divided by the temperature.
            blocks["query_to_doc"] = blocks["query_to_doc"] + penalty

        positive = blocks["query_to_doc"][rows, own]
        if self.partition_mode == "joint":
            log_partition = torch.logsumexp(torch.cat(list(blocks.values()), dim=1), dim=1)
        else:
            log_partition = torch.stack([torch.logsumexp(block, dim=1) for block in blocks.values()]).mean(dim=0)
        return (log_partition - positive).sum() / state.batch_size

    def _hardness_penalty(self, query_to_doc: Tensor, own_pair: Tensor, columns: int, world: int) -> Tensor | None:
        """``strength * stop_grad(cos)`` on the negatives ``hardness_mode`` selects, 0 elsewhere."""
        if self.hardness_mode is None or self.hardness_strength <= 0.0:
            return None
        own_docs = own_pair.repeat(1, columns)
        if self.hardness_mode == "in_batch_negatives":
            # Other anchors' positives and hard negatives.
            selected = ~own_docs
        elif self.hardness_mode == "hard_negatives":
            # Only this anchor's own hard negatives (never the positive column block).
            selected = own_docs.clone()
            selected[:, :world] = False
        else:
            # Everything but this anchor's own positive.
            selected = torch.ones_like(own_docs)
            selected[:, :world] = ~own_pair
        return (self.hardness_strength * query_to_doc.detach()).masked_fill(~selected, 0.0)

    # -- metadata ---------------------------------------------------------------------------------

    def get_config_dict(self) -> dict[str, Any]:
        """The constructor arguments, as sentence-transformers reports them."""
        return {
            "scale": self.scale,
            "similarity_fct": similarity_fct_name(self.similarity_fct),
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

    @property
    def citation(self) -> str:  # type: ignore[override]
        """The paper behind the configured variant."""
        return citation_for(self.directions, self.partition_mode)


def citation_for(directions: tuple[str, ...], partition_mode: str) -> str:
    """GTE for the four-direction joint variant, Jina for symmetric per-direction, else InfoNCE."""
    if set(directions) == set(VALID_DIRECTIONS) and partition_mode == "joint":
        return CITATION_GTE
    if set(directions) == {"query_to_doc", "doc_to_query"} and partition_mode == "per_direction":
        return CITATION_JINA
    return CITATION_INFONCE
