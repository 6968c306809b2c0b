"""CNN: 1-D convolutions with several kernel sizes over token embeddings, concatenated."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from embedforge._internal.arguments import accept_renamed_kwargs, check_positive_int
from embedforge.base.modules.module import ModuleWithWeights
from embedforge.exceptions import InvalidArgumentError

__all__ = ["CNN"]


class CNN(ModuleWithWeights):
    """Runs one Conv1d per kernel size over ``token_embeddings`` and concatenates their channels.

    Each convolution pads by ``(kernel_size - 1) // 2``, so odd kernel sizes with stride 1 keep the sequence length.
    """

    config_file_name = "cnn_config.json"
    config_keys: ClassVar[list[str]] = ["in_embedding_dimension", "out_channels", "kernel_sizes", "stride_sizes"]
    config_key_renames: ClassVar[dict[str, str]] = {"in_word_embedding_dimension": "in_embedding_dimension"}

    @accept_renamed_kwargs(in_word_embedding_dimension="in_embedding_dimension")
    def __init__(
        self,
        in_embedding_dimension: int,
        out_channels: int = 256,
        kernel_sizes: list[int] = [1, 3, 5],  # noqa: B006 - the documented default; never mutated
        stride_sizes: list[int] | None = None,
    ) -> None:
        super().__init__()
        check_positive_int("in_embedding_dimension", in_embedding_dimension)
        check_positive_int("out_channels", out_channels)
        if not kernel_sizes:
            raise InvalidArgumentError(f"kernel_sizes must list at least one kernel size, got {kernel_sizes!r}")
        for size in kernel_sizes:
            check_positive_int("kernel_sizes entry", size)
        if stride_sizes is None:
            stride_sizes = [1] * len(kernel_sizes)
        if len(stride_sizes) != len(kernel_sizes):
            raise InvalidArgumentError(
                f"stride_sizes must have one entry per kernel size ({len(kernel_sizes)}), got {stride_sizes!r}"
            )
        for stride in stride_sizes:
            check_positive_int("stride_sizes entry", stride)
        self.in_embedding_dimension = in_embedding_dimension
        self.out_channels = out_channels
        self.kernel_sizes = list(kernel_sizes)
        self.stride_sizes = list(stride_sizes)
        self.embeddings_dimension = out_channels * len(kernel_sizes)
        self.convs = nn.ModuleList(
            nn.Conv1d(
                in_channels=in_embedding_dimension,
                out_channels=out_channels,
                kernel_size=kernel_size,
                stride=stride,
                padding=(kernel_size - 1) // 2,
            )
            for kernel_size, stride in zip(self.kernel_sizes, self.stride_sizes, strict=True)
        )

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Replace ``token_embeddings`` (batch, tokens, in_dim) by the concatenated convolution outputs."""
        channels_first = features["token_embeddings"].transpose(1, -1)
        outputs = [conv(channels_first) for conv in self.convs]
        lengths = {output.shape[-1] for output in outputs}
        if len(lengths) > 1:
            raise InvalidArgumentError(
                f"kernel_sizes={self.kernel_sizes} with stride_sizes={self.stride_sizes} give outputs of different "
                f"lengths {sorted(lengths)}; use odd kernel sizes and equal strides"
            )
        features["token_embeddings"] = torch.cat(outputs, 1).transpose(1, -1)
        return features

    def get_embedding_dimension(self) -> int:
        """Width of the output token embeddings: ``out_channels * len(kernel_sizes)``."""
        return self.embeddings_dimension
