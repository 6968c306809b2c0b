"""Normalize: scale an embedding to unit L2 length."""

from __future__ import annotations

from typing import Any, ClassVar

import torch.nn.functional as F

from embedforge.base.modules.module import Module


class Normalize(Module):
    """L2-normalise the tensor under ``module_input_name`` (the sentence embedding by default)."""

    config_keys: ClassVar[list[str]] = ["module_input_name", "module_output_name"]

    def __init__(
        self,
        module_input_name: str = "sentence_embedding",
        module_output_name: str | None = None,
    ) -> None:
        super().__init__()
        self.module_input_name = module_input_name
        self.module_output_name = module_input_name if module_output_name is None else module_output_name

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Write the normalised input to ``module_output_name``; a missing input is left alone."""
        value = features.get(self.module_input_name)
        if value is not None:
            # F.normalize divides by max(norm, 1e-12): an all-zero row stays zero instead of NaN.
            features[self.module_output_name] = F.normalize(value, p=2, dim=-1)
        return features
