"""Fast community detection from ``sentence_transformers.util``: clusters of near-duplicate embeddings.

A row is a community centre when at least ``min_community_size`` rows (itself included) reach
cosine similarity ``threshold``; its community is all of those rows, best first. Communities are
then taken largest first, each dropping rows already claimed, as sentence-transformers does. The
similarities come from the Rust top-k engine, so no ``[batch, n]`` score matrix is built in
Python; rows tied on score are listed lowest index first.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.autonotebook import tqdm

from ..exceptions import InvalidArgumentError
from .tensor import EmbeddingsLike, _convert_to_tensor, normalize_embeddings

# Corpus rows the Rust engine scores per block.
_RUST_BLOCK = 4096


def community_detection(
    embeddings: EmbeddingsLike,
    threshold: float = 0.75,
    min_community_size: int = 10,
    batch_size: int = 1024,
    show_progress_bar: bool = False,
) -> list[list[int]]:
    """Communities of rows whose cosine similarity to a centre is at least ``threshold``, largest first.

    Each community lists its centre first; only communities of at least ``min_community_size``
    rows are returned, and no row belongs to two communities.
    """
    for name, value in (("min_community_size", min_community_size), ("batch_size", batch_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InvalidArgumentError(f"invalid value for `{name}`: got {value!r}, expected a positive integer")
    if len(embeddings) == 0:
        return []
    tensor = _convert_to_tensor(embeddings)
    if tensor.dim() == 1:
        tensor = tensor.unsqueeze(0)
    if tensor.dim() != 2:
        raise InvalidArgumentError(
            f"invalid value for `embeddings`: got shape {tuple(tensor.shape)}, expected a 2-D [texts, dim] matrix"
        )
    n = len(tensor)
    if n < min_community_size:
        return []

    from .. import _core  # imported here so `embedforge.util` stays free of the extension

    # Normalised with torch as sentence-transformers does, then scored as plain dot products.
    unit = normalize_embeddings(tensor.detach().to("cpu", torch.float32)).numpy()
    # Scores are float32, so the threshold is compared as float32 too (0.9 is 0.89999998 there).
    cutoff = np.float32(threshold)
    # How many neighbours to fetch for a centre; doubled while a centre's community does not fit.
    fetch = min(max(2 * min_community_size, 50), n)

    candidates: list[tuple[int, np.ndarray]] = []
    for start in tqdm(range(0, n, batch_size), desc="Finding clusters", disable=not show_progress_bar):
        batch = unit[start : start + batch_size]
        # One search serves both questions: is the row a centre (its min_community_size-th best
        # reaches the threshold; fetch is never smaller), and who are its members.
        ids, scores = _core.top_k(batch, unit, fetch, "dot", _RUST_BLOCK)
        centres = np.flatnonzero(scores[:, min_community_size - 1] >= cutoff)
        if len(centres) == 0:
            continue
        rows = batch[centres]
        ids, scores = ids[centres], scores[centres]
        communities: dict[int, np.ndarray] = {}
        pending = np.arange(len(centres))
        while True:
            complete = (scores[pending, -1] < cutoff) | (fetch >= n)
            for row in pending[complete]:
                communities[int(row)] = ids[row][scores[row] >= cutoff]
            pending = pending[~complete]
            if len(pending) == 0:
                break
            # Some centre has more members than were fetched: fetch more for those rows only.
            fetch = min(2 * fetch, n)
            ids_more, scores_more = _core.top_k(rows[pending], unit, fetch, "dot", _RUST_BLOCK)
            ids = _replace_rows(ids, pending, ids_more)
            scores = _replace_rows(scores, pending, scores_more)
        for row, batch_row in enumerate(centres.tolist()):
            candidates.append((start + batch_row, communities[row]))

    # Largest first (stable: equal sizes keep centre order), then drop rows already claimed.
    candidates.sort(key=lambda item: len(item[1]), reverse=True)
    claimed = np.zeros(n, dtype=bool)
    communities_out: list[list[int]] = []
    for centre, members in candidates:
        if claimed[centre]:
            continue
        free = members[~claimed[members]]
        if len(free) >= min_community_size:
            community = [centre, *free[free != centre].tolist()]
            communities_out.append(community)
            claimed[community] = True
    return sorted(communities_out, key=len, reverse=True)


def _replace_rows(old: np.ndarray, rows: np.ndarray, new: np.ndarray) -> np.ndarray:
    """``old`` widened to ``new``'s width (with a filler past the old columns) and ``rows`` replaced by ``new``."""
    filler = -np.inf if old.dtype.kind == "f" else -1
    out = np.full((len(old), new.shape[1]), filler, dtype=old.dtype)
    out[:, : old.shape[1]] = old
    out[rows] = new
    return out


__all__ = ["community_detection"]
