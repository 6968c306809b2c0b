"""The ``embedforge`` command."""

from __future__ import annotations

from pathlib import Path

import pytest

from embedforge.cli import main
from embedforge.cli.demo import DOCUMENTS, QUERIES


def test_demo_searches_the_built_in_corpus(tiny_bert_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--model", str(tiny_bert_dir), "--top-k", "2"]) == 0
    output = capsys.readouterr().out
    assert f"Encoded {len(DOCUMENTS)} documents and {len(QUERIES)} queries" in output
    assert output.count("Query: ") == len(QUERIES)
    assert "accuracy@1:" in output and "MRR:" in output


def test_demo_with_a_missing_model_folder_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such folder"):
        main(["demo", "--model", str(tmp_path / "missing")])
