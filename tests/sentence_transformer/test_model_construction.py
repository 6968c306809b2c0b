"""Constructor and helper behaviour that sentence-transformers 6.2 users rely on."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

from embedforge import SentenceTransformer
from embedforge.base.modules.module import Module
from embedforge.exceptions import InvalidArgumentError
from embedforge.sentence_transformer.modules import Normalize


class Scale(Module):
    """A third-party module built on embedforge's Module base."""

    config_keys = ["factor"]  # noqa: RUF012 (the base declares it as a ClassVar)

    def __init__(self, factor: float = 2.0) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        features["sentence_embedding"] = features["sentence_embedding"] * self.factor
        return features

    def save(self, output_path: str, *args: Any, **kwargs: Any) -> None:
        self.save_config(output_path)

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", **kwargs: Any) -> Scale:
        return cls(**cls.load_config(model_name_or_path, subfolder))


def test_empty_module_list_is_an_error_but_no_modules_is_an_empty_model() -> None:
    with pytest.raises(InvalidArgumentError, match="An empty modules list was passed"):
        SentenceTransformer(modules=[])
    assert len(SentenceTransformer(device="cpu")) == 0


def test_path_and_modules_together_load_the_path_with_a_warning(
    tiny_bert_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING"):
        model = SentenceTransformer(str(tiny_bert_dir), modules=[Normalize()], device="cpu")
    assert "the `modules` argument is ignored" in caplog.text
    assert [type(module).__name__ for module in model] == ["Transformer", "Pooling"]


def test_use_auth_token_is_deprecated_and_conflicts_with_token() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        SentenceTransformer(modules=[torch.nn.Identity()], use_auth_token="secret")
    assert [w.category for w in caught if "use_auth_token" in str(w.message)] == [FutureWarning]
    with pytest.raises(ValueError, match="Both `token` and `use_auth_token`"):
        SentenceTransformer(modules=[torch.nn.Identity()], token="a", use_auth_token="b")


def test_save_without_a_path_saves_nothing_and_says_so(
    tiny_bert_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = SentenceTransformer(str(tiny_bert_dir), device="cpu")
    monkeypatch.chdir(tmp_path)
    with caplog.at_level("WARNING"):
        model.save(None)  # type: ignore[arg-type]
    assert "nothing was saved" in caplog.text
    assert os.listdir(tmp_path) == []


def test_tokenize_warns_that_preprocess_replaces_it(tiny_bert_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    model = SentenceTransformer(str(tiny_bert_dir), device="cpu")
    with caplog.at_level("WARNING"):
        features = model.tokenize(["hello world"])
    assert "deprecated" in caplog.text and "preprocess" in caplog.text
    assert torch.equal(features["input_ids"], model.preprocess(["hello world"])["input_ids"])


def test_singular_inputs(tiny_bert_dir: Path) -> None:
    model = SentenceTransformer(str(tiny_bert_dir), device="cpu")
    conversation = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert model.is_singular_input(torch.tensor([1, 2, 3]))
    assert model.is_singular_input(conversation)
    assert not model.is_singular_input([conversation, conversation])
    assert not model.is_singular_input([{"text": "a"}, {"text": "b"}])
    assert not model.is_singular_input(("a", "b"))


def test_third_party_module_saves_its_own_import_path(tiny_bert_dir: Path, tmp_path: Path) -> None:
    base = SentenceTransformer(str(tiny_bert_dir), device="cpu")
    model = SentenceTransformer(modules=[*base, Scale(3.0)], device="cpu")
    model.save(str(tmp_path / "scaled"))
    entries = json.loads((tmp_path / "scaled" / "modules.json").read_text())
    assert entries[2]["type"] == f"{Scale.__module__}.Scale"
    reloaded = SentenceTransformer(str(tmp_path / "scaled"), device="cpu")
    assert isinstance(reloaded[2], Scale) and reloaded[2].factor == 3.0
    torch.testing.assert_close(
        torch.from_numpy(reloaded.encode(["a b c"])), 3 * torch.from_numpy(base.encode(["a b c"])), rtol=1e-5, atol=1e-6
    )


def test_a_save_that_rejects_safe_serialization_is_called_without_it(
    tiny_bert_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = SentenceTransformer(str(tiny_bert_dir), device="cpu")
    pooling_class = type(model[1])
    original = pooling_class.save
    calls: list[str] = []

    def picky_save(self: Any, path: str, safe_serialization: bool | None = None) -> None:
        if safe_serialization is not None:
            calls.append("with option")
            raise TypeError("unexpected keyword argument 'safe_serialization'")
        calls.append("without")
        original(self, path)

    monkeypatch.setattr(pooling_class, "save", picky_save)
    model.save(str(tmp_path / "saved"))
    assert calls == ["with option", "without"]
    assert (tmp_path / "saved" / "1_Pooling" / "config.json").is_file()


@pytest.mark.parametrize(
    ("modalities", "asked", "expected"),
    [
        (["text"], "text", True),
        (["text"], "image", False),
        (["text"], "message", False),
        (["text", "image"], ("image", "text"), False),  # combining needs the message format
        (["text", "image", "message"], ("image", "text"), True),
        (["text", "image", "message"], ("audio", "text"), False),
        (["text", ("image", "text")], ("image", "text"), True),  # listed explicitly
    ],
)
def test_supports_reads_the_modalities(
    tiny_bert_dir: Path, monkeypatch: pytest.MonkeyPatch, modalities: list[Any], asked: Any, expected: bool
) -> None:
    model = SentenceTransformer(str(tiny_bert_dir), device="cpu")
    assert model.modalities == ["text"]
    monkeypatch.setattr(type(model), "modalities", property(lambda self: modalities))
    assert model.supports(asked) is expected


def test_config_is_the_transformers_config(tiny_bert_dir: Path) -> None:
    model = SentenceTransformer(str(tiny_bert_dir), device="cpu")
    assert model.config is model[0].auto_model.config
    assert model.config.hidden_size == model.get_embedding_dimension()
    replacement = type(model.config).from_dict({**model.config.to_dict(), "hidden_dropout_prob": 0.0})
    model.config = replacement
    assert model[0].auto_model.config is replacement


def test_a_model_without_a_transformer_has_no_config() -> None:
    model = SentenceTransformer(modules=[Normalize()], device="cpu")
    assert model.config is None and model.transformers_model is None
    with pytest.raises(InvalidArgumentError, match="no transformers model"):
        model.config = object()
