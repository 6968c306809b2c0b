"""``embedforge augment CONFIG``: run an Augmented SBERT scenario on local files and print each stage's metrics."""

from __future__ import annotations

import argparse
import json
import logging
import os
from typing import Any

from embedforge.cli.augment_config import PATH_KEYS, AugmentConfig, AugmentConfigError, build_augment_config
from embedforge.cli.train_config import merge_overrides, parse_override, read_config_file
from embedforge.cli.train_data import LABEL_COLUMNS, load_table
from embedforge.exceptions import EmbedforgeError

logger = logging.getLogger(__name__)


def add_augment_command(commands: Any) -> None:
    """Register ``embedforge augment``."""
    parser = commands.add_parser(
        "augment",
        help="Augmented SBERT: a cross-encoder labels new pairs for a bi-encoder (config file)",
        description="Run an Augmented SBERT scenario from a YAML/JSON config: train a cross-encoder on labelled "
        "pairs, label sampled (in_domain) or target-domain (domain_transfer) pairs with it, and train the "
        "bi-encoder on the result. Prints the metrics of each stage and saves both models.",
    )
    parser.add_argument("config", help="a YAML or JSON config file (see embedforge.cli.augment_config)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a config key, e.g. --set sampling.top_k=5 or --set scenario=domain_transfer (repeatable)",
    )
    parser.add_argument("--report-json", metavar="FILE", help="also write the metrics and timings as JSON")
    parser.set_defaults(run=run_augment)


def run_augment(arguments: argparse.Namespace) -> int:
    """Read and check the config, run the scenario, print the report; config errors end with a one-line message."""
    logging.basicConfig(format="%(asctime)s %(message)s", level=logging.INFO)
    try:
        content = read_config_file(arguments.config, PATH_KEYS)
        top_level: dict[str, Any] = {}
        overrides = []
        for text in arguments.set:
            if "." in text.partition("=")[0]:
                overrides.append(parse_override(text))
            else:
                key, separator, value = text.partition("=")
                if not separator:
                    raise AugmentConfigError(
                        f"--set {text!r} is not valid; expected KEY=VALUE, e.g. scenario=in_domain"
                    )
                top_level[key.strip()] = value.strip()
        config = build_augment_config({**merge_overrides(content, overrides), **top_level})
        report = run_scenario(config)
    except (EmbedforgeError, FileNotFoundError) as error:
        raise SystemExit(f"embedforge augment: error: {error}") from error
    print(report.format())
    print(f"\nSaved the cross-encoder to {report.cross_encoder_path}")
    print(f"Saved the bi-encoder to {report.bi_encoder_path}")
    if arguments.report_json:
        with open(arguments.report_json, "w", encoding="utf-8") as handle:
            json.dump({"metrics": report.metrics, "seconds": report.seconds, "num_silver": report.num_silver}, handle)
    return 0


def run_scenario(config: AugmentConfig) -> Any:
    """Load the data and models the config names and run its scenario; returns the AugmentationReport."""
    from embedforge.cross_encoder.model import CrossEncoder
    from embedforge.data_augmentation.recipe import augment_domain_transfer, augment_in_domain
    from embedforge.sentence_transformer.model import SentenceTransformer

    cross_encoder = CrossEncoder(config.cross_encoder_path, num_labels=1)
    bi_encoder = SentenceTransformer(config.bi_encoder_path)
    data = config.data
    if config.scenario == "in_domain":
        sampling = config.sampling
        return augment_in_domain(
            labelled_pairs(data["gold"], "data.gold"),
            cross_encoder,
            bi_encoder,
            strategy=sampling["strategy"],
            top_k=sampling["top_k"],
            sampling_model=(
                SentenceTransformer(sampling["model"])
                if sampling.get("model") and sampling["strategy"] == "semantic"
                else None
            ),
            num_pairs=sampling.get("num_pairs"),
            dev=optional_pairs(data.get("dev"), "data.dev"),
            test=optional_pairs(data.get("test"), "data.test"),
            task=config.task,
            cross_encoder_settings=config.cross_encoder,
            bi_encoder_settings=config.bi_encoder,
            label_batch_size=int(sampling.get("batch_size", 32)),
            output_dir=config.output_dir,
        )
    target = load_table([data["target"]], "data.target")
    texts = [column for column in target.column_names if column not in LABEL_COLUMNS]
    ignored = [column for column in target.column_names if column not in texts[:2]]
    if len(texts) < 2:
        raise AugmentConfigError(f"data.target needs two text columns; its columns are {target.column_names}")
    if ignored:
        logger.warning("data.target: using columns %s as the pair; ignoring %s", texts[:2], ignored)
    return augment_domain_transfer(
        labelled_pairs(data["source"], "data.source"),
        list(zip(target[texts[0]], target[texts[1]])),
        cross_encoder,
        bi_encoder,
        source_dev=optional_pairs(data.get("source_dev"), "data.source_dev"),
        source_task=config.task,
        target_dev=optional_pairs(data.get("target_dev"), "data.target_dev"),
        target_test=optional_pairs(data.get("target_test"), "data.target_test"),
        target_task=data["target_task"],
        threshold=config.threshold,
        cross_encoder_settings=config.cross_encoder,
        bi_encoder_settings=config.bi_encoder,
        label_batch_size=int(config.sampling.get("batch_size", 32)),
        output_dir=config.output_dir,
    )


def labelled_pairs(path: str, key: str) -> Any:
    """A (text, text, label) dataset from a file: its two text columns and its label column, in that order."""
    table = load_table([path], key)
    label = next((column for column in table.column_names if column in LABEL_COLUMNS), None)
    texts = [column for column in table.column_names if column not in LABEL_COLUMNS]
    if label is None or len(texts) != 2:
        raise AugmentConfigError(
            f"{key} ({os.path.basename(path)}) needs two text columns and a label column named one of "
            f"{list(LABEL_COLUMNS)}; its columns are {table.column_names}"
        )
    return table.select_columns([*texts, label])


def optional_pairs(path: str | None, key: str) -> Any:
    """:func:`labelled_pairs` of ``path``, or None when the config leaves it out."""
    return labelled_pairs(path, key) if path else None
