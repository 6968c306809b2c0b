"""MatryoshkaLoss: train every prefix of the embedding (e.g. 768, 512, ..., 64 dims) with one inner loss.

The model runs once per batch; each Matryoshka dimension re-uses its output, truncated to that many
dims and re-normalised to unit length. Two things make this cheaper than running the inner loss
once per dimension on its own:

* For :class:`MultipleNegativesRankingLoss` with cosine (or dot-product, which is cosine once the
  truncated embeddings are unit length) scores, the similarity matrices of all prefixes come from one
  pass over the embedding: the dims are cut into blocks at the Matryoshka boundaries, each block's dot
  products and squared norms are computed once, and running sums over the blocks give every prefix's
  dot products and norms. A 1024-dim embedding with dims (1024, ..., 32) costs one 1024-dim matrix
  product instead of 2016 dims' worth, forward and backward alike.
* Every other loss gets the generic path: the model's forward is wrapped so the first dimension's
  pass caches the outputs and the later dimensions read them back truncated.

Gradient-caching losses (CachedMultipleNegativesRankingLoss, ...) back-propagate from a hook after
this loss's forward has returned, so for them the truncation is applied to their cached embeddings
instead (their ``calculate_loss`` is wrapped).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from embedforge import _core
from embedforge._internal.buffer_pool import BufferPool
from embedforge.base.losses.base import Loss
from embedforge.base.losses.merged_forward import embed_columns
from embedforge.exceptions import InvalidArgumentError

logger = logging.getLogger(__name__)

CITATION = """
@misc{kusupati2024matryoshka,
    title={Matryoshka Representation Learning},
    author={Aditya Kusupati and Gantavya Bhatt and Aniket Rege and Matthew Wallingford and Aditya Sinha and Vivek Ramanujan and William Howard-Snyder and Kaifeng Chen and Sham Kakade and Prateek Jain and Ali Farhadi},
    year={2024},
    eprint={2205.13147},
    archivePrefix={arXiv},
    primaryClass={cs.LG}
}
"""

#: F.normalize's floor on the norm, so prefix cosines treat near-zero vectors the same way.
_NORM_EPS = 1e-12


def shrink(embeddings: Tensor, dim: int) -> Tensor:
    """The first ``dim`` dims of each embedding, scaled back to unit length."""
    width = embeddings.shape[-1]
    if dim > width:
        raise InvalidArgumentError(f"matryoshka dimension {dim} is larger than the model's embedding dimension {width}")
    return F.normalize(embeddings[..., :dim], p=2, dim=-1)


def embedding_dimension(model: nn.Module) -> int | None:
    """The model's output width, or None when the model cannot tell."""
    getter = getattr(model, "get_embedding_dimension", None) or getattr(model, "get_sentence_embedding_dimension", None)
    return getter() if callable(getter) else None


def sample_dim_indices(count: int, n_dims_per_step: int, sort: bool) -> list[int]:
    """Which dimensions this step trains: all, or ``n_dims_per_step`` drawn with ``random.sample``.

    Python's ``random`` module (not torch's generator) draws them, as sentence-transformers does, so
    seeding ``random`` reproduces its choice of dimensions.
    """
    indices = list(range(count))
    if 0 < n_dims_per_step < count:
        indices = random.sample(range(count), n_dims_per_step)
        if sort:
            indices.sort()
    return indices


def restore_forward(module: nn.Module, patched: Any, original: Callable[..., Any]) -> None:
    """Undo ``module.forward = patched``, leaving ``module`` as it was before the patch.

    When the original was the class's own method the instance attribute is deleted rather than
    re-assigned, so no bound-method self-reference is left behind on the module.
    """
    if module.__dict__.get("forward") is not patched:
        return
    if original == type(module).forward.__get__(module):
        del module.forward
    else:
        module.forward = original


class _ForwardCache:
    """Stands in for ``model.forward``: runs the model on the first dimension, replays its outputs after.

    Each call returns the model's output dict with ``sentence_embedding`` truncated to the current
    dimension; the untruncated embedding is kept so every dimension is cut from the original.
    """

    def __init__(self, forward: Callable[..., dict[str, Any]]) -> None:
        self.forward = forward
        self.dim: int | None = None
        self.rounds = 0
        self.outputs: list[dict[str, Any]] = []
        self.full: list[Tensor] = []
        self.index = 0

    def set_dim(self, dim: int) -> None:
        """Start serving the calls of the next dimension's loss."""
        self.dim = dim
        self.index = 0
        self.rounds += 1

    def __call__(self, features: dict[str, Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        assert self.dim is not None
        if self.rounds == 1:
            # Only the first dimension runs the model (a repeated dimension re-uses it too).
            output = self.forward(features, *args, **kwargs)
            self.outputs.append(output)
            self.full.append(output["sentence_embedding"])
        else:
            if self.index >= len(self.outputs):
                raise InvalidArgumentError(
                    "MatryoshkaLoss: the inner loss embedded more inputs for one dimension than for the first"
                )
            output = self.outputs[self.index]
        output["sentence_embedding"] = shrink(self.full[self.index], self.dim)
        self.index += 1
        return output


class _CachedLossDims:
    """Wraps a gradient-caching loss's ``calculate_loss`` so it runs once per Matryoshka dimension.

    The per-dimension truncation is built on detached copies: the inner loss back-propagates chunk by
    chunk into those copies, and their gradients (times the dimension's weight) are then pushed
    through the truncation into the cached full embeddings, where the GradCache hook picks them up.
    """

    def __init__(
        self,
        calculate_loss: Callable[..., Tensor],
        matryoshka_dims: Sequence[int],
        matryoshka_weights: Sequence[float],
        n_dims_per_step: int,
    ) -> None:
        self.calculate_loss = calculate_loss
        self.matryoshka_dims = matryoshka_dims
        self.matryoshka_weights = matryoshka_weights
        self.n_dims_per_step = n_dims_per_step

    def __call__(self, reps: list[list[Tensor]], *args: Any, **kwargs: Any) -> Tensor:
        # sentence-transformers does not sort the sampled dimensions on this path; neither do we.
        indices = sample_dim_indices(len(self.matryoshka_dims), self.n_dims_per_step, sort=False)
        total: Tensor | float = 0.0
        for index in indices:
            dim, weight = self.matryoshka_dims[index], self.matryoshka_weights[index]
            truncated = [[shrink(part, dim) for part in column] for column in reps]
            track = torch.is_grad_enabled()
            inputs = (
                [[part.detach().requires_grad_() for part in column] for column in truncated] if track else truncated
            )
            total = total + weight * self.calculate_loss(inputs, *args, **kwargs)
            if track:
                for column, detached_column in zip(truncated, inputs):
                    for part, detached in zip(column, detached_column):
                        if detached.grad is None:
                            raise InvalidArgumentError(
                                "MatryoshkaLoss: the inner loss did not use every input column (one got no gradient)"
                            )
                        part.backward(weight * detached.grad)
        assert isinstance(total, Tensor)
        return total


class MatryoshkaLoss(Loss):
    """Applies an inner loss to several truncations of the embedding and sums the weighted results."""

    input_columns = (1, None)
    requires_label = None
    citation = CITATION

    def __init__(
        self,
        model: nn.Module,
        loss: nn.Module,
        matryoshka_dims: Sequence[int],
        matryoshka_weights: Sequence[float] | Sequence[int] | None = None,
        n_dims_per_step: int = -1,
    ) -> None:
        """Wrap ``loss``; ``matryoshka_dims`` are the prefix lengths to train, ``matryoshka_weights`` their weights.

        With ``n_dims_per_step > 0`` each step trains only that many randomly drawn dimensions.
        """
        super().__init__()
        self.model = model
        self.loss = loss
        matryoshka_dims = list(matryoshka_dims) if matryoshka_dims is not None else []
        if not matryoshka_dims:
            raise InvalidArgumentError("You must provide at least one dimension in matryoshka_dims.")
        if any(not isinstance(dim, int) or isinstance(dim, bool) or dim <= 0 for dim in matryoshka_dims):
            raise InvalidArgumentError(
                f"All dimensions passed to a matryoshka loss must be > 0. Got matryoshka_dims={matryoshka_dims} "
                "(each an integer)."
            )
        if matryoshka_weights is None:
            matryoshka_weights = [1] * len(matryoshka_dims)
        elif len(matryoshka_weights) != len(matryoshka_dims):
            raise InvalidArgumentError(
                "matryoshka_weights must be the same length as matryoshka_dims. Got "
                f"{len(matryoshka_weights)} weights for {len(matryoshka_dims)} dimensions."
            )
        width = embedding_dimension(model)
        if width is not None:
            too_large = [dim for dim in matryoshka_dims if dim > width]
            if too_large:
                raise InvalidArgumentError(
                    f"Dimensions in matryoshka_dims cannot exceed the model's embedding dimension of {width}. "
                    f"Too large: {too_large}."
                )
            if width not in matryoshka_dims:
                # sentence-transformers' wording, word for word: scripts and tests match on it.
                logger.warning(
                    "The model's embedding dimension %d is not included in matryoshka_dims: %s. This means that "
                    "the full model dimension won't be trained, which may lead to degraded performance when using "
                    "the model without specifying a lower truncation dimension. It is strongly recommended to "
                    "include %d in matryoshka_dims.",
                    width,
                    matryoshka_dims,
                    width,
                )
        # Largest first: the generic path runs the model during the first (largest) dimension.
        pairs = sorted(zip(matryoshka_dims, matryoshka_weights), key=lambda pair: pair[0], reverse=True)
        self.matryoshka_dims: tuple[int, ...] = tuple(dim for dim, _ in pairs)
        self.matryoshka_weights: tuple[float, ...] = tuple(weight for _, weight in pairs)
        self.n_dims_per_step = n_dims_per_step
        # The fused MNRL path's batch x batch matrices, kept from one step to the next (see BufferPool).
        self._scratch = BufferPool()

        self.uses_gradient_cache = bool(getattr(loss, "uses_gradient_cache", False))
        if self.uses_gradient_cache:
            cached: Any = loss
            cached.calculate_loss = _CachedLossDims(
                cached.calculate_loss, self.matryoshka_dims, self.matryoshka_weights, self.n_dims_per_step
            )

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        """The weighted sum of the inner loss over the (sampled) Matryoshka dimensions."""
        features = self.check_features(sentence_features, labels)
        if self.uses_gradient_cache:
            # The wrapped calculate_loss already loops over the dimensions.
            return self.loss(features, labels)
        indices = sample_dim_indices(len(self.matryoshka_dims), self.n_dims_per_step, sort=True)
        if _prefix_cosine_applies(self.loss):
            return self._forward_prefix_cosine(features, labels, indices)
        return self._forward_generic(features, labels, indices)

    def _forward_generic(self, features: list[dict[str, Tensor]], labels: Tensor | None, indices: list[int]) -> Tensor:
        """Run the inner loss once per dimension on cached, truncated model outputs."""
        original_forward = self.model.forward
        cache = _ForwardCache(original_forward)
        width = embedding_dimension(self.model)
        self.model.forward = cache
        try:
            total: Tensor | float = 0.0
            for index in indices:
                dim, weight = self.matryoshka_dims[index], self.matryoshka_weights[index]
                cache.set_dim(dim)
                dim_labels = labels
                # Embedding-shaped labels (distillation targets) are truncated along with the predictions.
                if isinstance(labels, Tensor) and labels.ndim in (2, 3) and labels.size(-1) == width:
                    dim_labels = labels[..., :dim]
                total = total + weight * self.loss(features, dim_labels)
        finally:
            restore_forward(self.model, cache, original_forward)
        assert isinstance(total, Tensor)
        return total

    def _forward_prefix_cosine(
        self, features: list[dict[str, Tensor]], labels: Tensor | None, indices: list[int]
    ) -> Tensor:
        """MNRL at every sampled dimension from one blockwise pass over the embeddings (see module doc)."""
        inner: Any = self.loss
        inner.check_features(features, labels)
        embeddings = embed_columns(inner.model, features)
        if len(embeddings) < 2:
            raise InvalidArgumentError(
                f"{type(inner).__name__} needs at least 2 embedding columns (anchor, positive), got {len(embeddings)}"
            )
        width = embeddings[0].shape[-1]
        dims = [self.matryoshka_dims[index] for index in indices]
        for dim in dims:
            if dim > width:
                raise InvalidArgumentError(
                    f"matryoshka dimension {dim} is larger than the model's embedding dimension {width}"
                )
        prefixes = sorted(set(dims))
        queries, docs = embeddings[0], embeddings[1:]
        docs_all = torch.cat(docs, dim=0)
        batch = queries.size(0)
        symmetric = _fused_variant(inner)
        if symmetric is not None:
            # Fold repeated dimensions into one weight per prefix: the fused kernel scores each prefix once.
            prefix_weights = [0.0] * len(prefixes)
            for index in indices:
                prefix_weights[prefixes.index(self.matryoshka_dims[index])] += float(self.matryoshka_weights[index])
            return _PrefixInfoNCE.apply(
                queries, docs_all, tuple(prefixes), tuple(prefix_weights), float(inner.scale), symmetric, self._scratch
            )
        query_to_doc = prefix_cosines(queries, docs_all, prefixes)
        query_to_query = prefix_cosines(queries, queries, prefixes) if "query_to_query" in inner.directions else None
        doc_to_doc = prefix_cosines(docs[0], docs_all, prefixes) if "doc_to_doc" in inner.directions else None
        total: Tensor | float = 0.0
        for index in indices:
            dim, weight = self.matryoshka_dims[index], self.matryoshka_weights[index]
            slot = prefixes.index(dim)
            value = _mnrl_from_cosines(
                inner,
                query_to_doc[slot],
                None if query_to_query is None else query_to_query[slot],
                None if doc_to_doc is None else doc_to_doc[slot],
                batch,
                len(docs),
            )
            total = total + weight * value
        assert isinstance(total, Tensor)
        return total

    def get_config_dict(self) -> dict[str, Any]:
        """The wrapped loss's class name and the Matryoshka settings."""
        return {
            "loss": type(self.loss).__name__,
            "matryoshka_dims": self.matryoshka_dims,
            "matryoshka_weights": self.matryoshka_weights,
            "n_dims_per_step": self.n_dims_per_step,
        }


def prefix_cosines(a: Tensor, b: Tensor, prefixes: Sequence[int]) -> list[Tensor]:
    """``cos(a[:, :p], b[:, :p])`` for every ``p`` in ascending ``prefixes``, from one blockwise pass.

    Block ``k`` holds dims ``prefixes[k-1]:prefixes[k]``; its dot products and squared norms are
    computed once and added onto the previous prefix's, so the matrix products cover each dim once.
    """
    out = []
    dots: Tensor | None = None
    sq_a: Tensor | None = None
    sq_b: Tensor | None = None
    same = a is b
    start = 0
    for end in prefixes:
        block_a, block_b = a[:, start:end], b[:, start:end]
        block_dots = block_a @ block_b.T
        block_sq_a = block_a.square().sum(dim=-1)
        block_sq_b = block_sq_a if same else block_b.square().sum(dim=-1)
        dots = block_dots if dots is None else dots + block_dots
        sq_a = block_sq_a if sq_a is None else sq_a + block_sq_a
        sq_b = block_sq_b if sq_b is None else sq_b + block_sq_b
        inv_a = 1.0 / sq_a.sqrt().clamp_min(_NORM_EPS)
        inv_b = 1.0 / sq_b.sqrt().clamp_min(_NORM_EPS)
        out.append(dots * inv_a[:, None] * inv_b[None, :])
        start = end
    return out


def _prefix_cosine_applies(loss: nn.Module) -> bool:
    """Whether ``loss`` is an MNRL whose scores are cosines of the truncated embeddings, on one process."""
    from embedforge.sentence_transformer.losses.multiple_negatives_ranking import MultipleNegativesRankingLoss
    from embedforge.sentence_transformer.losses.multiple_negatives_symmetric_ranking import (
        MultipleNegativesSymmetricRankingLoss,
    )
    from embedforge.util import cos_sim, dot_score

    if type(loss) not in (MultipleNegativesRankingLoss, MultipleNegativesSymmetricRankingLoss):
        return False
    # Truncated embeddings are unit length, so a dot product between them is their cosine too.
    if loss.similarity_fct not in (cos_sim, dot_score):
        return False
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    return not (loss.gather_across_devices and distributed)


def _mnrl_from_cosines(
    loss: Any, query_to_doc: Tensor, query_to_query: Tensor | None, doc_to_doc: Tensor | None, batch: int, columns: int
) -> Tensor:
    """MultipleNegativesRankingLoss's value given its cosine blocks (single process, so no row offset)."""
    rows = torch.arange(batch, device=query_to_doc.device)
    own_pair = torch.eye(batch, dtype=torch.bool, device=query_to_doc.device)
    blocks: dict[str, Tensor] = {"query_to_doc": query_to_doc}
    if query_to_query is not None:
        blocks["query_to_query"] = query_to_query.masked_fill(own_pair, -torch.inf)
    if "doc_to_query" in loss.directions:
        # sim(query j, positive i) is the transpose of the positives' block of query_to_doc.
        blocks["doc_to_query"] = query_to_doc[:, :batch].T
    if doc_to_doc is not None:
        blocks["doc_to_doc"] = doc_to_doc.masked_fill(own_pair.repeat(1, columns), -torch.inf)
    penalty = loss._hardness_penalty(query_to_doc, own_pair, columns, batch)
    blocks = {key: block * loss.scale for key, block in blocks.items()}
    if penalty is not None:
        blocks["query_to_doc"] = blocks["query_to_doc"] + penalty
    positive = blocks["query_to_doc"][rows, rows]
    if loss.partition_mode == "joint":
        if len(blocks) == 1:
            log_partition = torch.logsumexp(blocks["query_to_doc"], dim=1)
        else:
            log_partition = torch.logsumexp(torch.cat(list(blocks.values()), dim=1), dim=1)
    else:
        log_partition = torch.stack([torch.logsumexp(block, dim=1) for block in blocks.values()]).mean(dim=0)
    return (log_partition - positive).sum() / batch


def _fused_variant(loss: Any) -> bool | None:
    """None unless the fused kernel covers ``loss``'s options; else whether it is the symmetric variant.

    Covered: plain InfoNCE (query->doc only) and the symmetric query->doc + doc->query average
    (``partition_mode="per_direction"``), both without a hardness penalty.
    """
    if loss.hardness_mode is not None and loss.hardness_strength > 0.0:
        return None
    directions = tuple(loss.directions)
    if directions == ("query_to_doc",):
        return False
    if set(directions) == {"query_to_doc", "doc_to_query"} and len(directions) == 2:
        return True if loss.partition_mode == "per_direction" else None
    return None


class _PrefixInfoNCE(torch.autograd.Function):
    """Weighted sum over prefixes ``p`` of InfoNCE on ``cos(q[:, :p], d[:, :p]) * scale``, with a fused backward.

    Forward accumulates the block dot products in place (one ``addmm`` per block) and keeps, per
    prefix, the softmax of the logits and the two reductions the norms' gradient needs. Backward
    walks the prefixes from the longest down, adding each prefix's gradient with respect to the dot
    products onto a running sum, so every block's two gradient matrix products run once, on the sum
    over all prefixes that contain the block. The norms' share of the gradient is a per-row multiple
    of the row itself, accumulated the same way.
    """

    @staticmethod
    def forward(
        ctx: Any,
        queries: Tensor,
        docs: Tensor,
        prefixes: tuple[int, ...],
        weights: tuple[float, ...],
        scale: float,
        symmetric: bool,
        pool: BufferPool,
    ) -> Tensor:
        batch = queries.size(0)
        keep = any(ctx.needs_input_grad[:2])
        dots: Any = None
        saved: list[Any] = []
        total = queries.new_zeros(())
        # Every prefix's squared norms at once: squared entries times a 0/1 matrix that sums the
        # dims of each prefix (one small product instead of two reductions per prefix).
        prefix_sums = _prefix_indicator(prefixes, queries)
        prefix_sq_q, prefix_sq_d = queries.square() @ prefix_sums, docs.square() @ prefix_sums
        start = 0
        for slot, (end, weight) in enumerate(zip(prefixes, weights)):
            block_q, block_d = queries[:, start:end], docs[:, start:end]
            if dots is None:
                dots = torch.mm(block_q, block_d.T, out=pool.take((batch, docs.size(0)), queries))
            else:
                dots.addmm_(block_q, block_d.T)
            sq_q, sq_d = prefix_sq_q[:, slot], prefix_sq_d[:, slot]
            norm_q, norm_d = sq_q.sqrt(), sq_d.sqrt()
            inv_q = norm_q.clamp_min(_NORM_EPS).reciprocal()
            inv_d = norm_d.clamp_min(_NORM_EPS).reciprocal()
            row_terms, stats = _prefix_softmax(dots, inv_q, inv_d, scale, batch, symmetric, keep, pool)
            total = total - weight * row_terms.sum() / batch
            if stats is not None:
                saved.append((*stats, inv_q, inv_d, norm_q >= _NORM_EPS, norm_d >= _NORM_EPS))
            start = end
        pool.give(dots)
        ctx.prefixes, ctx.weights, ctx.scale = prefixes, weights, scale
        ctx.pool = pool
        ctx.saved = saved
        ctx.save_for_backward(queries, docs)
        return total

    @staticmethod
    @once_differentiable  # the backward works in place; a second-order graph through it would be wrong
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, ...]:
        queries, docs = ctx.saved_tensors
        batch = queries.size(0)
        want_q, want_d = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        # Per-block gradients, longest prefix's block first; concatenated (in dim order) at the end.
        # A matrix product into a fresh block is faster than accumulating into a strided column slice.
        parts_q: list[Tensor] = []
        parts_d: list[Tensor] = []
        grad_dots: Tensor | None = None  # running sum of d loss / d (block dot products)
        coef_q: Tensor | None = None  # running per-row multiples for the norms' gradient
        coef_d: Tensor | None = None
        bounds = [0, *ctx.prefixes]
        for slot in range(len(ctx.prefixes) - 1, -1, -1):
            probs, row_sum, col_sum, inv_q, inv_d, live_q, live_d = ctx.saved[slot]
            ctx.saved[slot] = None  # free this prefix's probabilities once folded in
            k = grad_output * (ctx.weights[slot] / batch)
            # logits scale with 1/||q|| and 1/||d||; clamped (near-zero) norms carry no gradient.
            step_q = -(k * row_sum) * inv_q.square() * live_q
            step_d = -(k * col_sum) * inv_d.square() * live_d
            coef_q = step_q if coef_q is None else coef_q + step_q
            coef_d = step_d if coef_d is None else coef_d + step_d
            # d loss / d dots = k * scale * (probs - onehot) / (||q|| ||d||).
            factor_q = (k * ctx.scale) * inv_q
            first = grad_dots is None
            if grad_dots is None:
                grad_dots = probs  # the longest prefix's probabilities become the running sum in place
            if _native_applies(grad_dots, probs, factor_q, inv_d):
                _core.accumulate_scaled_probs(
                    grad_dots.numpy(), factor_q.numpy(), inv_d.numpy(), None if first else probs.numpy()
                )
            else:
                for begin, stop in _row_chunks(grad_dots):
                    outer = torch.outer(factor_q[begin:stop], inv_d)
                    if first:
                        grad_dots[begin:stop].mul_(outer)
                    else:
                        grad_dots[begin:stop].addcmul_(probs[begin:stop], outer)
                grad_dots[:, :batch].diagonal().sub_(factor_q * inv_d[:batch])
            if not first:
                ctx.pool.give(probs)
            del probs
            start, end = bounds[slot], bounds[slot + 1]
            if want_q:
                parts_q.append((grad_dots @ docs[:, start:end]).addcmul_(queries[:, start:end], coef_q[:, None]))
            if want_d:
                parts_d.append((grad_dots.T @ queries[:, start:end]).addcmul_(docs[:, start:end], coef_d[:, None]))
        ctx.saved = None
        if grad_dots is not None:
            ctx.pool.give(grad_dots)
        return (
            _join_blocks(parts_q, queries) if want_q else None,
            _join_blocks(parts_d, docs) if want_d else None,
            None,
            None,
            None,
            None,
            None,
        )


def _prefix_indicator(prefixes: Sequence[int], like: Tensor) -> Tensor:
    """A ``width x len(prefixes)`` 0/1 matrix whose column ``k`` sums the first ``prefixes[k]`` dims."""
    dims = torch.arange(like.shape[1], device=like.device)[:, None]
    return (dims < torch.tensor(prefixes, device=like.device)[None, :]).to(like.dtype)


def _join_blocks(parts: list[Tensor], like: Tensor) -> Tensor:
    """Per-block gradients (longest prefix's block first) as one tensor shaped like ``like``; zeros past the prefixes."""
    blocks = parts[::-1]
    covered = sum(block.shape[1] for block in blocks)
    if covered < like.shape[1]:
        blocks.append(like.new_zeros(like.shape[0], like.shape[1] - covered))
    return torch.cat(blocks, dim=1)


#: Elements per row chunk of the elementwise passes: about a megabyte of float32, so a chunk's
#: several passes (scale, log-softmax, exp, products, sums) run in cache rather than from memory.
_CHUNK_ELEMENTS = 1 << 18


def _row_chunks(matrix: Tensor) -> list[tuple[int, int]]:
    rows, cols = matrix.shape
    step = max(8, _CHUNK_ELEMENTS // max(cols, 1))
    return [(begin, min(begin + step, rows)) for begin in range(0, rows, step)]


def _native_applies(*tensors: Tensor) -> bool:
    """Whether the Rust row passes can work on ``tensors`` in place: contiguous float32 on the CPU.

    They do the same arithmetic as the torch chain below them, as one parallel pass per matrix
    instead of about ten (see ``embedforge._core.softmax_rows``), which matters most on a shared CPU.
    """
    return all(
        t.device.type == "cpu" and t.dtype == torch.float32 and t.is_contiguous() and not t.requires_grad
        for t in tensors
    )


def _prefix_softmax(
    dots: Tensor, inv_q: Tensor, inv_d: Tensor, scale: float, batch: int, symmetric: bool, keep: bool, pool: BufferPool
) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor] | None]:
    """One prefix's per-row log-probabilities of the positives, and (with ``keep``) what backward needs.

    The logits are ``dots * scale / (||q|| ||d||)``. Backward needs the softmax ``probs`` (for the
    symmetric variant, the average of the row and the column softmax) and, per query row and per
    document column, ``sum (probs - onehot) * logits``: how the loss moves when a norm scales all of a
    row's or a column's logits. The probability matrices kept for backward come from ``pool``.
    """
    rows, cols = dots.shape
    scaled_q = inv_q * scale
    if symmetric:
        # The column softmax spans every row, so this variant works on the whole matrix at once.
        logits = torch.outer(scaled_q, inv_d).mul_(dots)
        probs = torch.log_softmax(logits, dim=1)
        col_log = torch.log_softmax(logits[:, :batch], dim=0)
        row_terms = 0.5 * (probs[:, :batch].diagonal() + col_log.diagonal())
        if not keep:
            return row_terms, None
        probs.exp_().mul_(0.5)
        probs[:, :batch].add_(col_log.exp_(), alpha=0.5)
        del col_log
        diagonal = logits[:, :batch].diagonal().clone()
        logits.mul_(probs)
        row_sum = logits.sum(dim=1) - diagonal
        col_sum = logits.sum(dim=0)
        col_sum[:batch] -= diagonal
        return row_terms, (probs, row_sum, col_sum)

    if _native_applies(dots, scaled_q, inv_d):
        native_probs = pool.take(tuple(dots.shape), dots) if keep else None
        log_prob, native_row_sum, native_col_sum = _core.softmax_rows(
            dots.numpy(), scaled_q.numpy(), inv_d.numpy(), None if native_probs is None else native_probs.numpy()
        )
        native_terms = torch.from_numpy(log_prob)
        if native_probs is None:
            return native_terms, None
        return native_terms, (native_probs, torch.from_numpy(native_row_sum), torch.from_numpy(native_col_sum))

    row_terms = dots.new_empty(rows)
    chunked_probs = pool.take(tuple(dots.shape), dots) if keep else None
    row_sum = dots.new_empty(rows)
    col_sum = dots.new_zeros(cols)
    for begin, stop in _row_chunks(dots):
        logits = torch.outer(scaled_q[begin:stop], inv_d).mul_(dots[begin:stop])
        log_probs = torch.log_softmax(logits, dim=1)
        # Row i's positive is column i (the first document column holds the positives).
        row_terms[begin:stop] = log_probs[:, begin:stop].diagonal()
        if chunked_probs is None:
            continue
        # exp in place on the cache-resident temporary, then one copy (exp with out= is much slower).
        chunk = chunked_probs[begin:stop].copy_(log_probs.exp_())
        diagonal = logits[:, begin:stop].diagonal().clone()
        logits.mul_(chunk)
        row_sum[begin:stop] = logits.sum(dim=1) - diagonal
        col_sum.add_(logits.sum(dim=0))
        col_sum[begin:stop] -= diagonal
    if chunked_probs is None:
        return row_terms, None
    return row_terms, (chunked_probs, row_sum, col_sum)
