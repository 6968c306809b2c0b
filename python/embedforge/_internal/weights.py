"""Reading and writing module weights: safetensors first, ``.bin`` only with ``weights_only=True``."""

from __future__ import annotations

import os

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from embedforge.exceptions import ModelFormatError, ModelNotFoundError

SAFETENSORS_NAME = "model.safetensors"
PYTORCH_NAME = "pytorch_model.bin"


def load_state_dict_file(folder: str) -> dict[str, torch.Tensor]:
    """Read the weights in ``folder``: ``model.safetensors``, else ``pytorch_model.bin`` (no pickles run)."""
    safetensors_path = os.path.join(folder, SAFETENSORS_NAME)
    if os.path.isfile(safetensors_path):
        try:
            return load_file(safetensors_path)
        except (SafetensorError, OSError, ValueError) as error:
            raise ModelFormatError(f"Cannot read weights {safetensors_path!r}: {error}") from error
    bin_path = os.path.join(folder, PYTORCH_NAME)
    if os.path.isfile(bin_path):
        try:
            return torch.load(bin_path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises many types for a bad or unsafe file
            raise ModelFormatError(f"Cannot read weights {bin_path!r}: {error}") from error
    raise ModelNotFoundError(f"No weights in {folder!r}: expected {SAFETENSORS_NAME} or {PYTORCH_NAME}")


def save_state_dict_file(state: dict[str, torch.Tensor], folder: str, safe_serialization: bool = True) -> None:
    """Write ``state`` into ``folder`` as safetensors (default) or a weights-only torch file."""
    # safetensors refuses tensors that share memory or are non-contiguous views; store plain copies.
    plain = {key: value.detach().contiguous().cpu() for key, value in state.items()}
    if safe_serialization:
        save_file(
            _unshare(plain),
            os.path.join(folder, SAFETENSORS_NAME),
            metadata={"format": "pt"},
        )
    else:
        torch.save(plain, os.path.join(folder, PYTORCH_NAME))


def _unshare(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Clone tensors that share storage with an earlier one (tied weights), which safetensors rejects."""
    seen: set[int] = set()
    result = {}
    for key, value in state.items():
        pointer = value.untyped_storage().data_ptr() if value.numel() else -1
        if pointer in seen:
            value = value.clone()
        elif pointer != -1:
            seen.add(pointer)
        result[key] = value
    return result
