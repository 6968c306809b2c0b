"""Turn model-card data into README.md: a YAML header, then Markdown sections."""

from __future__ import annotations

import logging
import os
import platform
from importlib import metadata as importlib_metadata
from typing import Any

from embedforge.base.model_card import dataset_stats
from embedforge.base.model_card.data import BaseModelCardData
from embedforge.base.model_card.markdown import code_block, indent, join_names, markdown_table, round_value
from embedforge.base.model_card.metadata import card_metadata, evaluation_sections, metadata_yaml

logger = logging.getLogger(__name__)

#: Training arguments left out of the hyperparameter lists: paths, logging/saving cadence, secrets.
IGNORED_HYPERPARAMETERS = frozenset(
    {
        "output_dir",
        "logging_dir",
        "logging_strategy",
        "logging_first_step",
        "logging_steps",
        "evaluation_strategy",
        "eval_strategy",
        "eval_steps",
        "eval_delay",
        "save_strategy",
        "save_steps",
        "save_total_limit",
        "metric_for_best_model",
        "greater_is_better",
        "report_to",
        "samples_per_label",
        "show_progress_bar",
        "do_train",
        "do_eval",
        "do_test",
        "run_name",
        "hub_token",
        "push_to_hub_token",
    }
)
#: Logs longer than this fold into a <details> block.
FOLDED_LOG_ROWS = 100
#: Packages listed under "Framework Versions" (distribution name, label).
FRAMEWORKS = (
    ("embedforge", "embedforge"),
    ("transformers", "Transformers"),
    ("torch", "PyTorch"),
    ("accelerate", "Accelerate"),
    ("datasets", "Datasets"),
    ("tokenizers", "Tokenizers"),
)


def _metrics_table(section: dict[str, Any]) -> str:
    primary = section["primary"]
    datasets = list(section["per_dataset"])
    rows = []
    for key in section["metrics"]:
        bold = key == primary
        row: dict[str, Any] = {"Metric": f"**{key}**" if bold else key}
        for dataset_name in datasets:
            value = round_value(section["per_dataset"][dataset_name].get(key, "-"))
            row[dataset_name if len(datasets) > 1 else "Value"] = f"**{value}**" if bold else value
        rows.append(row)
    return markdown_table(rows)


def _evaluation_markdown(sections: list[dict[str, Any]]) -> list[str]:
    if not sections:
        return []
    lines = ["## Evaluation", "", "### Metrics", ""]
    for section in sections:
        names = [name for name in section["per_dataset"] if name]
        lines.append(f"#### {section['description']}")
        lines.append("")
        if names:
            label = "Datasets" if len(names) > 1 else "Dataset"
            lines.append(f"* {label}: " + join_names([f"`{name}`" for name in names]))
        evaluated = f"* Evaluated with <code>{section['class_name']}</code>"
        if section["config_code"]:
            lines += [evaluated + " with these parameters:", code_block(section["config_code"], "json", "  ")]
        else:
            lines.append(evaluated)
        lines += ["", _metrics_table(section), ""]
    return lines


# -- training --------------------------------------------------------------------------------------


def _training_logs_markdown(data: BaseModelCardData) -> list[str]:
    if not data.training_logs:
        return []
    keys: list[str] = []
    for row in data.training_logs:
        keys += [key for key in row if key not in keys]
    fixed = {"Epoch": 0, "Step": 1, "Training Loss": 2, "Validation Loss": 3}

    def order(key: str) -> tuple[int, int]:
        if key in fixed:
            return (fixed[key], 0)
        return (4 if key.endswith("loss") else 5, keys.index(key))

    columns = sorted(keys, key=order)
    rows = []
    for row in data.training_logs:
        best = data.best_model_step is not None and row.get("Step") == data.best_model_step
        cells = {}
        for key in columns:
            value = row.get(key, "-")
            value = "-" if value is None else round_value(value)
            cells[key] = f"**{value}**" if best else value
        rows.append(cells)
    table = markdown_table(rows)
    lines = ["### Training Logs", ""]
    folded = len(data.training_logs) > FOLDED_LOG_ROWS
    if folded:
        lines += ["<details><summary>Click to expand</summary>", ""]
    lines.append(table)
    if "**" in table:
        lines += ["", "* The bold row is the step whose checkpoint was kept as the final model."]
    if folded:
        lines += ["", "</details>"]
    lines.append("")
    return lines


def _dataset_markdown(entry: dict[str, Any], kind: str) -> list[str]:
    name = entry.get("name") or "Unnamed Dataset"
    lines = [f"#### {name}", ""]
    if entry.get("name"):
        source = f" (`{entry['id']}`)" if entry.get("id") else ""
        split = f", split `{entry['split']}`" if entry.get("split") else ""
        lines.append(f"* Dataset: {entry['name']}{source}{split}")
    if entry.get("size"):
        lines.append(f"* Size: {entry['size']:,} {kind} samples")
    if entry.get("columns"):
        lines.append("* Columns: " + join_names([f"<code>{column}</code>" for column in entry["columns"]]))
    if table := dataset_stats.stats_table(entry):
        rows = min(entry.get("size") or dataset_stats.STATS_ROWS, dataset_stats.STATS_ROWS)
        lines += [f"* Approximate statistics based on the first {rows} samples:", indent(table, "  ")]
    if table := entry.get("examples_table") or dataset_stats.samples_table(entry):
        lines += ["* Samples:", indent(table, "  ")]
    if loss := entry.get("loss"):
        described = f"* Loss: <code>{loss['fullname']}</code>"
        if loss.get("config_code"):
            lines += [described + " with these parameters:", code_block(loss["config_code"], "json", "  ")]
        else:
            lines.append(described)
    lines.append("")
    return lines


def _training_markdown(data: BaseModelCardData) -> list[str]:
    lines: list[str] = []
    for kind, title, entries in (
        ("training", "Training", data.train_datasets),
        ("evaluation", "Evaluation", data.eval_datasets),
    ):
        if not entries:
            continue
        lines += [f"### {title} Dataset{'s' if len(entries) > 1 else ''}", ""]
        for entry in entries:
            lines += _dataset_markdown(entry, kind)
    if data.all_hyperparameters:
        lines += ["### Training Hyperparameters", ""]
        if data.non_default_hyperparameters:
            lines += ["#### Non-Default Hyperparameters", ""]
            lines += [f"- `{key}`: {value}" for key, value in data.non_default_hyperparameters.items()]
            lines.append("")
        lines += ["#### All Hyperparameters", "", "<details><summary>Click to expand</summary>", ""]
        lines += [f"- `{key}`: {value}" for key, value in data.all_hyperparameters.items()]
        lines += ["", "</details>", ""]
    lines += _training_logs_markdown(data)
    durations = data.training_time()
    training, evaluation, total = durations["training"], durations["evaluation"], durations["total"]
    if training is not None:
        lines += ["### Training Time", "", f"- **Training**: {format_duration(training)}"]
        if evaluation is not None and total is not None:
            lines.append(f"- **Evaluation**: {format_duration(evaluation)}")
            lines.append(f"- **Total**: {format_duration(total)}")
        lines.append("")
    lines += ["### Framework Versions", ""]
    lines += [f"- {label}: {version}" for label, version in framework_versions().items()]
    lines.append("")
    return ["## Training Details", "", *lines] if lines else []


def format_duration(seconds: float) -> str:
    """Seconds in the largest unit that keeps the number readable ("4.2 minutes")."""
    if seconds < 60:
        return f"{seconds:.1f} seconds"
    if seconds < 3600:
        return f"{seconds / 60:.1f} minutes"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 86400:.1f} days"


def framework_versions() -> dict[str, str]:
    """Python and the installed versions of the libraries that shaped the model."""
    versions = {"Python": platform.python_version()}
    for distribution, label in FRAMEWORKS:
        try:
            versions[label] = importlib_metadata.version(distribution)
        except importlib_metadata.PackageNotFoundError:
            continue
    return versions


def generate_model_card(model: Any) -> str:
    """The README.md text for ``model`` from its ``model_card_data`` (the kind's parts come from its card data)."""
    data = model.model_card_data
    if data.model is None:
        data.register_model(model)
    if data.ir_model is None and data.eval_results_dict:
        data.try_to_set_ir_model_from_evaluators()
    try:
        data.run_usage_snippet()
    except Exception as error:  # noqa: BLE001 - the card is still useful without the printed scores
        logger.warning("Could not run the model card's usage snippet: %s", error)
    # Deduplicate media within this save only: files of an earlier save may be gone.
    data._asset_cache = {}
    try:
        data.save_usage_example_assets()
    except Exception as error:  # noqa: BLE001 - the card can still show the examples as text
        logger.warning("Could not save the usage examples' media: %s", error)
    if data.save_dir:
        # The samples tables were first drawn when training began, before there was a folder to
        # save their media to: draw them again, numbering the files across all datasets.
        counter = 0
        for entry in [*data.train_datasets, *data.eval_datasets]:
            if entry.get("examples"):
                entry["examples_table"], counter = data._render_examples_table(entry, counter)
    facts = data.card_facts()
    title = data.model_name or data.get_default_model_name()
    lines = [
        "---",
        metadata_yaml(card_metadata(data)),
        "---",
        "",
        f"# {title}",
        "",
        data.card_intro(facts),
        "",
        "## Model Details",
        "",
        "### Model Description",
        "",
        *data.card_details(facts),
        "",
        "### Full Model Architecture",
        "",
        code_block(facts["architecture"], ""),
        "",
        *data.card_usage(),
        *_evaluation_markdown(evaluation_sections(data)),
        *_training_markdown(data),
        *_citations_markdown(data),
    ]
    text = "\n".join(lines).rstrip("\n") + "\n"
    if data.model_id:
        # The Hub renders a README without its folder: saved media are linked by their Hub URL.
        text = text.replace('src="assets/', f'src="{data._asset_path_to_url("assets/")}')
    return text


def _citations_markdown(data: BaseModelCardData) -> list[str]:
    if not data.citations:
        return []
    lines = ["## Citation", "", "### BibTeX", ""]
    for names, citation in data.citations.items():
        lines += [f"#### {names}", "", code_block(citation.strip(), "bibtex"), ""]
    return lines


def write_model_card(
    model: Any,
    folder: str,
    model_name: str | None = None,
    train_datasets: list[str] | None = None,
    card_data_class: type[BaseModelCardData] = BaseModelCardData,
) -> None:
    """Write README.md into ``folder``: the loaded model's own card when nothing was trained, else a new one.

    ``model_name`` that is not an existing path becomes the card's ``model_id`` (as in
    sentence-transformers); ``train_datasets`` is accepted for compatibility and ignored there too.
    """
    data = getattr(model, "model_card_data", None)
    if data is None:
        data = model.model_card_data = card_data_class()
        data.register_model(model)
    if model_name and not os.path.exists(model_name) and not data.model_id and model_name.count("/") == 1:
        data.model_id = model_name
    if data.source_card_text and "generated_from_trainer" not in data.tags:
        text = data.source_card_text
    else:
        # Media among the usage examples are written next to the README, under assets/.
        data.save_dir = folder
        try:
            text = generate_model_card(model)
        except Exception:
            # Losing the trained weights over a card problem would be far worse than a missing README.
            logger.exception("Could not generate the model card; saving the model without README.md")
            return
        finally:
            # Saves write to a temporary folder that is then renamed: nothing may be written there later.
            data.save_dir = None
    with open(os.path.join(folder, "README.md"), "w", encoding="utf-8") as f:
        f.write(text)
