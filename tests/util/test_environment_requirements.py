"""Version requirements a model declares, installed versions, and install hints for missing media packages."""

from __future__ import annotations

import logging
import platform
import sys
import types
from importlib.metadata import version
from typing import Any

import pytest

from embedforge.util import check_version_requirements
from embedforge.util.environment import get_installed_version, suggest_extra_on_exception


def test_get_installed_version() -> None:
    assert get_installed_version("python") == platform.python_version()
    assert get_installed_version("no-such-distribution-anywhere") is None
    assert get_installed_version("pytest") == pytest.__version__


def test_get_installed_version_prefers_the_imported_module(monkeypatch: pytest.MonkeyPatch) -> None:
    # Editable installs keep stale metadata: the running module's __version__ is the truth.
    monkeypatch.setitem(sys.modules, "fake_pkg_for_versions", types.SimpleNamespace(__version__="9.9.9"))
    assert get_installed_version("fake-pkg-for-versions") == "9.9.9"
    # A non-string __version__ is ignored in favour of the distribution metadata.
    monkeypatch.setattr(pytest, "__version__", None)
    assert get_installed_version("pytest") == version("pytest")


@pytest.mark.parametrize(
    "requirements",
    [
        None,
        {},
        {"torch": ">=1.0"},
        {"pytorch": ">=1.0"},
        {"python": f"=={platform.python_version()}"},
        {"torch": ""},
        {"numpy": {"specifier": ">=1", "reason": "arrays"}},
    ],
)
def test_satisfied_requirements_pass(requirements: Any) -> None:
    check_version_requirements(requirements, source="org/model")


def test_unmet_requirements_list_every_problem_and_one_install_line() -> None:
    with pytest.raises(ImportError) as info:
        check_version_requirements(
            {
                "pytorch": ">=999",
                "no-such-distribution-anywhere": {"specifier": ">=1.0", "reason": "It holds the head."},
                "python": ">=99",
            },
            source="org/model",
        )
    message = str(info.value)
    assert message.startswith("The model 'org/model' requires:")
    assert "- torch>=999, but torch==" in message  # "pytorch" is read as torch
    assert "- no-such-distribution-anywhere>=1.0, but it is not installed. It holds the head." in message
    assert f"- python>=99, but python=={platform.python_version()} is installed." in message
    # Python cannot be pip-installed, so it is left out of the command.
    assert message.endswith('pip install -U "torch>=999" "no-such-distribution-anywhere>=1.0"')


def test_prereleases_and_local_builds_count_as_matching(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "fake_pkg_for_versions", types.SimpleNamespace(__version__="2.0.0.dev1+cu126"))
    check_version_requirements({"fake-pkg-for-versions": ">=1.5,<3"})


@pytest.mark.parametrize("specifier", ["5.15", {"specifier": "@ git+https://example"}, 5.15, [">=1"]])
def test_unreadable_requirements_are_logged_not_raised(specifier: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        check_version_requirements({"no-such-distribution-anywhere": specifier}, source="org/model")
    assert "Could not verify" in caplog.text
    assert "'org/model'" in caplog.text


def test_unreadable_installed_version_is_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "fake_pkg_for_versions", types.SimpleNamespace(__version__="not.a.version!"))
    with caplog.at_level(logging.WARNING):
        check_version_requirements({"fake-pkg-for-versions": ">=1"})
    assert "Could not verify" in caplog.text


def test_a_non_dict_is_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        check_version_requirements(["torch>=999"], source="org/model")  # type: ignore[arg-type]
    assert "expected a dictionary" in caplog.text


@pytest.mark.parametrize(
    ("error", "hint"),
    [
        (ImportError("No module named 'PIL'"), "transformers[vision]"),
        (ImportError("No module named 'torchvision'"), "transformers[vision]"),
        (AttributeError("module 'torchvision.io' has no attribute 'read_video'"), "transformers[video]"),
        (AttributeError("module 'torchcodec' has no attribute 'decoders'"), "pip install -U torchcodec"),
        (ImportError("No module named 'soundfile'"), "transformers[audio]"),
    ],
)
def test_missing_media_dependencies_get_an_install_hint(error: Exception, hint: str) -> None:
    with pytest.raises(type(error)) as info, suggest_extra_on_exception():
        raise error
    assert str(info.value).startswith(str(error))
    assert hint in str(info.value)
    assert info.value.__cause__ is error


def test_other_errors_pass_through_unchanged() -> None:
    original = ImportError("No module named 'something_else'")
    with pytest.raises(ImportError) as info, suggest_extra_on_exception():
        raise original
    assert info.value is original
    with pytest.raises(ValueError, match="pil"), suggest_extra_on_exception():
        raise ValueError("pil")  # not an import problem: no hint
