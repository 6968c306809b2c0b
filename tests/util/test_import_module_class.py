"""import_module_class: library classes import freely; a model's own code needs trust_remote_code=True."""

from __future__ import annotations

import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pytest

from embedforge.util import import_module_class


def test_library_references_resolve_to_embedforge_classes() -> None:
    from embedforge.base.modules.transformer import Transformer
    from embedforge.sentence_transformer.modules import Pooling

    assert import_module_class("sentence_transformers.models.Pooling", "org/model") is Pooling
    assert import_module_class("sentence_transformers.base.modules.transformer.Transformer") is Transformer
    assert import_module_class("embedforge.sentence_transformer.modules.Pooling", "org/model") is Pooling


@pytest.mark.parametrize("trust", [False, None])
def test_other_classes_need_trust_when_a_model_names_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trust: Any
) -> None:
    def must_not_run(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("no code may be loaded without trust_remote_code=True")

    monkeypatch.setattr("transformers.dynamic_module_utils.get_class_from_dynamic_module", must_not_run)
    with pytest.raises(ValueError, match="trust_remote_code=True") as info:
        import_module_class("collections.OrderedDict", str(tmp_path), trust_remote_code=trust)
    assert str(tmp_path) in str(info.value)  # a local folder is named by its path, not a Hub URL
    with pytest.raises(ValueError, match=re.escape("https://hf.co/org/model")):
        import_module_class("modeling_x.Custom", "org/model")


def test_without_a_model_the_caller_chose_the_class() -> None:
    assert import_module_class("collections.OrderedDict") is OrderedDict


def test_trusted_references_try_the_models_code_first(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    custom = type("Custom", (), {})

    def fake_dynamic(class_ref: str, model: str, **kwargs: Any) -> type:
        seen.update(kwargs, class_ref=class_ref, model=model)
        return custom

    monkeypatch.setattr("transformers.dynamic_module_utils.get_class_from_dynamic_module", fake_dynamic)
    found = import_module_class(
        "modeling_x.Custom",
        "org/model",
        trust_remote_code=True,
        revision="main",
        code_revision="abc",
        token="secret",
        cache_folder="/cache",
        local_files_only=True,
    )
    assert found is custom
    assert seen == {
        "class_ref": "modeling_x.Custom",
        "model": "org/model",
        "revision": "main",
        "code_revision": "abc",
        "token": "secret",
        "cache_dir": "/cache",
        "local_files_only": True,
    }


def test_trusted_references_fall_back_to_an_installed_package(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_modeling_file(*args: Any, **kwargs: Any) -> None:
        raise OSError("no such file in the model")

    monkeypatch.setattr("transformers.dynamic_module_utils.get_class_from_dynamic_module", no_modeling_file)
    assert import_module_class("collections.OrderedDict", "org/model", trust_remote_code=True) is OrderedDict
