"""ColBERT-style query expansion: pad queries with a mask token the multi-vector scorer also reads.

Classic ColBERT checkpoints pad every query to a fixed width and turn the padding into ``[MASK]``
tokens; their embeddings take part in MaxSim scoring. :class:`~embedforge.base.modules.Transformer`
applies it to ``task="query"`` batches when its ``query_expansion`` option is set.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypedDict

from typing_extensions import NotRequired

__all__ = ["QUERY_EXPANSION_KEYS", "QUERY_EXPANSION_STRATEGIES", "QueryExpansionConfig", "normalize_query_expansion"]


class QueryExpansionConfig(TypedDict):
    """The ``query_expansion`` option.

    * ``strategy``: ``"fixed"`` makes every query exactly ``length`` tokens (short ones expanded, long
      ones truncated); ``"min"`` only expands short queries up to ``length`` and leaves long ones whole.
    * ``attend``: whether the encoder attends to the expansion positions (default False, as ColBERT).
    * ``token``: the expansion token (default: the tokenizer's mask token, else its end-of-sequence token).
    * ``length``: the query width the expansion pads to (required; ColBERT uses 32).
    """

    strategy: Literal["fixed", "min"]
    attend: NotRequired[bool]
    token: NotRequired[str | None]
    length: NotRequired[int]


QUERY_EXPANSION_KEYS = frozenset({"strategy", "attend", "token", "length"})
QUERY_EXPANSION_STRATEGIES = ("fixed", "min")


def normalize_query_expansion(value: Mapping[str, Any] | QueryExpansionConfig | None) -> QueryExpansionConfig | None:
    """``value`` checked and completed with its defaults; None stays None (no expansion).

    Raises:
        ValueError: On an unknown key, an unknown strategy, a non-bool ``attend`` or a missing or
            non-positive ``length``.
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(f"query_expansion must be a dict or None, got {type(value).__name__}")
    unknown = set(value) - QUERY_EXPANSION_KEYS
    if unknown:
        raise ValueError(
            f"query_expansion has unknown keys {sorted(unknown)!r}. Valid keys: {sorted(QUERY_EXPANSION_KEYS)!r}."
        )
    strategy = value.get("strategy")
    if strategy not in QUERY_EXPANSION_STRATEGIES:
        raise ValueError(
            f"query_expansion['strategy'] must be one of {QUERY_EXPANSION_STRATEGIES!r}, got {strategy!r}."
        )
    attend = value.get("attend", False)
    if not isinstance(attend, bool):
        raise ValueError(f"query_expansion['attend'] must be a bool, got {attend!r}.")
    length = value.get("length")
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ValueError(
            f"query_expansion strategy={strategy!r} requires 'length': a positive int, the query width after "
            f"expansion (classic ColBERT uses 32); got {length!r}."
        )
    return {"strategy": strategy, "attend": attend, "token": value.get("token"), "length": length}
