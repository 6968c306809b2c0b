"""InputModule: the first module of a model, which turns raw inputs into tensors."""

from __future__ import annotations

from typing import Any, ClassVar

from embedforge.base.modules.module import Module


class InputModule(Module):
    """A module that turns raw inputs into tensors (it owns a tokenizer) and is saved in the root folder."""

    save_in_root: ClassVar[bool] = True

    def preprocess(self, inputs: list[Any], prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """Tokenise a batch of inputs into the features ``forward`` expects."""
        return self.tokenize(inputs, prompt=prompt, **kwargs)

    def tokenize(self, texts: list[Any], **kwargs: Any) -> dict[str, Any]:
        """Tokenise a batch of texts (old name of :meth:`preprocess`)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement tokenize()")

    @property
    def max_seq_length(self) -> int | float | None:
        """Longest input, in tokens, the module accepts; None (or ``math.inf``, as static models say) means unlimited."""
        return None


__all__ = ["InputModule"]
