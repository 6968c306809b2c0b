"""The cross-encoder training examples run end to end in their smoke mode on the local data."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("datasets")

from conftest import shared_path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "training" / "cross_encoder"


def run_example(name: str, tmp_path: Path, model: Path, *extra: str) -> Any:
    data_dir = shared_path()  # skips (fails in CI) when the shared data folder is absent
    namespace = runpy.run_path(str(EXAMPLES / name), run_name="example")
    return namespace["main"](
        ["--smoke", "--model", str(model), "--data-dir", str(data_dir), "--output-dir", str(tmp_path), *extra]
    )


def test_stsb_regression(tmp_path: Path, minilm_dir: Path) -> None:
    metrics = run_example("training_stsb.py", tmp_path, minilm_dir)
    assert set(metrics) >= {"stsb-test_pearson", "stsb-test_spearman"}
    assert (tmp_path / "final" / "config_sentence_transformers.json").is_file()


def test_quora_binary_classifier(tmp_path: Path, minilm_dir: Path) -> None:
    metrics = run_example("training_quora_duplicate_questions.py", tmp_path, minilm_dir)
    assert any(key.startswith("quora-test_") for key in metrics)
    assert (tmp_path / "final" / "README.md").is_file()


def test_ms_marco_reranker_with_mined_negatives(tmp_path: Path, minilm_dir: Path) -> None:
    result = run_example("training_ms_marco.py", tmp_path, minilm_dir)
    before, after = result["before"], result["after"]
    assert set(before) == set(after)
    assert any(key.endswith("ndcg@10") for key in after)
    held_out = (tmp_path / "msmarco-held-out" / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(held_out) == 3
