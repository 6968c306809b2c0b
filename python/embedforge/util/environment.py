"""What the running environment offers: distributed state, the best device, optional packages."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import platform
import sys
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, metadata, version
from typing import Any

import torch
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

logger = logging.getLogger(__name__)

# Words found in the message of a failed optional import -> the install command that fixes it.
# Order matters: "read_video" (transformers falling back to torchvision's removed video reader when
# torchcodec is missing) must be matched before the generic "torchvision".
_MISSING_DEPENDENCY_HINTS: list[tuple[tuple[str, ...], str]] = [
    (("pillow", "pil"), 'pip install -U "transformers[vision]"  # the sentence-transformers[image] extra'),
    (
        ("read_video",),
        'pip install -U "transformers[video]"  # the sentence-transformers[video] extra ([audio] for audio only)',
    ),
    (("torchvision",), 'pip install -U "transformers[vision]"  # the sentence-transformers[image] extra'),
    (("torchcodec",), "pip install -U torchcodec"),
    (("soundfile", "librosa"), 'pip install -U "transformers[audio]"  # the sentence-transformers[audio] extra'),
]

# The ``__version__`` block of config_sentence_transformers.json spells torch "pytorch", so model
# authors write requirements under that name too; the installed distribution is "torch".
_PACKAGE_ALIASES = {"pytorch": "torch"}


@contextlib.contextmanager
def suggest_extra_on_exception() -> Iterator[None]:
    """Re-raise an ImportError / AttributeError about a missing media dependency with an install hint.

    The exception keeps its type; anything that does not mention a known optional dependency
    passes through unchanged.
    """
    try:
        yield
    except (ImportError, AttributeError) as error:
        message = str(error)
        lowered = message.lower()
        for keywords, hint in _MISSING_DEPENDENCY_HINTS:
            if any(keyword in lowered for keyword in keywords):
                raise type(error)(f"{message.strip()}\n\nTo install the required dependencies, run:\n{hint}") from error
        raise


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


def get_installed_version(package_name: str) -> str | None:
    """The installed version of ``package_name`` (``"python"`` for the interpreter), or None if absent.

    An already imported module's ``__version__`` wins over the distribution metadata, which lags
    behind the running code in editable installs.
    """
    if package_name == "python":
        return platform.python_version()
    module = sys.modules.get(package_name.replace("-", "_"))
    module_version = getattr(module, "__version__", None)
    if isinstance(module_version, str):
        return module_version
    try:
        return version(package_name)
    except PackageNotFoundError:
        return None


def check_version_requirements(requirements: dict[str, Any] | None, source: str | None = None) -> None:
    """Raise ImportError if installed packages miss the version requirements a model declares.

    ``requirements`` maps a package name (``"python"`` for the interpreter, ``"pytorch"`` accepted
    for torch) to a PEP 440 specifier such as ``">=5.15,<6"``, or to a dict with ``"specifier"`` and
    ``"reason"``. ``source`` names the model in the message. Pre-releases and local builds
    (``2.13.0+cu126``) count as matching; a requirement that cannot be read is logged and skipped,
    so a typo in a model's config never makes it unloadable. The error lists every unmet
    requirement and the ``pip install`` line that fixes them.
    """
    if not requirements:
        return
    if not isinstance(requirements, dict):
        logger.warning(f"Ignoring the `requirements` of {source!r}: expected a dictionary of version specifiers.")
        return

    unmet: list[str] = []
    installable: list[str] = []
    for name, requirement in requirements.items():
        package = _PACKAGE_ALIASES.get(name, name)
        if isinstance(requirement, dict):
            specifier, reason = requirement.get("specifier", ""), requirement.get("reason", "")
        else:
            specifier, reason = requirement, ""
        if not isinstance(specifier, str):
            logger.warning(
                f"Could not verify the {specifier!r} requirement of {source!r}: expected a version specifier string."
            )
            continue

        installed = get_installed_version(package)
        # Parse the specifier even when the package is missing: a malformed one must warn, not raise.
        try:
            allowed = SpecifierSet(specifier, prereleases=True)
            if installed is not None and allowed.contains(Version(installed)):
                continue
        except (InvalidSpecifier, InvalidVersion) as error:
            logger.warning(f"Could not verify the {specifier!r} requirement of {source!r}: {error}")
            continue

        found = f"{package}=={installed} is installed" if installed else "it is not installed"
        unmet.append(f"- {package}{specifier}, but {found}. {reason}".rstrip())
        # Nobody can pip-install a Python interpreter.
        if package != "python":
            installable.append(f'"{package}{specifier}"')

    if unmet:
        lines = [f"The model {source!r} requires:" if source else "This model requires:", *unmet]
        if installable:
            lines.append(f"Install compatible versions with:\n    pip install -U {' '.join(installable)}")
        raise ImportError("\n".join(lines))
