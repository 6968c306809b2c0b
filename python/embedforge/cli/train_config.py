"""The configuration of ``embedforge train``: read a YAML/JSON file, merge command-line overrides, check every key."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any

from embedforge.exceptions import EmbedforgeError, InvalidArgumentError

#: Keys each section accepts (``args`` accepts the fields of SentenceTransformerTrainingArguments instead).
SECTION_KEYS: dict[str, tuple[str, ...]] = {
    "model": ("path", "tokenizer", "embedding_dim", "similarity_fn_name"),
    "data": ("train", "eval", "columns"),
    "loss": ("name", "kwargs", "matryoshka_dims", "matryoshka_weights"),
    "evaluator": ("type", "name", "queries", "corpus", "qrels", "pairs", "kwargs"),
    "args": (),
}

#: Keys that name input files; relative paths in a config file are relative to that file's folder.
PATH_KEYS: dict[str, tuple[str, ...]] = {
    "model": ("path", "tokenizer"),
    "data": ("train", "eval"),
    "evaluator": ("queries", "corpus", "qrels", "pairs"),
}

#: Evaluator types and the file keys each one needs.
EVALUATOR_FILES: dict[str, tuple[str, ...]] = {
    "information_retrieval": ("queries", "corpus", "qrels"),
    "embedding_similarity": ("pairs",),
}

#: Training-argument defaults of the command (the library's own defaults otherwise apply).
DEFAULT_ARGS: dict[str, Any] = {
    "output_dir": "output/embedforge-train",
    # In-batch-negative losses (the default MultipleNegativesRankingLoss) need batches without repeated texts.
    "batch_sampler": "no_duplicates",
    # Nothing is sent to experiment trackers unless asked for.
    "report_to": "none",
}


class TrainConfigError(InvalidArgumentError):
    """The configuration of ``embedforge train`` has an unknown key, a bad value or a missing part."""


class DataFileNotFoundError(EmbedforgeError, FileNotFoundError):
    """A data, tokenizer or model path named in the configuration does not exist."""


@dataclass
class TrainConfig:
    """A checked ``embedforge train`` configuration: one dict per section, paths resolved."""

    model: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    loss: dict[str, Any] = field(default_factory=dict)
    evaluator: dict[str, Any] = field(default_factory=dict)
    args: dict[str, Any] = field(default_factory=dict)

    @property
    def output_dir(self) -> str:
        """Where checkpoints go; the final model is saved in its ``final`` subfolder."""
        return str(self.args["output_dir"])


def read_config_file(path: str, path_keys: dict[str, tuple[str, ...]] | None = None) -> dict[str, Any]:
    """Parse a ``.yaml``/``.yml`` or ``.json`` config file into a dict.

    The values of ``path_keys`` (section -> keys; default: ``embedforge train``'s) that are relative
    paths are made relative to the file's folder.
    """
    if not os.path.isfile(path):
        raise DataFileNotFoundError(f"config file {path!r} does not exist")
    extension = os.path.splitext(path)[1].lower()
    if extension not in (".json", ".yaml", ".yml"):
        raise TrainConfigError(f"config file {path!r} has extension {extension!r}; expected .yaml, .yml or .json")
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    if extension == ".json":
        try:
            content = json.loads(text)
        except json.JSONDecodeError as error:
            raise TrainConfigError(f"config file {path!r} is not valid JSON: {error}") from error
    else:
        import yaml

        try:
            content = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise TrainConfigError(f"config file {path!r} is not valid YAML: {error}") from error
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise TrainConfigError(f"config file {path!r} holds a {type(content).__name__}; expected a mapping of sections")
    return _resolve_paths(content, os.path.dirname(os.path.abspath(path)), path_keys or PATH_KEYS)


def _resolve_paths(content: dict[str, Any], base_dir: str, path_keys: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """Make the config file's relative input paths relative to its folder instead of the working directory."""
    content = copy.deepcopy(content)
    for section, keys in path_keys.items():
        values = content.get(section)
        if not isinstance(values, dict):
            continue
        for key in keys:
            value = values.get(key)
            if isinstance(value, str):
                values[key] = os.path.join(base_dir, value)
            elif isinstance(value, list):
                values[key] = [os.path.join(base_dir, item) if isinstance(item, str) else item for item in value]
    return content


def parse_override(text: str) -> tuple[str, str, Any]:
    """``section.key=value`` (value read as YAML, so numbers, booleans and lists work) -> (section, key, value)."""
    name, separator, raw_value = text.partition("=")
    section, dot, key = name.strip().partition(".")
    if not separator or not dot or not key:
        raise TrainConfigError(f"--set {text!r} is not valid; expected SECTION.KEY=VALUE, e.g. args.learning_rate=0.1")
    import yaml

    try:
        value = yaml.safe_load(raw_value)
    except yaml.YAMLError:  # not YAML: keep the text as given
        value = raw_value
    return section, key, value


def merge_overrides(content: dict[str, Any], overrides: list[tuple[str, str, Any]]) -> dict[str, Any]:
    """A copy of ``content`` with each (section, key, value) set; later overrides win."""
    merged = copy.deepcopy(content)
    for section, key, value in overrides:
        target = merged.setdefault(section, {})
        if not isinstance(target, dict):
            raise TrainConfigError(f"config section {section!r} is a {type(target).__name__}; expected a mapping")
        target[key] = value
    return merged


def training_argument_names() -> list[str]:
    """Every field a SentenceTransformerTrainingArguments accepts."""
    from embedforge.sentence_transformer.training_args import SentenceTransformerTrainingArguments

    return sorted(item.name for item in dataclasses.fields(SentenceTransformerTrainingArguments) if item.init)


def build_config(content: dict[str, Any]) -> TrainConfig:
    """Check every section and key of ``content`` and fill in defaults."""
    unknown_sections = sorted(set(content) - set(SECTION_KEYS))
    if unknown_sections:
        raise TrainConfigError(
            f"config has unknown section(s) {unknown_sections}; valid sections are {sorted(SECTION_KEYS)}"
        )
    sections: dict[str, dict[str, Any]] = {}
    for section, section_keys in SECTION_KEYS.items():
        values = content.get(section) or {}
        if section == "loss" and isinstance(values, str):
            values = {"name": values}  # shorthand: `loss: CoSENTLoss`
        if not isinstance(values, dict):
            raise TrainConfigError(f"config section {section!r} is a {type(values).__name__}; expected a mapping")
        valid = training_argument_names() if section == "args" else list(section_keys)
        for key in values:
            if key not in valid:
                raise TrainConfigError(
                    f"config key '{section}.{key}' is not valid; valid keys in '{section}' are {valid}"
                )
        sections[section] = dict(values)

    config = TrainConfig(**sections)
    config.args = {**DEFAULT_ARGS, **config.args}
    _check_model(config.model)
    _check_data(config.data)
    _check_loss(config.loss)
    _check_evaluator(config.evaluator)
    return config


def _check_model(model: dict[str, Any]) -> None:
    has_path = model.get("path") is not None
    has_static = model.get("tokenizer") is not None or model.get("embedding_dim") is not None
    if has_path == has_static:
        raise TrainConfigError(
            "config section 'model' needs either 'path' (a local model folder) or 'tokenizer' (a tokenizer.json) "
            f"with 'embedding_dim' (a new StaticEmbedding model); got keys {sorted(k for k in model if model[k])}"
        )
    if has_static:
        if model.get("tokenizer") is None:
            raise TrainConfigError("config key 'model.embedding_dim' needs 'model.tokenizer' (a tokenizer.json path)")
        dim = model.get("embedding_dim")
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            raise TrainConfigError(f"config key 'model.embedding_dim' is {dim!r}; expected a positive int")
        _require_file(model["tokenizer"], "model.tokenizer")
    else:
        _require_path(model["path"], "model.path", folder=True)


def _check_data(data: dict[str, Any]) -> None:
    if not data.get("train"):
        raise TrainConfigError(
            "config key 'data.train' is missing; expected a CSV, JSON Lines or Parquet file (or list)"
        )
    for key in ("train", "eval"):
        for path in as_path_list(data.get(key), f"data.{key}"):
            _require_file(path, f"data.{key}")
    columns = data.get("columns")
    if columns is not None and (not isinstance(columns, list) or not all(isinstance(c, str) for c in columns)):
        raise TrainConfigError(f"config key 'data.columns' is {columns!r}; expected a list of column names")


def _check_loss(loss: dict[str, Any]) -> None:
    from embedforge.cli.train_loss import loss_names

    name = loss.setdefault("name", "MultipleNegativesRankingLoss")
    if name not in loss_names():
        raise TrainConfigError(f"config key 'loss.name' is {name!r}, not a known loss; valid names are {loss_names()}")
    kwargs = loss.get("kwargs")
    if kwargs is not None and not isinstance(kwargs, dict):
        raise TrainConfigError(f"config key 'loss.kwargs' is {kwargs!r}; expected a mapping of argument names")
    dims = loss.get("matryoshka_dims")
    if dims is not None and (
        not isinstance(dims, list) or not dims or not all(isinstance(d, int) and d > 0 for d in dims)
    ):
        raise TrainConfigError(f"config key 'loss.matryoshka_dims' is {dims!r}; expected a list of positive ints")
    if loss.get("matryoshka_weights") is not None and dims is None:
        raise TrainConfigError("config key 'loss.matryoshka_weights' needs 'loss.matryoshka_dims'")


def _check_evaluator(evaluator: dict[str, Any]) -> None:
    if not evaluator:
        return
    kind = evaluator.get("type")
    if kind is None:
        kind = next((name for name, keys in EVALUATOR_FILES.items() if keys[0] in evaluator), None)
        evaluator["type"] = kind
    if kind not in EVALUATOR_FILES:
        raise TrainConfigError(
            f"config key 'evaluator.type' is {kind!r}; expected one of {sorted(EVALUATOR_FILES)} "
            "(or give 'queries'/'corpus'/'qrels' or 'pairs' files)"
        )
    for key in EVALUATOR_FILES[kind]:
        if not evaluator.get(key):
            raise TrainConfigError(f"a {kind} evaluator needs config key 'evaluator.{key}' (a data file)")
    for key in EVALUATOR_FILES[kind]:
        _require_file(evaluator[key], f"evaluator.{key}")
    extra = sorted(key for key in ("queries", "corpus", "qrels", "pairs") if evaluator.get(key))
    misplaced = [key for key in extra if key not in EVALUATOR_FILES[kind]]
    if misplaced:
        raise TrainConfigError(
            f"config keys {['evaluator.' + key for key in misplaced]} do not apply to a {kind} evaluator, "
            f"which reads {list(EVALUATOR_FILES[kind])}"
        )
    kwargs = evaluator.get("kwargs")
    if kwargs is not None and not isinstance(kwargs, dict):
        raise TrainConfigError(f"config key 'evaluator.kwargs' is {kwargs!r}; expected a mapping of argument names")


def as_path_list(value: Any, key: str) -> list[str]:
    """One path or a list of paths as a list; anything else is a config error naming ``key``."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise TrainConfigError(f"config key {key!r} is {value!r}; expected a file path or a list of file paths")


def _require_file(path: Any, key: str) -> None:
    _require_path(path, key, folder=False)


def _require_path(path: Any, key: str, folder: bool) -> None:
    if not isinstance(path, str):
        raise TrainConfigError(f"config key {key!r} is {path!r}; expected a path")
    exists = os.path.isdir(path) if folder else os.path.isfile(path)
    if not exists:
        kind = "folder" if folder else "file"
        raise DataFileNotFoundError(f"config key {key!r} names {path!r}, but no such {kind} exists")
