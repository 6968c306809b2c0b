"""Every variant of the Rust core's ``embedforge::Error`` reaches Python as the class its doc names.

The classes are documented on the variants in ``rust/core/src/error.rs``; the mapping lives in
``rust/python/src/errors.rs``. Each case below triggers one variant (for ``Io``, one
``std::io::ErrorKind``) through ``embedforge._core`` and checks the class, that it is an
``EmbedforgeError``, and for I/O errors the ``OSError`` attributes a caller would inspect.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

import numpy as np
import pytest

from embedforge import _core
from embedforge.exceptions import (
    EmbedforgeError,
    EmbedforgeFileExistsError,
    EmbedforgeIOError,
    EmbedforgeIsADirectoryError,
    EmbedforgeNotADirectoryError,
    EmbedforgePermissionError,
    InvalidArgumentError,
    ModelFormatError,
    ModelNotFoundError,
    TokenizerError,
)

ERROR_RS = Path(__file__).resolve().parents[2] / "rust" / "core" / "src" / "error.rs"

#: The variants of `embedforge::Error` this file triggers, with the class each must arrive as.
TRIGGERED = {
    "Io": EmbedforgeIOError,
    "NotFound": ModelNotFoundError,
    "InvalidArgument": InvalidArgumentError,
    "Tokenizer": TokenizerError,
    "ModelFormat": ModelFormatError,
}

#: The classes `Io` maps its ErrorKinds to; all but the untriggerable ones have a case below.
IO_KIND_CLASSES = (
    EmbedforgePermissionError,
    EmbedforgeIsADirectoryError,
    EmbedforgeNotADirectoryError,
    EmbedforgeFileExistsError,
    ModelNotFoundError,
)

#: Every variant has a case below; these `Io` kinds cannot be produced from Python, because:
UNTRIGGERABLE = {
    "Io with kind AlreadyExists -> EmbedforgeFileExistsError": "the core only reads files, it never creates one",
    "Io with kind NotFound -> ModelNotFoundError": "Error::io turns every NotFound I/O error into Error::NotFound",
}

#: Files that refuse reads even to root: sysctls with mode 0200, which procfs checks against
#: the mode bits itself instead of honouring CAP_DAC_OVERRIDE.
WRITE_ONLY_PROC_FILES = ("/proc/sys/vm/compact_memory", "/proc/sys/net/ipv4/route/flush")


def core_variants() -> dict[str, str]:
    """Variant name -> its doc comment, read from the `pub enum Error` in error.rs."""
    source = ERROR_RS.read_text(encoding="utf-8")
    block = source[source.index("pub enum Error {") : source.index("\n}\n", source.index("pub enum Error {"))]
    variants: dict[str, str] = {}
    doc: list[str] = []
    for line in block.splitlines()[1:]:
        if line.startswith("    ///"):
            doc.append(line.removeprefix("    ///").strip())
        elif match := re.match(r"^    ([A-Z]\w*)\b", line):
            variants[match.group(1)] = " ".join(doc)
            doc = []
    return variants


def check_os_error(error: BaseException, builtin: type[OSError], code: int | None, path: Path | str) -> None:
    """`error` is an EmbedforgeError and the built-in OSError subclass, with errno and filename set."""
    assert isinstance(error, EmbedforgeError)
    assert isinstance(error, builtin)
    assert error.errno == code
    assert error.filename == str(path)
    assert repr(str(path)) in str(error)


def test_every_core_variant_is_triggered_and_documented() -> None:
    variants = core_variants()
    assert set(variants) == set(TRIGGERED), "add a case for the new variant here and to TRIGGERED"
    for name, cls in TRIGGERED.items():
        assert f"`{cls.__name__}`" in variants[name], f"error.rs does not document {name} -> {cls.__name__}"
        assert issubclass(cls, EmbedforgeError)
    for cls in IO_KIND_CLASSES:
        assert f"`{cls.__name__}`" in variants["Io"], f"error.rs does not document Io -> {cls.__name__}"
        assert issubclass(cls, EmbedforgeError) and issubclass(cls, OSError)


# Error::Io, one case per ErrorKind the bindings map.


def test_permission_denied_on_a_chmod_000_file(tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.json"
    path.write_text("{}")
    path.chmod(0)
    # Root (euid 0 with CAP_DAC_OVERRIDE) reads it anyway; ask the kernel rather than guess.
    if os.access(path, os.R_OK):
        path.chmod(0o600)
        pytest.skip(f"euid {os.geteuid()} ignores file permissions; the write-only /proc case covers this")
    try:
        with pytest.raises(EmbedforgePermissionError) as caught:
            _core.Tokenizer.from_file(str(path))
    finally:
        path.chmod(0o600)
    check_os_error(caught.value, PermissionError, errno.EACCES, path)
    assert str(caught.value) == f"[Errno {errno.EACCES}] {os.strerror(errno.EACCES)}: {str(path)!r}"


def unreadable_proc_file() -> str | None:
    """A file this process may not read, whoever it runs as (None if the system has none)."""
    for path in WRITE_ONLY_PROC_FILES:
        try:
            with open(path, "rb") as f:
                f.read(1)
        except PermissionError:
            return path
        except OSError:
            continue
    return None


def test_permission_denied_on_a_write_only_proc_file() -> None:
    path = unreadable_proc_file()
    if path is None:
        pytest.skip(f"none of {WRITE_ONLY_PROC_FILES} exists and refuses reads here")
    with pytest.raises(EmbedforgePermissionError) as caught:
        _core.Tokenizer.from_file(path)
    check_os_error(caught.value, PermissionError, errno.EACCES, path)


def test_folder_where_a_file_is_expected(tmp_path: Path) -> None:
    with pytest.raises(EmbedforgeIsADirectoryError) as caught:
        _core.Tokenizer.from_file(str(tmp_path))
    check_os_error(caught.value, IsADirectoryError, errno.EISDIR, tmp_path)


def test_folder_where_a_file_is_expected_inside_a_model(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "model2vec"}')
    (tmp_path / "tokenizer.json").mkdir()
    with pytest.raises(EmbedforgeIsADirectoryError) as caught:
        _core.StaticModel.load(str(tmp_path))
    check_os_error(caught.value, IsADirectoryError, errno.EISDIR, tmp_path / "tokenizer.json")


def test_file_where_a_folder_is_expected(tmp_path: Path) -> None:
    (tmp_path / "model").write_text("not a folder")
    path = tmp_path / "model" / "tokenizer.json"
    with pytest.raises(EmbedforgeNotADirectoryError) as caught:
        _core.Tokenizer.from_file(str(path))
    check_os_error(caught.value, NotADirectoryError, errno.ENOTDIR, path)


def test_other_io_error_without_an_os_code(tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.json"
    path.write_bytes(b"\xff\xfe not UTF-8")
    with pytest.raises(EmbedforgeIOError) as caught:
        _core.Tokenizer.from_file(str(path))
    assert type(caught.value) is EmbedforgeIOError
    check_os_error(caught.value, OSError, None, path)
    assert str(caught.value) == f"stream did not contain valid UTF-8: {str(path)!r}"


def test_other_io_error_with_an_os_code() -> None:
    # Reading a process's memory at address 0, which is never mapped, fails with EIO.
    path = "/proc/self/mem"
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as error:
        if error.errno != errno.EIO:
            pytest.skip(f"reading {path} fails with {error!r} here, not EIO")
    else:
        pytest.skip(f"{path} is readable at offset 0 here")
    with pytest.raises(EmbedforgeIOError) as caught:
        _core.Tokenizer.from_file(path)
    assert type(caught.value) is EmbedforgeIOError
    check_os_error(caught.value, OSError, errno.EIO, path)


# Error::NotFound


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.json"
    with pytest.raises(ModelNotFoundError) as caught:
        _core.Tokenizer.from_file(str(path))
    check_os_error(caught.value, FileNotFoundError, errno.ENOENT, path)
    assert str(caught.value) == f"[Errno {errno.ENOENT}] tokenizer file not found: {str(path)!r}"


def test_missing_model_folder(tmp_path: Path) -> None:
    path = tmp_path / "missing"
    with pytest.raises(ModelNotFoundError) as caught:
        _core.StaticModel.load(str(path))
    check_os_error(caught.value, FileNotFoundError, errno.ENOENT, path)
    assert "model folder not found" in str(caught.value)


# Error::InvalidArgument, Error::Tokenizer, Error::ModelFormat


def test_invalid_argument() -> None:
    weights = np.zeros((3, 2), dtype=np.float32)
    ids = np.array([0, 1], dtype=np.int64)
    with pytest.raises(InvalidArgumentError, match=r"invalid value for `offsets\[0\]`: got 1, expected 0") as caught:
        _core.embedding_bag_mean(weights, ids, np.array([1], dtype=np.int64))
    assert isinstance(caught.value, EmbedforgeError)
    assert isinstance(caught.value, ValueError)


def test_tokenizer_error() -> None:
    with pytest.raises(TokenizerError, match="cannot parse tokenizer JSON") as caught:
        _core.Tokenizer.from_str("this is not a tokenizer")
    assert isinstance(caught.value, EmbedforgeError)
    assert isinstance(caught.value, ValueError)


def test_model_format_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{ not json")
    with pytest.raises(ModelFormatError, match=r"invalid model file .*config.json: invalid JSON") as caught:
        _core.StaticModel.load(str(tmp_path))
    assert isinstance(caught.value, EmbedforgeError)
    assert isinstance(caught.value, ValueError)
    assert not isinstance(caught.value, OSError)
