"""The configuration of ``embedforge augment``: which scenario, which data files, models and settings.

```yaml
scenario: in_domain            # or domain_transfer
task: similarity               # evaluation of gold/dev/test (in_domain) or of the source (domain_transfer)
output_dir: output/embedforge-augment
data:
  gold: gold.csv               # in_domain: text, text, label
  dev: dev.csv                 # optional, same columns
  test: test.csv               # optional
  source: source.csv           # domain_transfer: the annotated source pairs
  source_dev: source-dev.csv   # optional
  target: target.csv           # domain_transfer: unlabelled target pairs (two text columns)
  target_dev: target-dev.csv   # optional, with 0/1 labels (target_task: classification)
  target_test: target-test.csv
  target_task: classification
sampling: {strategy: bm25, top_k: 3, model: FOLDER, num_pairs: null}
cross_encoder: {path: FOLDER, epochs: 1, batch_size: 16, learning_rate: 2.0e-5, ...}
bi_encoder: {path: FOLDER, loss: CosineSimilarityLoss, threshold: 0.5, ...}
```
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from embedforge.cli.train_config import DataFileNotFoundError, TrainConfigError
from embedforge.data_augmentation.pair_sampling import STRATEGIES
from embedforge.data_augmentation.recipe import TASKS
from embedforge.data_augmentation.training import TrainingSettings

SCENARIOS = ("in_domain", "domain_transfer")

#: Keys of each section; the model sections also take every TrainingSettings field.
SECTION_KEYS: dict[str, tuple[str, ...]] = {
    "data": ("gold", "dev", "test", "source", "source_dev", "target", "target_dev", "target_test", "target_task"),
    "sampling": ("strategy", "top_k", "model", "num_pairs", "batch_size"),
    "cross_encoder": ("path",),
    "bi_encoder": ("path", "threshold"),
}
TOP_LEVEL_KEYS = ("scenario", "task", "output_dir")

#: Keys that name files or folders (made relative to the config file's folder).
PATH_KEYS: dict[str, tuple[str, ...]] = {
    "data": ("gold", "dev", "test", "source", "source_dev", "target", "target_dev", "target_test"),
    "sampling": ("model",),
    "cross_encoder": ("path",),
    "bi_encoder": ("path",),
}

#: Data files each scenario needs.
REQUIRED_DATA = {"in_domain": ("gold",), "domain_transfer": ("source", "target")}


class AugmentConfigError(TrainConfigError):
    """The configuration of ``embedforge augment`` has an unknown key, a bad value or a missing part."""


@dataclass
class AugmentConfig:
    """A checked ``embedforge augment`` configuration."""

    scenario: str
    task: str
    output_dir: str
    data: dict[str, Any] = field(default_factory=dict)
    sampling: dict[str, Any] = field(default_factory=dict)
    cross_encoder_path: str = ""
    bi_encoder_path: str = ""
    threshold: float = 0.5
    cross_encoder: TrainingSettings = field(default_factory=TrainingSettings)
    bi_encoder: TrainingSettings = field(default_factory=TrainingSettings)


def build_augment_config(content: dict[str, Any]) -> AugmentConfig:
    """Check every key of ``content`` and fill in the defaults."""
    unknown = sorted(set(content) - set(SECTION_KEYS) - set(TOP_LEVEL_KEYS))
    if unknown:
        raise AugmentConfigError(
            f"config has unknown key(s) {unknown}; valid keys are {sorted([*TOP_LEVEL_KEYS, *SECTION_KEYS])}"
        )
    scenario = content.get("scenario", "in_domain")
    if scenario not in SCENARIOS:
        raise AugmentConfigError(f"config key 'scenario' is {scenario!r}; expected one of {list(SCENARIOS)}")
    task = content.get("task", "similarity")
    if task not in TASKS:
        raise AugmentConfigError(f"config key 'task' is {task!r}; expected one of {list(TASKS)}")
    sections = {name: _section(content, name) for name in SECTION_KEYS}
    data, sampling = sections["data"], sections["sampling"]
    for key in REQUIRED_DATA[scenario]:
        if not data.get(key):
            raise AugmentConfigError(f"scenario {scenario!r} needs config key 'data.{key}' (a data file)")
    for key in PATH_KEYS["data"]:
        if data.get(key) is not None:
            _require(data[key], f"data.{key}", folder=False)
    target_task = data.get("target_task", "classification")
    if target_task not in TASKS:
        raise AugmentConfigError(f"config key 'data.target_task' is {target_task!r}; expected one of {list(TASKS)}")
    strategy = sampling.get("strategy", "bm25")
    if strategy not in STRATEGIES:
        raise AugmentConfigError(f"config key 'sampling.strategy' is {strategy!r}; expected one of {list(STRATEGIES)}")
    top_k = sampling.get("top_k", 3)
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
        raise AugmentConfigError(f"config key 'sampling.top_k' is {top_k!r}; expected a positive integer")
    # Checked here rather than when used, which is after the cross-encoder has trained.
    for key, least in (("num_pairs", 0), ("batch_size", 1)):
        value = sampling.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < least):
            raise AugmentConfigError(f"config key 'sampling.{key}' is {value!r}; expected an integer >= {least}")
    if sampling.get("model") is not None:
        _require(sampling["model"], "sampling.model", folder=True)

    models = {}
    for name in ("cross_encoder", "bi_encoder"):
        values = dict(sections[name])
        path = values.pop("path", None)
        if path is None:
            raise AugmentConfigError(f"config key '{name}.path' is missing; expected a local model folder")
        _require(path, f"{name}.path", folder=True)
        values.pop("threshold", None)
        try:
            settings = TrainingSettings.from_dict(values, f"config section {name!r}")
        except (TypeError, ValueError) as error:
            raise AugmentConfigError(str(error)) from error
        models[name] = (path, settings)
    threshold = sections["bi_encoder"].get("threshold", 0.5)
    if not isinstance(threshold, (int, float)) or isinstance(threshold, bool):
        raise AugmentConfigError(f"config key 'bi_encoder.threshold' is {threshold!r}; expected a number")
    return AugmentConfig(
        scenario=scenario,
        task=task,
        output_dir=str(content.get("output_dir") or "output/embedforge-augment"),
        data={**data, "target_task": target_task},
        sampling={**sampling, "strategy": strategy, "top_k": top_k},
        cross_encoder_path=models["cross_encoder"][0],
        bi_encoder_path=models["bi_encoder"][0],
        threshold=float(threshold),
        cross_encoder=models["cross_encoder"][1],
        bi_encoder=models["bi_encoder"][1],
    )


def _section(content: dict[str, Any], name: str) -> dict[str, Any]:
    values = content.get(name) or {}
    if not isinstance(values, dict):
        raise AugmentConfigError(f"config section {name!r} is a {type(values).__name__}; expected a mapping")
    if name in ("cross_encoder", "bi_encoder"):
        return dict(values)  # the rest is checked against TrainingSettings
    unknown = sorted(set(values) - set(SECTION_KEYS[name]))
    if unknown:
        raise AugmentConfigError(
            f"config key(s) {[f'{name}.{key}' for key in unknown]} are not valid; "
            f"valid keys in '{name}' are {list(SECTION_KEYS[name])}"
        )
    return dict(values)


def _require(path: Any, key: str, folder: bool) -> None:
    if not isinstance(path, str):
        raise AugmentConfigError(f"config key {key!r} is {path!r}; expected a path")
    if not (os.path.isdir(path) if folder else os.path.isfile(path)):
        kind = "folder" if folder else "file"
        raise DataFileNotFoundError(f"config key {key!r} names {path!r}, but no such {kind} exists")
