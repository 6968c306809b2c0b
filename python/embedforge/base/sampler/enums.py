"""The string identifiers of the built-in batch samplers, as ``training_args`` accepts them."""

from __future__ import annotations

from transformers.utils import ExplicitEnum


class BatchSamplers(ExplicitEnum):
    """How one dataset's rows are grouped into batches.

    - ``BATCH_SAMPLER`` (default): :class:`~embedforge.base.sampler.DefaultBatchSampler` over a random order.
    - ``NO_DUPLICATES``: :class:`~embedforge.base.sampler.NoDuplicatesBatchSampler`; no text occurs twice in a
      batch, which in-batch-negative losses (MultipleNegativesRankingLoss and friends) want.
    - ``NO_DUPLICATES_HASHED``: the same sampler with ``precompute_hashes=True``. embedforge always
      reads the columns once and caches per-row value ids, so both give the same batches.
    - ``GROUP_BY_LABEL``: :class:`~embedforge.base.sampler.GroupByLabelBatchSampler`; every batch holds at
      least two labels with at least two rows each, as the batch triplet losses need.

    A :class:`~embedforge.base.sampler.DefaultBatchSampler` subclass, or a callable taking ``dataset``,
    ``batch_size``, ``drop_last``, ``valid_label_columns``, ``generator`` and ``seed``, may be given
    to the training arguments instead.
    """

    BATCH_SAMPLER = "batch_sampler"
    NO_DUPLICATES = "no_duplicates"
    NO_DUPLICATES_HASHED = "no_duplicates_hashed"
    GROUP_BY_LABEL = "group_by_label"


class MultiDatasetBatchSamplers(ExplicitEnum):
    """In which order batches of several datasets (a ``DatasetDict``) are drawn.

    - ``ROUND_ROBIN``: :class:`~embedforge.base.sampler.RoundRobinBatchSampler`, one batch of each dataset in
      turn until the smallest runs out.
    - ``PROPORTIONAL`` (default): :class:`~embedforge.base.sampler.ProportionalBatchSampler`, every batch of
      every dataset, in a random order, so larger datasets come up more often.
    """

    ROUND_ROBIN = "round_robin"
    PROPORTIONAL = "proportional"


__all__ = ["BatchSamplers", "MultiDatasetBatchSamplers"]
