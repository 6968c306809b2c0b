"""The Augmented SBERT examples run end to end in their smoke mode on the local data."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("datasets")

from conftest import shared_path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "training" / "data_augmentation"


def run_example(name: str, tmp_path: Path, model: Path, *extra: str) -> Any:
    data_dir = shared_path()  # skips (fails in CI) when the shared data folder is absent
    namespace = runpy.run_path(str(EXAMPLES / name), run_name="example")
    return namespace["main"](
        ["--smoke", "--model", str(model), "--data-dir", str(data_dir), "--output-dir", str(tmp_path), *extra]
    )


@pytest.mark.parametrize("script", ["train_sts_indomain_bm25.py", "train_sts_indomain_semantic.py"])
def test_in_domain_recipe(script: str, tmp_path: Path, minilm_dir: Path) -> None:
    metrics = run_example(script, tmp_path, minilm_dir)
    assert set(metrics) == {"bi-encoder before", "cross-encoder", "bi-encoder after"}
    assert "test_spearman_cosine" in metrics["bi-encoder after"]
    assert (tmp_path / "bi-encoder" / "modules.json").is_file()
    assert (tmp_path / "cross-encoder" / "config.json").is_file()


def test_domain_transfer(tmp_path: Path, minilm_dir: Path) -> None:
    metrics = run_example("train_sts_qqp_crossdomain.py", tmp_path, minilm_dir)
    assert "dev_cosine_ap" in metrics["bi-encoder before"] and "test_cosine_ap" in metrics["bi-encoder after"]
    assert "source-dev_spearman" in metrics["cross-encoder"]


def test_seed_optimization(tmp_path: Path, minilm_dir: Path) -> None:
    result = run_example("train_sts_seed_optimization.py", tmp_path, minilm_dir)
    assert set(result["early"]) == {0, 1}
    assert list(result["final"]) == [max(result["early"], key=result["early"].get)]
    assert (tmp_path / f"seed-{result['best_seed']}" / "modules.json").is_file()


def test_synonym_augmentation(tmp_path: Path, minilm_dir: Path) -> None:
    result = run_example("train_sts_indomain_synonyms.py", tmp_path, minilm_dir)
    assert result["num_silver"] > 0
    assert "sts-test_spearman_cosine" in result["after"]
