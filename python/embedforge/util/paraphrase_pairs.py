"""Turns every text's nearest neighbours into paraphrase_mining's list of pairs, with sentence-transformers' rules.

sentence-transformers walks the neighbours row by row (row 0's best first, then row 1's, ...)
through a min-heap capped at ``max_pairs``: an unordered pair is kept once, with the score of its
first occurrence; when the heap is full the smallest ``(score, i, j)`` is evicted and from then on
nothing scoring at most the evicted score gets in. Running that per neighbour in Python dominated
the run time, so :class:`VectorisedPairCollector` computes the same outcome with array operations.

Why a closed form exists, when the score function is symmetric (``score(a, b) == score(b, a)``
bit for bit, as the Rust engine's scores are): a pair's second occurrence then never changes
anything (it is either still queued, or was evicted or refused at a floor >= its score), so the
walk only sees each pair's first occurrence (minus -inf scores, which never beat the initial
floor of -inf). With at most ``max_pairs`` of them nothing is evicted: all are kept. Else let
``s*`` be the ``max_pairs``-th best score among those pairs. The floor never passes ``s*``, so every pair scoring above ``s*`` is kept; pairs
below ``s*`` are all evicted or refused. Pairs scoring exactly ``s*`` are the only ones whose fate
depends on the walk: the first time a pair scoring ``s*`` is evicted is when the
``(max_pairs + 1)``-th pair scoring ``>= s*`` arrives; the floor becomes ``s*`` and refuses every
later pair scoring ``s*``, and each later better pair evicts the tied pair with the smallest
``(i, j)``. So the kept tied pairs are the ones with the largest ``(i, j)`` among the tied pairs in
the first ``max_pairs + 1`` pairs scoring ``>= s*``.

Streams this argument does not cover (a NaN score, or a pair whose two directions scored
differently) go through :func:`collect_pairs_sequentially`, the heap walk itself.
"""

from __future__ import annotations

import gc
import heapq
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import numpy as np

# One query chunk of neighbours: (first row, ids [rows, k], scores [rows, k]), best first per row.
NeighbourChunk = tuple[int, np.ndarray, np.ndarray]

# Candidates buffered before they are merged into the kept pairs: merging sorts the kept pairs,
# so merging rarely (at least this many, and at least as many as are kept) keeps it O(n log n).
_MIN_MERGE = 1 << 18


class VectorisedPairCollector:
    """Collects neighbour chunks (rows in order) and returns sentence-transformers' pairs, or None if it cannot."""

    def __init__(self, rows: int, top_k: int, max_pairs: int, min_merge: int | None = None) -> None:
        """Collect pairs among ``rows`` texts; ``min_merge`` candidates at least are buffered before a merge.

        Pairs that can no longer make the ``max_pairs`` cut are forgotten as the rows stream by, so
        memory follows ``max_pairs``, not ``rows * top_k``. That relies on both directions of a pair
        scoring the same: a forgotten first direction could hide a differently scored second one.
        Where both directions are still known they are compared, and a difference (or a NaN) makes
        :meth:`result` return None.
        """
        self._rows = rows
        self._top_k = top_k
        self._max_pairs = max_pairs
        self._min_merge = _MIN_MERGE if min_merge is None else min_merge
        self._cut = -np.inf  # pairs scoring below this can no longer be kept
        self._needs_sequential = False
        # Every first occurrence seen (that can still be kept), sorted by pair key i * rows + j.
        self._keys = np.empty(0, dtype=np.int64)
        self._scores = np.empty(0, dtype=np.float32)  # widened if a chunk brings float64
        self._positions = np.empty(0, dtype=np.int64)  # place in the row-by-row walk
        self._pending: list[tuple[np.ndarray, ...]] = []
        self._pending_count = 0

    @property
    def gave_up(self) -> bool:
        """Whether the stream turned out to need the heap walk (then :meth:`result` is None)."""
        return self._needs_sequential

    def add(self, start: int, ids: np.ndarray, scores: np.ndarray) -> None:
        """Take the neighbours of rows ``start .. start + len(ids)``, each row best first."""
        if self._needs_sequential or len(ids) == 0:
            return
        width = ids.shape[1]
        not_self = ids != np.arange(start, start + len(ids))[:, None]
        # A row lists its first top_k neighbours other than itself (the search fetched top_k + 1).
        listed = not_self & (np.cumsum(not_self, axis=1) <= self._top_k)
        flat = np.flatnonzero(listed)  # row-major: the order of the walk
        s = scores.ravel()[flat]
        if np.isnan(s).any():
            # NaN compares false with everything, which the heap walk handles in its own way.
            self._needs_sequential = True
            return
        # -inf never beats the walk's initial floor of -inf; nothing below the cut can be kept.
        useful = (s > -np.inf) & (s >= self._cut)
        flat, s = flat[useful], s[useful]
        i = flat // width + start
        j = ids.ravel()[flat].astype(np.int64, copy=False)
        self._pending.append((i, j, s, flat + start * width))
        self._pending_count += len(flat)
        if self._pending_count >= max(self._min_merge, len(self._keys)):
            self._merge_pending()

    def result(self) -> list[list[float | int]] | None:
        """The pairs as ``[score, i, j]``, best first (ties by ``(i, j)``), or None if the heap walk is needed."""
        self._merge_pending()
        if self._needs_sequential:
            return None
        kept = self._kept_indices()
        # kept is in key order, so a stable sort on the score alone puts ties in (i, j) order.
        kept = kept[np.argsort(-self._scores[kept], kind="stable")]
        first, second = np.divmod(self._keys[kept], self._rows)
        with _garbage_collector_paused():
            return list(map(list, zip(self._scores[kept].tolist(), first.tolist(), second.tolist())))

    def _merge_pending(self) -> None:
        """Add the buffered candidates' first occurrences to the kept pairs, then apply the cut."""
        if not self._pending or self._needs_sequential:
            self._pending, self._pending_count = [], 0
            return
        i, j, s, positions = (np.concatenate(parts) for parts in zip(*self._pending))
        self._pending, self._pending_count = [], 0
        useful = s >= self._cut
        i, j, s, positions = i[useful], j[useful], s[useful], positions[useful]

        # Row i meets pair (i, j), i < j, before row j does: such candidates are always first
        # occurrences. A candidate j < i is a first occurrence only if row j did not list i.
        forward = j > i
        keys = np.where(forward, i * self._rows + j, j * self._rows + i)
        # Sorted keys make the lookups below cache-friendly and the final merge a merge of runs.
        forward_keys, forward_scores, forward_positions = _sorted_by_key(keys, s, positions, forward)
        backward_keys, backward_scores, backward_positions = _sorted_by_key(keys, s, positions, ~forward)

        seen = np.zeros(len(backward_keys), dtype=bool)
        for known_keys, known_scores in ((self._keys, self._scores), (forward_keys, forward_scores)):
            found, at = _lookup(known_keys, backward_keys)
            if (known_scores[at[found]] != backward_scores[found]).any():
                self._needs_sequential = True  # the two directions of a pair scored differently
                return
            seen |= found

        fresh = ~seen
        all_keys = np.concatenate([self._keys, forward_keys, backward_keys[fresh]])
        # Three sorted runs: a stable (merge) sort just merges them.
        order = np.argsort(all_keys, kind="stable")
        self._keys = all_keys[order]
        self._scores = np.concatenate([self._scores, forward_scores, backward_scores[fresh]])[order]
        self._positions = np.concatenate([self._positions, forward_positions, backward_positions[fresh]])[order]
        if len(self._keys) > self._max_pairs:
            self._cut = _nth_best(self._scores, self._max_pairs)
            keep = self._scores >= self._cut
            self._keys, self._scores, self._positions = self._keys[keep], self._scores[keep], self._positions[keep]

    def _kept_indices(self) -> np.ndarray:
        """Indices (ascending, so in key order) of the first occurrences the heap walk ends with."""
        count, max_pairs = len(self._keys), self._max_pairs
        if count <= max_pairs:
            return np.arange(count)
        boundary = _nth_best(self._scores, max_pairs)
        kept = self._scores > boundary
        # The first max_pairs + 1 pairs (in walk order) scoring at least the boundary decide
        # which tied pairs stay: the largest (i, j) among the tied ones in that prefix.
        contenders = np.flatnonzero(self._scores >= boundary)
        if len(contenders) > max_pairs + 1:
            # Positions are distinct, so exactly max_pairs + 1 contenders are at or before this one.
            last = np.partition(self._positions[contenders], max_pairs)[max_pairs]
            contenders = contenders[self._positions[contenders] <= last]
        tied = contenders[self._scores[contenders] == boundary]  # ascending, so in (i, j) order
        kept[tied[len(tied) - (max_pairs - int(kept.sum())) :]] = True
        return np.flatnonzero(kept)


@contextmanager
def _garbage_collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small lists.

    Each new list counts towards the collector's next pass, and in a process holding torch's
    hundreds of thousands of objects those passes made building 500,000 ``[score, i, j]`` lists
    take ~1 s instead of ~0.15 s. Lists of numbers cannot form reference cycles, so pausing loses
    nothing.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _sorted_by_key(
    keys: np.ndarray, scores: np.ndarray, positions: np.ndarray, selected: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``selected`` candidates' keys, scores and positions, ordered by key."""
    keys, scores, positions = keys[selected], scores[selected], positions[selected]
    order = np.argsort(keys, kind="stable")
    return keys[order], scores[order], positions[order]


def _lookup(sorted_keys: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``keys``: whether it is in ``sorted_keys``, and where (clipped to a valid index)."""
    if len(sorted_keys) == 0:
        return np.zeros(len(keys), dtype=bool), np.zeros(len(keys), dtype=np.int64)
    at = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return sorted_keys[at] == keys, at


def _nth_best(scores: np.ndarray, n: int) -> float:
    """The ``n``-th highest of ``scores`` (1-based; ``len(scores) >= n``)."""
    return float(np.partition(scores, len(scores) - n)[len(scores) - n])


def collect_pairs_sequentially(chunks: Iterable[NeighbourChunk], top_k: int, max_pairs: int) -> list[list[float | int]]:
    """The heap walk itself, neighbour by neighbour, for streams the closed form does not cover."""
    # A min-heap of (score, i, j), i < j: its root is the weakest pair kept. The eviction rules
    # (a candidate no better than the last evicted score is skipped; an evicted pair may come
    # back with its other direction's score) follow sentence-transformers so results match.
    heap: list[tuple[float, int, int]] = []
    queued: set[tuple[int, int]] = set()
    floor = float("-inf")
    with _garbage_collector_paused():
        for start, ids, scores in chunks:
            for offset, (id_row, score_row) in enumerate(zip(ids.tolist(), scores.tolist())):
                i = start + offset
                neighbours = [(j, score) for j, score in zip(id_row, score_row) if j != i][:top_k]
                for j, score in neighbours:
                    if score <= floor:
                        continue
                    pair = (i, j) if i < j else (j, i)
                    if pair in queued:
                        continue
                    queued.add(pair)
                    if len(heap) < max_pairs:
                        heapq.heappush(heap, (score, *pair))
                    else:
                        evicted = heapq.heappushpop(heap, (score, *pair))
                        queued.discard(evicted[1:])
                        floor = evicted[0]
        return sorted(([score, i, j] for score, i, j in heap), key=lambda triple: triple[0], reverse=True)


__all__ = ["NeighbourChunk", "VectorisedPairCollector", "collect_pairs_sequentially"]
