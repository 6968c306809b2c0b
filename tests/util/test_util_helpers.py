"""The small sentence-transformers ``util`` helpers: logging, environment, distributed, files, misc."""

from __future__ import annotations

import csv
import functools
import http.server
import logging
import threading
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from embedforge import util
from embedforge.exceptions import InvalidArgumentError, ModelNotFoundError


def st_util() -> object:
    pytest.importorskip("sentence_transformers")
    import sentence_transformers.util as st

    return st


def test_top_level_names_match_sentence_transformers_exports() -> None:
    import embedforge

    for name in ("LoggingHandler", "SimilarityFunction", "mine_hard_negatives", "quantize_embeddings"):
        assert getattr(embedforge, name) is getattr(util, name)
    from embedforge.base.sampler import DefaultBatchSampler, MultiDatasetDefaultBatchSampler

    assert embedforge.DefaultBatchSampler is DefaultBatchSampler
    assert embedforge.MultiDatasetDefaultBatchSampler is MultiDatasetDefaultBatchSampler


def test_fullname_and_import_from_string_agree_with_sentence_transformers() -> None:
    from embedforge.sentence_transformer.losses import MultipleNegativesRankingLoss

    st = st_util()
    for obj in (MultipleNegativesRankingLoss, torch.nn.Linear(2, 2), 3, "text", util.LoggingHandler()):
        assert util.fullname(obj) == st.fullname(obj)
    name = util.fullname(MultipleNegativesRankingLoss)
    assert util.import_from_string(name) is MultipleNegativesRankingLoss
    # The v2 layout: a module named like the class it holds resolves to the class.
    from embedforge.sentence_transformer.readers import InputExample

    assert util.import_from_string("embedforge.sentence_transformer.readers.InputExample") is InputExample
    # A module whose last name is not also an attribute of itself is not an attribute path.
    for bad in ("nodots", "embedforge.util.no_such_helper", "no_such_package.thing", "embedforge.util"):
        with pytest.raises(ImportError):
            util.import_from_string(bad)
        with pytest.raises(ImportError):
            st.import_from_string(bad)


def test_logging_handler_writes_through_tqdm(capsys: pytest.CaptureFixture[str]) -> None:
    logger = logging.getLogger("embedforge-test-handler")
    logger.propagate = False
    handler = util.LoggingHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info("step %d done", 7)
    finally:
        logger.removeHandler(handler)
    assert capsys.readouterr().out == "INFO step 7 done\n"


def test_install_logger_adds_a_handler_and_the_notice_level(capsys: pytest.CaptureFixture[str]) -> None:
    logger = logging.getLogger("embedforge-test-install")
    logger.propagate = False
    util.install_logger(logger, level=logging.INFO, fmt="%(levelname)s|%(message)s")
    try:
        logger.notice("hello")  # type: ignore[attr-defined]
        logger.debug("hidden")
    finally:
        logger.handlers.clear()
    assert capsys.readouterr().err == "NOTICE|hello\n"


def test_disable_logging_restores_the_previous_level(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("embedforge-test-disable")
    with caplog.at_level(logging.INFO):
        with util.disable_logging(logging.WARNING):
            logger.warning("dropped")
            logger.error("kept")
        logger.info("after")
    assert [record.getMessage() for record in caplog.records] == ["kept", "after"]
    assert logging.root.manager.disable == logging.NOTSET


def test_disable_datasets_caching() -> None:
    datasets = pytest.importorskip("datasets")
    assert datasets.is_caching_enabled()
    with util.disable_datasets_caching():
        assert not datasets.is_caching_enabled()
    assert datasets.is_caching_enabled()


def test_append_to_last_row_by_hand_and_like_sentence_transformers(tmp_path: Path) -> None:
    rows = [["epoch", "score"], ["0", "0.5"], ["1", "0.75"]]
    ours, theirs = tmp_path / "ours.csv", tmp_path / "theirs.csv"
    for path in (ours, theirs):
        with open(path, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(rows)
    assert util.append_to_last_row(str(ours), [0.25, "x"])
    with open(ours, newline="", encoding="utf-8") as handle:
        assert list(csv.reader(handle))[-1] == ["1", "0.75", "0.25", "x"]
    st_util().append_to_last_row(str(theirs), [0.25, "x"])
    assert ours.read_bytes() == theirs.read_bytes()
    header_only = tmp_path / "header.csv"
    header_only.write_text("a,b\n", encoding="utf-8")
    assert not util.append_to_last_row(str(header_only), [1])
    assert header_only.read_text(encoding="utf-8") == "a,b\n"


def test_environment_and_distributed_helpers_without_a_process_group(caplog: pytest.LogCaptureFixture) -> None:
    st = st_util()
    assert util.is_dist_initialized() is False
    assert (util.get_rank(), util.get_world_size()) == (0, 1)
    assert util.get_device_name() == st.get_device_name()
    assert util.is_training_available() == st.is_training_available()
    assert util.is_datasets_available() and util.is_accelerate_available()
    assert not util.check_package_availability("no-such-package-anywhere", "huggingface")
    tensor = torch.arange(6.0).reshape(3, 2)
    with caplog.at_level(logging.WARNING):
        assert util.all_gather(tensor) is tensor
        assert util.all_gather_with_grad(tensor) is tensor
    mask = torch.ones(3, 2, dtype=torch.bool)
    gathered, gathered_mask = util.all_gather_padded(tensor.unsqueeze(-1), mask)
    assert gathered.shape == (3, 2, 1) and gathered_mask is mask


def test_load_file_and_dir_paths_in_a_local_folder(tmp_path: Path) -> None:
    (tmp_path / "modules.json").write_text("[]", encoding="utf-8")
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text("{}", encoding="utf-8")
    folder = str(tmp_path)
    assert util.load_file_path(folder, "modules.json") == str(tmp_path / "modules.json")
    assert util.load_file_path(folder, "config.json", subfolder="1_Pooling") == str(
        tmp_path / "1_Pooling" / "config.json"
    )
    assert util.load_file_path(folder, "missing.json") is None
    assert util.load_dir_path(folder, "1_Pooling") == str(tmp_path / "1_Pooling")
    assert util.load_dir_path(folder, "2_Dense") is None
    assert util.is_sentence_transformer_model(folder)
    assert not util.is_sentence_transformer_model(str(tmp_path / "1_Pooling"))
    with pytest.raises(InvalidArgumentError, match=r"filename='../secret'"):
        util.load_file_path(folder, "../secret")
    with pytest.raises(InvalidArgumentError, match="subfolder="):
        util.load_dir_path(folder, "/etc")
    with pytest.raises(ModelNotFoundError, match="never downloads"):
        util.load_file_path("sentence-transformers/all-MiniLM-L6-v2", "modules.json")


@pytest.fixture
def local_server(tmp_path: Path) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 serving ``tmp_path/served`` (no internet needed)."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))

    class QuietHandler(handler.func):  # type: ignore[name-defined, misc]
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_http_get_downloads_whole_files_only(tmp_path: Path, local_server: str) -> None:
    payload = bytes(range(256)) * 5000
    (tmp_path / "served" / "weights.bin").write_bytes(payload)
    target = tmp_path / "out" / "weights.bin"
    util.http_get(f"{local_server}/weights.bin", str(target))
    assert target.read_bytes() == payload
    missing = tmp_path / "out" / "missing.bin"
    with pytest.raises(urllib.error.HTTPError):
        util.http_get(f"{local_server}/missing.bin", str(missing))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["weights.bin"]  # no partial file left
    with pytest.raises(InvalidArgumentError, match="url="):
        util.http_get("ftp://example.org/file", str(missing))


def test_disabled_tqdm_never_shows(capsys: pytest.CaptureFixture[str]) -> None:
    bar = util.disabled_tqdm(range(3), disable=False)
    assert bar.disable and list(bar) == [0, 1, 2]
    del bar._lock  # a disabled bar has no lock; deleting it must not fail
    assert capsys.readouterr().err == ""
