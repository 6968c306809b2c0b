"""``embedforge augment CONFIG``: config checking (one-line errors naming the key), paths relative to the config
file, --set overrides, and tiny end-to-end runs of both scenarios that print the table and save both models."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from scipy.stats import spearmanr

from conftest import embedforge_static, random_sentences, static_weights
from embedforge import CrossEncoder, SentenceTransformer
from embedforge.cli import main
from embedforge.cli.augment_config import PATH_KEYS, build_augment_config
from embedforge.cli.train_config import read_config_file
from embedforge.data_augmentation import sample_pairs, unique_sentences

GOLD = {
    "sentence1": random_sentences(10, seed=31, min_words=3, max_words=8),
    "sentence2": random_sentences(10, seed=32, min_words=3, max_words=8),
    "score": np.random.default_rng(31).random(10).round(2).tolist(),
}
DEV = {
    "sentence1": random_sentences(8, seed=33, min_words=3),
    "sentence2": random_sentences(8, seed=34, min_words=3),
    "score": np.random.default_rng(33).random(8).round(2).tolist(),
}
TARGET = {"query": random_sentences(6, seed=35), "passage": random_sentences(6, seed=36)}
TARGET_DEV = {"query": random_sentences(8, seed=37), "passage": random_sentences(8, seed=38), "label": [1, 0] * 4}
GOLD_PAIRS = list(zip(GOLD["sentence1"], GOLD["sentence2"]))


def write_csv(path: Path, columns: dict[str, list[Any]]) -> None:
    import pandas as pd

    pd.DataFrame(columns).to_csv(path, index=False)


@pytest.fixture
def project(tmp_path: Path, scorer_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config folder with data files and both tiny models, all named by relative paths in config.yaml.

    The tests run in another folder, ``elsewhere``, so a relative output_dir never lands in the checkout."""
    folder = tmp_path / "project"
    (folder / "models").mkdir(parents=True)
    shutil.copytree(scorer_dir, folder / "models" / "ce")
    embedforge_static(static_weights(seed=2)).save(str(folder / "models" / "bi"))
    write_csv(folder / "gold.csv", GOLD)
    write_csv(folder / "dev.csv", DEV)
    write_csv(folder / "target.csv", TARGET)
    write_csv(folder / "target_dev.csv", TARGET_DEV)
    write_config(folder, base_config())
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    return folder


def base_config() -> dict[str, Any]:
    return {
        "scenario": "in_domain",
        "task": "similarity",
        "output_dir": "out",
        "data": {"gold": "gold.csv", "dev": "dev.csv", "source": "gold.csv", "target": "target.csv"},
        "sampling": {"strategy": "bm25", "top_k": 2},
        "cross_encoder": {"path": "models/ce", "max_steps": 1, "batch_size": 4, "extra_args": {"disable_tqdm": True}},
        "bi_encoder": {"path": "models/bi", "max_steps": 1, "batch_size": 4, "learning_rate": 0.05},
    }


def write_config(folder: Path, content: dict[str, Any], name: str = "config.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(content), encoding="utf-8")
    return path


def spearman_of_cosine(model: SentenceTransformer, data: dict[str, list[Any]]) -> float:
    a, b = model.encode(data["sentence1"]), model.encode(data["sentence2"])
    cosine = (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return float(spearmanr(data["score"], cosine).statistic)


# --- end-to-end runs ----------------------------------------------------------------------------------------------


def test_in_domain_run_prints_the_table_and_saves_both_models(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Run from another folder: data and model paths are relative to the config file, output_dir to the working folder.
    elsewhere = project.parent / "elsewhere"
    report_file = elsewhere / "report.json"
    assert main(["augment", str(project / "config.yaml"), "--report-json", str(report_file)]) == 0
    output = capsys.readouterr().out

    expected_pairs = sample_pairs(unique_sentences(GOLD_PAIRS), "bm25", top_k=2, exclude=GOLD_PAIRS)
    assert expected_pairs
    header = f"Augmented SBERT (in-domain, bm25 sampling, top_k=2): 10 gold pairs, {len(expected_pairs)} silver pairs"
    assert header in output
    table_header = next(line for line in output.splitlines() if line.startswith("metric"))
    assert table_header.split("  ")[0].strip() == "metric"
    assert [cell.strip() for cell in table_header.split("  ")[1:] if cell.strip()] == [
        "bi-encoder before",
        "cross-encoder",
        "bi-encoder after",
    ]
    assert "dev_spearman_cosine" in output and "dev_spearman" in output
    assert f"Saved the cross-encoder to {Path('out') / 'cross-encoder'}" in output
    assert f"Saved the bi-encoder to {Path('out') / 'bi-encoder'}" in output

    report = json.loads(report_file.read_text(encoding="utf-8"))
    assert report["num_silver"] == len(expected_pairs)
    assert list(report["metrics"]) == ["bi-encoder before", "cross-encoder", "bi-encoder after"]
    assert "train bi-encoder" in report["seconds"]

    # The saved models load; the reported scores are the reloaded models' scores on the dev file.
    bi_encoder = SentenceTransformer(str(elsewhere / "out" / "bi-encoder"), device="cpu")
    after = report["metrics"]["bi-encoder after"]["dev_spearman_cosine"]
    assert after == pytest.approx(spearman_of_cosine(bi_encoder, DEV), abs=1e-6)
    before = SentenceTransformer(str(project / "models" / "bi"), device="cpu")
    assert report["metrics"]["bi-encoder before"]["dev_spearman_cosine"] == pytest.approx(
        spearman_of_cosine(before, DEV), abs=1e-6
    )
    cross_encoder = CrossEncoder(str(elsewhere / "out" / "cross-encoder"), device="cpu")
    scores = cross_encoder.predict(list(zip(DEV["sentence1"], DEV["sentence2"])))
    assert report["metrics"]["cross-encoder"]["dev_spearman"] == pytest.approx(
        spearmanr(DEV["score"], scores).statistic, abs=1e-6
    )


def test_set_overrides_sampling_keys(project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = base_config()
    config["output_dir"] = str(tmp_path / "out-top1")
    del config["data"]["dev"]
    path = write_config(project, config, "top1.yaml")
    report_file = tmp_path / "report.json"
    assert main(["augment", str(path), "--set", "sampling.top_k=1", "--report-json", str(report_file)]) == 0
    output = capsys.readouterr().out
    assert "(in-domain, bm25 sampling, top_k=1)" in output
    expected = sample_pairs(unique_sentences(GOLD_PAIRS), "bm25", top_k=1, exclude=GOLD_PAIRS)
    assert json.loads(report_file.read_text(encoding="utf-8"))["num_silver"] == len(expected)
    assert (tmp_path / "out-top1" / "bi-encoder" / "modules.json").is_file()


def test_set_scenario_runs_domain_transfer(project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = base_config()
    config["output_dir"] = str(tmp_path / "out-transfer")
    config["data"]["target_dev"] = "target_dev.csv"
    path = write_config(project, config, "transfer.yaml")
    report_file = tmp_path / "report.json"
    assert main(["augment", str(path), "--set", "scenario=domain_transfer", "--report-json", str(report_file)]) == 0
    output = capsys.readouterr().out
    assert "Augmented SBERT (domain transfer): 10 gold pairs, 6 silver pairs" in output
    report = json.loads(report_file.read_text(encoding="utf-8"))
    assert report["num_silver"] == len(TARGET["query"])
    # The target is evaluated as classification (the default data.target_task): average precision.
    assert "dev_cosine_ap" in report["metrics"]["bi-encoder after"]
    assert "dev_average_precision" in report["metrics"]["cross-encoder"]
    bi_encoder = SentenceTransformer(str(tmp_path / "out-transfer" / "bi-encoder"), device="cpu")
    a, b = bi_encoder.encode(TARGET_DEV["query"]), bi_encoder.encode(TARGET_DEV["passage"])
    cosine = (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    assert report["metrics"]["bi-encoder after"]["dev_cosine_ap"] == pytest.approx(
        sklearn_metrics.average_precision_score(TARGET_DEV["label"], cosine), abs=1e-6
    )


# --- configuration ------------------------------------------------------------------------------------------------


def test_relative_paths_are_resolved_against_the_config_folder(project: Path) -> None:
    content = read_config_file(str(project / "config.yaml"), PATH_KEYS)
    config = build_augment_config(content)
    assert config.data["gold"] == str(project / "gold.csv")
    assert config.data["dev"] == str(project / "dev.csv")
    assert config.cross_encoder_path == str(project / "models" / "ce")
    assert config.bi_encoder_path == str(project / "models" / "bi")
    assert config.output_dir == "out"  # where the command runs, as for `embedforge train`
    assert config.sampling == {"strategy": "bm25", "top_k": 2}
    assert config.cross_encoder.max_steps == 1 and config.cross_encoder.extra_args == {"disable_tqdm": True}
    assert config.bi_encoder.learning_rate == 0.05 and config.threshold == 0.5
    assert (config.scenario, config.task, config.data["target_task"]) == ("in_domain", "similarity", "classification")


def edit(config: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """``config`` with ``key`` ("section.key" or "key") set to ``value``, or removed when value is ...."""
    section, _, name = key.rpartition(".")
    target = config[section] if section else config
    if value is ...:
        del target[name]
    else:
        target[name] = value
    return config


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("epochs", 3, r"config has unknown key\(s\) \['epochs'\]; valid keys are"),
        ("sampling.topk", 3, r"config key\(s\) \['sampling.topk'\] are not valid; valid keys in 'sampling' are"),
        ("data.train", "gold.csv", r"\['data.train'\] are not valid"),
        ("data.gold", ..., r"scenario 'in_domain' needs config key 'data.gold'"),
        ("sampling.strategy", "bm2", r"'sampling.strategy' is 'bm2'; expected one of \['bm25', 'semantic', 'random'\]"),
        ("sampling.top_k", 0, r"'sampling.top_k' is 0; expected a positive integer"),
        ("sampling.top_k", "3", r"'sampling.top_k' is '3'; expected a positive integer"),
        ("sampling.top_k", True, r"'sampling.top_k' is True"),
        ("sampling.num_pairs", "ten", r"'sampling.num_pairs' is 'ten'; expected an integer >= 0"),
        ("sampling.batch_size", 0, r"'sampling.batch_size' is 0; expected an integer >= 1"),
        ("sampling.model", "no-model", r"'sampling.model' names '.*no-model', but no such folder exists"),
        ("cross_encoder.path", "models/none", r"'cross_encoder.path' names '.*models/none', but no such folder"),
        ("bi_encoder.path", ..., r"config key 'bi_encoder.path' is missing; expected a local model folder"),
        ("bi_encoder.epoch", 2, r"config section 'bi_encoder' has unknown setting\(s\) \['epoch'\]"),
        ("bi_encoder.threshold", "high", r"'bi_encoder.threshold' is 'high'; expected a number"),
        ("data.dev", "missing.csv", r"'data.dev' names '.*missing.csv', but no such file exists"),
        ("scenario", "cross", r"'scenario' is 'cross'; expected one of \['in_domain', 'domain_transfer'\]"),
        ("task", "ranking", r"'task' is 'ranking'; expected one of \['similarity', 'classification'\]"),
        ("data.target_task", "ranking", r"'data.target_task' is 'ranking'"),
        ("sampling", "bm25", r"config section 'sampling' is a str; expected a mapping"),
    ],
)
def test_config_errors_are_one_line_messages_naming_the_key(project: Path, key: str, value: Any, message: str) -> None:
    path = write_config(project, edit(base_config(), key, value), "bad.yaml")
    with pytest.raises(SystemExit) as raised:
        main(["augment", str(path)])
    text = str(raised.value.code)
    assert text.startswith("embedforge augment: error: ") and "\n" not in text
    assert re.search(message, text), text


def test_domain_transfer_needs_a_target_file(project: Path) -> None:
    config = edit(base_config(), "data.target", ...)
    path = write_config(project, config, "bad.yaml")
    with pytest.raises(SystemExit, match=r"scenario 'domain_transfer' needs config key 'data.target'"):
        main(["augment", str(path), "--set", "scenario=domain_transfer"])


def test_a_gold_file_without_a_label_column_is_refused(project: Path) -> None:
    write_csv(project / "unlabelled.csv", {"a": GOLD["sentence1"], "b": GOLD["sentence2"]})
    path = write_config(project, edit(base_config(), "data.gold", "unlabelled.csv"), "bad.yaml")
    with pytest.raises(SystemExit, match=r"data.gold \(unlabelled.csv\) needs two text columns and a label column"):
        main(["augment", str(path)])


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("sampling.top_k", r"--set 'sampling.top_k' is not valid"),
        ("scenario", r"--set 'scenario' is not valid"),
        ("sampling.top_k=-1", r"'sampling.top_k' is -1"),
        ("tasks=similarity", r"config has unknown key\(s\) \['tasks'\]"),
    ],
)
def test_bad_overrides_are_refused(project: Path, option: str, message: str) -> None:
    with pytest.raises(SystemExit, match=message):
        main(["augment", str(project / "config.yaml"), "--set", option])


def test_a_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"embedforge augment: error: config file '.*nope.yaml' does not exist"):
        main(["augment", str(tmp_path / "nope.yaml")])
