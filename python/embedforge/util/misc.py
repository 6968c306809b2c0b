"""Small helpers sentence-transformers exposes in ``util``: class names, imports, quiet blocks, CSV rows."""

from __future__ import annotations

import csv
import functools
import importlib
import logging
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from inspect import isclass
from typing import Any


def fullname(obj: Any) -> str:
    """``package.module.ClassName`` of a class or of an object's class (builtins by bare name).

    This is the name model folders store (``modules.json``, loss configs) to find classes again.
    """
    cls = obj if isclass(obj) else type(obj)
    module = cls.__module__
    if module is None or module == str.__module__:
        return cls.__name__
    return f"{module}.{cls.__name__}"


def similarity_fct_name(similarity_fct: Callable[..., Any]) -> str:
    """How a loss's config dict (and so the model card) names its scoring callable.

    Plain functions give their name; ``functools.partial`` objects list their keyword bindings
    (``colbert_scores(length_normalize=True)``); objects with ``get_config_dict`` list their settings;
    a model's own ``similarity`` / ``similarity_pairwise`` method names the function it dispatches to.
    Anything else falls back to its type name.
    """
    if isinstance(similarity_fct, functools.partial):
        name = getattr(similarity_fct.func, "__name__", type(similarity_fct.func).__name__)
        bound = ", ".join(f"{key}={value!r}" for key, value in similarity_fct.keywords.items())
        return f"{name}({bound})" if bound else name
    name = getattr(similarity_fct, "__name__", type(similarity_fct).__name__)
    owner: Any = getattr(similarity_fct, "__self__", None)
    if name in ("similarity", "similarity_pairwise") and hasattr(owner, "similarity_fn_name"):
        from embedforge.util.similarity import SimilarityFunction

        resolve = (
            SimilarityFunction.to_similarity_fn
            if name == "similarity"
            else SimilarityFunction.to_similarity_pairwise_fn
        )
        return resolve(owner.similarity_fn_name).__name__
    config = getattr(similarity_fct, "get_config_dict", None)
    if callable(config):
        return f"{name}({', '.join(f'{key}={value!r}' for key, value in config().items())})"
    return name


def import_from_string(dotted_path: str) -> Any:
    """The attribute named by the last part of ``dotted_path``, after importing the module before it.

    Raises ImportError naming the path when it has no dot, the module cannot be imported or
    lacks the attribute.
    """
    if not isinstance(dotted_path, str) or "." not in dotted_path:
        raise ImportError(f"{dotted_path!r} is not a dotted path such as 'package.module.ClassName'")
    module_path, attribute = dotted_path.rsplit(".", 1)
    with warnings.catch_warnings():
        # Old paths re-exported for compatibility warn on import; the caller asked for them.
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            # The whole path may name a module holding a class of the same name (the old
            # ``models.Transformer`` file layout): then the class is taken from that module.
            module = importlib.import_module(dotted_path)
        except ImportError:
            module = importlib.import_module(module_path)
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ImportError(f"module {module_path!r} has no attribute {attribute!r}") from None


# Class references under these prefixes name a library's own modules and are imported directly;
# sentence-transformers' names resolve to embedforge's class of the same path.
_LIBRARY_PREFIXES = ("sentence_transformers.", "embedforge.")


def _library_class(class_ref: str) -> Any:
    """Import a ``sentence_transformers.*`` / ``embedforge.*`` class reference from embedforge."""
    if class_ref.startswith("sentence_transformers."):
        # embedforge keeps sentence-transformers' layout (and its old paths), so only the root differs.
        class_ref = "embedforge." + class_ref.removeprefix("sentence_transformers.")
    return import_from_string(class_ref)


def import_module_class(
    class_ref: str,
    model_name_or_path: str | None = None,
    *,
    trust_remote_code: bool = False,
    revision: str | None = None,
    code_revision: str | None = None,
    token: bool | str | None = None,
    cache_folder: str | None = None,
    local_files_only: bool = False,
) -> type:
    """The class a model's configuration names in ``class_ref`` (``module.path.ClassName``).

    ``sentence_transformers.*`` and ``embedforge.*`` references are embedforge's own classes and
    need no trust. Any other reference runs code the model chose, so when ``model_name_or_path`` is
    given it needs ``trust_remote_code=True`` (for local folders too): then the class is first looked
    for in a modeling file of the model (transformers' dynamic modules, given ``revision``,
    ``code_revision``, ``token``, ``cache_folder`` and ``local_files_only``), and otherwise imported
    from the environment. Without ``model_name_or_path`` the caller's own code chose the class, so
    it is imported directly.

    Raises ValueError when trust is needed and not given, ImportError when the class cannot be found.
    """
    if class_ref.startswith(_LIBRARY_PREFIXES):
        return _library_class(class_ref)

    if model_name_or_path is not None:
        # Any falsy value (None included) refuses: never fall through to transformers' interactive prompt.
        if not trust_remote_code:
            location = (
                os.path.abspath(model_name_or_path)
                if os.path.isdir(model_name_or_path)
                else f"https://hf.co/{model_name_or_path}"
            )
            raise ValueError(
                f"The model {model_name_or_path} references the module class {class_ref!r}, which is not "
                "part of Sentence Transformers. Importing it executes third-party code. You can inspect the "
                f"model's files at {location}.\n"
                "Please pass the argument `trust_remote_code=True` to allow custom code to be run."
            )
        from transformers import dynamic_module_utils

        try:
            return dynamic_module_utils.get_class_from_dynamic_module(
                class_ref,
                model_name_or_path,
                revision=revision,
                code_revision=code_revision,
                token=token,
                cache_dir=cache_folder,
                local_files_only=local_files_only,
            )
        except (OSError, ValueError):
            # No such modeling file in the model, or a reference it cannot parse: the class may
            # still be importable from an installed package.
            pass

    return import_from_string(class_ref)


@contextmanager
def disable_logging(highest_level: int = logging.CRITICAL) -> Iterator[None]:
    """Drop every log record up to ``highest_level`` inside the block, then restore the previous setting."""
    previous = logging.root.manager.disable
    logging.disable(highest_level)
    try:
        yield
    finally:
        logging.disable(previous)


@contextmanager
def disable_datasets_caching() -> Iterator[None]:
    """Turn off Hugging Face ``datasets`` caching inside the block (if it was on)."""
    from datasets import disable_caching, enable_caching, is_caching_enabled

    was_enabled = is_caching_enabled()
    if was_enabled:
        disable_caching()
    try:
        yield
    finally:
        if was_enabled:
            enable_caching()


def append_to_last_row(csv_path: str, additional_data: Iterable[Any]) -> bool:
    """Extend the last data row of a CSV file with ``additional_data``.

    Returns False (and leaves the file alone) when the file has no data row below its header.
    """
    with open(csv_path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if len(rows) < 2:
        return False
    rows[-1].extend(str(value) for value in additional_data)
    with open(csv_path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return True
