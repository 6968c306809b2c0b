"""Pooling: turn token embeddings into one sentence embedding."""

from __future__ import annotations

import warnings
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from embedforge.base.modules.module import Module
from embedforge.exceptions import InvalidArgumentError

PoolingMode = Literal["cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"]

#: Boolean flags of sentence-transformers < 6, in the order their outputs were concatenated.
LEGACY_MODE_FLAGS: dict[str, str] = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


def _convert_legacy_pooling_kwargs(kwargs: dict[str, Any]) -> None:
    """Replace old boolean ``pooling_mode_*`` flags in ``kwargs`` by one ``pooling_mode``, in place.

    The active flags become a mode name (or a tuple of them, in the old concatenation order; "mean"
    when none is set). An explicit ``pooling_mode`` wins: the flags are then just dropped.
    """
    flags = [key for key in LEGACY_MODE_FLAGS if key in kwargs]
    if flags and "pooling_mode" not in kwargs:
        active = tuple(mode for key, mode in LEGACY_MODE_FLAGS.items() if kwargs.get(key))
        kwargs["pooling_mode"] = active[0] if len(active) == 1 else (active or "mean")
    for key in flags:
        del kwargs[key]


def _fold_legacy_flags(config: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` with old ``pooling_mode_*`` flags (and ``word_embedding_dimension``) as current keys."""
    config = dict(config)
    if "word_embedding_dimension" in config:
        old = config.pop("word_embedding_dimension")
        if config.get("embedding_dimension") is None:
            config["embedding_dimension"] = old
    _convert_legacy_pooling_kwargs(config)
    return config


class Pooling(Module):
    """Pool ``token_embeddings`` into ``sentence_embedding``; several modes are concatenated in order."""

    POOLING_MODES: ClassVar[tuple[str, ...]] = (
        "cls",
        "max",
        "mean",
        "mean_sqrt_len_tokens",
        "weightedmean",
        "lasttoken",
    )
    config_keys: ClassVar[list[str]] = [
        "embedding_dimension",
        "pooling_mode",
        "include_prompt",
    ]
    config_key_renames: ClassVar[dict[str, str]] = {"word_embedding_dimension": "embedding_dimension"}

    def __init__(
        self,
        embedding_dimension: int | None = None,
        pooling_mode: PoolingMode | tuple[PoolingMode, ...] | list[PoolingMode] | None = "mean",
        include_prompt: bool = True,
        **legacy_kwargs: Any,
    ) -> None:
        super().__init__()
        unknown = set(legacy_kwargs) - set(LEGACY_MODE_FLAGS) - {"word_embedding_dimension"}
        if unknown:
            raise TypeError(f"Pooling() got unexpected keyword arguments {sorted(unknown)}")
        if legacy_kwargs:
            if set(legacy_kwargs) & set(LEGACY_MODE_FLAGS):
                warnings.warn(
                    "The pooling_mode_* flags are deprecated; pass pooling_mode instead.",
                    FutureWarning,
                    stacklevel=2,
                )
            folded = _fold_legacy_flags({"embedding_dimension": embedding_dimension, **legacy_kwargs})
            embedding_dimension = folded["embedding_dimension"]
            if any(key in LEGACY_MODE_FLAGS for key in legacy_kwargs):
                pooling_mode = folded["pooling_mode"]
        if embedding_dimension is None:
            raise InvalidArgumentError("Pooling needs embedding_dimension, the width of the token embeddings")
        if pooling_mode is None:
            pooling_mode = "mean"
        if isinstance(pooling_mode, (list, tuple)):
            pooling_mode = pooling_mode[0] if len(pooling_mode) == 1 else tuple(pooling_mode)
        modes = (pooling_mode,) if isinstance(pooling_mode, str) else pooling_mode
        for mode in modes:
            if mode not in self.POOLING_MODES:
                raise InvalidArgumentError(
                    f"Invalid pooling mode {mode!r} in pooling_mode={pooling_mode!r}; expected one of "
                    f"{self.POOLING_MODES}"
                )
        self.embedding_dimension = int(embedding_dimension)
        self.pooling_mode = pooling_mode
        self.include_prompt = include_prompt
        self.pooling_output_dimension = len(modes) * self.embedding_dimension

    @property
    def word_embedding_dimension(self) -> int:
        """Old name of ``embedding_dimension``."""
        return self.embedding_dimension

    @property
    def modes(self) -> tuple[str, ...]:
        """The active modes, in concatenation order."""
        return (self.pooling_mode,) if isinstance(self.pooling_mode, str) else tuple(self.pooling_mode)

    @classmethod
    def load_config(
        cls,
        model_name_or_path: str,
        subfolder: str = "",
        config_filename: str | None = None,
    ) -> dict:
        """Read the config, accepting the layout of sentence-transformers < 6 too."""
        return _fold_legacy_flags(super().load_config(model_name_or_path, subfolder, config_filename))

    def get_config_dict(self) -> dict[str, Any]:
        """The config, with a tuple of modes stored as a JSON list."""
        config = super().get_config_dict()
        if isinstance(config["pooling_mode"], tuple):
            config["pooling_mode"] = list(config["pooling_mode"])
        return config

    def get_embedding_dimension(self) -> int:
        """Output width: token width times the number of modes."""
        return self.pooling_output_dimension

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Compute ``features["sentence_embedding"]`` from ``token_embeddings`` and ``attention_mask``.

        A flattened batch (``cu_seq_lens_q`` present, tokens of shape ``(1, sum_lens, D)``) gives one row per
        sequence; its token embeddings are left flat.
        """
        tokens: Tensor = features["token_embeddings"]
        prompt_length = 0
        if not self.include_prompt and "prompt_length" in features:
            prompt_length = features["prompt_length"]
            prompt_length = (
                int(prompt_length.flatten()[0].item()) if isinstance(prompt_length, Tensor) else int(prompt_length)
            )
        if "cu_seq_lens_q" in features:
            features["sentence_embedding"] = torch.cat(self._pool_flattened(tokens, features, prompt_length), dim=-1)
            return features
        mask = features.get("attention_mask")
        if mask is None or mask.size(-1) != tokens.size(1):
            mask = torch.ones(tokens.shape[:-1], device=tokens.device, dtype=torch.int64)
        original_mask = mask
        if prompt_length:
            mask = _mask_prompt(mask, prompt_length)
        pooled = [self._pool(mode, tokens, mask, original_mask, features) for mode in self.modes]
        features["sentence_embedding"] = torch.cat(pooled, dim=-1)
        return features

    def _pool(
        self,
        mode: str,
        tokens: Tensor,
        mask: Tensor,
        original_mask: Tensor,
        features: dict,
    ) -> Tensor:
        # Half-precision sums lose too much: accumulate in float32 and cast back, as sentence-transformers does.
        accumulate = torch.float32 if tokens.dtype in (torch.float16, torch.bfloat16) else tokens.dtype
        if mode == "cls":
            if "cls_token_embeddings" in features:
                return features["cls_token_embeddings"]
            first = mask.to(torch.int).argmax(dim=1)
            return tokens[torch.arange(tokens.size(0), device=tokens.device), first]
        if mode == "max":
            keep = mask.unsqueeze(-1).expand_as(tokens).to(tokens.dtype)
            return tokens.masked_fill(keep == 0, float("-inf")).max(dim=1).values
        if mode in ("mean", "mean_sqrt_len_tokens"):
            keep = mask.unsqueeze(-1).to(tokens.dtype)
            total = (tokens * keep).sum(dim=1, dtype=accumulate)
            output_dtype = tokens.dtype
            if "token_weights_sum" in features:
                count = features["token_weights_sum"].unsqueeze(-1)
                output_dtype = torch.promote_types(output_dtype, count.dtype)
                count = count.to(torch.promote_types(accumulate, count.dtype))
            else:
                count = keep.sum(dim=1, dtype=accumulate)
            count = torch.clamp(count, min=1e-9)
            mean = total / (count if mode == "mean" else torch.sqrt(count))
            return mean.to(output_dtype) if output_dtype.is_floating_point else mean
        if mode == "weightedmean":
            keep = mask.unsqueeze(-1).to(accumulate)
            positions = torch.arange(1, tokens.size(1) + 1, device=tokens.device, dtype=accumulate).view(1, -1, 1)
            if original_mask.numel():
                # With left padding the weights count from the first real token, not from position 0.
                positions = positions - original_mask.to(torch.int32).argmax(dim=1).view(-1, 1, 1)
            weights = keep * positions
            total = (tokens * weights).sum(dim=1)
            output_dtype = tokens.dtype
            if "token_weights_sum" in features:
                weight_sum = features["token_weights_sum"].unsqueeze(-1)
                output_dtype = torch.promote_types(output_dtype, weight_sum.dtype)
                weight_sum = weight_sum.to(torch.promote_types(accumulate, weight_sum.dtype))
            else:
                weight_sum = weights.sum(dim=1)
            return (total / torch.clamp(weight_sum, min=1e-9)).to(output_dtype)
        # lasttoken: the last position whose mask is set; an all-zero mask falls back to the last position.
        _, length, width = tokens.shape
        found, index_from_end = mask.flip(1).max(1)
        index_from_end = torch.where(found == 0, length - 1, index_from_end)
        gather = (length - index_from_end - 1).view(-1, 1, 1).expand(-1, 1, width)
        keep = mask.unsqueeze(-1).expand_as(tokens).to(tokens.dtype)
        return torch.gather(tokens * keep, 1, gather).squeeze(1)

    def _pool_flattened(self, tokens: Tensor, features: dict, prompt_length: int) -> list[Tensor]:
        """Pool a flattened batch per sequence, giving what the padded form of the same sequences gives."""
        cu_seq_lens = features["cu_seq_lens_q"]
        if tokens.dim() != 3 or tokens.size(0) != 1:
            raise InvalidArgumentError(
                "token_embeddings of a flattened batch (cu_seq_lens_q given) must have shape (1, sum_lens, D), "
                f"got {tuple(tokens.shape)}"
            )
        if cu_seq_lens.dim() != 1 or cu_seq_lens.numel() < 1:
            raise InvalidArgumentError(
                f"cu_seq_lens_q must be a 1-D tensor of num_seqs + 1 offsets, got shape {tuple(cu_seq_lens.shape)}"
            )
        flat = tokens[0]
        num_tokens, width = flat.shape
        if int(cu_seq_lens[-1]) != num_tokens:
            raise InvalidArgumentError(
                f"cu_seq_lens_q ends at {int(cu_seq_lens[-1])} but token_embeddings hold {num_tokens} tokens"
            )
        device = flat.device
        cu_seq_lens = cu_seq_lens.to(device=device, dtype=torch.int64)
        starts, ends = cu_seq_lens[:-1], cu_seq_lens[1:]
        lengths = ends - starts
        num_seqs = lengths.numel()
        accumulate = torch.float32 if flat.dtype in (torch.float16, torch.bfloat16) else flat.dtype

        # searchsorted maps every token to its sequence without a host sync (empty sequences are skipped).
        token_index = torch.arange(num_tokens, device=device)
        segment = torch.searchsorted(ends, token_index, right=True)
        position = token_index - starts[segment]
        # Prompt tokens are masked rather than removed, so every mode shares one token order.
        keep = position >= prompt_length
        kept_lengths = torch.clamp(lengths - prompt_length, min=0)

        def segment_sum(values: Tensor) -> Tensor:
            return values.new_zeros((num_seqs, *values.shape[1:])).index_add(0, segment, values)

        def pick(index: Tensor, valid: Tensor) -> Tensor:
            # An index past the last token (an empty last sequence) is clamped, then zeroed like a padded row.
            picked = flat[index.clamp(max=max(num_tokens - 1, 0))]
            return picked * valid.unsqueeze(-1).to(flat.dtype)

        pooled: list[Tensor] = []
        for mode in self.modes:
            if mode == "cls":
                if "cls_token_embeddings" in features:
                    pooled.append(features["cls_token_embeddings"])
                    continue
                # The first token after the prompt; a sequence that is all prompt falls back to its first token.
                first = starts + torch.where(kept_lengths > 0, prompt_length, 0)
                pooled.append(pick(first, lengths > 0))
            elif mode == "lasttoken":
                pooled.append(pick(ends - 1, kept_lengths > 0))
            elif mode == "max":
                masked = flat.masked_fill(~keep.unsqueeze(-1), float("-inf"))
                start_value = flat.new_full((num_seqs, width), float("-inf"))
                pooled.append(
                    start_value.scatter_reduce(0, segment.unsqueeze(-1).expand(-1, width), masked, reduce="amax")
                )
            elif mode in ("mean", "mean_sqrt_len_tokens"):
                total = segment_sum(flat.to(accumulate) * keep.unsqueeze(-1).to(accumulate))
                output_dtype = flat.dtype
                if "token_weights_sum" in features:
                    count = features["token_weights_sum"].unsqueeze(-1)
                    output_dtype = torch.promote_types(output_dtype, count.dtype)
                    count = count.to(torch.promote_types(accumulate, count.dtype))
                else:
                    count = kept_lengths.unsqueeze(-1).to(accumulate)
                count = torch.clamp(count, min=1e-9)
                mean = total / (count if mode == "mean" else torch.sqrt(count))
                pooled.append(mean.to(output_dtype))
            elif mode == "weightedmean":
                # Weights count positions from 1 within each sequence, prompt positions included, as padded.
                weights = ((position + 1) * keep).to(accumulate).unsqueeze(-1)
                total = segment_sum(flat * weights)
                output_dtype = flat.dtype
                if "token_weights_sum" in features:
                    weight_sum = features["token_weights_sum"].unsqueeze(-1)
                    output_dtype = torch.promote_types(output_dtype, weight_sum.dtype)
                    weight_sum = weight_sum.to(torch.promote_types(accumulate, weight_sum.dtype))
                else:
                    weight_sum = segment_sum(weights)
                pooled.append((total / torch.clamp(weight_sum, min=1e-9)).to(output_dtype))
        return pooled

    def __repr__(self) -> str:
        return f"Pooling({self.get_config_dict()})"


def _mask_prompt(mask: Tensor, prompt_length: int) -> Tensor:
    """A copy of ``mask`` with the prompt's positions (and any left padding before them) cleared."""
    # A copy, not in place: cached losses run the same features forward twice.
    mask = mask.clone()
    pad_lengths = mask.to(torch.int32).argmax(dim=1)
    if int(pad_lengths.sum()) == 0:
        mask[:, :prompt_length] = 0
    else:
        positions = torch.arange(mask.size(1), device=mask.device).unsqueeze(0)
        mask[positions < (pad_lengths + prompt_length).unsqueeze(1)] = 0
    return mask
