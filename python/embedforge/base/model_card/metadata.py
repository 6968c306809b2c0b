"""The YAML header of a model card: the metadata fields and the ``model-index`` evaluation results.

Kept apart from the Markdown rendering so that the card data can produce its header (``to_dict``,
``to_yaml``) without importing the renderer, which itself reads the card data.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import yaml

from embedforge.base.model_card import dataset_stats

if TYPE_CHECKING:
    from embedforge.base.model_card.data import BaseModelCardData


# -- YAML header -----------------------------------------------------------------------------------


def card_metadata(data: BaseModelCardData) -> dict[str, Any]:
    """The YAML header fields, only those with a value, in the order the Hub documents them."""
    meta: dict[str, Any] = {}
    if data.language:
        meta["language"] = list(data.language)
    if data.license:
        meta["license"] = data.license
    meta["library_name"] = data.library_name
    meta["tags"] = list(data.tags)
    if data.datasets:
        meta["datasets"] = list(data.datasets)
    evaluations = evaluation_sections(data)
    metric_keys = list(dict.fromkeys(key for section in evaluations for key in section["metrics"]))
    if metric_keys:
        meta["metrics"] = metric_keys
    meta["pipeline_tag"] = data.pipeline_tag
    if data.widget:
        meta["widget"] = [dict(entry) for entry in data.widget]
    if evaluations:
        meta["model-index"] = model_index(data, evaluations)
    if hub_id := data.base_model_hub_id():
        meta["base_model"] = hub_id
    return _plain(meta)


def metadata_yaml(meta: dict[str, Any]) -> str:
    """YAML text of the header (block style, unicode kept, keys in the given order)."""
    return yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1000).strip()


def _plain(value: Any) -> Any:
    """Numpy/torch scalars and tuples turned into plain Python, so YAML writes plain values."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if hasattr(value, "item") and hasattr(value, "dtype"):
        return value.item()
    return value


def model_index(data: BaseModelCardData, evaluations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Evaluation results in the Hub's ``model-index`` form (one result per evaluator and dataset)."""
    results = []
    for section in evaluations:
        task = {"type": section["description"].lower().replace(" ", "-"), "name": section["description"]}
        for dataset_name, metrics in section["per_dataset"].items():
            values = [
                {"type": key, "value": number, "name": key.replace("_", " ").title()}
                for key, value in metrics.items()
                if (number := _as_float(value)) is not None
            ]
            if not values:
                continue
            results.append(
                {
                    "task": task,
                    "dataset": {
                        "name": dataset_name.replace("_", " ").replace("-", " ") if dataset_name else "Unknown",
                        "type": dataset_name or "unknown",
                    },
                    "metrics": values,
                }
            )
    if not results:
        return []
    return [{"name": data.model_name or data.get_default_model_name(), "results": results}]


def _as_float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        if isinstance(value, str) and " " in value:
            return _as_float(value.split()[0])
        return None


# -- evaluation ------------------------------------------------------------------------------------


def evaluation_sections(data: BaseModelCardData) -> list[dict[str, Any]]:
    """One entry per evaluator kind: its description, class, config, and metrics per dataset name.

    Evaluators of the same class, configuration and metric keys on different datasets share one
    table with a column per dataset.
    """
    sections: list[dict[str, Any]] = []
    for evaluator, raw_metrics in data.eval_results_dict.items():
        name = getattr(evaluator, "name", None) or None
        primary = getattr(evaluator, "primary_metric", None)
        metrics = {key: _plain(value) for key, value in raw_metrics.items()}
        if name and all(key.startswith(name + "_") for key in metrics):
            metrics = {key[len(name) + 1 :]: value for key, value in metrics.items()}
            if isinstance(primary, str) and primary.startswith(name + "_"):
                primary = primary[len(name) + 1 :]
        config = evaluator.get_config_dict() if hasattr(evaluator, "get_config_dict") else {}
        config_code = ""
        if config:
            try:
                config_code = json.dumps(config, indent=4)
            except TypeError:
                config_code = str(config)
        entry = {
            "class_name": dataset_stats.fullname(evaluator),
            "description": getattr(evaluator, "description", type(evaluator).__name__),
            "config_code": config_code,
            "primary": primary,
            "metrics": list(metrics),
            "per_dataset": {name: metrics},
        }
        for section in sections:
            if (
                section["class_name"] == entry["class_name"]
                and section["config_code"] == config_code
                and section["metrics"] == entry["metrics"]
                and name not in section["per_dataset"]
            ):
                section["per_dataset"][name] = metrics
                break
        else:
            sections.append(entry)
    return sections
