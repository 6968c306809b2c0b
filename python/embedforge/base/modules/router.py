"""Router (old name Asym): send each batch through one of several module pipelines, chosen by task or modality."""

from __future__ import annotations

import ast
import inspect
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, ClassVar, cast

from torch import nn

from embedforge.base.modality import infer_batch_modality
from embedforge.base.modules.input_module import InputModule
from embedforge.base.modules.registry import load_module, module_class_from_type, module_type_ref, save_module
from embedforge.exceptions import InvalidArgumentError, ModelFormatError

if TYPE_CHECKING:
    # typing.Self is Python 3.11+; annotations are never evaluated at runtime here.
    from typing_extensions import Self

__all__ = ["Asym", "Router"]

logger = logging.getLogger(__name__)

#: Dict keys that name input modalities; any other single dict key is an old-style task name.
_MODALITY_KEYS = frozenset({"text", "image", "audio", "video", "message"})

RouteKey = tuple[str | None, str | tuple[str, ...] | None]


class Router(InputModule):
    """Routes inputs to one of several module pipelines, e.g. a cheap query encoder and a strong document encoder.

    The route is picked from the ``task`` (``encode_query`` passes ``"query"``, ``encode_document`` passes
    ``"document"``) and the input modality, in this order: ``route_mappings[(task, modality)]``, then
    ``(task, None)``, ``(None, modality)``, ``(None, None)``; then a route named like the task, then one named like
    the modality; then ``default_route``. :meth:`preprocess` tokenises with the first module of the chosen route and
    records the task in the features, so :meth:`forward` runs the same route.
    """

    forward_kwargs: ClassVar[set[str]] = {"task", "modality"}
    config_keys: ClassVar[list[str]] = ["default_route", "allow_empty_key", "route_mappings"]
    config_file_name = "router_config.json"

    def __init__(
        self,
        sub_modules: Mapping[str, Sequence[nn.Module]],
        default_route: str | None = None,
        allow_empty_key: bool = True,
        route_mappings: dict[RouteKey, str] | None = None,
    ) -> None:
        super().__init__()
        if sub_modules is None or (isinstance(sub_modules, Mapping) and not sub_modules):
            raise InvalidArgumentError("The sub_modules dictionary cannot be empty.")
        if not isinstance(sub_modules, Mapping):
            raise InvalidArgumentError(
                f"sub_modules must be a dict of route name -> list of modules, got {type(sub_modules).__name__}"
            )
        for route, modules in sub_modules.items():
            if not isinstance(route, str) or not route:
                raise InvalidArgumentError(f"sub_modules keys must be non-empty route names, got {route!r}")
            if isinstance(modules, nn.Module) and not isinstance(modules, nn.Sequential):
                raise InvalidArgumentError(
                    f"sub_modules[{route!r}] must be a list of modules, got a single {type(modules).__name__}"
                )
            if len(modules) == 0:
                raise InvalidArgumentError(f"sub_modules[{route!r}] is empty; every route needs at least one module")
        if default_route is not None and default_route not in sub_modules:
            raise InvalidArgumentError(f"Default route '{default_route}' not found in route keys: {list(sub_modules)}")
        for key, target in (route_mappings or {}).items():
            if not (isinstance(key, tuple) and len(key) == 2):
                raise InvalidArgumentError(f"route_mappings keys must be (task, modality) pairs, got {key!r}")
            if target not in sub_modules:
                raise InvalidArgumentError(
                    f"route_mappings contains mapping to '{target}' which is not in sub_modules. "
                    f"Available routes: {list(sub_modules)}"
                )

        self.sub_modules = nn.ModuleDict({route: nn.Sequential(*modules) for route, modules in sub_modules.items()})
        if default_route is None and allow_empty_key:
            default_route = next(iter(sub_modules))
        self.default_route = default_route
        self.allow_empty_key = allow_empty_key
        # Tuple modalities are order-free: ("image", "text") and ("text", "image") are the same route key.
        self.route_mappings: dict[RouteKey, str] = {
            (task, _normalise_modality(modality)): target for (task, modality), target in (route_mappings or {}).items()
        }

    @classmethod
    def for_query_document(
        cls,
        query_modules: Sequence[nn.Module],
        document_modules: Sequence[nn.Module],
        default_route: str | None = "document",
        allow_empty_key: bool = True,
    ) -> Self:
        """A Router with a ``query`` and a ``document`` route, for ``encode_query`` / ``encode_document``."""
        return cls(
            sub_modules={"query": query_modules, "document": document_modules},
            default_route=default_route,
            allow_empty_key=allow_empty_key,
        )

    # -- routing ------------------------------------------------------------------------------------

    def _pipelines(self) -> dict[str, nn.Sequential]:
        """``sub_modules`` with the value type __init__ stores (ModuleDict only promises plain Modules)."""
        return {route: cast(nn.Sequential, modules) for route, modules in self.sub_modules.items()}

    @property
    def modalities(self) -> list[Any]:
        """Every modality some route's input module accepts."""
        found = {m for route in self._pipelines().values() for m in getattr(route[0], "modalities", ["text"])}
        return sorted(found, key=str)

    def _get_routes_string(self) -> str:
        """The ways a route can be chosen (``task='query', ... and modality='image'``), for error messages."""
        ways = [f"task={name!r}" for name in self.sub_modules]
        for task, modality in self.route_mappings:
            if modality is None:
                ways.append(f"task={task!r}")
            elif task is None:
                ways.append(f"modality={_format_modality(modality)!r}")
            else:
                ways.append(f"(task={task!r}, modality={_format_modality(modality)!r})")
        if len(ways) <= 1:
            return "".join(ways)
        return ", ".join(ways[:-1]) + " and " + ways[-1]

    def _resolve_route_name(self, task: str | None = None, modality: Any = None) -> str | None:
        """The route the mappings, or the task/modality names themselves, select; None when nothing does.

        Raises:
            ValueError: If a task is given and no route serves it.
        """
        modality = _normalise_modality(modality)
        for key in ((task, modality), (task, None), (None, modality), (None, None)):
            if key in self.route_mappings:
                return self.route_mappings[key]
        if task and task in self.sub_modules:
            return task
        if isinstance(modality, str) and modality in self.sub_modules:
            return modality
        if task is not None:
            raise InvalidArgumentError(
                f"No route found for task type '{task}'. Available routes: {self._get_routes_string()}"
            )
        return None

    def _resolve_route(self, task: str | None = None, modality: Any = None) -> str:
        """The route for ``task`` and ``modality``, falling back to ``default_route``.

        Raises:
            ValueError: If no route applies and there is no default route.
        """
        route = self._resolve_route_name(task=task, modality=modality)
        if route is None:
            route = self.default_route
        if route is None:
            if self.training:
                raise InvalidArgumentError(
                    "You must provide a `router_mapping` argument on the training arguments, "
                    "or set a default route in the `Router` module."
                )
            shown = _format_modality(modality) if modality is not None else None
            raise InvalidArgumentError(
                f"Could not determine route for task={task!r}, modality={shown!r}. Available routes: "
                f"{self._get_routes_string()}. Consider specifying the `task` parameter in `model.encode`, or "
                "setting a default route in the `Router`."
            )
        if route not in self.sub_modules:
            raise InvalidArgumentError(
                f"Resolved route '{route}' not found in sub_modules. Available submodule keys: {list(self.sub_modules)}"
            )
        return route

    def resolve_route(self, task: str | None = None, modality: Any = None) -> str:
        """The name of the route that ``task`` and ``modality`` select (falling back to ``default_route``)."""
        return self._resolve_route(task=task, modality=modality)

    # -- input and forward --------------------------------------------------------------------------

    def preprocess(
        self,
        inputs: Sequence[Any],
        prompt: str | None = None,
        task: str | None = None,
        modality: Any = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Preprocess ``inputs`` with the chosen route's input module; the features remember ``task``/``modality``."""
        if isinstance(inputs, str):
            raise InvalidArgumentError(f"inputs must be a list, got the string {inputs!r}")
        inputs = list(inputs)
        if task is None and inputs and isinstance(inputs[0], dict):
            task, inputs = _unwrap_task_dicts(inputs)
        if modality is None and inputs:
            try:
                modality = infer_batch_modality(inputs, supported_modalities=self.modalities)
            except (ValueError, TypeError):
                modality = None  # routing then relies on the task and the default route
        route = self._resolve_route(task=task, modality=modality)
        # Any: input modules share a duck-typed interface (preprocess), not necessarily a base class.
        first: Any = cast(nn.Sequential, self.sub_modules[route])[0]
        features = first.preprocess(inputs, prompt=prompt, task=task, **kwargs)
        features["task"] = task
        if modality is not None:
            features["modality"] = modality
        return features

    def tokenize(self, texts: list[Any], **kwargs: Any) -> dict[str, Any]:
        """Old name of :meth:`preprocess`."""
        return self.preprocess(texts, **kwargs)

    def forward(
        self, features: dict[str, Any], task: str | None = None, modality: Any = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Run ``features`` through the route that ``task`` (or ``features['task']``) selects."""
        if task is None:
            task = features.get("task")
        if modality is None:
            modality = features.get("modality")
        route = self._resolve_route(task=task, modality=modality)
        kwargs = {**kwargs, "task": task, "modality": modality}
        for module in cast(nn.Sequential, self.sub_modules[route]):
            features = module(features, **_declared_kwargs(module, kwargs))
        return features

    # -- model-facing properties --------------------------------------------------------------------

    @property
    def tokenizer(self) -> Any:
        """The tokenizer of the first route whose input module has one."""
        for route in self._pipelines().values():
            tokenizer = getattr(route[0], "tokenizer", None)
            if tokenizer is not None:
                return tokenizer
        return None

    @property
    def max_seq_length(self) -> int | None:
        """The routes' input length limit (the largest, with a warning, when they differ)."""
        limits = {
            limit
            for route in self._pipelines().values()
            if (limit := getattr(route[0], "max_seq_length", None)) is not None
        }
        if not limits:
            return None
        if len(limits) > 1:
            logger.warning("The routes have different max_seq_length values %s; reporting the largest", limits)
        return max(limits)

    @max_seq_length.setter
    def max_seq_length(self, value: int | None) -> None:
        """Set the limit on every route's input module that has one."""
        targets: list[Any] = [route[0] for route in self._pipelines().values() if hasattr(route[0], "max_seq_length")]
        if not targets:
            logger.warning("No modules have a max_seq_length attribute to set (no route's input module has one).")
        for module in targets:
            module.max_seq_length = value

    def get_embedding_dimension(self) -> int | None:
        """Output width: that of the last module with a known width in the first route that has one."""
        widths = []
        for route in self._pipelines().values():
            for module in reversed(list(route)):
                getter = getattr(module, "get_embedding_dimension", None) or getattr(
                    module, "get_sentence_embedding_dimension", None
                )
                # Modules that keep the width (Normalize, ...) say None: look further back.
                if callable(getter) and (width := getter()) is not None:
                    widths.append(width)
                    break
        if not widths:
            return None
        if len(set(widths)) > 1:
            logger.warning(
                "Different embedding dimensions detected across routes: %s. Using the first value.", set(widths)
            )
        return widths[0]

    def on_model_ready(self, model: Any) -> None:
        """Pass the owning model's ready hook on to the routed modules (the model only sees the Router)."""
        for route in self._pipelines().values():
            for module in route:
                hook = getattr(module, "on_model_ready", None)
                if callable(hook):
                    hook(model)

    def __repr__(self) -> str:
        return nn.Module.__repr__(self)

    def extra_repr(self) -> str:
        parts = []
        if self.default_route is not None:
            parts.append(f"default_route={self.default_route!r}")
        if self.route_mappings:
            parts.append(f"route_mappings={self.route_mappings}")
        return ", ".join(parts)

    # -- saving and loading -------------------------------------------------------------------------

    def get_config_dict(self) -> dict[str, Any]:
        """The router's own parameters (saved under ``parameters`` in ``router_config.json``)."""
        return {
            "default_route": self.default_route,
            "allow_empty_key": self.allow_empty_key,
            "route_mappings": dict(self.route_mappings),
        }

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        """Save each distinct sub-module in ``<route>_<index>_<Class>/`` and the layout in ``router_config.json``."""
        types: dict[str, str] = {}
        structure: dict[str, list[str]] = {}
        saved: dict[int, str] = {}  # a module shared by several routes is saved once
        for route, modules in self._pipelines().items():
            structure[route] = []
            for index, module in enumerate(modules):
                module_id = saved.get(id(module))
                if module_id is None:
                    module_id = f"{route}_{index}_{type(module).__name__}"
                    saved[id(module)] = module_id
                    module_dir = os.path.join(output_path, module_id)
                    os.makedirs(module_dir, exist_ok=True)
                    save_module(module, module_dir, safe_serialization, **kwargs)
                    types[module_id] = module_type_ref(module)
                structure[route].append(module_id)

        parameters = self.get_config_dict()
        # JSON keys are strings: store each (task, modality) pair as its Python literal, as sentence-transformers does.
        parameters["route_mappings"] = {str(key): target for key, target in parameters["route_mappings"].items()}
        with open(os.path.join(output_path, self.config_file_name), "w", encoding="utf-8") as f:
            json.dump({"types": types, "structure": structure, "parameters": parameters}, f, indent=4)

    @classmethod
    def load(
        cls,
        model_name_or_path: str,
        subfolder: str = "",
        module_classes: Mapping[str, type[nn.Module]] | None = None,
        **kwargs: Any,
    ) -> Self:
        """Load a Router (or an old Asym, whose layout lives in ``config.json``) and all its routes' modules."""
        folder = os.path.join(model_name_or_path, subfolder)
        config = cls.load_config(model_name_or_path, subfolder)
        if not config:
            config = cls.load_config(model_name_or_path, subfolder, config_filename="config.json")
        if not isinstance(config.get("types"), dict) or not isinstance(config.get("structure"), dict):
            raise ModelFormatError(
                f"{folder!r} has no Router layout: expected {cls.config_file_name} (or an Asym config.json) "
                "with 'types' and 'structure'"
            )
        loaded: dict[str, nn.Module] = {}
        for module_id, type_ref in config["types"].items():
            _check_relative(module_id, folder)
            module_class = (module_classes or {}).get(type_ref) or module_class_from_type(type_ref)
            loaded[module_id] = load_module(
                module_class, model_name_or_path, PurePosixPath(subfolder, module_id).as_posix(), kwargs
            )

        routes: dict[str, list[nn.Module]] = {}
        for route, module_ids in config["structure"].items():
            unknown = [module_id for module_id in module_ids if module_id not in loaded]
            if unknown:
                raise ModelFormatError(
                    f"Route {route!r} in {folder!r} uses modules {unknown} that 'types' does not list"
                )
            routes[route] = [loaded[module_id] for module_id in module_ids]

        parameters = dict(config.get("parameters") or {})
        if parameters.get("route_mappings"):
            parameters["route_mappings"] = _parse_route_mappings(parameters["route_mappings"], folder)
        known = {
            key: parameters[key] for key in ("default_route", "allow_empty_key", "route_mappings") if key in parameters
        }
        try:
            return cls(routes, **known)
        except InvalidArgumentError as error:
            raise ModelFormatError(f"Invalid Router config in {folder!r}: {error}") from error


#: sentence-transformers kept the old name; it is the same class.
Asym = Router


def _normalise_modality(modality: Any) -> Any:
    return tuple(sorted(modality)) if isinstance(modality, (tuple, list)) else modality


def _format_modality(modality: Any) -> Any:
    return "+".join(modality) if isinstance(modality, tuple) else modality


def _unwrap_task_dicts(inputs: list[Any]) -> tuple[str | None, list[Any]]:
    """Old Asym inputs ``[{"query": text}, ...]``: take the task from the single shared key."""
    keys = {key for item in inputs if isinstance(item, dict) for key in item}
    if not keys or keys & _MODALITY_KEYS:
        return None, inputs
    if len(keys) > 1 or not all(isinstance(item, dict) and len(item) == 1 for item in inputs):
        raise InvalidArgumentError(
            "You cannot pass a list of dictionaries with different task types. Please ensure all dictionaries have "
            f"the same task type key (got {sorted(keys)}), or pass non-dictionary inputs while providing the `task` "
            "argument."
        )
    task = keys.pop()
    return task, [item[task] for item in inputs]


def _declared_kwargs(module: nn.Module, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments ``module`` asks for: its ``forward_kwargs``, or parameters its forward names."""
    wanted = set(getattr(module, "forward_kwargs", ()) or ())
    parameters: Mapping[str, inspect.Parameter]
    try:
        parameters = inspect.signature(module.forward).parameters
    except (TypeError, ValueError):
        parameters = {}
    wanted.update(
        name
        for name, p in parameters.items()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    )
    return {key: value for key, value in kwargs.items() if key in wanted}


def _check_relative(module_id: Any, folder: str) -> None:
    """Module folders must stay inside the Router's folder."""
    if (
        not isinstance(module_id, str)
        or not module_id
        or os.path.isabs(module_id)
        or ".." in module_id.replace("\\", "/").split("/")
    ):
        raise ModelFormatError(f"Router in {folder!r} names module folder {module_id!r}, which is outside it")


def _parse_route_mappings(raw: Any, folder: str) -> dict[RouteKey, str]:
    """Turn the saved ``"('query', 'text')": route`` entries back into tuple keys."""
    if not isinstance(raw, dict):
        raise ModelFormatError(f"route_mappings in {folder!r} must be an object, got {type(raw).__name__}")
    mappings: dict[RouteKey, str] = {}
    for text, target in raw.items():
        try:
            key = ast.literal_eval(text)
        except (ValueError, SyntaxError) as error:
            raise ModelFormatError(
                f"route_mappings key {text!r} in {folder!r} is not a (task, modality) pair"
            ) from error
        if not (isinstance(key, tuple) and len(key) == 2):
            raise ModelFormatError(f"route_mappings key {text!r} in {folder!r} is not a (task, modality) pair")
        mappings[key] = target
    return mappings
