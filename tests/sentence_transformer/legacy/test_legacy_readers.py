"""Readers of the pre-v3 fit API: the same InputExamples as sentence-transformers' readers, on files written here
and on the shared STS benchmark / SNLI data (skipped when absent)."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from conftest import random_sentences, shared_path
from embedforge.exceptions import InvalidArgumentError
from embedforge.sentence_transformer.readers import (
    InputExample,
    LabelSentenceReader,
    NLIDataReader,
    PairedFilesReader,
    STSBenchmarkDataReader,
    STSDataReader,
    TripletReader,
)


@pytest.fixture(scope="module")
def st_readers() -> Any:
    """sentence-transformers' readers package: the oracle."""
    pytest.importorskip("sentence_transformers")
    from sentence_transformers.sentence_transformer import readers

    return readers


def as_tuples(examples: list[Any]) -> list[tuple[Any, Any, Any]]:
    return [(example.guid, list(example.texts), example.label) for example in examples]


def write_lines(path: Path, lines: list[str]) -> Path:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8") as handle:
        handle.writelines(line + "\n" for line in lines)
    return path


def test_input_example_fields_and_text() -> None:
    example = InputExample(guid="g1", texts=["a b", "c"], label=0.5)
    assert (example.guid, example.texts, example.label) == ("g1", ["a b", "c"], 0.5)
    assert str(example) == "<InputExample> label: 0.5, texts: a b; c"
    default = InputExample()
    assert (default.guid, default.texts, default.label) == ("", None, 0)


def test_top_level_and_module_imports() -> None:
    import embedforge
    from embedforge.sentence_transformer.readers.input_example import InputExample as FromModule

    assert embedforge.InputExample is InputExample is FromModule


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_sts_reader_matches_sentence_transformers(tmp_path: Path, st_readers: Any, suffix: str) -> None:
    sentences = random_sentences(40, seed=3)
    lines = [f"{sentences[i]}\t{sentences[i + 20]}\t{i % 6}.{i % 10}" for i in range(20)]
    write_lines(tmp_path / f"pairs.tsv{suffix}", lines)
    for kwargs, limit in [({}, 0), ({"normalize_scores": False}, 7), ({"min_score": 1, "max_score": 4}, 0)]:
        ours = STSDataReader(str(tmp_path), **kwargs).get_examples(f"pairs.tsv{suffix}", max_examples=limit)
        theirs = st_readers.STSDataReader(str(tmp_path), **kwargs).get_examples(f"pairs.tsv{suffix}", limit)
        assert as_tuples(ours) == as_tuples(theirs)
        assert len(ours) == (limit or 20)
    assert as_tuples(ours)[3] == ("pairs.tsv" + suffix + "3", [sentences[3], sentences[23]], (3.3 - 1) / 3)


def test_sts_reader_custom_columns_and_delimiter(tmp_path: Path, st_readers: Any) -> None:
    write_lines(tmp_path / "c.csv", ['4.0;"x; y";first one', "1.5;second;other"])
    kwargs = {"s1_col_idx": 2, "s2_col_idx": 1, "score_col_idx": 0, "delimiter": ";", "quoting": csv.QUOTE_MINIMAL}
    ours = STSDataReader(str(tmp_path), **kwargs).get_examples("c.csv")
    assert as_tuples(ours) == as_tuples(st_readers.STSDataReader(str(tmp_path), **kwargs).get_examples("c.csv"))
    assert ours[0].texts == ["first one", "x; y"] and ours[0].label == pytest.approx(0.8)


def test_sts_reader_bad_rows_name_the_column(tmp_path: Path) -> None:
    write_lines(tmp_path / "short.tsv", ["only\tone"])
    with pytest.raises(InvalidArgumentError, match=r"score_col_idx=2.*row 0 of short.tsv|row 0 of short.tsv.*2"):
        STSDataReader(str(tmp_path)).get_examples("short.tsv")
    write_lines(tmp_path / "word.tsv", ["a\tb\tfive"])
    with pytest.raises(InvalidArgumentError, match="'five'"):
        STSDataReader(str(tmp_path)).get_examples("word.tsv")
    with pytest.raises(InvalidArgumentError, match="min_score"):
        STSDataReader(str(tmp_path), min_score=2, max_score=2)


def test_sts_benchmark_reader_on_the_shared_stsb(st_readers: Any) -> None:
    folder = shared_path("stsb")
    ours = STSBenchmarkDataReader(str(folder)).get_examples("sts-dev.csv")
    theirs = st_readers.STSBenchmarkDataReader(str(folder)).get_examples("sts-dev.csv")
    assert len(ours) == 1500
    assert as_tuples(ours) == as_tuples(theirs)
    assert ours[0].texts == ["A man with a hard hat is dancing.", "A man wearing a hard hat is dancing."]
    assert ours[0].label == pytest.approx(1.0)


def write_nli_split(folder: Path, split: str, rows: list[tuple[str, str, str]]) -> None:
    for prefix, position in (("s1", 0), ("s2", 1), ("labels", 2)):
        write_lines(folder / f"{prefix}.{split}", [row[position] for row in rows])


def test_nli_reader_on_snli_rows(tmp_path: Path, st_readers: Any) -> None:
    path = shared_path("snli-sample", "snli_1.0_dev.jsonl")
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if record["gold_label"] != "-":
                rows.append((record["sentence1"], record["sentence2"], record["gold_label"]))
    write_nli_split(tmp_path, "dev.gz", rows)
    ours = NLIDataReader(str(tmp_path)).get_examples("dev.gz")
    assert as_tuples(ours) == as_tuples(st_readers.NLIDataReader(str(tmp_path)).get_examples("dev.gz"))
    assert len(ours) == len(rows)
    limited = NLIDataReader(str(tmp_path)).get_examples("dev.gz", max_examples=5)
    assert as_tuples(limited) == as_tuples(ours[:5])
    assert ours[0].guid == "dev.gz-0" and ours[0].texts[0] == rows[0][0] + "\n"


def test_nli_reader_labels(tmp_path: Path, st_readers: Any) -> None:
    write_nli_split(tmp_path, "t.gz", [("a", "b", "Entailment "), ("c", "d", "neutral"), ("e", "f", "CONTRADICTION")])
    reader = NLIDataReader(str(tmp_path))
    assert [example.label for example in reader.get_examples("t.gz")] == [1, 2, 0]
    assert reader.get_labels() == st_readers.NLIDataReader.get_labels()
    assert reader.get_num_labels() == 3
    write_nli_split(tmp_path, "bad.gz", [("a", "b", "maybe")])
    with pytest.raises(InvalidArgumentError, match="'maybe"):
        reader.get_examples("bad.gz")


@pytest.mark.parametrize("has_header", [False, True])
def test_triplet_reader_matches_sentence_transformers(tmp_path: Path, st_readers: Any, has_header: bool) -> None:
    sentences = random_sentences(30, seed=5)
    lines = ["anchor\tpositive\tnegative\textra"] if has_header else []
    lines += [f"{sentences[i]}\t{sentences[i + 10]}\t{sentences[i + 20]}\tx" for i in range(10)]
    write_lines(tmp_path / "t.tsv", lines)
    for kwargs, limit in [({}, 0), ({"s1_col_idx": 2, "s3_col_idx": 0}, 4)]:
        ours = TripletReader(str(tmp_path), has_header=has_header, **kwargs).get_examples("t.tsv", limit)
        theirs = st_readers.TripletReader(str(tmp_path), has_header=has_header, **kwargs).get_examples("t.tsv", limit)
        assert as_tuples(ours) == as_tuples(theirs)
        assert len(ours) == (limit or 10)
    assert as_tuples(TripletReader(str(tmp_path), has_header=has_header).get_examples("t.tsv"))[0] == (
        "",
        [sentences[0], sentences[10], sentences[20]],
        0,
    )


def test_label_sentence_reader_keeps_label_ids_across_files(tmp_path: Path, st_readers: Any) -> None:
    sentences = random_sentences(12, seed=7)
    labels = ["cat", "dog", "cat", "bird", "dog", "fish"]
    write_lines(tmp_path / "train.tsv", [f"{labels[i]}\t{sentences[i]}  " for i in range(6)])
    write_lines(tmp_path / "dev.tsv", [f"{labels[5 - i]}\t{sentences[6 + i]}" for i in range(6)])
    ours, theirs = LabelSentenceReader(str(tmp_path)), st_readers.LabelSentenceReader(str(tmp_path))
    for filename, limit in (("train.tsv", 0), ("dev.tsv", 4)):
        assert as_tuples(ours.get_examples(filename, limit)) == as_tuples(theirs.get_examples(filename, limit))
    assert ours.label_map == theirs.label_map == {"cat": 0, "dog": 1, "bird": 2, "fish": 3}
    swapped = LabelSentenceReader(str(tmp_path), label_col_idx=1, sentence_col_idx=0).get_examples("dev.tsv")
    assert swapped[0].texts == ["fish"] and swapped[0].label == 0


def test_paired_files_reader_matches_sentence_transformers(tmp_path: Path, st_readers: Any) -> None:
    english, german = random_sentences(9, seed=1), random_sentences(7, seed=2)
    paths = [str(write_lines(tmp_path / "en.txt", english)), str(write_lines(tmp_path / "de.txt.gz", german))]
    for limit in (0, 3):
        ours = PairedFilesReader(paths).get_examples(limit)
        assert as_tuples(ours) == as_tuples(st_readers.PairedFilesReader(paths).get_examples(limit))
        assert len(ours) == (limit or 7)
    assert as_tuples(ours)[1] == ("1", [english[1] + "\n", german[1] + "\n"], 1)
    with pytest.raises(InvalidArgumentError, match="filepaths"):
        PairedFilesReader([])


def test_v2_module_paths_still_import() -> None:
    """sentence-transformers v2 kept one class per CamelCase module; those import lines keep working."""
    import importlib
    import warnings

    import embedforge

    old_paths = {
        "embedforge.readers.InputExample": "InputExample",
        "embedforge.readers.LabelSentenceReader": "LabelSentenceReader",
        "embedforge.readers.NLIDataReader": "NLIDataReader",
        "embedforge.readers.PairedFilesReader": "PairedFilesReader",
        "embedforge.readers.STSDataReader": "STSBenchmarkDataReader",
        "embedforge.readers.TripletReader": "TripletReader",
        "embedforge.datasets.DenoisingAutoEncoderDataset": "DenoisingAutoEncoderDataset",
        "embedforge.datasets.NoDuplicatesDataLoader": "NoDuplicatesDataLoader",
        "embedforge.datasets.ParallelSentencesDataset": "ParallelSentencesDataset",
        "embedforge.datasets.SentenceLabelDataset": "SentenceLabelDataset",
        "embedforge.datasets.SentencesDataset": "SentencesDataset",
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for module_path, class_name in old_paths.items():
            package = importlib.import_module(module_path.rsplit(".", 1)[0])
            assert getattr(importlib.import_module(module_path), class_name) is getattr(package, class_name)
    # The package attributes stay the classes, not the aliased modules.
    assert isinstance(embedforge.sentence_transformer.readers.InputExample, type) and isinstance(
        embedforge.sentence_transformer.datasets.SentencesDataset, type
    )
    assert embedforge.SentencesDataset is embedforge.sentence_transformer.datasets.SentencesDataset
    assert embedforge.ParallelSentencesDataset is embedforge.sentence_transformer.datasets.ParallelSentencesDataset
