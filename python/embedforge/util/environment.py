"""What the running environment offers: distributed state, the best device, optional packages."""

from __future__ import annotations

import importlib.util
import os
from importlib.metadata import PackageNotFoundError, metadata

import torch


def is_dist_initialized() -> bool:
    """Whether torch.distributed is available and its default process group is initialised."""
    # is_available() first: builds without distributed support lack is_initialized().
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def get_device_name() -> str:
    """The device to run on: ``cuda:<local rank>``, ``mps``, ``npu``, ``xpu``, ``hpu`` or ``cpu``."""
    if torch.cuda.is_available():
        if "LOCAL_RANK" in os.environ:
            local_rank = int(os.environ["LOCAL_RANK"])
        elif is_dist_initialized() and torch.cuda.device_count() > torch.distributed.get_rank():
            local_rank = torch.distributed.get_rank()
        else:
            local_rank = 0
        return f"cuda:{local_rank}"
    if torch.backends.mps.is_available():
        return "mps"
    npu = getattr(torch, "npu", None)
    if npu is not None and npu.is_available():
        return "npu"
    xpu = getattr(torch, "xpu", None)
    if xpu is not None and xpu.is_available():
        return "xpu"
    if importlib.util.find_spec("habana_frameworks") is not None:
        from habana_frameworks.torch import hpu

        if hpu.is_available():
            return "hpu"
    return "cpu"


def check_package_availability(package_name: str, owner: str) -> bool:
    """Whether the distribution ``package_name`` is installed and its home page names ``owner``.

    The owner check tells Hugging Face's ``datasets`` from unrelated packages of the same name.
    """
    try:
        meta = metadata(package_name)
    except PackageNotFoundError:
        return False
    # get_all, not get: the PackageMetadata protocol promises only get_all for optional fields.
    home_page = " ".join(meta.get_all("Home-page") or [])
    urls = " ".join(meta.get_all("Project-URL") or [])
    return meta["Name"] == package_name and owner in f"{home_page} {urls}"


def is_accelerate_available() -> bool:
    """Whether Hugging Face ``accelerate`` is installed."""
    return check_package_availability("accelerate", "huggingface")


def is_datasets_available() -> bool:
    """Whether Hugging Face ``datasets`` is installed."""
    return check_package_availability("datasets", "huggingface")


def is_training_available() -> bool:
    """Whether the training extras (``datasets`` and ``accelerate``) are installed."""
    return is_accelerate_available() and is_datasets_available()
