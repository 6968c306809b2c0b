"""The error raised when a model or module is given a modality it cannot encode, worded for the case."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn

from embedforge.base.modality.detection import format_modality, infer_modality
from embedforge.base.modality_types import Modality

__all__ = ["raise_unsupported_modality_error"]


def _sample_modalities(inputs: Sequence[Any], supported_modalities: Sequence[Modality]) -> set:
    """Each sample's own modality; empty when some sample cannot be classified alone (a media pair)."""
    try:
        return {infer_modality(sample, supported_modalities=supported_modalities) for sample in inputs}
    except (ValueError, TypeError):
        return set()


def raise_unsupported_modality_error(
    inputs: Sequence[Any], modality: Modality, supported_modalities: Sequence[Modality], source: str
) -> NoReturn:
    """Raise a ``ValueError`` saying why ``modality`` cannot be encoded and what can.

    A batch modality of ``"message"`` means either chat inputs or a mix of modalities, so the samples
    are looked at one by one to tell the user which.

    Args:
        inputs: The rejected batch.
        modality: Its inferred batch modality.
        supported_modalities: What the rejecting component accepts.
        source: The rejecting component, as the message names it (e.g. ``"Transformer module"``).
    """
    supported = ", ".join(format_modality(m) for m in supported_modalities)
    if modality == "message":
        per_sample = _sample_modalities(inputs, supported_modalities)
        if per_sample == {"message"}:
            raise ValueError(
                f"This {source} does not support chat-style 'message' inputs (dicts or lists of dicts with 'role' "
                f"and 'content'). Supported modalities: {supported}."
            )
        if "message" in per_sample:
            raise ValueError(
                f"This {source} does not support chat-style 'message' inputs (dicts or lists of dicts with 'role' "
                f"and 'content'), which this batch mixes with other modalities. Supported modalities: {supported}."
            )
        if per_sample:
            present = ", ".join(sorted(format_modality(m) for m in per_sample))
            parts = {part for m in per_sample for part in (m if isinstance(m, tuple) else (m,))}
            missing = sorted(part for part in parts if part not in supported_modalities)
            if missing:
                raise ValueError(
                    f"This batch mixes multiple modalities ({present}), but this {source} does not support "
                    f"{', '.join(missing)}. Supported modalities: {supported}."
                )
            raise ValueError(
                f"This batch mixes multiple modalities ({present}), which this {source} cannot encode in a single "
                "batch. Encode each modality separately (one call per modality)."
            )
    if isinstance(modality, tuple) and all(part in supported_modalities for part in modality):
        raise ValueError(
            f"This {source} supports {' and '.join(modality)} individually, but cannot combine them in a single "
            "input. Encode each modality separately (one call per modality)."
        )
    raise ValueError(
        f"Modality '{format_modality(modality)}' is not supported by this {source}. Supported modalities: {supported}."
    )
