"""The one module registry: ``modules.json`` type strings to classes, and loading and saving modules.

Every model kind (SentenceTransformer, CrossEncoder) and the Router read and write their modules
through this file. Classes are found by their class name in a table of module paths, imported on
first use, so this leaf module imports no model kind: the type strings sentence-transformers 6
writes (``sentence_transformers.base.modules.transformer.Transformer``), the older ones
(``sentence_transformers.models.Transformer``) and embedforge's own all resolve to the same class.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
from collections import OrderedDict
from typing import Any

from torch import nn

from embedforge.exceptions import ModelFormatError
from embedforge.util.misc import import_from_string

#: Class name -> the embedforge module that defines it (imported when a folder names the class).
MODULE_CLASS_PATHS: dict[str, str] = {
    "Asym": "embedforge.base.modules.router",
    "BoW": "embedforge.sentence_transformer.modules.bow",
    "CNN": "embedforge.sentence_transformer.modules.cnn",
    "Dense": "embedforge.base.modules.dense",
    "Dropout": "embedforge.sentence_transformer.modules.dropout",
    "LSTM": "embedforge.sentence_transformer.modules.lstm",
    "LayerNorm": "embedforge.sentence_transformer.modules.layer_norm",
    "LogitScore": "embedforge.cross_encoder.modules.logit_score",
    "Normalize": "embedforge.base.modules.normalize",
    "Pooling": "embedforge.sentence_transformer.modules.pooling",
    "Router": "embedforge.base.modules.router",
    "StaticEmbedding": "embedforge.sentence_transformer.modules.static_embedding",
    "Transformer": "embedforge.base.modules.transformer",
    "WeightedLayerPooling": "embedforge.sentence_transformer.modules.weighted_layer_pooling",
    "WordEmbeddings": "embedforge.sentence_transformer.modules.word_embeddings",
    "WordWeights": "embedforge.sentence_transformer.modules.word_weights",
}
#: Type-string prefixes whose class names this registry serves.
KNOWN_PREFIXES = ("sentence_transformers.", "embedforge.")


def module_class_from_type(type_ref: str) -> type[nn.Module]:
    """The class for a ``modules.json`` type.

    sentence-transformers' old and new names and embedforge's resolve to embedforge's class; any other
    dotted path (a user's own module class, saved with its import path) is imported from the local
    environment, as sentence-transformers does.
    """
    if not isinstance(type_ref, str) or "." not in type_ref:
        raise ModelFormatError(f"module types must be dotted class paths, got {type_ref!r}")
    class_name = type_ref.rsplit(".", 1)[-1]
    if type_ref.startswith(KNOWN_PREFIXES):
        module_path = MODULE_CLASS_PATHS.get(class_name)
        if module_path is None:
            raise ModelFormatError(
                f"modules.json names module type {type_ref!r}, which embedforge does not provide; "
                f"known modules: {sorted(MODULE_CLASS_PATHS)}"
            )
        return getattr(importlib.import_module(module_path), class_name)
    try:
        found = import_from_string(type_ref)
    except ImportError as error:
        raise ModelFormatError(
            f"modules.json names module type {type_ref!r}, which cannot be imported here ({error}); "
            "install the package that defines it"
        ) from error
    if not (isinstance(found, type) and issubclass(found, nn.Module)):
        raise ModelFormatError(f"modules.json type {type_ref!r} is {found!r}, not a torch.nn.Module class")
    return found


def module_type_ref(module: nn.Module) -> str:
    """The type string saved for ``module``.

    embedforge modules write the sentence-transformers ``models.<Class>`` path, which every
    sentence-transformers release reads; other modules write their own import path.
    """
    st_type = getattr(type(module), "st_type", None)
    if callable(st_type):
        return str(st_type())
    return f"{type(module).__module__}.{type(module).__name__}"


def load_module(module_class: type[nn.Module], folder: str, subfolder: str, load_kwargs: dict[str, Any]) -> nn.Module:
    """Call ``module_class.load`` with the load options its signature accepts.

    An old-style ``load(path)`` (one positional parameter) gets the module's own folder.
    """
    # ``load`` is the classmethod every saved module class provides by convention; nn.Module does not declare it.
    load = module_class.load  # type: ignore[attr-defined]
    parameters = inspect.signature(load).parameters
    positional = [p for p in parameters.values() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    if len(positional) == 1:
        return load(os.path.join(folder, subfolder))
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        options = dict(load_kwargs)
    else:
        options = {key: value for key, value in load_kwargs.items() if key in parameters}
    return load(folder, subfolder=subfolder, **options)


def save_module(module: nn.Module, folder: str, safe_serialization: bool = True, **kwargs: Any) -> None:
    """Call ``module.save`` with the options it accepts; an old-style ``save(self, path)`` gets only the path."""
    save = getattr(module, "save", None)
    if not callable(save):
        raise ModelFormatError(f"{type(module).__name__} has no save(path) method, so it cannot be saved in a model")
    parameters = inspect.signature(save).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    if takes_any:
        save(folder, safe_serialization=safe_serialization, **kwargs)
        return
    options = {"safe_serialization": safe_serialization, **kwargs}
    accepted = {key: value for key, value in options.items() if key in parameters}
    try:
        save(folder, **accepted)
    except TypeError as error:
        # A save() that names the option but still rejects it (a wrapper, an override): save without it.
        if "safe_serialization" not in str(error) or "safe_serialization" not in accepted:
            raise
        save(folder)


def read_json(path: str, expected: type) -> Any:
    """Parse a JSON file of a model folder, failing with ModelFormatError unless it holds an ``expected``."""
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelFormatError(f"{path!r} is not valid JSON: {error}") from error
    if not isinstance(value, expected):
        raise ModelFormatError(f"{path!r} must hold a JSON {expected.__name__}, got {type(value).__name__}")
    return value


def load_modules(
    folder: str, load_kwargs: dict[str, Any], extra_options: dict[type, dict[str, Any]] | None = None
) -> tuple[OrderedDict[str, nn.Module], dict[str, list[str]]]:
    """The modules ``modules.json`` lists, loaded in order, and the forward kwargs each takes.

    ``extra_options`` adds load options per module class (a CrossEncoder's Transformer is told its task).
    """
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    module_kwargs: dict[str, list[str]] = {}
    for position, entry in enumerate(read_json(os.path.join(folder, "modules.json"), list)):
        if not isinstance(entry, dict) or "type" not in entry or "path" not in entry:
            raise ModelFormatError(f"modules.json entry {position} in {folder!r} needs 'type' and 'path': {entry!r}")
        subfolder = entry["path"]
        if os.path.isabs(subfolder) or ".." in subfolder.replace("\\", "/").split("/"):
            raise ModelFormatError(f"modules.json entry {position} has path {subfolder!r} outside the model folder")
        module_class = module_class_from_type(entry["type"])
        options = {**load_kwargs, **(extra_options or {}).get(module_class, {})}
        name = str(entry.get("name", position))
        modules[name] = load_module(module_class, folder, subfolder if subfolder != "." else "", options)
        if entry.get("kwargs"):
            module_kwargs[name] = list(entry["kwargs"])
    return modules, module_kwargs


def save_modules(
    model: nn.Sequential, folder: str, module_kwargs: dict[str, list[str]], safe_serialization: bool = True
) -> None:
    """Write each module of ``model`` into its subfolder of ``folder`` and list them in ``modules.json``.

    The first module goes in the root when it says so (``save_in_root``), as sentence-transformers
    lays out a Transformer; the others in ``<index>_<ClassName>``.
    """
    entries = []
    for index, (name, module) in enumerate(model._modules.items()):
        if module is None:
            continue
        subfolder = "" if index == 0 and getattr(module, "save_in_root", False) else f"{index}_{type(module).__name__}"
        module_dir = os.path.join(folder, subfolder)
        os.makedirs(module_dir, exist_ok=True)
        save_module(module, module_dir, safe_serialization=safe_serialization)
        entry: dict[str, Any] = {"idx": index, "name": name, "path": subfolder, "type": module_type_ref(module)}
        if module_kwargs.get(name):
            entry["kwargs"] = module_kwargs[name]
        entries.append(entry)
    with open(os.path.join(folder, "modules.json"), "w", encoding="utf-8") as f:
        json.dump(entries, f, indent=2)


__all__ = [
    "MODULE_CLASS_PATHS",
    "load_module",
    "load_modules",
    "module_class_from_type",
    "module_type_ref",
    "read_json",
    "save_module",
    "save_modules",
]
