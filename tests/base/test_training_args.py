"""BaseTrainingArguments: the warnings given while the arguments are built."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from embedforge.sentence_transformer.training_args import SentenceTransformerTrainingArguments

LOGGER = "embedforge.base.training_args"


def persistent_workers_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "dataloader_persistent_workers=True" in r.getMessage()]


@pytest.mark.parametrize(
    ("start_method", "options", "warns"),
    [
        ("spawn", {"dataloader_num_workers": 2}, True),
        ("spawn", {"dataloader_num_workers": 2, "dataloader_persistent_workers": True}, False),
        ("spawn", {"dataloader_num_workers": 0}, False),
        ("fork", {"dataloader_num_workers": 2}, False),
        ("forkserver", {"dataloader_num_workers": 2}, False),
    ],
)
@pytest.mark.parametrize("explicit", [True, False])
def test_spawned_workers_without_persistence_are_warned_about(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    start_method: str,
    options: dict,
    warns: bool,
    explicit: bool,
) -> None:
    if explicit:
        monkeypatch.setattr(multiprocessing, "get_start_method", lambda allow_none=False: start_method)
    else:
        monkeypatch.setattr(multiprocessing, "get_start_method", lambda allow_none=False: None)
        monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: [start_method, "spawn"])
    with caplog.at_level("WARNING", logger=LOGGER):
        SentenceTransformerTrainingArguments(output_dir=str(tmp_path), **options)
    assert bool(persistent_workers_warnings(caplog)) is warns


def test_building_arguments_does_not_fix_the_start_method(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []

    def recording_get_start_method(allow_none: bool = False) -> str | None:
        calls.append(allow_none)
        return None

    monkeypatch.setattr(multiprocessing, "get_start_method", recording_get_start_method)
    SentenceTransformerTrainingArguments(output_dir=str(tmp_path), dataloader_num_workers=2)
    # Only the non-locking form: a later multiprocessing.set_start_method must still work.
    assert calls == [True]


def test_warmup_ratio_moves_to_warmup_steps_on_transformers_5(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from embedforge.base.training_args import _TRANSFORMERS_5

    with caplog.at_level("WARNING", logger=LOGGER):
        args = SentenceTransformerTrainingArguments(output_dir=str(tmp_path), warmup_ratio=0.1)
    if _TRANSFORMERS_5:
        assert args.warmup_steps == pytest.approx(0.1) and args.warmup_ratio is None
        assert any("The `warmup_ratio` argument is deprecated in" in r.getMessage() for r in caplog.records)
    else:
        assert args.warmup_ratio == pytest.approx(0.1) and args.warmup_steps == 0
