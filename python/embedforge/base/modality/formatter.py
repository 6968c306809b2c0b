"""InputFormatter: group a batch of raw inputs by modality, and turn inputs into chat messages.

A batch of one modality goes to the processor under that modality's key. A batch that mixes
modalities, or holds pairs with media in them, becomes chat messages, one conversation per sample,
which a chat-template processor can take. Chat templates disagree on the shape of a message's
content: *structured* templates want a list of typed items (``[{"type": "text", "text": ...}]``),
*flat* ones the bare value. The formatter writes the shape its processor wants.
"""

from __future__ import annotations

import copy
import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Literal, cast

from embedforge.base.modality.detection import infer_modality, is_non_text_pair
from embedforge.base.modality.media_unwrap import (
    as_sequence,
    is_video_frames,
    reconcile_video_metadata,
    unwrap_audio,
    unwrap_video,
)
from embedforge.base.modality_types import MULTIMODAL_DICT_KEYS, MessageFormat, Modality

__all__ = ["KNOWN_MODEL_TYPES_MESSAGE_FORMATS", "PAIR_ROLES", "PAIR_ROLE_PROBES", "InputFormatter"]

logger = logging.getLogger(__name__)

# Model types whose chat templates want flat content although the template heuristic says otherwise.
KNOWN_MODEL_TYPES_MESSAGE_FORMATS: dict[str, Literal["structured", "flat"]] = {
    "apertus": "flat",
    "deepseek_v3": "flat",
    "gpt_oss": "flat",
    "seed_oss": "flat",
}

# The roles the two halves of a pair take in chat messages.
PAIR_ROLES = ("query", "document")
# A baseline pair, then one pair per role that changes only that role's text. Each changed text differs
# from the baseline in its first letter and its length, so even a template that truncates, slices or
# re-cases what it renders still shows the change.
PAIR_ROLE_PROBES = (("north", "south"), ("eastward", "south"), ("north", "westerly"))

# Fragments that only appear in chat templates iterating over typed content items.
_STRUCTURED_TEMPLATE_MARKERS = ("content[0]", ".type", "'type'", '"type"', "item.type", "message.content[")


class InputFormatter:
    """Parses input batches by modality and converts inputs to the chat-message shape a processor wants.

    Args:
        model_type: The model's ``config.model_type``, used to look up known message formats.
        message_format: ``"structured"`` (content is a list of typed items), ``"flat"`` (content is
            the value itself) or ``"auto"`` (read it off ``processor``'s chat template; structured
            without a processor).
        processor: The processor or tokenizer whose chat template renders the messages.
        supported_modalities: The model's modalities, if known: a string naming media the model
            cannot read is then treated as text.
    """

    def __init__(
        self,
        model_type: str,
        message_format: MessageFormat = "auto",
        processor: Any = None,
        supported_modalities: list[Modality] | None = None,
    ) -> None:
        if message_format not in ("auto", "structured", "flat"):
            raise ValueError(f"message_format must be 'auto', 'structured' or 'flat', got {message_format!r}")
        self.model_type = model_type
        self.processor = processor
        self.supported_modalities = supported_modalities
        # (snapshot of the template and render kwargs, verdict) of the last pair-role probe.
        self._pair_role_probe: tuple[Any, str | None] | None = None
        if message_format == "auto":
            self.message_format = self._infer_format(processor) if processor else "structured"
        else:
            self.message_format = message_format

    def _infer_format(self, processor: Any) -> Literal["structured", "flat"]:
        """The message format ``processor``'s chat template expects (structured when it cannot tell)."""
        if self.model_type in KNOWN_MODEL_TYPES_MESSAGE_FORMATS:
            return KNOWN_MODEL_TYPES_MESSAGE_FORMATS[self.model_type]
        template = getattr(processor, "chat_template", None)
        if not isinstance(template, str) or not template:
            return "structured"
        if any(marker in template for marker in _STRUCTURED_TEMPLATE_MARKERS):
            return "structured"
        return "flat"

    # -- parsing a batch --------------------------------------------------------------------------

    def _typed_value(self, item: Any, extra_modality_kwargs: dict[str, dict[str, Any]]) -> tuple[Modality, Any]:
        """One sample's modality and its value, unwrapped the way the processor takes it."""
        modality = infer_modality(item, supported_modalities=self.supported_modalities)
        if isinstance(item, dict) and isinstance(modality, str) and item.keys() == {modality}:
            # {"image": pil} is the same input as pil.
            item = item[modality]
        if modality == "audio":
            return modality, unwrap_audio(item, extra_modality_kwargs)
        if modality == "video":
            return modality, unwrap_video(item, extra_modality_kwargs)
        if isinstance(modality, tuple):
            value = dict(item)
            if "audio" in value:
                value["audio"] = unwrap_audio(value["audio"], extra_modality_kwargs)
            if "video" in value:
                value["video"] = unwrap_video(value["video"], extra_modality_kwargs)
            return modality, value
        if modality == "message" and isinstance(item, dict):
            return modality, [item]
        return modality, item

    def _as_message(self, modality: Modality, value: Any) -> list[dict[str, Any]]:
        return self.to_message(value if isinstance(modality, tuple) else {modality: value})

    def parse_inputs(self, inputs: Sequence[Any]) -> tuple[Modality, dict[str, list], defaultdict[str, dict[str, Any]]]:
        """Detect the batch's modality and group its values for the processor.

        Pairs with media in them, and batches mixing modalities, become ``"message"`` batches (pairs
        take the ``query``/``document`` roles). Text pairs alone stay ``"text"``: tokenizers take them.

        Args:
            inputs: The batch: texts, text pairs, media, chat messages, multimodal dicts or media pairs.

        Returns:
            ``(modality, values, extra_modality_kwargs)``: the batch modality; the values keyed by
            modality name (``"image"``, not the processor's ``"images"``), in the inputs' key order;
            and per-modality processor options gathered from the inputs (``sampling_rate``,
            ``video_metadata``).

        Raises:
            ValueError: If an input is of no known form, or the batch's media metadata conflict.
        """
        extra_modality_kwargs: defaultdict[str, dict[str, Any]] = defaultdict(dict)
        if not inputs:
            return "text", {"text": []}, extra_modality_kwargs

        typed_inputs: list[tuple[Any, Any]] = []
        for item in inputs:
            # Checked first: infer_modality refuses pairs that are not two strings.
            if is_non_text_pair(item):
                typed_inputs.append(("pair", item))
            else:
                typed_inputs.append(self._typed_value(item, extra_modality_kwargs))
        reconcile_video_metadata(typed_inputs, extra_modality_kwargs)

        if any(modality == "pair" for modality, _ in typed_inputs):
            # One media pair turns the whole batch into conversations; text pairs then need roles too.
            messages = []
            for modality, value in typed_inputs:
                if modality == "pair" or (modality == "text" and self.is_text_pair(value)):
                    messages.append(self.pair_to_messages(value))
                elif modality == "message":
                    messages.append(value)
                else:
                    messages.append(self._as_message(modality, value))
            return "message", {"message": messages}, extra_modality_kwargs

        modalities = {modality for modality, _ in typed_inputs}
        values = [value for _, value in typed_inputs]
        if len(modalities) > 1:
            logger.debug(f"Mixed modalities {modalities}: converting the batch to messages.")
            messages = [self._as_message(modality, value) for modality, value in typed_inputs]
            return "message", {"message": messages}, extra_modality_kwargs

        modality = modalities.pop()
        if isinstance(modality, str):
            return cast("Modality", modality), {modality: values}, extra_modality_kwargs
        # Multimodal dicts: keep the first sample's key order, which the processor call follows.
        key_order = tuple(values[0])
        mixed_orders = any(tuple(value) != key_order for value in values[1:])
        if mixed_orders and (self.supported_modalities is None or "message" in self.supported_modalities):
            # Samples ordering their parts differently keep their own order only as messages.
            return "message", {"message": [self.to_message(value) for value in values]}, extra_modality_kwargs
        return modality, {key: [value[key] for value in values] for key in key_order}, extra_modality_kwargs

    # -- pairs and chat templates -----------------------------------------------------------------

    def pair_roles_failure(self, chat_template_kwargs: dict[str, Any] | None = None) -> str | None:
        """Why the chat template cannot carry a ``query``/``document`` pair, or None when it can.

        The template is rendered on probe pairs that change one role's text at a time: a role whose
        change leaves the render unchanged is dropped by the template. Rendering (rather than reading
        the template's source) also accepts templates that pass roles through without naming them.
        The verdict is cached against a copy of the template and kwargs, so fixing the template on a
        loaded model is seen at once.

        Args:
            chat_template_kwargs: The ``apply_chat_template`` options the real render uses (they
                can select one of several named templates).
        """
        template = getattr(self.processor, "chat_template", None)
        if template is None:
            return "the model has no chat template"
        chat_template_kwargs = chat_template_kwargs or {}
        cache_key = (template, chat_template_kwargs)
        if self._pair_role_probe is not None and self._pair_role_probe[0] == cache_key:
            return self._pair_role_probe[1]

        try:
            renders = [
                str(
                    self.processor.apply_chat_template(
                        self.pair_to_messages(pair), tokenize=False, **chat_template_kwargs
                    )
                )
                for pair in PAIR_ROLE_PROBES
            ]
        except Exception as exc:  # noqa: BLE001 - a template that fails to render in any way cannot carry the pair
            failure: str | None = f"it raised {type(exc).__name__}: {exc}"
        else:
            baseline, *changed = renders
            dropped = [role for role, render in zip(PAIR_ROLES, changed) if render == baseline]
            roles = " and ".join(repr(role) for role in dropped)
            failure = f"the {roles} content does not reach the rendered prompt" if dropped else None
        logger.debug(f"Chat template pair-role probe: {failure or 'both roles reach the prompt'}")
        self._pair_role_probe = (copy.deepcopy(cache_key), failure)
        return failure

    def has_pair_roles(self, messages_batch: list[list[dict[str, Any]]]) -> bool:
        """Whether some conversation in the batch has both a ``query`` and a ``document`` message."""
        return any(set(PAIR_ROLES) <= {message.get("role") for message in messages} for messages in messages_batch)

    def pair_to_messages(self, pair: tuple | list) -> list[dict[str, Any]]:
        """A pair as two messages: the first item with role ``"query"``, the second ``"document"``."""
        messages: list[dict[str, Any]] = []
        for role, item in zip(PAIR_ROLES, pair, strict=True):
            if self.message_format == "flat":
                messages.append({"role": role, "content": item})
                continue
            modality = infer_modality(item)
            is_typed_dict = isinstance(item, dict) and (isinstance(modality, tuple) or item.keys() == {modality})
            messages.extend(self.to_message(item if is_typed_dict else {modality: item}, role=role))
        return messages

    def to_message(self, typed_input: dict[Any, Any], role: str = "user") -> list[dict[str, Any]]:
        """One message holding ``typed_input`` (modality -> value, or list of values), as a one-item list."""
        if self.message_format == "flat":
            if len(typed_input) == 1:
                return [{"role": role, "content": next(iter(typed_input.values()))}]
            logger.warning("Flat message format cannot hold several modalities in one message; using structured.")
        content: list[dict[str, Any]] = []
        for modality, value in typed_input.items():
            if modality == "video":
                # A list of frames is one video, not several.
                items = [value] if is_video_frames(value) else as_sequence(value)
                items = [list(item) if isinstance(item, tuple) else item for item in items]
            elif modality in MULTIMODAL_DICT_KEYS:
                items = as_sequence(value)
            else:
                items = [value]
            content.extend({"type": modality, modality: item} for item in items)
        return [{"role": role, "content": content}]

    def batch_to_message(
        self, modality: Modality, processor_inputs: dict
    ) -> tuple[Literal["message"], dict[str, list]]:
        """Turn a parsed batch (modality -> values) into one conversation per sample.

        Content follows ``processor_inputs``' key order; a text pair becomes a query/document exchange.
        """
        if not processor_inputs:
            return "message", {"message": []}
        wanted = (modality,) if isinstance(modality, str) else modality
        batch_size = len(next(iter(processor_inputs.values())))
        messages = []
        for index in range(batch_size):
            typed_input = {key: values[index] for key, values in processor_inputs.items() if key in wanted}
            only_value: Any = next(iter(typed_input.values())) if len(typed_input) == 1 else None
            if "text" in typed_input and len(typed_input) == 1 and self.is_text_pair(only_value):
                messages.append(self.pair_to_messages(only_value))
            else:
                messages.append(self.to_message(typed_input))
        return "message", {"message": messages}

    @staticmethod
    def is_text_pair(value: Any) -> bool:
        """Whether ``value`` is a (query, document) pair of two strings."""
        return isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(part, str) for part in value)

    @staticmethod
    def is_text_only_messages(messages_batch: list[list[dict[str, Any]]]) -> bool:
        """Whether every message of every conversation holds only text (flat or structured)."""
        for messages in messages_batch:
            for message in messages:
                content = message.get("content")
                if isinstance(content, str):
                    continue
                # A content item without a type is text, as chat templates read it.
                if not isinstance(content, list) or any(item.get("type", "text") != "text" for item in content):
                    return False
        return True

    # -- message shape and prompts ----------------------------------------------------------------

    def normalize_messages(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``messages`` in this formatter's message format, other keys kept; malformed messages are skipped."""
        normalized = []
        for message in messages:
            if "role" not in message or "content" not in message:
                logger.warning(f"Skipping a message without 'role' and 'content': {message}")
                continue
            content = message["content"]
            structured = isinstance(content, list) and bool(content) and isinstance(content[0], dict)
            if self.message_format == "flat" and structured:
                if len(content) == 1 and "text" in content[0]:
                    message = {**message, "content": content[0]["text"]}
                else:
                    logger.warning(
                        f"Cannot flatten a message with {len(content)} content items; keeping it structured."
                    )
            elif self.message_format == "structured" and not structured and isinstance(content, str):
                message = {**message, "content": [{"type": "text", "text": content}]}
            normalized.append(message)
        return normalized

    def prepend_prompt_to_messages(
        self, messages: list[list[dict[str, Any]]], prompt: str
    ) -> list[list[dict[str, Any]]]:
        """Each conversation with a new system message holding ``prompt`` in front."""

        def system_message() -> dict[str, Any]:
            # A fresh dict per conversation: callers may edit one without touching the others.
            content: Any = prompt if self.message_format == "flat" else [{"type": "text", "text": prompt}]
            return {"role": "system", "content": content}

        return [[system_message(), *conversation] for conversation in messages]

    def prepend_prompt_to_texts(self, texts: list[Any], prompt: str) -> list[str | list[str]]:
        """Texts with ``prompt`` in front; for a text pair, only its first text gets it."""
        return [prompt + text if isinstance(text, str) else [prompt + text[0], *text[1:]] for text in texts]
