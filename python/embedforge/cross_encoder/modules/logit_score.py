"""LogitScore: turn a causal language model's next-token logits into a reranker score."""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor

from embedforge.base.modules.module import Module
from embedforge.exceptions import InvalidArgumentError


class LogitScore(Module):
    """Score a pair by the language model's next-token logits at the last position: the logit of
    ``true_token_id``, minus the logit of ``false_token_id`` when one is given (the log-odds of
    "yes" over "no", say).

    It follows a ``Transformer(transformer_task="text-generation")``, whose inputs are left-padded
    so the last position is always a real token, and writes ``scores`` of shape ``(batch, 1)``.

    Args:
        true_token_id: Vocabulary id of the token that means "relevant" (e.g. ``"yes"``).
        false_token_id: Vocabulary id of the token that means "not relevant" (e.g. ``"no"``), or
            None to score with the true token's logit alone.
        module_input_name: The feature holding the logits, ``(batch, positions, vocab)``.
    """

    config_keys: ClassVar[list[str]] = ["true_token_id", "false_token_id", "module_input_name"]

    def __init__(
        self,
        true_token_id: int,
        false_token_id: int | None = None,
        module_input_name: str = "causal_logits",
    ) -> None:
        super().__init__()
        _check_token_id("true_token_id", true_token_id)
        if false_token_id is not None:
            _check_token_id("false_token_id", false_token_id)
        if not isinstance(module_input_name, str) or not module_input_name:
            raise InvalidArgumentError(f"module_input_name={module_input_name!r}; expected a feature name")
        self.true_token_id = true_token_id
        self.false_token_id = false_token_id
        self.module_input_name = module_input_name

    @classmethod
    def st_type(cls) -> str:
        """sentence-transformers 6's own path: the class has no ``sentence_transformers.models`` alias."""
        if cls is LogitScore:
            return "sentence_transformers.cross_encoder.modules.logit_score.LogitScore"
        return super().st_type()

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Write ``scores`` (one per row) from the logits of the last position."""
        logits = features.get(self.module_input_name)
        if not isinstance(logits, Tensor) or logits.ndim != 3:
            found = None if logits is None else (type(logits).__name__, tuple(getattr(logits, "shape", ())))
            raise InvalidArgumentError(
                f"LogitScore reads features[{self.module_input_name!r}] as (batch, positions, vocab) logits, "
                f"but found {found}; put it after a Transformer with transformer_task='text-generation'"
            )
        vocab_size = logits.shape[-1]
        for name in ("true_token_id", "false_token_id"):
            token_id = getattr(self, name)
            if token_id is not None and token_id >= vocab_size:
                raise InvalidArgumentError(f"{name}={token_id} is outside the model's vocabulary of {vocab_size}")
        # Left padding puts every row's last real token at the final position, and with
        # logits_to_keep=1 that is the only position there is.
        last = logits[:, -1]
        scores = last[:, self.true_token_id]
        if self.false_token_id is not None:
            scores = scores - last[:, self.false_token_id]
        features["scores"] = scores.unsqueeze(1)
        return features

    def __repr__(self) -> str:
        return f"LogitScore({self.get_config_dict()})"


def _check_token_id(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgumentError(f"{name}={value!r}; expected a non-negative vocabulary id")


__all__ = ["LogitScore"]
